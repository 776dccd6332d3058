package correlate_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
)

// t0 is a fixed instant at the start of a 3-hour slot of the default
// configuration, so tests can reason about slots.
var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func newEngine(t testing.TB, cfg correlate.Config) *correlate.Engine {
	t.Helper()
	e, err := correlate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func sighting(id int, threat, org, cc string, at time.Time) correlate.Sighting {
	return correlate.Sighting{
		ID:        fmt.Sprintf("sighting--00000000-0000-4000-8000-%012d", id),
		Threat:    correlate.ThreatKey(threat),
		Org:       org,
		Country:   cc,
		FirstSeen: at,
		LastSeen:  at,
		Count:     1,
	}
}

const malware = "malware--fdd60b30-b67c-41e3-b0b9-f01faf20d111"

// addAll adds sightings in order at now and returns the last alert
// reported for each id.
func addAll(t testing.TB, e *correlate.Engine, now time.Time, ss []correlate.Sighting) map[string]correlate.Alert {
	t.Helper()
	last := map[string]correlate.Alert{}
	for _, s := range ss {
		as, err := e.Add(s, now)
		if err != nil {
			t.Fatalf("add %s: %v", s.ID, err)
		}
		for _, a := range as {
			last[a.ID] = a
		}
	}
	return last
}

func TestTiers(t *testing.T) {
	tests := []struct {
		name       string
		federation int
		reports    []rep
		wantTier   string // "" for no alert
		wantOrgs   int
		wantCCs    []string
	}{
		{"one org", 0, []rep{{"a", "FR"}}, "", 0, nil},
		{"same org twice", 0, []rep{{"a", "FR"}, {"a", "FR"}}, "", 0, nil},
		{"two orgs two countries", 0, []rep{{"a", "FR"}, {"b", "DE"}}, "", 0, nil},
		{"two orgs one country", 0, []rep{{"a", "FR"}, {"b", "FR"}}, "national", 2, []string{"FR"}},
		{"three countries", 0, []rep{{"a", "FR"}, {"b", "DE"}, {"c", "IT"}}, "regional", 3, []string{"DE", "FR", "IT"}},
		// One organisation is one source: it cannot raise a regional alert
		// by itself, however many countries it names.
		{"one org in three countries", 0, []rep{{"a", "FR"}, {"a", "DE"}, {"a", "IT"}}, "", 0, nil},
		{"nine countries", 0, countries(9), "regional", 9, nil},
		{"ten countries", 0, countries(10), "global", 10, nil},
		{"share of a small federation", 6, countries(3), "global", 3, nil},
		{"below the share", 8, countries(3), "regional", 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, correlate.Config{FederationCountries: tt.federation})
			var ss []correlate.Sighting
			for i, r := range tt.reports {
				ss = append(ss, sighting(i, malware, "identity--"+r.org, r.cc, t0.Add(time.Duration(i)*time.Minute)))
			}
			addAll(t, e, t0.Add(time.Hour), ss)
			got := e.Alerts()
			if tt.wantTier == "" {
				if len(got) != 0 {
					t.Fatalf("want no alert, got %+v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want one alert, got %d: %+v", len(got), got)
			}
			a := got[0]
			if a.Tier != tt.wantTier || a.Organisations != tt.wantOrgs {
				t.Errorf("tier %s orgs %d, want %s %d", a.Tier, a.Organisations, tt.wantTier, tt.wantOrgs)
			}
			if tt.wantCCs != nil {
				if diff := cmp.Diff(tt.wantCCs, a.Countries); diff != "" {
					t.Errorf("countries (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// rep is one organisation in one country reporting.
type rep struct{ org, cc string }

// countries returns n reports from n organisations in n countries.
func countries(n int) []rep {
	var out []rep
	for i := range n {
		out = append(out, rep{fmt.Sprintf("org%d", i), string([]byte{'A' + byte(i), 'A'})})
	}
	return out
}

func TestAddReportsCreationEscalationAndUpdate(t *testing.T) {
	e := newEngine(t, correlate.Config{})
	now := t0.Add(time.Hour)
	steps := []struct {
		s      correlate.Sighting
		change correlate.Change
		tier   string
	}{
		{sighting(1, malware, "identity--a", "FR", t0), "", ""},
		{sighting(2, malware, "identity--b", "FR", t0), correlate.ChangeCreated, "national"},
		{sighting(3, malware, "identity--c", "FR", t0), correlate.ChangeUpdated, "national"},
		{sighting(4, malware, "identity--d", "DE", t0), correlate.ChangeUpdated, "national"},
		{sighting(5, malware, "identity--e", "IT", t0), correlate.ChangeEscalated, "regional"},
	}
	var id string
	for i, st := range steps {
		as, err := e.Add(st.s, now)
		if err != nil {
			t.Fatal(err)
		}
		if st.change == "" {
			if len(as) != 0 {
				t.Fatalf("step %d: want no alert, got %+v", i, as)
			}
			continue
		}
		if len(as) != 1 {
			t.Fatalf("step %d: want one %s alert, got %+v", i, st.change, as)
		}
		a := as[0]
		if a.Change != st.change || a.Tier != st.tier {
			t.Errorf("step %d: change %s tier %s, want %s %s", i, a.Change, a.Tier, st.change, st.tier)
		}
		if id == "" {
			id = a.ID
		} else if a.ID != id {
			t.Errorf("step %d: alert id changed from %s to %s", i, id, a.ID)
		}
	}
	if want := correlate.AlertID(malware, t0.Truncate(24*time.Hour)); id != want {
		t.Errorf("id %s, want AlertID(threat, epoch start) %s", id, want)
	}
}

func TestDuplicatesDoNotInflate(t *testing.T) {
	e := newEngine(t, correlate.Config{})
	now := t0.Add(time.Hour)
	s := sighting(1, malware, "identity--a", "FR", t0)
	for range 1000 {
		if _, err := e.Add(s, now); err != nil {
			t.Fatal(err)
		}
	}
	// The same organisation again, with new sighting ids, inside the same slot.
	for i := range 1000 {
		s2 := sighting(2+i, malware, "identity--a", "FR", t0.Add(time.Duration(i)*time.Millisecond))
		s2.ID = s.ID // a new version of the same sighting
		if _, err := e.Add(s2, now); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.Alerts(); len(got) != 0 {
		t.Fatalf("one organisation raised alerts: %+v", got)
	}
	st := e.Stats()
	if st.Accepted < 1 || st.Duplicates < 999 {
		t.Errorf("accepted %d duplicates %d; want ≥1 and ≥999", st.Accepted, st.Duplicates)
	}
	// A second organisation makes a national alert with exactly 2.
	as, err := e.Add(sighting(9999, malware, "identity--b", "FR", t0), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) == 0 || as[0].Organisations != 2 {
		t.Fatalf("want a national alert with 2 organisations, got %+v", as)
	}
}

func TestWindowSlides(t *testing.T) {
	e := newEngine(t, correlate.Config{Window: 8 * time.Hour, Slots: 8, MaxAge: 24 * time.Hour})
	now := t0.Add(40 * time.Hour)
	// Two organisations in one country, 9 hours apart: never within one
	// 8-hour window.
	addAll(t, e, now, []correlate.Sighting{
		sighting(1, malware, "identity--a", "FR", t0.Add(30*time.Hour)),
		sighting(2, malware, "identity--b", "FR", t0.Add(39*time.Hour)),
	})
	if got := e.Alerts(); len(got) != 0 {
		t.Fatalf("sightings 9h apart alerted with an 8h window: %+v", got)
	}
	// A third, 5 hours after the first: within a window of the first two
	// (30h…35h)? it is 4h before the second, so the window ending at 39h
	// holds 35h and 39h.
	addAll(t, e, now, []correlate.Sighting{sighting(3, malware, "identity--c", "FR", t0.Add(35*time.Hour))})
	got := e.Alerts()
	if len(got) == 0 {
		t.Fatal("no alert for three organisations within 9 hours")
	}
}

func TestSweepForgetsIdleThreats(t *testing.T) {
	e := newEngine(t, correlate.Config{})
	for i := range 100 {
		threat := fmt.Sprintf("malware--%08d-0000-4000-8000-000000000000", i)
		addAll(t, e, t0, []correlate.Sighting{
			sighting(2*i, threat, "identity--a", "FR", t0),
			sighting(2*i+1, threat, "identity--b", "FR", t0),
		})
	}
	if st := e.Stats(); st.Threats != 100 {
		t.Fatalf("tracking %d threats, want 100", st.Threats)
	}
	if n := e.Sweep(t0.Add(time.Hour)); n != 0 {
		t.Fatalf("sweep within the window forgot %d threats", n)
	}
	if len(e.Alerts()) != 100 {
		t.Fatalf("want 100 alerts before expiry")
	}
	n := e.Sweep(t0.Add(4 * 24 * time.Hour))
	if n != 100 || e.Stats().Threats != 0 {
		t.Fatalf("sweep after the horizon forgot %d threats, %d left", n, e.Stats().Threats)
	}
	if len(e.Alerts()) != 0 {
		t.Fatalf("alerts outlived their threats")
	}
}

func TestRejections(t *testing.T) {
	known := map[string]bool{"identity--a": true}
	e := newEngine(t, correlate.Config{KnownOrg: func(o string) bool { return known[o] }})
	now := t0
	tests := []struct {
		name string
		s    correlate.Sighting
		want correlate.Reason
	}{
		{"unknown object", correlate.Sighting{ID: "sighting--1", Org: "identity--a", Country: "FR", LastSeen: now}, correlate.ReasonUnknownObject},
		{"unknown partner", sighting(2, malware, "identity--stranger", "FR", now), correlate.ReasonUnknownOrg},
		{"far future", sighting(3, malware, "identity--a", "FR", now.Add(time.Hour)), correlate.ReasonFuture},
		{"far past", sighting(4, malware, "identity--a", "FR", now.Add(-48*time.Hour)), correlate.ReasonPast},
		{"year 1", sighting(5, malware, "identity--a", "FR", time.Time{}.Add(time.Second)), correlate.ReasonPast},
		{"bad country", sighting(6, malware, "identity--a", "France", now), correlate.ReasonInvalid},
		{"no times", correlate.Sighting{ID: "sighting--7", Threat: malware, Org: "identity--a", Country: "FR"}, correlate.ReasonInvalid},
		{"last before first", correlate.Sighting{ID: "sighting--8", Threat: malware, Org: "identity--a", Country: "FR", FirstSeen: now, LastSeen: now.Add(-time.Minute)}, correlate.ReasonInvalid},
		{"no org", correlate.Sighting{ID: "sighting--9", Threat: malware, Country: "FR", LastSeen: now}, correlate.ReasonInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.Stats().RejectedBy(tt.want)
			_, err := e.Add(tt.s, now)
			var re *correlate.RejectError
			if !errors.As(err, &re) || re.Reason != tt.want {
				t.Fatalf("err %v, want a %s rejection", err, tt.want)
			}
			if entente.ErrorCode(err) != entente.EINVALID {
				t.Errorf("code %s, want %s", entente.ErrorCode(err), entente.EINVALID)
			}
			if tt.s.ID != "" && !strings.Contains(err.Error(), tt.s.ID) {
				t.Errorf("error %q does not name the sighting %s", err, tt.s.ID)
			}
			if got := e.Stats().RejectedBy(tt.want); got != before+1 {
				t.Errorf("%s count %d, want %d", tt.want, got, before+1)
			}
		})
	}
	// Within the skew tolerance is fine.
	if _, err := e.Add(sighting(10, malware, "identity--a", "FR", now.Add(4*time.Minute)), now); err != nil {
		t.Errorf("sighting 4 minutes ahead refused: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  correlate.Config
	}{
		{"too many slots", correlate.Config{Slots: 13}},
		{"negative window", correlate.Config{Window: -time.Hour}},
		{"age beyond the ring", correlate.Config{Window: time.Hour, Slots: 12, MaxAge: 3 * time.Hour}},
		{"tier without threshold", correlate.Config{Tiers: []correlate.Tier{{Name: "x"}}}},
		{"duplicate tier", correlate.Config{Tiers: []correlate.Tier{{Name: "x", MinCountries: 1}, {Name: "x", MinCountries: 2}}}},
		{"share above one", correlate.Config{Tiers: []correlate.Tier{{Name: "x", MinCountryShare: 1.5}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := correlate.New(tt.cfg)
			if entente.ErrorCode(err) != entente.EINVALID {
				t.Fatalf("err %v, want EINVALID", err)
			}
		})
	}
}

// TestConvergence is the property the issue asks for: independent nodes
// that receive the same sightings in different orders end with the same
// alerts, with the same identifiers, tiers, counts and countries.
func TestConvergence(t *testing.T) {
	const nodes = 8
	superseded := 0
	defer func() { t.Logf("%d alerts were superseded on the way", superseded) }()
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 42))
		now := t0.Add(30 * time.Hour)
		var ss []correlate.Sighting
		threats := 1 + rng.IntN(4)
		orgs, ccs := 2+rng.IntN(40), 1+rng.IntN(14)
		for i := range 10 + rng.IntN(150) {
			at := now.Add(-time.Duration(rng.Int64N(int64(24 * time.Hour))))
			s := sighting(i, fmt.Sprintf("malware--%d", rng.IntN(threats)),
				fmt.Sprintf("identity--%d", rng.IntN(orgs)),
				string([]byte{'A' + byte(rng.IntN(ccs)), 'Z'}), at)
			if rng.IntN(3) == 0 {
				s.FirstSeen = at.Add(-time.Duration(rng.Int64N(int64(10 * time.Hour))))
			}
			ss = append(ss, s)
			if rng.IntN(5) == 0 { // duplicates and re-sent sightings
				ss = append(ss, s)
			}
		}
		var want []correlate.Alert
		var wantObjects []string
		for n := range nodes {
			e := newEngine(t, correlate.Config{FederationCountries: 20})
			order := append([]correlate.Sighting(nil), ss...)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			last := addAll(t, e, now, order)
			got := e.Alerts()
			// What was reported incrementally ends equal to the snapshot.
			for _, a := range got {
				r, ok := last[a.ID]
				if !ok {
					t.Fatalf("seed %d node %d: alert %s never reported", seed, n, a.ID)
				}
				r.Change = a.Change
				if diff := cmp.Diff(a, r); diff != "" {
					t.Fatalf("seed %d node %d: last report differs from final state (-final +reported):\n%s", seed, n, diff)
				}
			}
			held := map[string]bool{}
			for _, a := range got {
				held[a.ID] = true
			}
			for id, r := range last {
				switch {
				case r.Change == correlate.ChangeSuperseded:
					superseded++
					if held[id] || !held[r.SupersededBy] {
						t.Fatalf("seed %d node %d: superseded alert %s still held, or its successor %s not held", seed, n, id, r.SupersededBy)
					}
				case !held[id]:
					t.Fatalf("seed %d node %d: reported alert %s is not held", seed, n, id)
				}
			}
			var objs []string
			for _, a := range got {
				objs = append(objs, string(correlate.AlertObject(a)))
			}
			if n == 0 {
				want, wantObjects = got, objs
				tiers := map[string]int{}
				for _, a := range got {
					tiers[a.Tier]++
				}
				t.Logf("seed %d: %d sightings, alerts by tier %v", seed, len(ss), tiers)
				continue
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("seed %d: node %d diverges from node 0 (-node0 +node%d):\n%s", seed, n, n, diff)
			}
			if diff := cmp.Diff(wantObjects, objs); diff != "" {
				t.Fatalf("seed %d: node %d STIX objects differ:\n%s", seed, n, diff)
			}
		}
	}
}

// TestFederationDrill is the drill's shape: 259 organisations in 78
// countries each report the threat once; 259 nodes receive the reports in
// 259 different orders. Every node must raise the same global alert, with
// the same identifier and content.
func TestFederationDrill(t *testing.T) {
	const orgs, countries = 259, 78
	now := t0.Add(time.Hour)
	var ss []correlate.Sighting
	for i := range orgs {
		cc := string([]byte{'A' + byte(i%countries/26), 'A' + byte(i%countries%26)})
		ss = append(ss, sighting(i, malware, fmt.Sprintf("identity--%03d", i), cc, t0.Add(time.Duration(i)*time.Second)))
	}
	rng := rand.New(rand.NewPCG(259, 78))
	var want string
	for n := range orgs {
		e := newEngine(t, correlate.Config{FederationCountries: countries})
		order := append([]correlate.Sighting(nil), ss...)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		addAll(t, e, now, order)
		got := e.Alerts()
		if len(got) != 1 || got[0].Tier != "global" || got[0].Organisations != orgs || len(got[0].Countries) != countries {
			t.Fatalf("node %d: want one global alert from %d organisations in %d countries, got %+v", n, orgs, countries, got)
		}
		obj := string(correlate.AlertObject(got[0]))
		if n == 0 {
			want = obj
		} else if obj != want {
			t.Fatalf("node %d's alert differs:\n%s\nnode 0:\n%s", n, obj, want)
		}
	}
}
