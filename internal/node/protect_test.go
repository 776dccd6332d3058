package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
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

// TestPartnerQuotaAtIngest: a partner's sightings past its quota per
// correlation window are refused when pushed (named in the status, not
// stored, so never passed on); its other objects are stored; without
// correlation enabled there is no quota, and a window later it may push
// again.
func TestPartnerQuotaAtIngest(t *testing.T) {
	s, _, clk := newService(t)
	ctx := context.Background()
	if _, _, err := s.Init(ctx, "Node", "FR", ""); err != nil {
		t.Fatal(err)
	}
	partner := "identity--00000000-0000-4000-8000-0000000000de"
	if err := s.PutPartner(ctx, admin, policy.Party{ID: partner, Name: "P", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	quota := 5
	if _, err := s.SetPartnerTrust(ctx, admin, partner, nil, &quota); err != nil {
		t.Fatal(err)
	}
	_, k, err := s.CreateKey(ctx, admin, node.NewKey{Name: "p", Role: entente.RolePartner, Org: partner})
	if err != nil {
		t.Fatal(err)
	}
	p := entente.Principal{KeyID: k.ID, Org: k.Org, Role: k.Role}
	seq := 0
	push := func(sightings int) *entente.Status {
		t.Helper()
		const ts = "2026-01-01T00:00:00.000Z"
		objs := []json.RawMessage{json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":%q,"modified":%q,"pattern":"[ipv4-addr:value = '45.33.32.156']","pattern_type":"stix","valid_from":%q}`, 900000+seq, ts, ts, ts))}
		for range sightings {
			seq++
			objs = append(objs, json.RawMessage(fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":"sighting--00000000-0000-4000-8000-%012d","created":%q,"modified":%q,"sighting_of_ref":"indicator--00000000-0000-4000-8000-000000900000"}`, seq, ts, ts)))
		}
		res, err := s.AddObjects(ctx, p, node.CollectionSightings, objs)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Correlation not enabled: no quota.
	if res := push(6); res.FailureCount != 0 {
		t.Fatalf("without correlation: %d refused", res.FailureCount)
	}
	if err := s.EnableAlerts(correlate.Config{Window: 24 * time.Hour, Slots: 8, Tiers: correlate.DefaultTiers(), MaxSkew: 5 * time.Minute, MaxAge: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	res := push(8)
	if res.SuccessCount != 6 || res.FailureCount != 3 || !strings.Contains(res.Failures[0].Message, "quota: partner "+partner+" may push 5 sightings per 24h0m0s") {
		t.Fatalf("8 sightings past a quota of 5: %d stored, %d refused: %+v", res.SuccessCount, res.FailureCount, res.Failures)
	}
	if _, err := s.MarkFalsePositive(ctx, admin, res.Failures[0].ID, ""); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Errorf("a refused sighting %s: %v; want it not stored (ENOTFOUND)", res.Failures[0].ID, err)
	}
	if res := push(1); res.FailureCount != 1 {
		t.Errorf("past the quota: %d refused, want 1", res.FailureCount)
	}
	// A window later the partner may push again.
	clk.add(25 * time.Hour)
	if res := push(2); res.FailureCount != 0 {
		t.Errorf("a window later: %d refused", res.FailureCount)
	}
}
