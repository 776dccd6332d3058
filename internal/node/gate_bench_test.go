package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

// BenchmarkRead10k reads a page of 10,000 indicators from the node
// (without HTTP), ungated (an analyst of the node) and gated (a partner
// under an agreement that releases them all: classification,
// provenance, decision and the page's durable audit record), one of each
// per iteration. gate-% is the gate's cost: gated over ungated, less
// 100.
func BenchmarkRead10k(b *testing.B) {
	s, _, _ := newServiceTB(b)
	ctx := context.Background()
	c, err := s.CreateCollection(ctx, admin, entente.Collection{Alias: "intel", Title: "Intel", DefaultMarking: stix.TLPGreen.MarkingID(),
		ReadRoles: []entente.Role{entente.RoleAnalyst, entente.RolePartner}})
	if err != nil {
		b.Fatal(err)
	}
	const n = 10000
	objs := make([]json.RawMessage, n)
	for i := range objs {
		objs[i] = json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-%012x",`+
			`"created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.%d.%d']",`+
			`"pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z","object_marking_refs":[%q]}`, i, i/256%256, i%256, stix.TLPGreen.MarkingID()))
	}
	if st, err := s.AddObjects(ctx, admin, c.ID, objs); err != nil || st.FailureCount > 0 {
		b.Fatalf("add: %v", err)
	}
	if err := s.PutPartner(ctx, admin, policy.Party{ID: partnerB, Country: "DE"}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: partnerB}, Collections: []string{"intel"}, MaxTLP: stix.TLPAmber}); err != nil {
		b.Fatal(err)
	}
	_, analyst := keyTB(b, s, entente.RoleAnalyst, "")
	_, partner := keyTB(b, s, entente.RolePartner, partnerB)
	read := func(p entente.Principal) time.Duration {
		start := time.Now()
		page, err := s.Objects(ctx, p, "intel", entente.ObjectQuery{Limit: n})
		if err != nil || len(page.Entries) != n {
			b.Fatalf("read %d objects: %v", len(page.Entries), err)
		}
		return time.Since(start)
	}
	// The two reads alternate, so that a drift in the machine's speed
	// moves both alike.
	var ungated, gated time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			ungated += read(analyst)
			gated += read(partner)
		} else {
			gated += read(partner)
			ungated += read(analyst)
		}
		i++
	}
	b.ReportMetric(float64(ungated.Microseconds())/1000/float64(i), "ungated-ms")
	b.ReportMetric(float64(gated.Microseconds())/1000/float64(i), "gated-ms")
	b.ReportMetric(100*(float64(gated)/float64(ungated)-1), "gate-%")
}

func newServiceTB(tb testing.TB) (*node.Service, *sqlite.Store, *clock) {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return node.New(st, node.Config{Org: org, Now: c.now, Dial: dial}, nil), st, c
}

func keyTB(tb testing.TB, s *node.Service, role entente.Role, orgID string) (string, entente.Principal) {
	tb.Helper()
	secret, k, err := s.CreateKey(context.Background(), admin, node.NewKey{Name: "k", Role: role, Org: orgID})
	if err != nil {
		tb.Fatal(err)
	}
	return secret, entente.Principal{KeyID: k.ID, Org: k.Org, Role: k.Role}
}
