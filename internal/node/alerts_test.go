package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/federation"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/notify"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

const (
	alertIndicator = "indicator--0a1b2c3d-0000-4000-8000-000000000001"
	alertMalware   = "malware--0a1b2c3d-0000-4000-8000-000000000002"
)

// alertCountries are the countries of the reporting organisations, in
// the order the test adds them: FR twice (national), then DE and IT
// (regional), then seven more (global at ten countries).
var alertCountries = []string{"FR", "FR", "DE", "IT", "ES", "NL", "BE", "PL", "SE", "AT", "PT"}

func orgID(i int) string { return fmt.Sprintf("identity--0a1b2c3d-0000-4000-9000-%012x", i+1) }

// alertNode is an initialised node holding a threat (an indicator that
// indicates a malware) and the identities of the reporting
// organisations, each with its x_entente_country.
func alertNode(t testing.TB) (*node.Service, *clock, node.Identity) {
	t.Helper()
	return alertNodeDial(t, dial)
}

// alertNodeDial is alertNode with a way of reaching peers of its own.
func alertNodeDial(t testing.TB, dial federation.Dialer) (*node.Service, *clock, node.Identity) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	s := node.New(st, node.Config{Now: c.now, Dial: dial}, nil)
	ctx := context.Background()
	id, _, err := s.Init(ctx, "Alerting node", "FR", "")
	if err != nil {
		t.Fatal(err)
	}
	objs := alertFixture()
	stat, err := s.AddObjects(ctx, node.LocalAdmin(id.ID), node.CollectionIntel, objs)
	if err != nil || stat.FailureCount > 0 {
		t.Fatalf("store threat and identities: %v %+v", err, stat)
	}
	return s, c, id
}

// alertFixture is the threat (an indicator that indicates a malware) and
// the identities of the reporting organisations, each with its
// x_entente_country.
func alertFixture() []json.RawMessage {
	objs := []json.RawMessage{
		json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"` + alertIndicator + `","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.7']","pattern_type":"stix","valid_from":"2026-11-01T00:00:00Z"}`),
		json.RawMessage(`{"type":"malware","spec_version":"2.1","id":"` + alertMalware + `","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","name":"Sample","is_family":true}`),
		json.RawMessage(`{"type":"relationship","spec_version":"2.1","id":"relationship--0a1b2c3d-0000-4000-8000-000000000003","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","relationship_type":"indicates","source_ref":"` + alertIndicator + `","target_ref":"` + alertMalware + `"}`),
	}
	for i, cc := range alertCountries {
		objs = append(objs, json.RawMessage(fmt.Sprintf(`{"type":"identity","spec_version":"2.1","id":%q,"created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","name":"Org %d","identity_class":"organization","x_entente_country":%q}`, orgID(i), i, cc)))
	}
	return objs
}

// alertSighting is organisation i's sighting of the indicator an hour
// before now.
func alertSighting(i int, now time.Time) json.RawMessage {
	seen := now.Add(-time.Hour).Format("2006-01-02T15:04:05.000Z")
	return json.RawMessage(fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":"sighting--0a1b2c3d-0000-4000-a000-%012x","created":%q,"modified":%q,`+
		`"first_seen":%q,"last_seen":%q,"count":1,"sighting_of_ref":%q,"where_sighted_refs":[%q]}`, i+1, seen, seen, seen, seen, alertIndicator, orgID(i)))
}

func sensorOf(t testing.TB, s *node.Service, id node.Identity, role entente.Role) entente.Principal {
	t.Helper()
	_, k, err := s.CreateKey(context.Background(), node.LocalAdmin(id.ID), node.NewKey{Name: string(role), Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return entente.Principal{KeyID: k.ID, Org: k.Org, Role: k.Role}
}

func postSightings(t *testing.T, s *node.Service, p entente.Principal, objs ...json.RawMessage) {
	t.Helper()
	st, err := s.AddSightings(context.Background(), p, objs)
	if err != nil || st.FailureCount > 0 {
		t.Fatalf("AddSightings: %v %+v", err, st)
	}
}

// reporter makes organisation i a partner of the node (in its country
// of alertCountries) that reports with its own key: each organisation is
// then an independent source, as when each runs its own node.
func reporter(t testing.TB, s *node.Service, id node.Identity, i int) entente.Principal {
	t.Helper()
	ctx := context.Background()
	admin := node.LocalAdmin(id.ID)
	if err := s.PutPartner(ctx, admin, policy.Party{ID: orgID(i), Name: fmt.Sprintf("Org %d", i), Country: alertCountries[i]}); err != nil {
		t.Fatal(err)
	}
	_, k, err := s.CreateKey(ctx, admin, node.NewKey{Name: fmt.Sprintf("org %d", i), Role: entente.RolePartner, Org: orgID(i)})
	if err != nil {
		t.Fatal(err)
	}
	return entente.Principal{KeyID: k.ID, Org: k.Org, Role: k.Role}
}

// report stores sightings as organisation i pushes them (see reporter)
// and waits until the node correlated them.
func report(t testing.TB, s *node.Service, id node.Identity, i int, objs ...json.RawMessage) {
	t.Helper()
	ctx := context.Background()
	st, err := s.AddObjects(ctx, reporter(t, s, id, i), node.CollectionSightings, objs)
	if err != nil || st.FailureCount > 0 {
		t.Fatalf("org %d pushes: %v %+v", i, err, st)
	}
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

type alertSummary struct {
	ID            string
	Tier          string
	Status        correlate.Status
	Organisations int
	Countries     int
}

func summaries(t *testing.T, s *node.Service, p entente.Principal) []alertSummary {
	t.Helper()
	list, err := s.ListAlerts(context.Background(), p, node.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []alertSummary
	for _, a := range list {
		out = append(out, alertSummary{a.ID, a.Tier, a.Status, a.Organisations, len(a.Countries)})
	}
	return out
}

func TestAlertTiersEscalateOneAlert(t *testing.T) {
	s, clk, id := alertNode(t)
	ctx := context.Background()
	sensor := sensorOf(t, s, id, entente.RoleSensor)
	analyst := sensorOf(t, s, id, entente.RoleAnalyst)
	now := clk.now()

	report(t, s, id, 0, alertSighting(0, now))
	if got := summaries(t, s, analyst); len(got) != 0 {
		t.Fatalf("one organisation raised alerts: %+v", got)
	}
	report(t, s, id, 1, alertSighting(1, now))
	national := summaries(t, s, analyst)
	if len(national) != 1 {
		t.Fatalf("two organisations in FR: %d alerts, want 1", len(national))
	}
	alertID := national[0].ID
	steps := []struct {
		upTo int
		want alertSummary
	}{
		{1, alertSummary{alertID, "national", correlate.StatusNew, 2, 1}},
		{3, alertSummary{alertID, "regional", correlate.StatusEscalated, 4, 3}},
		{10, alertSummary{alertID, "global", correlate.StatusEscalated, 11, 10}},
	}
	next := 2
	for _, step := range steps {
		for ; next <= step.upTo; next++ {
			report(t, s, id, next, alertSighting(next, now))
		}
		if diff := cmp.Diff([]alertSummary{step.want}, summaries(t, s, analyst)); diff != "" {
			t.Errorf("after %d organisations (-want +got):\n%s", step.upTo+1, diff)
		}
	}

	// Duplicates never inflate counts.
	before, _ := s.AlertStats(ctx, analyst)
	for i := range 3 {
		report(t, s, id, i, alertSighting(i, now), alertSighting(i, now))
	}
	after, _ := s.AlertStats(ctx, analyst)
	if after.Duplicates != before.Duplicates+6 || after.Accepted != before.Accepted {
		t.Errorf("duplicates: stats %+v then %+v, want 6 more duplicates and no more accepted", before, after)
	}
	if diff := cmp.Diff(steps[2].want, summaries(t, s, analyst)[0]); diff != "" {
		t.Errorf("after duplicates (-want +got):\n%s", diff)
	}

	// An organisation the node does not know is refused and counted.
	unknown := json.RawMessage(fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":"sighting--0a1b2c3d-0000-4000-b000-000000000001","created":"2026-11-20T11:00:00.000Z","modified":"2026-11-20T11:00:00.000Z",`+
		`"last_seen":"2026-11-20T11:00:00.000Z","sighting_of_ref":%q,"where_sighted_refs":["identity--0a1b2c3d-0000-4000-9000-ffffffffffff"]}`, alertIndicator))
	// And a sighting of an object the node does not hold.
	unknownObj := json.RawMessage(fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":"sighting--0a1b2c3d-0000-4000-b000-000000000002","created":"2026-11-20T11:00:00.000Z","modified":"2026-11-20T11:00:00.000Z",`+
		`"last_seen":"2026-11-20T11:00:00.000Z","sighting_of_ref":"indicator--0a1b2c3d-0000-4000-8000-0000000000ff","where_sighted_refs":[%q]}`, orgID(0)))
	postSightings(t, s, sensor, unknown, unknownObj)
	st, _ := s.AlertStats(ctx, analyst)
	if st.RejectedBy(correlate.ReasonUnknownOrg) != 1 || st.RejectedBy(correlate.ReasonUnknownObject) != 1 {
		t.Errorf("rejections: unknown org %d, unknown object %d; want 1 and 1", st.RejectedBy(correlate.ReasonUnknownOrg), st.RejectedBy(correlate.ReasonUnknownObject))
	}

	// The lifecycle: ack, then resolve; refused transitions and roles.
	if _, err := s.AckAlert(ctx, sensor, alertID, ""); entente.ErrorCode(err) != entente.EFORBIDDEN {
		t.Errorf("ack by a sensor: %v, want EFORBIDDEN", err)
	}
	if _, err := s.AckAlert(ctx, analyst, "x-entente-alert--00000000-0000-5000-8000-000000000000", ""); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Errorf("ack of an unknown alert: %v, want ENOTFOUND", err)
	}
	clk.add(time.Minute)
	info, err := s.AckAlert(ctx, analyst, alertID, "on it")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AckAlert(ctx, analyst, alertID, ""); entente.ErrorCode(err) != entente.ECONFLICT {
		t.Errorf("second ack: %v, want ECONFLICT", err)
	}
	clk.add(time.Minute)
	info, err = s.ResolveAlert(ctx, analyst, alertID, "contained")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tr := range info.History {
		got = append(got, fmt.Sprintf("%s>%s %s %s", tr.From, tr.To, tr.Tier, tr.Note))
	}
	want := []string{
		">new national ",
		"new>escalated regional 4 organisations in 3 countries, 4 independent sources",
		"escalated>escalated global 11 organisations in 10 countries, 11 independent sources",
		"escalated>acknowledged global on it",
		"acknowledged>resolved global contained",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	last := info.History[len(info.History)-1]
	if last.By == "" || !last.At.Equal(clk.now()) {
		t.Errorf("last transition by %q at %s; want the analyst at %s", last.By, last.At, clk.now())
	}
	audit, err := s.QueryAudit(ctx, node.LocalAdmin(id.ID), node.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]int{}
	for _, r := range audit.Records {
		rules[r.Rule]++
	}
	if rules["alert.ack"] != 1 || rules["alert.resolve"] != 1 || rules["alert.ack.refused"] != 1 {
		t.Errorf("audit rules %v: want one alert.ack, alert.resolve and alert.ack.refused", rules)
	}
}

// receiver is a webhook receiver that verifies signatures and refuses
// replays, recording each request.
type receiver struct {
	mu   sync.Mutex
	v    *notify.Verifier
	now  func() time.Time
	got  []http.Header
	body [][]byte
	errs []error
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	err := r.v.Verify(req.Header, b, r.now())
	r.mu.Lock()
	r.got, r.body, r.errs = append(r.got, req.Header.Clone()), append(r.body, b), append(r.errs, err)
	r.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
	}
}

func TestAlertWebhookSignedAndReplayRefused(t *testing.T) {
	s, clk, id := alertNode(t)
	ctx := context.Background()
	pub, err := s.PublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := &receiver{v: notify.NewVerifier(pub, 5*time.Minute, 100), now: clk.now}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	q, err := notify.OpenFileQueue(filepath.Join(t.TempDir(), "queue.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var syslog bytes.Buffer
	d, err := enableNotify(ctx, s, notify.AlertOptions{Webhooks: []string{srv.URL + "/hook"}, Queue: q,
		Syslog: notify.NewSyslogWriter(&syslog), Hostname: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enableNotify(ctx, s, notify.AlertOptions{Webhooks: []string{"ftp://x"}, Queue: q}); entente.ErrorCode(err) != entente.EINVALID {
		t.Errorf("ftp webhook: %v, want EINVALID", err)
	}
	sensor := sensorOf(t, s, id, entente.RoleSensor)
	postSightings(t, s, sensor, alertSighting(0, clk.now()), alertSighting(1, clk.now()))
	if q.Len() != 1 {
		t.Fatalf("queue holds %d deliveries, want 1 (alert created)", q.Len())
	}
	if n, err := d.RunOnce(ctx); n != 1 || err != nil {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	if len(rec.errs) != 1 || rec.errs[0] != nil {
		t.Fatalf("receiver: %v", rec.errs)
	}
	var payload notify.AlertPayload
	if err := json.Unmarshal(rec.body[0], &payload); err != nil {
		t.Fatal(err)
	}
	if payload.Change != "created" || payload.Status != "new" || payload.Node != id.ID || !bytes.Contains(payload.Alert, []byte(`"tier":"national"`)) {
		t.Errorf("payload %s", rec.body[0])
	}
	if q.Len() != 0 {
		t.Errorf("queue holds %d deliveries after success", q.Len())
	}
	// The same request again is a replay.
	if err := rec.v.Verify(rec.got[0], rec.body[0], clk.now()); !errors.Is(err, notify.ErrReplay) {
		t.Errorf("replayed request: %v, want ErrReplay", err)
	}
	// Tampered body: refused.
	if _, err := notify.Verify(pub, rec.got[0], append([]byte(" "), rec.body[0]...), clk.now(), time.Minute); !errors.Is(err, notify.ErrBadSignature) {
		t.Errorf("tampered body: %v, want ErrBadSignature", err)
	}
	if !bytes.Contains(syslog.Bytes(), []byte(payload.Alert[bytes.Index(payload.Alert, []byte("x-entente-alert--")):][:53])) || !bytes.Contains(syslog.Bytes(), []byte("national")) {
		t.Errorf("syslog got %q", syslog.String())
	}
	// The key is kept: a restart signs with the same key.
	pub2, err := s.PublicKey(ctx)
	if err != nil || !pub.Equal(pub2) {
		t.Errorf("public key changed: %v", err)
	}
}

func TestAlertsConvergeAcrossNodes(t *testing.T) {
	objects := func(order []int) map[string][]byte {
		s, clk, id := alertNode(t)
		sensor := sensorOf(t, s, id, entente.RoleSensor)
		analyst := sensorOf(t, s, id, entente.RoleAnalyst)
		for _, i := range order {
			postSightings(t, s, sensor, alertSighting(i, clk.t))
		}
		out := map[string][]byte{}
		list, err := s.ListAlerts(context.Background(), analyst, node.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range list {
			info, err := s.Alert(context.Background(), analyst, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			out[a.ID] = info.Object
		}
		return out
	}
	order := make([]int, len(alertCountries))
	for i := range order {
		order[i] = i
	}
	a := objects(order)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	b := objects(order)
	if len(a) != 1 {
		t.Fatalf("node A holds %d alerts, want 1", len(a))
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("alert objects differ between nodes (-A +B):\n%s", diff)
	}
}

// TestAlertsFromOtherPathsAndRestart checks that sightings stored by
// AddObjects (a TAXII client, a partner) are correlated by RunAlerts,
// and that a restarted node replays its sightings: a new organisation
// escalates the alert raised before the restart, under the same id.
func TestAlertsFromOtherPathsAndRestart(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	s := node.New(st, node.Config{Now: clk.now, Dial: dial}, nil)
	ctx := context.Background()
	id, _, err := s.Init(ctx, "Alerting node", "FR", "")
	if err != nil {
		t.Fatal(err)
	}
	objs := alertFixture()
	if stat, err := s.AddObjects(ctx, node.LocalAdmin(id.ID), node.CollectionIntel, objs); err != nil || stat.FailureCount > 0 {
		t.Fatalf("store fixture: %v %+v", err, stat)
	}
	analyst := sensorOf(t, s, id, entente.RoleAnalyst)
	// Two sightings written through TAXII (AddObjects), not AddSightings.
	if stat, err := s.AddObjects(ctx, analyst, node.CollectionSightings, []json.RawMessage{alertSighting(0, clk.now()), alertSighting(1, clk.now())}); err != nil || stat.FailureCount > 0 {
		t.Fatalf("AddObjects: %v %+v", err, stat)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.RunAlerts(rctx, 5*time.Millisecond) }()
	var got []alertSummary
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got = summaries(t, s, analyst); len(got) > 0 {
			break
		}
	}
	cancel()
	<-done
	if len(got) != 1 || got[0].Tier != "national" {
		t.Fatalf("after RunAlerts: %+v, want one national alert", got)
	}
	alertID := got[0].ID
	st.Close()

	// Restart: a new service over the same data.
	st2, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	s2 := node.New(st2, node.Config{Now: clk.now, Dial: dial}, nil)
	defer s2.Close()
	// Two more organisations, each its own source: regional.
	report(t, s2, id, 2, alertSighting(2, clk.now()))
	report(t, s2, id, 3, alertSighting(3, clk.now()))
	want := []alertSummary{{alertID, "regional", correlate.StatusEscalated, 4, 3}}
	if diff := cmp.Diff(want, summaries(t, s2, analyst)); diff != "" {
		t.Errorf("after restart (-want +got):\n%s", diff)
	}
}

// FuzzAddSightings posts arbitrary objects as a sensor's sightings: the
// node must never crash, and correlation must only count what it
// accepted (accepted + duplicates + rejected covers every sighting
// handed to the engine, and alerts only come from accepted ones).
func FuzzAddSightings(f *testing.F) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	f.Add([]byte(alertSighting(0, now)))
	f.Add([]byte(alertSighting(1, now)))
	f.Add([]byte(`{"type":"sighting","spec_version":"2.1","id":"sighting--0a1b2c3d-0000-4000-b000-000000000001","created":"2026-11-20T11:00:00.000Z","modified":"2026-11-20T11:00:00.000Z","last_seen":"2099-01-01T00:00:00Z","sighting_of_ref":"` + alertIndicator + `","where_sighted_refs":["identity--0a1b2c3d-0000-4000-9000-000000000001"]}`))
	f.Add([]byte(`{"type":"sighting","spec_version":"2.1","id":"sighting--0a1b2c3d-0000-4000-b000-000000000002","created":"2026-11-20T11:00:00.000Z","modified":"2026-11-20T11:00:00.000Z","first_seen":"2026-11-20T11:00:00Z","last_seen":"2026-11-19T11:00:00Z","sighting_of_ref":"` + alertIndicator + `","where_sighted_refs":[]}`))
	f.Add([]byte(`{"type":"sighting","id":7}`))
	f.Add([]byte(`[]`))
	s, _, id := alertNode(f)
	sensor := sensorOf(f, s, id, entente.RoleSensor)
	analyst := sensorOf(f, s, id, entente.RoleAnalyst)
	f.Fuzz(func(t *testing.T, raw []byte) {
		ctx := context.Background()
		if _, err := s.AddSightings(ctx, sensor, []json.RawMessage{raw, alertSighting(0, now)}); err != nil && entente.ErrorCode(err) == "" {
			t.Fatalf("AddSightings: internal error %v", err)
		}
		st, err := s.AlertStats(ctx, analyst)
		if err != nil {
			t.Fatal(err)
		}
		if list, err := s.ListAlerts(ctx, analyst, node.AlertFilter{}); err != nil || (len(list) > 0 && st.Accepted < 2) {
			t.Fatalf("alerts %+v with stats %+v (%v)", list, st, err)
		}
	})
}

// BenchmarkAddSightingsCorrelated measures a sensor's report of one
// sighting through AddSightings, storage and correlation included.
func BenchmarkAddSightingsCorrelated(b *testing.B) {
	s, clk, id := alertNode(b)
	sensor := sensorOf(b, s, id, entente.RoleSensor)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		raw := alertSighting(i%len(alertCountries), clk.now())
		// A new sighting id each time: every report is stored.
		raw = bytes.Replace(raw, []byte("-a000-"), fmt.Appendf(nil, "-%04x-", 0xa000+(i/len(alertCountries))%0x1000), 1)
		if _, err := s.AddSightings(ctx, sensor, []json.RawMessage{raw}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// TestPartnerWebhookThroughGate checks that a partner's webhook receives
// an alert only as the partner's agreement lets the policy gate release
// it, and that the release is audited; a partner without an agreement
// covering alerts receives nothing.
func TestPartnerWebhookThroughGate(t *testing.T) {
	s, clk, id := alertNode(t)
	ctx := context.Background()
	admin := node.LocalAdmin(id.ID)
	pub, err := s.PublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	covered, other := orgID(90), orgID(91)
	for _, p := range []string{covered, other} {
		if err := s.PutPartner(ctx, admin, policy.Party{ID: p, Name: "partner", Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: covered}, Collections: []string{node.CollectionAlerts},
		ObjectTypes: []string{correlate.AlertType}, MaxTLP: stix.TLPGreen}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: other}, Collections: []string{node.CollectionIntel},
		MaxTLP: stix.TLPGreen}); err != nil {
		t.Fatal(err)
	}
	recs := map[string]*receiver{}
	var hooks []notify.PartnerWebhook
	for _, p := range []string{covered, other} {
		rec := &receiver{v: notify.NewVerifier(pub, 5*time.Minute, 100), now: clk.now}
		srv := httptest.NewServer(rec)
		defer srv.Close()
		recs[p] = rec
		hooks = append(hooks, notify.PartnerWebhook{Partner: p, URL: srv.URL + "/hook"})
	}
	q, err := notify.OpenFileQueue(filepath.Join(t.TempDir(), "queue.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	d, err := enableNotify(ctx, s, notify.AlertOptions{PartnerWebhooks: hooks, Queue: q})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enableNotify(ctx, s, notify.AlertOptions{PartnerWebhooks: []notify.PartnerWebhook{{Partner: "bob", URL: "https://x"}}, Queue: q}); entente.ErrorCode(err) != entente.EINVALID {
		t.Errorf("partner webhook without an identity id: %v, want EINVALID", err)
	}
	sensor := sensorOf(t, s, id, entente.RoleSensor)
	postSightings(t, s, sensor, alertSighting(0, clk.now()), alertSighting(1, clk.now()))
	if q.Len() != 1 {
		t.Fatalf("queue holds %d deliveries, want 1: the covered partner's only", q.Len())
	}
	if n, err := d.RunOnce(ctx); n != 1 || err != nil {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	if got := recs[covered]; len(got.body) != 1 || got.errs[0] != nil {
		t.Fatalf("covered partner's webhook: %d requests, %v", len(got.body), got.errs)
	}
	if got := recs[other]; len(got.body) != 0 {
		t.Errorf("a partner whose agreement does not cover alerts received %d notifications", len(got.body))
	}
	var payload notify.AlertPayload
	if err := json.Unmarshal(recs[covered].body[0], &payload); err != nil {
		t.Fatal(err)
	}
	var alert struct{ ID string }
	if err := json.Unmarshal(payload.Alert, &alert); err != nil || !strings.HasPrefix(alert.ID, correlate.AlertType+"--") {
		t.Fatalf("payload alert %s: %v", payload.Alert, err)
	}
	audit, err := s.QueryAudit(ctx, admin, node.AuditQuery{Action: node.AuditEgress, Partner: covered, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit.Records) != 1 || audit.Records[0].ObjectID != alert.ID || !strings.HasPrefix(audit.Records[0].Actor, "webhook ") {
		t.Errorf("egress audit of the partner webhook: %+v", audit.Records)
	}
}

// enableNotify wires notifications as cmd/entente does.
func enableNotify(ctx context.Context, s *node.Service, opt notify.AlertOptions) (*notify.Dispatcher, error) {
	id, err := s.Identity(ctx)
	if err != nil {
		return nil, err
	}
	opt.Node = id.ID
	if opt.Key, err = s.SigningKey(ctx); err != nil {
		return nil, err
	}
	opt.Release = s.ReleaseAlertToPartner
	opt.Now = s.Config().Now
	n, d, err := notify.NewAlertNotifier(opt)
	if err != nil {
		return nil, err
	}
	s.SetAlertNotifier(n)
	return d, nil
}
