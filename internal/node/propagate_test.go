package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/federation"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
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
	return serveAlertNodeDial(t, dial)
}

// serveAlertNodeDial is serveAlertNode with a way of reaching peers of
// its own.
func serveAlertNodeDial(t *testing.T, d federation.Dialer) *servedAlertNode {
	t.Helper()
	n := inboxNodeDial(t, d)
	srv := httptest.NewServer(httpapi.New(n.s, httpapi.Options{}, nil, prometheus.NewRegistry()))
	t.Cleanup(srv.Close)
	n.url = srv.URL
	return n
}

// inboxNode is an alerting node with the inbox collection, not served.
func inboxNode(t *testing.T) *servedAlertNode {
	t.Helper()
	return inboxNodeDial(t, dial)
}

func inboxNodeDial(t *testing.T, d federation.Dialer) *servedAlertNode {
	t.Helper()
	s, clk, id := alertNodeDial(t, d)
	t.Cleanup(s.Close)
	inbox, err := s.CreateCollection(context.Background(), node.LocalAdmin(id.ID), entente.Collection{Alias: "inbox", Title: "Inbox",
		DefaultMarking: stix.TLPGreen.MarkingID(),
		ReadRoles:      []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RoleAnalyst, entente.RolePartner}})
	if err != nil {
		t.Fatal(err)
	}
	return &servedAlertNode{s: s, clk: clk, id: id, inbox: inbox}
}

// held returns the objects of one collection of n, by id, as its admin
// reads them.
func (n *servedAlertNode) held(t *testing.T, coll string) map[string]json.RawMessage {
	t.Helper()
	page, err := n.s.Objects(context.Background(), node.LocalAdmin(n.id.ID), coll, entente.ObjectQuery{Limit: 1000})
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
	// Two more organisations, each reporting as its own source.
	report(t, a.s, a.id, 2, alertSighting(2, a.clk.now()))
	report(t, a.s, a.id, 3, alertSighting(3, a.clk.now()))
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
	// B's analysts see the received alert in B's own lifecycle: raised
	// national, escalated to regional, with the history saying where it
	// came from; and they can acknowledge it there.
	adminB := node.LocalAdmin(b.id.ID)
	var got node.AlertInfo
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		list, err := b.s.ListAlerts(ctx, adminB, node.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].Status == correlate.StatusEscalated {
			got = list[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's alert list after the pushes: %+v, want the one alert, escalated", list)
		}
	}
	if got.ID != idOfRaw(t, regional) || got.Tier != "regional" || got.Organisations != 4 {
		full, _ := b.s.Alert(ctx, adminB, got.ID)
		t.Errorf("B's received alert: %+v, history %+v", got, full.History)
	}
	info, err := b.s.AckAlert(ctx, adminB, got.ID, "seen")
	if err != nil || info.Status != correlate.StatusAcknowledged {
		t.Fatalf("ack on B: %+v, %v", info, err)
	}
	if n := len(info.History); n < 3 || !strings.Contains(info.History[0].Note, "received in collection "+b.inbox.ID) {
		t.Errorf("B's history of the received alert: %+v", info.History)
	}
	// C, whose agreement covers no alerts, lists none.
	if list, err := c.s.ListAlerts(ctx, node.LocalAdmin(c.id.ID), node.AlertFilter{}); err != nil || len(list) != 0 {
		t.Errorf("C lists %d alerts (%v), want none", len(list), err)
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
	// Two partners, each an independent source at home in its country.
	partnerClient := func(id, name, country string) *taxiiclient.Client {
		t.Helper()
		if err := n.s.PutPartner(ctx, admin, policy.Party{ID: id, Name: name, Country: country}); err != nil {
			t.Fatal(err)
		}
		secret, _, err := n.s.CreateKey(ctx, admin, node.NewKey{Name: name, Role: entente.RolePartner, Org: id})
		if err != nil {
			t.Fatal(err)
		}
		return &taxiiclient.Client{APIRoot: n.url + "/taxii2/api1/", Auth: taxiiclient.Auth{Token: secret}}
	}
	pcFR := partnerClient("identity--0a1b2c3d-0000-4000-b000-000000000002", "CERT FR", "FR")
	pc := partnerClient("identity--0a1b2c3d-0000-4000-b000-000000000001", "CERT DE", "DE")
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
	// Two French organisations the node knows, vouched for by the French
	// CERT: national at once.
	if res, err := pcFR.Push(ctx, n.inbox.ID, []json.RawMessage{alertSighting(0, now), alertSighting(1, now)}); err != nil || res.Failure > 0 {
		t.Fatalf("partner push: %v %+v", err, res)
	}
	waitTier("national")
	// A redacted sighting posted by the node's analyst is not counted...
	if st, err := n.s.AddObjects(ctx, analyst, "inbox", redacted(1, "identity--0a1b2c3d-0000-4000-b100-000000000001", "IT")); err != nil || st.FailureCount > 0 {
		t.Fatalf("analyst AddObjects: %v %+v", err, st)
	}
	// ...while two from the German CERT are: two more countries and a
	// second independent source, regional.
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

// TestFailedPushRetried checks that an immediate push to a partner that
// is down is retried after a back-off, so that the partner has the alert
// soon after it comes up, without a sync.
func TestFailedPushRetried(t *testing.T) {
	ctx := context.Background()
	// No retry inside one exchange: the node's own retries are tested.
	a, b := serveAlertNodeDial(t, taxiiclient.Dialer(nil, taxiiclient.Limits{MaxRetries: -1})), inboxNode(t)
	// B's address, while nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	adminA := node.LocalAdmin(a.id.ID)
	if err := a.s.PutPartner(ctx, adminA, policy.Party{ID: b.id.ID, Name: "B", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if err := b.s.PutPartner(ctx, node.LocalAdmin(b.id.ID), policy.Party{ID: a.id.ID, Name: "A", Country: "FR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.PutAgreement(ctx, adminA, policy.Agreement{Partner: policy.Party{ID: b.id.ID}, Collections: []string{node.CollectionAlerts},
		MaxTLP: stix.TLPGreen}); err != nil {
		t.Fatal(err)
	}
	secret, _, err := b.s.CreateKey(ctx, node.LocalAdmin(b.id.ID), node.NewKey{Name: "A", Role: entente.RolePartner, Org: a.id.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.AddPeer(ctx, adminA, node.Peer{ID: "b", Name: "B", APIRoot: "http://" + addr + "/taxii2/api1/", Collection: b.inbox.ID,
		LocalCollection: node.CollectionAlerts, Token: secret, Org: b.id.ID, Direction: node.DirectionPush}); err != nil {
		t.Fatal(err)
	}
	// The periodic sync runs once at start, not again within the test;
	// it sets how peers are reached: no retry inside one exchange.
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.s.RunPeerSync(sctx, time.Hour)
	}()
	t.Cleanup(func() { stop(); <-done })
	// The first round: nothing to push yet, but it records the sync.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p, err := a.s.Peer(ctx, adminA, "b")
		if err != nil {
			t.Fatal(err)
		}
		if !p.LastSync.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first sync round did not run")
		}
	}
	sensor := sensorOf(t, a.s, a.id, entente.RoleSensor)
	before := a.clk.now()
	a.clk.add(time.Millisecond)
	postSightings(t, a.s, sensor, alertSighting(0, a.clk.now()), alertSighting(1, a.clk.now()))
	// The immediate push fails too; B comes up a moment later.
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := a.s.Peer(ctx, adminA, "b")
		if err != nil {
			t.Fatal(err)
		}
		if p.LastError != "" && p.LastSync.After(before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the push to a peer that is down did not fail")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("B's address was taken meanwhile: %v", err)
	}
	srv := &http.Server{Handler: httpapi.New(b.s, httpapi.Options{}, nil, prometheus.NewRegistry())}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		held := 0
		for _, raw := range b.held(t, "inbox") {
			if strings.Contains(string(raw), `"type":"`+correlate.AlertType+`"`) {
				held++
			}
		}
		if held > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the alert did not reach B within 15 s of B coming up")
		}
	}
}
