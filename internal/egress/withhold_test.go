package egress

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/retraction"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

const (
	testSelf    = "identity--00000000-0000-4000-8000-000000000001"
	testPartner = "identity--00000000-0000-4000-8000-0000000000%02d"
	testColl    = "a1b2c3d4-0000-4000-8000-000000000001"
)

// fatalf is what the fixture's checks need of a *testing.T or a
// *rapid.T.
type fatalf interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// withholdFixture is a node's store with a collection, partners and
// indicators (some received from partners), and two gates sharing it
// (two replicas).
type withholdFixture struct {
	st         *sqlite.Store
	g, other   *Gate
	indicators []string
	partners   []string
	now        time.Time
}

func newWithholdFixture(t testing.TB) *withholdFixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateCollection(ctx, entente.Collection{ID: testColl, Title: "test", ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RoleAnalyst}}); err != nil {
		t.Fatal(err)
	}
	f := &withholdFixture{st: st, now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	self := func(context.Context) (policy.Party, error) { return policy.Party{ID: testSelf, Country: "FR"}, nil }
	f.g = New(st, Config{Self: self, Now: func() time.Time { return f.now }})
	f.other = New(st, Config{Self: self, Now: func() time.Time { return f.now }})
	for i := range 3 {
		p := fmt.Sprintf(testPartner, i+2)
		f.partners = append(f.partners, p)
		if err := st.PutParty(ctx, policy.Party{ID: p, Name: p, Country: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	// Six indicators: two own, two from each of the first two partners.
	for i := range 6 {
		id := fmt.Sprintf("indicator--00000000-0000-4000-8000-0000000001%02d", i)
		raw := fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2026-11-01T00:00:00Z"}`, id, i+1)
		f.add(t, "", raw, i/2)
		f.indicators = append(f.indicators, id)
	}
	return f
}

// add stores raw: the node's own when from is 0, else received from
// partner from-1.
func (f *withholdFixture) add(t testing.TB, _ string, raw string, from int) {
	t.Helper()
	ctx := context.Background()
	o, err := stix.Decode(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	if from == 0 {
		if _, err := f.st.AddObjects(ctx, testColl, []*stix.Object{o}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := f.st.AddReceived(ctx, store.Received{Collection: testColl, Objects: []*stix.Object{o},
		Origin: f.partners[from-1], Peer: "peer", ReceivedAt: f.now}); err != nil {
		t.Fatal(err)
	}
}

// retract stores a retraction of refs (the node's own when from is 0,
// else received from partner from-1) and withholds what it withdraws
// incrementally, as the node does.
func (f *withholdFixture) retract(t *testing.T, refs []string, from int) {
	t.Helper()
	ctx := context.Background()
	by := testSelf
	if from > 0 {
		by = f.partners[from-1]
	}
	rs := make([]retraction.Ref, len(refs))
	for i, r := range refs {
		rs[i] = retraction.Ref{ID: r}
	}
	f.now = f.now.Add(time.Second)
	op, err := retraction.New(by, rs, "test", f.now)
	if err != nil {
		t.Fatal(err)
	}
	f.add(t, "", string(op), from)
	r, _ := retraction.Parse(op)
	held, err := HeldIn(ctx, f.st, testColl, []entente.ObjectEntry{{ID: r.ID, Type: "opinion", Raw: op}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.Withhold(ctx, "retraction", WithdrawalOf(held, testSelf)); err != nil {
		t.Fatal(err)
	}
}

// check fails unless the gate's withheld set is what reading it all
// from the store gives, fingerprint included.
func (f *withholdFixture) check(t fatalf, g *Gate) {
	t.Helper()
	ctx := context.Background()
	got, err := g.withheld(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := g.loadWithheld(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if k1, k2 := slices.Sorted(maps.Keys(got.objects)), slices.Sorted(maps.Keys(want.objects)); !slices.Equal(k1, k2) {
		t.Fatalf("withheld objects %v, a full reload gives %v", k1, k2)
	}
	if k1, k2 := slices.Sorted(maps.Keys(got.origins)), slices.Sorted(maps.Keys(want.origins)); !slices.Equal(k1, k2) {
		t.Fatalf("withheld origins %v, a full reload gives %v", k1, k2)
	}
	if fp := want.fingerprintOf(); got.fingerprint != fp {
		t.Fatalf("fingerprint %q, a full reload gives %q", got.fingerprint, fp)
	}
}

// released lists the indicators the node's own renderings would hold:
// a page of every indicator through dropWithheld.
func (f *withholdFixture) released(t fatalf, g *Gate) []string {
	t.Helper()
	ctx := context.Background()
	c, err := f.st.Collection(ctx, testColl)
	if err != nil {
		t.Fatal(err)
	}
	page, err := f.st.QueryObjects(ctx, entente.ObjectQuery{Collection: testColl, Types: []string{"indicator"}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	page, err = g.dropWithheld(ctx, c, page)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range page.Entries {
		out = append(out, e.ID)
	}
	slices.Sort(out)
	return out
}

// TestWithholdIncremental checks the incremental path case by case: a
// retraction and a quarantine withhold at once on the gate that made
// them (without a reload) and on a replica sharing the store (by a
// reload); a release (TermsChanged) acts on the partner's objects again.
func TestWithholdIncremental(t *testing.T) {
	ctx := context.Background()
	f := newWithholdFixture(t)
	admin := entente.Principal{KeyID: "admin", Org: testSelf, Role: entente.RoleAdmin}
	all := slices.Clone(f.indicators)
	steps := []struct {
		name string
		do   func()
		want []string // indicators still released
	}{
		{"nothing withheld", func() {}, all},
		{"own retraction of an own indicator", func() { f.retract(t, all[:1], 0) }, all[1:]},
		{"quarantine of the first partner", func() {
			if _, err := f.g.SetQuarantine(ctx, admin, f.partners[0], true, "test"); err != nil {
				t.Fatal(err)
			}
		}, []string{all[1], all[4], all[5]}},
		{"the second partner retracts its own indicator", func() { f.retract(t, all[4:5], 2) }, []string{all[1], all[5]}},
		{"release of the first partner", func() {
			if _, err := f.g.SetQuarantine(ctx, admin, f.partners[0], false, ""); err != nil {
				t.Fatal(err)
			}
		}, []string{all[1], all[2], all[3], all[5]}},
	}
	for _, s := range steps {
		// Both gates read before the change, so both hold a set to keep.
		f.released(t, f.g)
		f.released(t, f.other)
		s.do()
		for name, g := range map[string]*Gate{"gate": f.g, "replica": f.other} {
			if got := f.released(t, g); !slices.Equal(got, s.want) {
				t.Errorf("%s: %s releases %v, want %v", s.name, name, got, s.want)
			}
			f.check(t, g)
		}
	}
}

// TestWithholdStaleBase checks that an increment is not applied to a
// set another replica's change made stale: the gate reloads instead.
func TestWithholdStaleBase(t *testing.T) {
	ctx := context.Background()
	f := newWithholdFixture(t)
	admin := entente.Principal{KeyID: "admin", Org: testSelf, Role: entente.RoleAdmin}
	f.released(t, f.g)
	if _, err := f.other.SetQuarantine(ctx, admin, f.partners[0], true, "test"); err != nil {
		t.Fatal(err)
	}
	f.retract(t, f.indicators[5:], 0) // on f.g, whose set predates the quarantine
	want := []string{f.indicators[0], f.indicators[1], f.indicators[4]}
	if got := f.released(t, f.g); !slices.Equal(got, want) {
		t.Fatalf("released %v, want %v", got, want)
	}
	f.check(t, f.g)
}

// TestWithholdEqualsReload is a property: after any sequence of
// retractions (own or received), quarantines and releases, made on
// either of two replicas, each replica's withheld set (kept
// incrementally where it can be) is what reading it all from the store
// gives, and its renderings release nothing it withholds.
func TestWithholdEqualsReload(t *testing.T) {
	ctx := context.Background()
	f := newWithholdFixture(t)
	admin := entente.Principal{KeyID: "admin", Org: testSelf, Role: entente.RoleAdmin}
	rapid.Check(t, func(rt *rapid.T) {
		for range rapid.IntRange(1, 8).Draw(rt, "steps") {
			g := f.g
			if rapid.Bool().Draw(rt, "other replica") {
				g, f.other = f.other, f.g
				f.g = g
			}
			switch rapid.IntRange(0, 3).Draw(rt, "op") {
			case 0, 1:
				refs := rapid.SliceOfNDistinct(rapid.SampledFrom(f.indicators), 1, 3, rapid.ID[string]).Draw(rt, "refs")
				f.retract(t, refs, rapid.IntRange(0, 2).Draw(rt, "from"))
			case 2:
				if _, err := g.SetQuarantine(ctx, admin, rapid.SampledFrom(f.partners).Draw(rt, "quarantine"), true, "test"); err != nil {
					rt.Fatal(err)
				}
			case 3:
				if _, err := g.SetQuarantine(ctx, admin, rapid.SampledFrom(f.partners).Draw(rt, "release"), false, ""); err != nil {
					rt.Fatal(err)
				}
			}
			if rapid.Bool().Draw(rt, "read") {
				f.released(rt, f.other)
			}
			for _, g := range []*Gate{f.g, f.other} {
				f.check(rt, g)
				wh, err := g.withheld(ctx)
				if err != nil {
					rt.Fatal(err)
				}
				prov, err := f.st.Provenance(ctx, testColl, f.indicators)
				if err != nil {
					rt.Fatal(err)
				}
				origin := map[string]string{}
				for k, p := range prov {
					origin[k.ID] = p.Origin
				}
				for _, id := range f.released(rt, g) {
					if why := wh.withholds(id, origin[id]); why != "" {
						rt.Fatalf("%s released although withheld: %s", id, why)
					}
				}
			}
		}
	})
}

// BenchmarkWithdraw compares what honouring one more retraction costs a
// node that holds many (2,000 retractions of 5 objects each) until its
// next release can be decided: adding it to the withheld set in place
// (Withhold), or dropping the set and reading every retraction again
// (TermsChanged, what every withdrawal did before).
func BenchmarkWithdraw(b *testing.B) {
	ctx := context.Background()
	f := newWithholdFixture(b)
	const held = 2000
	ops := make([]*stix.Object, 0, held)
	for i := range held {
		refs := make([]retraction.Ref, 5)
		for j := range refs {
			refs[j] = retraction.Ref{ID: fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i*5+j+1000)}
		}
		op, err := retraction.New(testSelf, refs, "bench", f.now)
		if err != nil {
			b.Fatal(err)
		}
		o, err := stix.Decode(op)
		if err != nil {
			b.Fatal(err)
		}
		ops = append(ops, o)
	}
	if _, err := f.st.AddObjects(ctx, testColl, ops); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"incremental", "reload"} {
		b.Run(mode, func(b *testing.B) {
			if _, err := f.g.withheld(ctx); err != nil {
				b.Fatal(err)
			}
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprintf("indicator--10000000-0000-4000-8000-%012d", i)
				w := Withdrawal{Objects: map[string]string{id: "bench"}}
				var err error
				if mode == "incremental" {
					err = f.g.Withhold(ctx, "bench", w)
				} else {
					err = f.g.TermsChanged(ctx, "bench")
				}
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.g.withheld(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
