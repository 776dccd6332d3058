package sqlite_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/store"
)

// BenchmarkAppendAudit10k appends the egress records of one 10,000-object
// page in one durable transaction, as the policy gate does.
func BenchmarkAppendAudit10k(b *testing.B) {
	s := open(b, b.TempDir())
	defer s.Close()
	recs := make([]store.AuditRecord, 10000)
	now := time.Now()
	for i := range recs {
		recs[i] = store.AuditRecord{Time: now, Actor: "key-1", Action: store.AuditEgress, Partner: "identity--0000000b-0000-4000-8000-000000000000",
			ObjectID: fmt.Sprintf("indicator--8e2e2d2b-17d4-4cbf-938f-%012x", i), Version: now, Rule: "agreement", Detail: "objects intel"}
	}
	for b.Loop() {
		if err := s.AppendAudit(b.Context(), recs); err != nil {
			b.Fatal(err)
		}
	}
}
