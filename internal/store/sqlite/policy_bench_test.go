package sqlite_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/audit"
)

// BenchmarkAppendAudit10k audits the egress of one 10,000-object page in
// one durable transaction: as 10,000 records (AppendAudit), and as the
// policy gate does, one release with its index by object (AppendRelease).
func BenchmarkAppendAudit10k(b *testing.B) {
	s := open(b, b.TempDir())
	defer s.Close()
	now := time.Now()
	recs := make([]audit.Record, 10000)
	rel := audit.Release{Time: now, Actor: "key-1", Partner: "identity--0000000b-0000-4000-8000-000000000000", Detail: "objects intel"}
	for i := range recs {
		id := fmt.Sprintf("indicator--8e2e2d2b-17d4-4cbf-938f-%012x", i)
		recs[i] = audit.Record{Time: now, Actor: "key-1", Action: audit.Egress, Partner: "identity--0000000b-0000-4000-8000-000000000000",
			ObjectID: id, Version: now, Rule: "agreement", Detail: "objects intel"}
		rel.Versions = append(rel.Versions, audit.ReleasedVersion{ObjectID: id, Version: now, Rule: "agreement"})
	}
	b.Run("records", func(b *testing.B) {
		for b.Loop() {
			if err := s.AppendAudit(b.Context(), recs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("release", func(b *testing.B) {
		for b.Loop() {
			if err := s.AppendRelease(b.Context(), rel); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendReleaseSizes appends one sealed release (as the gate
// seals a pipelined read's records) of 1, 500, 2,000 and 7,500 versions,
// one durable commit each: what a release costs by its size, the index
// by object written later in batches.
func BenchmarkAppendReleaseSizes(b *testing.B) {
	s := open(b, b.TempDir())
	defer s.Close()
	now := time.Now()
	for _, n := range []int{1, 500, 2000, 7500} {
		rel := audit.Release{Time: now, Actor: "key-1", Partner: "identity--0000000b-0000-4000-8000-000000000000", Detail: "objects intel"}
		for i := range n {
			id := fmt.Sprintf("indicator--8e2e2d2b-17d4-4cbf-938f-%012x", i)
			rel.Versions = append(rel.Versions, audit.ReleasedVersion{ObjectID: id, Version: now, Rule: "agreement"})
		}
		var p audit.Packer
		if err := p.Add(rel, rel.Versions); err != nil {
			b.Fatal(err)
		}
		sealed := p.Seal(rel)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if err := s.AppendRelease(b.Context(), sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
