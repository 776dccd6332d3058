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
	"github.com/entente-cti/entente/internal/stix"
)

// plainExport returns the node's plain blocklist as its admin reads it.
func plainExport(t *testing.T, s *node.Service, id node.Identity) string {
	t.Helper()
	res, err := s.Export(context.Background(), node.LocalAdmin(id.ID), node.ExportRequest{Format: export.FormatPlain})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range res.Files {
		b.Write(f.Data)
	}
	return b.String()
}

// alertStatus returns the status of the node's only alert.
func onlyAlert(t *testing.T, s *node.Service, p entente.Principal) node.AlertInfo {
	t.Helper()
	list, err := s.ListAlerts(context.Background(), p, node.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("%d alerts, want 1: %+v", len(list), list)
	}
	return list[0]
}

// TestFalsePositiveWithdraws marks the sighted indicator of a national
// alert a false positive: the node revokes it (it owns it), the alert is
// withdrawn at once and says so, the value leaves the blocklist, the
// retraction is audited, and a later sighting of it counts for nothing.
func TestFalsePositiveWithdraws(t *testing.T) {
	s, clk, id := alertNode(t)
	t.Cleanup(s.Close)
	ctx := context.Background()
	analyst := sensorOf(t, s, id, entente.RoleAnalyst)
	sensor := sensorOf(t, s, id, entente.RoleSensor)
	now := clk.now()
	report(t, s, id, 0, alertSighting(0, now))
	report(t, s, id, 1, alertSighting(1, now))
	al := onlyAlert(t, s, analyst)
	if al.Tier != "national" || al.Sources != 2 || !slices.Contains(al.Values, "ipv4 198.51.100.7") || al.ThreatName != "Sample" {
		t.Fatalf("before: %+v", al)
	}
	if !strings.Contains(plainExport(t, s, id), "198.51.100.7") {
		t.Fatal("the indicator is not in the blocklist before it is retracted")
	}

	// Bad requests name the fault.
	if _, err := s.MarkFalsePositive(ctx, sensor, alertIndicator, ""); entente.ErrorCode(err) != entente.EFORBIDDEN {
		t.Errorf("a sensor marks a false positive: %v, want EFORBIDDEN", err)
	}
	if _, err := s.MarkFalsePositive(ctx, analyst, "indicator--0a1b2c3d-0000-4000-8000-0000000000ff", ""); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Errorf("an unknown object: %v, want ENOTFOUND", err)
	}
	if _, err := s.MarkFalsePositive(ctx, analyst, "198.51.100.7", ""); entente.ErrorCode(err) != entente.EINVALID || !strings.Contains(err.Error(), "198.51.100.7") {
		t.Errorf("a value, not an id: %v, want EINVALID naming it", err)
	}

	clk.add(time.Minute)
	fp, err := s.MarkFalsePositive(ctx, analyst, alertIndicator, "a resolver, not a C2")
	if err != nil {
		t.Fatal(err)
	}
	if !fp.Revoked || !strings.HasPrefix(fp.Opinion, "opinion--") || !slices.Equal(fp.Withdrawn, []string{al.ID}) || fp.Collection == "" {
		t.Fatalf("false positive: %+v, want the indicator revoked and alert %s withdrawn", fp, al.ID)
	}
	got := onlyAlert(t, s, analyst)
	if got.Status != correlate.StatusWithdrawn || !got.Withdrawn {
		t.Errorf("after the retraction the alert is %s (withdrawn %v), want withdrawn", got.Status, got.Withdrawn)
	}
	if strings.Contains(plainExport(t, s, id), "198.51.100.7") {
		t.Error("the retracted indicator is still in the blocklist")
	}
	page, err := s.QueryAudit(ctx, node.LocalAdmin(id.ID), node.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, r := range page.Records {
		audited = audited || r.Rule == "retraction" && strings.Contains(r.Detail, alertIndicator) && strings.Contains(r.Detail, fp.Opinion)
	}
	if !audited {
		t.Error("the retraction is not in the audit log")
	}
	// A later sighting of the retracted indicator counts for nothing.
	report(t, s, id, 2, alertSighting(2, now))
	report(t, s, id, 3, alertSighting(3, now))
	if got := onlyAlert(t, s, analyst); got.Status != correlate.StatusWithdrawn {
		t.Errorf("sightings after the retraction raised the alert again: %+v", got)
	}
	// A restarted correlation honours it too (the store holds it).
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestQuarantineWithdrawsAPartnersContributions quarantines one of the
// two partners behind a regional alert: the alert is lowered to what the
// other supports, the quarantined partner's indicator leaves the
// blocklist, its new sightings count for nothing; released, all of it
// counts again.
func TestQuarantineWithdrawsAPartnersContributions(t *testing.T) {
	s, clk, id := alertNode(t)
	t.Cleanup(s.Close)
	ctx := context.Background()
	admin := node.LocalAdmin(id.ID)
	analyst := sensorOf(t, s, id, entente.RoleAnalyst)
	now := clk.now()
	inbox, err := s.CreateCollection(ctx, admin, entente.Collection{Alias: "inbox", Title: "Inbox", DefaultMarking: stix.TLPGreen.MarkingID(),
		ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RolePartner}})
	if err != nil {
		t.Fatal(err)
	}
	// Two French organisations report themselves; a German CERT reports
	// a German and an Italian one.
	report(t, s, id, 0, alertSighting(0, now))
	report(t, s, id, 1, alertSighting(1, now))
	const certDE = "identity--0a1b2c3d-0000-4000-b000-0000000000de"
	if err := s.PutPartner(ctx, admin, policy.Party{ID: certDE, Name: "CERT DE", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	_, k, err := s.CreateKey(ctx, admin, node.NewKey{Name: "CERT DE", Role: entente.RolePartner, Org: certDE})
	if err != nil {
		t.Fatal(err)
	}
	de := entente.Principal{KeyID: k.ID, Org: certDE, Role: entente.RolePartner}
	junk := json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"indicator--0a1b2c3d-0000-4000-8000-0000000000de","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '203.0.113.77']","pattern_type":"stix","valid_from":"2026-11-01T00:00:00Z"}`)
	if st, err := s.AddObjects(ctx, de, inbox.ID, []json.RawMessage{alertSighting(2, now), alertSighting(3, now), junk}); err != nil || st.FailureCount > 0 {
		t.Fatalf("CERT DE pushes: %v %+v", err, st)
	}
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	al := onlyAlert(t, s, analyst)
	if al.Tier != "regional" || al.Sources != 3 {
		t.Fatalf("before: %+v, want regional from 3 sources", al)
	}
	if !strings.Contains(plainExport(t, s, id), "203.0.113.77") {
		t.Fatal("CERT DE's indicator is not in the blocklist")
	}

	if _, err := s.QuarantinePartner(ctx, analyst, certDE, ""); entente.ErrorCode(err) != entente.EFORBIDDEN {
		t.Errorf("an analyst quarantines: %v, want EFORBIDDEN", err)
	}
	if _, err := s.QuarantinePartner(ctx, admin, "identity--0a1b2c3d-0000-4000-b000-0000000000ff", ""); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Errorf("quarantine of an unknown partner: %v, want ENOTFOUND", err)
	}
	clk.add(time.Minute)
	p, err := s.QuarantinePartner(ctx, admin, certDE, "fabricated sightings")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Trust.Quarantined || p.Trust.Reason != "fabricated sightings" {
		t.Errorf("quarantined partner: %+v", p.Trust)
	}
	got := onlyAlert(t, s, analyst)
	if got.Tier != "national" || got.Sources != 2 || slices.Contains(got.Countries, "DE") {
		t.Errorf("after the quarantine: %+v, want national from the 2 French organisations", got)
	}
	if strings.Contains(plainExport(t, s, id), "203.0.113.77") {
		t.Error("the quarantined partner's indicator is still in the blocklist")
	}
	// Recording the partner again does not lift the quarantine.
	if err := s.PutPartner(ctx, admin, policy.Party{ID: certDE, Name: "CERT DE", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Partners(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.ID == certDE && !p.Trust.Quarantined {
			t.Error("recording the partner again lifted its quarantine")
		}
	}
	// What it sends while quarantined counts for nothing.
	more := json.RawMessage(fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":"sighting--0a1b2c3d-0000-4000-a000-0000000000e1","created":"2026-11-20T11:00:00.000Z","modified":"2026-11-20T11:00:00.000Z",`+
		`"last_seen":"2026-11-20T11:00:00.000Z","sighting_of_ref":%q,"where_sighted_refs":[%q]}`, alertIndicator, orgID(4)))
	if st, err := s.AddObjects(ctx, de, inbox.ID, []json.RawMessage{more}); err != nil || st.FailureCount > 0 {
		t.Fatalf("CERT DE pushes while quarantined: %v %+v", err, st)
	}
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	stats, err := s.AlertStats(ctx, analyst)
	if err != nil {
		t.Fatal(err)
	}
	if stats.RejectedBy(correlate.ReasonQuarantined) == 0 {
		t.Errorf("a quarantined partner's sighting was not refused: %+v", stats)
	}

	clk.add(time.Minute)
	if _, err := s.ReleasePartner(ctx, admin, certDE); err != nil {
		t.Fatal(err)
	}
	if got := onlyAlert(t, s, analyst); got.Tier != "regional" {
		t.Errorf("after the release: %+v, want regional again", got)
	}
	if !strings.Contains(plainExport(t, s, id), "203.0.113.77") {
		t.Error("the released partner's indicator is not back in the blocklist")
	}
}

// TestRetractionFollowsToPartners: node A shares an indicator and its
// sightings of it with B, whose agreement covers indicators and
// sightings only; A marks the indicator a false positive. The retraction
// reaches B through the gate (rule retraction, audited on A) although
// its agreement does not cover opinions; B withdraws the alert A's
// sightings raised there and drops the indicator from its blocklist, and
// audits the retraction it received. C, whose agreement covers nothing
// of it, receives nothing.
func TestRetractionFollowsToPartners(t *testing.T) {
	ctx := context.Background()
	a, b, c := serveAlertNode(t), serveAlertNode(t), serveAlertNode(t)
	adminA := node.LocalAdmin(a.id.ID)
	for _, peer := range []*servedAlertNode{b, c} {
		if err := a.s.PutPartner(ctx, adminA, policy.Party{ID: peer.id.ID, Name: "peer", Country: "DE"}); err != nil {
			t.Fatal(err)
		}
		if err := peer.s.PutPartner(ctx, node.LocalAdmin(peer.id.ID), policy.Party{ID: a.id.ID, Name: "A", Country: "FR"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.s.PutAgreement(ctx, adminA, policy.Agreement{Partner: policy.Party{ID: b.id.ID}, Collections: []string{node.CollectionIntel, node.CollectionSightings},
		ObjectTypes: []string{"indicator", "sighting"}, MaxTLP: stix.TLPAmber}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.PutAgreement(ctx, adminA, policy.Agreement{Partner: policy.Party{ID: c.id.ID}, Collections: []string{node.CollectionAlerts},
		MaxTLP: stix.TLPGreen}); err != nil {
		t.Fatal(err)
	}
	for _, peer := range []*servedAlertNode{b, c} {
		secret, _, err := peer.s.CreateKey(ctx, node.LocalAdmin(peer.id.ID), node.NewKey{Name: "A", Role: entente.RolePartner, Org: a.id.ID})
		if err != nil {
			t.Fatal(err)
		}
		for _, local := range []string{node.CollectionIntel, node.CollectionSightings} {
			if _, err := a.s.AddPeer(ctx, adminA, node.Peer{ID: "p-" + local + peer.id.ID, Name: "peer", APIRoot: peer.url + "/taxii2/api1/", Collection: peer.inbox.ID,
				LocalCollection: local, Token: secret, Org: peer.id.ID, Direction: node.DirectionPush}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An indicator A holds from a feed (it does not own it), and two
	// French organisations' sightings of it.
	const x = "indicator--0a1b2c3d-0000-4000-8000-00000000f001"
	ind := json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"` + x + `","created_by_ref":"identity--0a1b2c3d-0000-4000-8000-00000000feed","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.55']","pattern_type":"stix","valid_from":"2026-11-01T00:00:00Z"}`)
	if st, err := a.s.AddObjects(ctx, adminA, node.CollectionIntel, []json.RawMessage{ind}); err != nil || st.FailureCount > 0 {
		t.Fatalf("store the indicator: %v %+v", err, st)
	}
	now := a.clk.now()
	sighting := func(i int) json.RawMessage {
		return json.RawMessage(strings.Replace(string(alertSighting(i, now)), alertIndicator, x, 1))
	}
	analystB := sensorOf(t, b.s, b.id, entente.RoleAnalyst)
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s", what)
			}
		}
	}
	// The sightings after B holds the indicator: a sighting B receives
	// before what it sights is correlated by the periodic scan only,
	// which this test does not run (the two pushes race under load).
	waitFor("B holds the indicator", func() bool { _, ok := b.held(t, "inbox")[x]; return ok })
	postSightings(t, a.s, sensorOf(t, a.s, a.id, entente.RoleSensor), sighting(0), sighting(1))
	waitFor("B raises the alert A's sightings support", func() bool {
		list, err := b.s.ListAlerts(ctx, analystB, node.AlertFilter{})
		return err == nil && len(list) == 1 && list[0].Status == correlate.StatusNew
	})
	if !strings.Contains(plainExport(t, b.s, b.id), "198.51.100.55") {
		t.Fatal("B's blocklist lacks A's indicator")
	}

	a.clk.add(time.Minute)
	fp, err := a.s.MarkFalsePositive(ctx, sensorOf(t, a.s, a.id, entente.RoleAnalyst), x, "sinkhole")
	if err != nil {
		t.Fatal(err)
	}
	if fp.Revoked {
		t.Error("A revoked an indicator it does not own")
	}
	waitFor("B withdraws the alert", func() bool {
		list, err := b.s.ListAlerts(ctx, analystB, node.AlertFilter{})
		return err == nil && len(list) == 1 && list[0].Status == correlate.StatusWithdrawn
	})
	if strings.Contains(plainExport(t, b.s, b.id), "198.51.100.55") {
		t.Error("B's blocklist still holds the indicator A retracted")
	}
	if _, ok := b.held(t, "inbox")[fp.Opinion]; !ok {
		t.Error("B does not hold A's retraction")
	}
	if _, ok := c.held(t, "inbox")[fp.Opinion]; ok {
		t.Error("C, whose agreement covers none of it, received the retraction")
	}
	rel, err := a.s.QueryAudit(ctx, adminA, node.AuditQuery{Action: node.AuditEgress, Partner: b.id.ID, ObjectID: fp.Opinion})
	if err != nil {
		t.Fatal(err)
	}
	if len(rel.Records) == 0 || rel.Records[0].Rule != "retraction" {
		t.Errorf("A's audit of the retraction sent to B: %+v, want rule retraction", rel.Records)
	}
	got, err := b.s.QueryAudit(ctx, node.LocalAdmin(b.id.ID), node.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	received := false
	for _, r := range got.Records {
		received = received || r.Rule == "retraction.received" && r.Partner == a.id.ID
	}
	if !received {
		t.Error("B did not audit the retraction it received")
	}
}

// TestQuarantineReachesWhereItsContributionsWent: a CERT (Y) relays to
// another (X) the sightings a constituent (A) pushed to it; X raises an
// alert on them. Y quarantines A: the retraction of A's sightings
// follows them to X, which withdraws the alert; Y releases A, and X acts
// on them again.
func TestQuarantineReachesWhereItsContributionsWent(t *testing.T) {
	ctx := context.Background()
	y, x := serveAlertNode(t), serveAlertNode(t)
	adminY, adminX := node.LocalAdmin(y.id.ID), node.LocalAdmin(x.id.ID)
	// Y's reports: what its constituents push, passed on to X.
	reports, err := y.s.CreateCollection(ctx, adminY, entente.Collection{Alias: "reports", Title: "Reports", DefaultMarking: stix.TLPGreen.MarkingID(),
		ReadRoles: []entente.Role{entente.RoleAnalyst, entente.RolePartner}, WriteRoles: []entente.Role{entente.RolePartner}})
	if err != nil {
		t.Fatal(err)
	}
	if err := y.s.PutPartner(ctx, adminY, policy.Party{ID: x.id.ID, Name: "X", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if err := x.s.PutPartner(ctx, adminX, policy.Party{ID: y.id.ID, Name: "Y", Country: "FR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := y.s.PutAgreement(ctx, adminY, policy.Agreement{Partner: policy.Party{ID: x.id.ID}, Collections: []string{reports.ID},
		ObjectTypes: []string{"sighting"}, MaxTLP: stix.TLPGreen, AllowReshare: true}); err != nil {
		t.Fatal(err)
	}
	secret, _, err := x.s.CreateKey(ctx, adminX, node.NewKey{Name: "Y", Role: entente.RolePartner, Org: y.id.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := y.s.AddPeer(ctx, adminY, node.Peer{ID: "x", Name: "X", APIRoot: x.url + "/taxii2/api1/", Collection: x.inbox.ID,
		LocalCollection: reports.ID, Token: secret, Org: x.id.ID, Direction: node.DirectionPush}); err != nil {
		t.Fatal(err)
	}
	// A, Y's constituent, pushes two French organisations' sightings.
	const a = "identity--0a1b2c3d-0000-4000-b000-00000000000a"
	if err := y.s.PutPartner(ctx, adminY, policy.Party{ID: a, Name: "A", Country: "FR"}); err != nil {
		t.Fatal(err)
	}
	_, k, err := y.s.CreateKey(ctx, adminY, node.NewKey{Name: "A", Role: entente.RolePartner, Org: a})
	if err != nil {
		t.Fatal(err)
	}
	now := y.clk.now()
	if st, err := y.s.AddObjects(ctx, entente.Principal{KeyID: k.ID, Org: a, Role: entente.RolePartner}, reports.ID,
		[]json.RawMessage{alertSighting(0, now), alertSighting(1, now)}); err != nil || st.FailureCount > 0 {
		t.Fatalf("A pushes: %v %+v", err, st)
	}
	analystX := sensorOf(t, x.s, x.id, entente.RoleAnalyst)
	status := func() correlate.Status {
		list, err := x.s.ListAlerts(ctx, analystX, node.AlertFilter{})
		if err != nil || len(list) != 1 {
			return ""
		}
		return list[0].Status
	}
	waitFor := func(what string, want correlate.Status) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); status() != want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: X's alert is %q, not %s within 10 s", what, status(), want)
			}
		}
	}
	waitFor("X raises the alert on what Y relayed", correlate.StatusNew)

	y.clk.add(time.Minute)
	start := time.Now()
	if _, err := y.s.QuarantinePartner(ctx, adminY, a, "fabricated sightings"); err != nil {
		t.Fatal(err)
	}
	waitFor("Y quarantined A", correlate.StatusWithdrawn)
	t.Logf("X withdrew the alert %s after Y quarantined A", time.Since(start))

	y.clk.add(time.Minute)
	if _, err := y.s.ReleasePartner(ctx, adminY, a); err != nil {
		t.Fatal(err)
	}
	waitFor("Y released A", correlate.StatusNew)
}
