package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/taxii"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

// servedAlertNode is an alerting node (see alertNode) served over HTTP on
// loopback, with an inbox collection partners may write to.
type servedAlertNode struct {
	s     *node.Service
	clk   *clock
	id    node.Identity
	url   string
	inbox entente.Collection
}

func serveAlertNode(t *testing.T) *servedAlertNode {
	t.Helper()
	s, clk, id := alertNode(t)
	t.Cleanup(s.Close)
	inbox, err := s.CreateCollection(context.Background(), node.LocalAdmin(id.ID), entente.Collection{Alias: "inbox", Title: "Inbox",
		DefaultMarking: stix.TLPGreen.MarkingID(),
		ReadRoles:      []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RoleAnalyst, entente.RolePartner}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(s, httpapi.Options{}, nil, prometheus.NewRegistry()))
	t.Cleanup(srv.Close)
	return &servedAlertNode{s: s, clk: clk, id: id, url: srv.URL, inbox: inbox}
}

// held returns the objects of one collection of n, by id, as its admin
// reads them.
func (n *servedAlertNode) held(t *testing.T, coll string) map[string]json.RawMessage {
	t.Helper()
	page, err := n.s.Objects(context.Background(), node.LocalAdmin(n.id.ID), coll, taxii.Filters{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for _, e := range page.Entries {
		out[e.ID] = e.Raw
	}
	return out
}

// TestAlertPushedAtOnce checks that a new alert reaches a partner whose
// agreement covers alerts, through the policy gate (audited) and without
// a sync being called, and that an escalation follows it; a partner whose
// agreement does not cover alerts receives nothing.
func TestAlertPushedAtOnce(t *testing.T) {
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
	// B's agreement covers alerts; C's covers the intel collection only.
	if _, err := a.s.PutAgreement(ctx, adminA, policy.Agreement{Partner: policy.Party{ID: b.id.ID}, Collections: []string{node.CollectionAlerts},
		ObjectTypes: []string{correlate.AlertType, "extension-definition", "identity"}, MaxTLP: stix.TLPGreen}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.PutAgreement(ctx, adminA, policy.Agreement{Partner: policy.Party{ID: c.id.ID}, Collections: []string{node.CollectionIntel},
		MaxTLP: stix.TLPGreen}); err != nil {
		t.Fatal(err)
	}
	for _, peer := range []*servedAlertNode{b, c} {
		secret, _, err := peer.s.CreateKey(ctx, node.LocalAdmin(peer.id.ID), node.NewKey{Name: "A", Role: entente.RolePartner, Org: a.id.ID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.s.AddPeer(ctx, adminA, node.Peer{ID: "p-" + peer.id.ID, Name: "peer", APIRoot: peer.url + "/taxii2/api1/", Collection: peer.inbox.ID,
			LocalCollection: node.CollectionAlerts, Token: secret, Org: peer.id.ID, Direction: node.DirectionPush}); err != nil {
			t.Fatal(err)
		}
	}
	sensor := sensorOf(t, a.s, a.id, entente.RoleSensor)
	waitAlert := func(tier string) json.RawMessage {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, raw := range b.held(t, "inbox") {
				var o struct {
					Type, Tier string
				}
				if json.Unmarshal(raw, &o) == nil && o.Type == correlate.AlertType && o.Tier == tier {
					return raw
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s alert reached B within 10 s", tier)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	postSightings(t, a.s, sensor, alertSighting(0, a.clk.now()), alertSighting(1, a.clk.now()))
	national := waitAlert("national")
	postSightings(t, a.s, sensor, alertSighting(2, a.clk.now()), alertSighting(3, a.clk.now()))
	regional := waitAlert("regional")
	if idOfRaw(t, national) != idOfRaw(t, regional) {
		t.Errorf("the escalation is a new alert: %s then %s", idOfRaw(t, national), idOfRaw(t, regional))
	}
	// What B holds left A through the gate: each version is audited.
	audit, err := a.s.QueryAudit(ctx, adminA, node.AuditQuery{Action: node.AuditEgress, Partner: b.id.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var audited []string
	for _, r := range audit.Records {
		audited = append(audited, r.ObjectID)
	}
	if !slices.Contains(audited, idOfRaw(t, regional)) || !slices.Contains(audited, correlate.ExtensionID) {
		t.Errorf("A's egress audit for B lacks the alert or its definition: %v", audited)
	}
	if got := c.held(t, "inbox"); len(got) != 0 {
		t.Errorf("C's agreement does not cover alerts, yet C received %d objects", len(got))
	}
	// No sync ran: the push checkpoint was kept by the immediate pushes.
	peers, err := a.s.Peers(ctx, adminA)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if p.LastError != "" {
			t.Errorf("peer %s: %s", p.ID, p.LastError)
		}
	}
}

func idOfRaw(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	o, err := stix.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return o.ID
}

// TestPartnerSightingsCorrelatedAtOnce checks that sightings a partner
// POSTs over TAXII are correlated as soon as they are stored (no
// correlation scan runs), including sightings the partner's gate
// redacted to the victims' country: their created_by_ref is counted as
// one organisation in that country. The same redacted sighting posted by
// the node's own analyst is not counted (nobody vouches for it).
func TestPartnerSightingsCorrelatedAtOnce(t *testing.T) {
	ctx := context.Background()
	n := serveAlertNode(t)
	admin := node.LocalAdmin(n.id.ID)
	const partner = "identity--0a1b2c3d-0000-4000-b000-000000000001"
	if err := n.s.PutPartner(ctx, admin, policy.Party{ID: partner, Name: "CERT DE", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	secret, _, err := n.s.CreateKey(ctx, admin, node.NewKey{Name: "CERT DE", Role: entente.RolePartner, Org: partner})
	if err != nil {
		t.Fatal(err)
	}
	pc := &taxiiclient.Client{APIRoot: n.url + "/taxii2/api1/", Auth: taxiiclient.Auth{Token: secret}}
	analyst := sensorOf(t, n.s, n.id, entente.RoleAnalyst)

	now := n.clk.now()
	seen := now.Add(-time.Hour).Format("2006-01-02T15:04:05.000Z")
	redacted := func(i int, pseudonym, country string) []json.RawMessage {
		loc, obj := policy.CountryLocation(country)
		return []json.RawMessage{obj, json.RawMessage(fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":"sighting--0a1b2c3d-0000-4000-a100-%012x","created":%q,"modified":%q,`+
			`"first_seen":%q,"last_seen":%q,"count":1,"sighting_of_ref":%q,"created_by_ref":%q,"where_sighted_refs":[%q]}`, i, seen, seen, seen, seen, alertIndicator, pseudonym, loc))}
	}
	waitTier := func(tier string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := summaries(t, n.s, analyst)
			if len(got) == 1 && got[0].Tier == tier {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("alerts %+v, want one %s alert within 10 s", got, tier)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Two French organisations the node knows: national at once.
	if res, err := pc.Push(ctx, n.inbox.ID, []json.RawMessage{alertSighting(0, now), alertSighting(1, now)}); err != nil || res.Failure > 0 {
		t.Fatalf("partner push: %v %+v", err, res)
	}
	waitTier("national")
	// A redacted sighting posted by the node's analyst is not counted...
	if st, err := n.s.AddObjects(ctx, analyst, "inbox", redacted(1, "identity--0a1b2c3d-0000-4000-b100-000000000001", "IT")); err != nil || st.FailureCount > 0 {
		t.Fatalf("analyst AddObjects: %v %+v", err, st)
	}
	// ...while two from the partner are: two more countries, regional.
	objs := append(redacted(2, "identity--0a1b2c3d-0000-4000-b100-000000000002", "DE"), redacted(3, "identity--0a1b2c3d-0000-4000-b100-000000000003", "ES")...)
	if res, err := pc.Push(ctx, n.inbox.ID, objs); err != nil || res.Failure > 0 {
		t.Fatalf("partner push: %v %+v", err, res)
	}
	waitTier("regional")
	// A scan reads every stored sighting, the analyst's included.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); n.s.RunAlerts(rctx, time.Millisecond) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	info, err := n.s.ListAlerts(ctx, analyst, node.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := info[0]; got.Organisations != 4 || !slices.Equal(got.Countries, []string{"DE", "ES", "FR"}) {
		t.Errorf("alert counts %d organisations in %v; want 4 in [DE ES FR] (the analyst's unvouched IT sighting left out)", got.Organisations, got.Countries)
	}
}
