package blindaccess_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/blindaccess"
	"github.com/entente-cti/entente/internal/egress"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

const (
	self    = "identity--5e1f0000-0000-4000-8000-000000000001"
	partner = "identity--5e1f0000-0000-4000-8000-0000000000b0"
)

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	st    *sqlite.Store
	gate  *egress.Gate
	svc   *blindaccess.Service
	clock *clock
	p     entente.Principal
	coll  string
	n     int
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)}
	gate := egress.New(st, egress.Config{Now: clk.now, Self: func(context.Context) (policy.Party, error) {
		return policy.Party{ID: self, Country: "FR"}, nil
	}})
	if err := st.CreateCollection(ctx, entente.Collection{ID: "4b1e0000-0000-4000-8000-0000000000c1", Alias: "red", Title: "red",
		DefaultMarking: stix.TLPRed.MarkingID(), Created: clk.now()}); err != nil {
		t.Fatal(err)
	}
	admin := entente.Principal{KeyID: "local", Org: self, Role: entente.RoleAdmin}
	if err := gate.PutPartner(ctx, admin, policy.Party{ID: partner, Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if _, err := gate.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: partner}, MaxTLP: stix.TLPGreen,
		Blind: &policy.BlindAccess{Collections: []string{"red"}, Budget: blind.Budget{Limit: 1 << 20, Period: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, gate: gate, clock: clk, coll: "4b1e0000-0000-4000-8000-0000000000c1",
		p: entente.Principal{KeyID: "k", Org: partner, Role: entente.RolePartner}}
	f.svc = mustNew(t, f)
	return f
}

func mustNew(t testing.TB, f *fixture) *blindaccess.Service {
	t.Helper()
	svc, err := blindaccess.New(blindaccess.Config{Gate: f.gate, Secret: bytes.Repeat([]byte{3}, 32), Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// add stores an indicator version.
func (f *fixture) add(t *testing.T, id int, modified string, extra map[string]any, pattern string) {
	t.Helper()
	o := map[string]any{"type": "indicator", "spec_version": "2.1", "id": fmt.Sprintf("indicator--5e1f0000-0000-4000-8000-%012x", id),
		"created": "2026-05-01T00:00:00.000Z", "modified": modified, "pattern": pattern, "pattern_type": "stix", "valid_from": "2026-05-01T00:00:00Z"}
	for k, v := range extra {
		o[k] = v
	}
	raw, _ := json.Marshal(o)
	obj, err := stix.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.add(time.Millisecond) // each addition later than the one before
	if _, err := f.st.AddObjects(context.Background(), f.coll, []*stix.Object{obj}); err != nil {
		t.Fatal(err)
	}
}

// hits translates values through the service and returns those in the
// set.
func (f *fixture) hits(t *testing.T, values ...string) []string {
	t.Helper()
	ctx := context.Background()
	info, err := f.svc.Info(ctx, f.p, blind.Budget{Limit: 1 << 20, Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := f.svc.Set(ctx, f.p, info.Epoch, "")
	if err != nil {
		t.Fatal(err)
	}
	if blind.Digest(pub.Data) != info.SetDigest {
		t.Fatal("the set served is not the one the epoch info describes")
	}
	tr := blind.NewTranslator(&peer{f})
	if _, err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var inputs []string
	for _, v := range values {
		k, n, err := observable.Detect(v)
		if err != nil {
			t.Fatal(err)
		}
		inputs = info.Params.Queries(k, n, inputs)
	}
	if _, err := tr.Translate(ctx, inputs); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range values {
		k, n, _ := observable.Detect(v)
		for _, in := range info.Params.Queries(k, n, nil) {
			if hit, _, _ := tr.Answer(in); hit {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

// peer is the service as a blind.Peer.
type peer struct{ f *fixture }

func (p *peer) Info(ctx context.Context) (*blind.EpochInfo, error) {
	return p.f.svc.Info(ctx, p.f.p, blind.Budget{Limit: 1 << 20, Period: time.Hour})
}
func (p *peer) Set(ctx context.Context, epoch uint64) ([]byte, error) {
	pub, _, err := p.f.svc.Set(ctx, p.f.p, epoch, "")
	if err != nil {
		return nil, err
	}
	return pub.Data, nil
}
func (p *peer) Evaluate(ctx context.Context, req *blind.EvalRequest) (*blind.EvalResponse, error) {
	return p.f.svc.Evaluate(ctx, p.f.p, blind.Budget{Limit: 1 << 20, Period: time.Hour}, req)
}

// TestIncrementalVersions: the set follows versions of indicators as
// they are stored: a new pattern replaces the old values, an older
// version stored late changes nothing, an expired indicator leaves when
// its time comes, a revoked one at once, and a new version that gains a
// residency marking the partner is outside of leaves too.
func TestIncrementalVersions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.add(t, 1, "2026-05-01T00:00:00.000Z", nil, "[ipv4-addr:value = '203.0.113.1']")
	f.add(t, 2, "2026-05-01T00:00:00.000Z", map[string]any{"valid_until": "2026-06-01T12:00:00Z"}, "[domain-name:value = 'soon-gone.example.org']")
	f.add(t, 3, "2026-05-01T00:00:00.000Z", nil, "[ipv4-addr:value = '203.0.113.3']")
	all := []string{"203.0.113.1", "203.0.113.2", "www.soon-gone.example.org", "203.0.113.3", "203.0.113.4"}
	if got := f.hits(t, all...); !slices.Equal(got, []string{"203.0.113.1", "www.soon-gone.example.org", "203.0.113.3"}) {
		t.Fatalf("first set: %v", got)
	}
	// A new version of 1 looks for another address.
	f.add(t, 1, "2026-05-02T00:00:00.000Z", nil, "[ipv4-addr:value = '203.0.113.2']")
	// An older version of 3, stored after its newer one.
	f.add(t, 3, "2026-04-01T00:00:00.000Z", nil, "[ipv4-addr:value = '203.0.113.4']")
	if got := f.hits(t, all...); !slices.Equal(got, []string{"203.0.113.2", "www.soon-gone.example.org", "203.0.113.3"}) {
		t.Fatalf("after new versions: %v", got)
	}
	// 2 expires at noon.
	f.clock.add(3 * time.Hour)
	if got := f.hits(t, all...); !slices.Equal(got, []string{"203.0.113.2", "203.0.113.3"}) {
		t.Fatalf("after an expiry: %v", got)
	}
	// 3 gains a residency marking (FR only; the partner is in DE).
	if _, err := f.st.AddObjects(ctx, f.coll, []*stix.Object{mustDecode(t, policy.ResidencyMarking("FR"))}); err != nil {
		t.Fatal(err)
	}
	f.add(t, 3, "2026-05-03T00:00:00.000Z", map[string]any{"object_marking_refs": []string{policy.ResidencyMarkingID("FR")}}, "[ipv4-addr:value = '203.0.113.3']")
	if got := f.hits(t, all...); !slices.Equal(got, []string{"203.0.113.2"}) {
		t.Fatalf("after a residency marking: %v", got)
	}
	// 1 is revoked.
	f.add(t, 1, "2026-05-04T00:00:00.000Z", map[string]any{"revoked": true}, "[ipv4-addr:value = '203.0.113.2']")
	if got := f.hits(t, all...); len(got) != 0 {
		t.Fatalf("after a revocation: %v", got)
	}
	st, ok := f.svc.Status(partner)
	if !ok || st.Indicators != 0 || st.Inputs != 0 {
		t.Fatalf("status %+v %v", st, ok)
	}
}

func mustDecode(t *testing.T, raw json.RawMessage) *stix.Object {
	t.Helper()
	o, err := stix.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestNoGrantNoSet: without a grant the gate refuses the set, Info and
// the grant itself; a principal of another role cannot have one.
func TestNoGrantNoSet(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other := entente.Principal{KeyID: "c", Org: "identity--5e1f0000-0000-4000-8000-0000000000c0", Role: entente.RolePartner}
	if _, err := f.svc.Grant(ctx, other); entente.ErrorCode(err) != entente.EFORBIDDEN {
		t.Fatalf("grant without an agreement: %v", err)
	}
	if _, _, err := f.svc.Set(ctx, other, 0, ""); err == nil {
		t.Fatal("a set for a partner without blind access")
	}
	analyst := entente.Principal{KeyID: "a", Org: self, Role: entente.RoleAnalyst}
	if _, err := f.svc.Grant(ctx, analyst); entente.ErrorCode(err) != entente.EFORBIDDEN {
		t.Fatalf("grant of an analyst: %v", err)
	}
	if _, err := f.svc.Info(ctx, analyst, blind.Budget{Limit: 1, Period: time.Hour}); err == nil {
		t.Fatal("info for an analyst")
	}
}

// TestBackgroundRefresh: after Changed, the background worker brings the
// set of a partner it serves up to date without any request of the
// partner's.
func TestBackgroundRefresh(t *testing.T) {
	f := newFixture(t)
	f.add(t, 1, "2026-05-01T00:00:00.000Z", nil, "[ipv4-addr:value = '203.0.113.1']")
	if got := f.hits(t, "203.0.113.1"); len(got) != 1 {
		t.Fatalf("hits %v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	f.add(t, 2, "2026-05-01T00:00:00.000Z", nil, "[ipv4-addr:value = '203.0.113.2']")
	f.svc.Changed(f.coll)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, ok := f.svc.Status(partner); ok && st.Indicators == 2 {
			return
		}
		if time.Now().After(deadline) {
			st, _ := f.svc.Status(partner)
			t.Fatalf("the set was not brought up to date in the background: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
