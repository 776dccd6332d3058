package node_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

// countingStore is a SQLite store that counts the durable writes of
// alerts: additions to the alerts collection, lifecycle saves (alone and
// with the objects), statuses written alone and audit appends.
type countingStore struct {
	*sqlite.Store
	alertAdds, states, ownStates, statuses, audits atomic.Int32
	// alerts is the id of the alerts collection.
	alerts string
}

func (c *countingStore) AddObjects(ctx context.Context, collection string, objs []*stix.Object) ([]entente.AddOutcome, error) {
	if collection == c.alerts {
		c.alertAdds.Add(1)
	}
	return c.Store.AddObjects(ctx, collection, objs)
}

func (c *countingStore) AddOwn(ctx context.Context, o store.Own) ([]entente.AddOutcome, error) {
	if o.Collection == c.alerts {
		c.alertAdds.Add(1)
	}
	c.ownStates.Add(int32(len(o.AlertStates)))
	return c.Store.AddOwn(ctx, o)
}

func (c *countingStore) PutStatus(ctx context.Context, id string, body []byte) error {
	c.statuses.Add(1)
	return c.Store.PutStatus(ctx, id, body)
}

func (c *countingStore) PutAlertState(ctx context.Context, st store.AlertState) error {
	c.states.Add(1)
	return c.Store.PutAlertState(ctx, st)
}

func (c *countingStore) Submit(ctx context.Context, sub store.Submission) error {
	if sub.Collection == c.alerts {
		c.alertAdds.Add(1)
	}
	return c.Store.Submit(ctx, sub)
}

func (c *countingStore) AppendAudit(ctx context.Context, recs []audit.Record) error {
	c.audits.Add(1)
	return c.Store.AppendAudit(ctx, recs)
}

// TestCorrelationPassIsOneWrite checks that the alert changes of one
// correlation pass are made durable together: eleven organisations'
// sightings arriving in one addition raise an alert and escalate it
// twice (national, regional, global: three changes of one alert), which
// costs one commit of the store (the alert objects, their status and
// the lifecycle, saved with the objects) and one audit append, not three
// of each, nor an addition, a status and a lifecycle save one after the
// other; and that the lifecycle still records every step, each
// continuing from the one before.
func TestCorrelationPassIsOneWrite(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &countingStore{Store: st}
	c := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	s := node.New(cs, node.Config{Now: c.now, Dial: dial}, nil)
	ctx := context.Background()
	id, _, err := s.Init(ctx, "Alerting node", "FR", "")
	if err != nil {
		t.Fatal(err)
	}
	if stat, err := s.AddObjects(ctx, node.LocalAdmin(id.ID), node.CollectionIntel, alertFixture()); err != nil || stat.FailureCount > 0 {
		t.Fatalf("store threat and identities: %v %+v", err, stat)
	}
	alerts, err := st.Collection(ctx, node.CollectionAlerts)
	if err != nil {
		t.Fatal(err)
	}
	sightings, err := st.Collection(ctx, node.CollectionSightings)
	if err != nil {
		t.Fatal(err)
	}
	cs.alerts = alerts.ID
	analyst := sensorOf(t, s, id, entente.RoleAnalyst)
	sensor := sensorOf(t, s, id, entente.RoleSensor)
	// Correlation starts with a sighting of what the node does not hold.
	postSightings(t, s, sensor, json.RawMessage(`{"type":"sighting","spec_version":"2.1","id":"sighting--0a1b2c3d-0000-4000-b000-000000000002","created":"2026-11-20T11:00:00.000Z","modified":"2026-11-20T11:00:00.000Z",`+
		`"last_seen":"2026-11-20T11:00:00.000Z","sighting_of_ref":"indicator--0a1b2c3d-0000-4000-8000-0000000000ff","where_sighted_refs":["`+orgID(0)+`"]}`))
	// Eleven partners' sightings, each with its origin, stored behind
	// the node's back so that one scan correlates them in one pass.
	for i := range alertCountries {
		reporter(t, s, id, i)
		sg, err := stix.Decode(alertSighting(i, c.now()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.AddReceived(ctx, store.Received{Collection: sightings.ID, Objects: []*stix.Object{sg},
			Origin: orgID(i), Peer: "key:test", ReceivedAt: c.now()}); err != nil {
			t.Fatal(err)
		}
	}
	adds, states, ownStates, statuses, audits := cs.alertAdds.Load(), cs.states.Load(), cs.ownStates.Load(), cs.statuses.Load(), cs.audits.Load()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.RunAlerts(runCtx, 10*time.Millisecond) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := s.ListAlerts(ctx, analyst, node.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) > 0 && list[0].Tier == "global" || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	<-done
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAlerts(ctx, analyst, node.AlertFilter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("%d alerts (%v), want 1", len(list), err)
	}
	info, err := s.Alert(ctx, analyst, list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var tiers []string
	for _, h := range info.History {
		tiers = append(tiers, string(h.To)+" "+h.Tier)
	}
	want := []string{"new national", "escalated regional", "escalated global"}
	if len(tiers) != len(want) || tiers[0] != want[0] || tiers[1] != want[1] || tiers[2] != want[2] {
		t.Errorf("history %q, want %q", tiers, want)
	}
	if info.Tier != "global" || info.Status != correlate.StatusEscalated {
		t.Errorf("alert %s %s, want global escalated", info.Tier, info.Status)
	}
	if n := cs.alertAdds.Load() - adds; n != 1 {
		t.Errorf("%d additions of alert objects for one pass, want 1", n)
	}
	if n := cs.ownStates.Load() - ownStates; n != 1 {
		t.Errorf("%d lifecycles saved with the alert objects for one alert changed three times in one pass, want 1", n)
	}
	if n := cs.states.Load() - states; n != 0 {
		t.Errorf("%d lifecycle saves of their own, want 0 (saved with the objects)", n)
	}
	if n := cs.statuses.Load() - statuses; n != 0 {
		t.Errorf("%d statuses written alone, want 0 (written with the objects)", n)
	}
	// The sightings' own audit (if any) and the alert changes' one append.
	if n := cs.audits.Load() - audits; n > 2 {
		t.Errorf("%d audit appends for one pass, want at most 2", n)
	}
}

// TestReceivedAlertsAreOneWrite checks that the alerts of one push a
// partner makes (an organisation receiving its CERT's alerts) enter the
// node's lifecycle with one audit append for all of them, not one each,
// and that each gets its lifecycle.
func TestReceivedAlertsAreOneWrite(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &countingStore{Store: st}
	c := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	s := node.New(cs, node.Config{Now: c.now, Dial: dial}, nil)
	id, _, err := s.Init(ctx, "Receiving organisation", "FR", "")
	if err != nil {
		t.Fatal(err)
	}
	admin := node.LocalAdmin(id.ID)
	if _, err := s.CreateCollection(ctx, admin, entente.Collection{Alias: "inbox", Title: "Inbox",
		ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RolePartner}}); err != nil {
		t.Fatal(err)
	}
	cert := reporter(t, s, id, 0)
	analyst := sensorOf(t, s, id, entente.RoleAnalyst)
	var alerts []json.RawMessage
	for i, threat := range []correlate.ThreatKey{"malware--0a1b2c3d-0000-4000-8000-00000000000a", "malware--0a1b2c3d-0000-4000-8000-00000000000b", "malware--0a1b2c3d-0000-4000-8000-00000000000c"} {
		epoch := c.now().Add(-time.Hour)
		alerts = append(alerts, correlate.AlertObject(correlate.Alert{ID: correlate.AlertID(threat, epoch), Threat: threat,
			Tier: "national", TierRank: 1, Change: correlate.ChangeCreated, Epoch: epoch, Window: 24 * time.Hour,
			Organisations: 2 + i, Countries: []string{"FR"}, FirstSeen: epoch, LastSeen: epoch.Add(time.Minute)}))
	}
	audits := cs.audits.Load()
	stat, err := s.AddObjects(ctx, cert, "inbox", alerts)
	if err != nil || stat.FailureCount > 0 {
		t.Fatalf("push of 3 alerts: %v %+v", err, stat)
	}
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAlerts(ctx, analyst, node.AlertFilter{})
	if err != nil || len(list) != 3 {
		t.Fatalf("%d alerts in the lifecycle (%v), want 3", len(list), err)
	}
	if n := cs.audits.Load() - audits; n != 1 {
		t.Errorf("%d audit appends for the 3 alerts of one push, want 1", n)
	}
}
