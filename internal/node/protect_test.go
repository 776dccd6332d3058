package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

// TestPartnersConstituencyProtected: what a partner declares its own
// leaves the node's exports and sensor snapshot as soon as the partner
// is recorded (a network around it is cut around it), comes back when
// the partner is removed, and a malformed declaration is refused with a
// 4xx that names the entry.
func TestPartnersConstituencyProtected(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	net, err := safety.Default()
	if err != nil {
		t.Fatal(err)
	}
	s := node.New(st, node.Config{Org: org, Safety: net}, nil)
	ctx := context.Background()
	if _, _, err := s.Init(ctx, "Node", "FR", ""); err != nil {
		t.Fatal(err)
	}
	const ts = "2026-01-01T00:00:00.000Z"
	var objs []json.RawMessage
	for i, v := range []string{"81.20.8.0/24", "81.20.8.9", "81.20.0.0/20", "45.33.32.156"} {
		objs = append(objs, json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":%q,"modified":%q,"pattern":"[ipv4-addr:value = '%s']","pattern_type":"stix","valid_from":%q}`,
			i+1, ts, ts, v, ts)))
	}
	if st, err := s.AddObjects(ctx, admin, node.CollectionIntel, objs); err != nil || st.FailureCount > 0 {
		t.Fatalf("store: %v %+v", err, st)
	}
	plain := func() []string {
		t.Helper()
		res, err := s.Export(ctx, admin, node.ExportRequest{Format: export.FormatPlain})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Fields(string(res.Files[0].Data))
	}
	before := plain()
	if !slices.Equal(before, []string{"45.33.32.156", "81.20.0.0/20"}) {
		t.Fatalf("before: %q", before)
	}
	partner := policy.Party{ID: "identity--00000000-0000-4000-8000-0000000000de", Name: "CERT-DE", Country: "DE", Constituency: []string{"81.20.8.0/24", "cert.example"}}
	if err := s.PutPartner(ctx, admin, partner); err != nil {
		t.Fatal(err)
	}
	after := plain()
	want := []string{"45.33.32.156", "81.20.0.0/21", "81.20.9.0/24", "81.20.10.0/23", "81.20.12.0/22"}
	if !slices.Equal(after, want) {
		t.Errorf("with the partner: %q, want %q", after, want)
	}
	ex, err := net.Explain("81.20.8.9")
	if err != nil || !strings.Contains(ex.Rule, "partner CERT-DE") {
		t.Errorf("explain: %+v %v", ex, err)
	}
	if err := s.RemovePartner(ctx, admin, partner.ID); err != nil {
		t.Fatal(err)
	}
	if again := plain(); !slices.Equal(again, before) {
		t.Errorf("partner removed: %q, want %q", again, before)
	}
	bad := partner
	bad.Constituency = []string{"81.20.8.0/24", "AS64500"}
	err = s.PutPartner(ctx, admin, bad)
	if entente.ErrorCode(err) != entente.EINVALID || !strings.Contains(err.Error(), "AS64500") {
		t.Errorf("a malformed constituency: %v", err)
	}
}
