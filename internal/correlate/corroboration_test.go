package correlate_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/entente-cti/entente/internal/correlate"
)

// vouched is a sighting of malware by org in cc, vouched for by source.
func vouched(id int, source, org, cc string, at time.Time) correlate.Sighting {
	s := sighting(id, malware, org, cc, at)
	s.Source, s.Object = source, "indicator--"+source
	return s
}

// TestCorroboration checks what sources can raise: one source may raise
// its own country's national tier, never another's, and never a tier
// that needs more independent sources, however many organisations and
// countries it names; weights add up; a quarantined source and one past
// its quota add nothing.
func TestCorroboration(t *testing.T) {
	type src struct {
		id   string
		info correlate.SourceInfo
	}
	home := func(id, cc string) src { return src{id, correlate.SourceInfo{Home: cc, Weight: 1}} }
	tests := []struct {
		name     string
		sources  []src
		reports  []correlate.Sighting
		wantTier string
	}{
		{"one source, two of its own organisations", []src{home("s-fr", "FR")},
			[]correlate.Sighting{vouched(1, "s-fr", "a", "FR", t0), vouched(2, "s-fr", "b", "FR", t0)}, "national"},
		{"one source, two pseudonyms in another country", []src{home("s-fr", "FR")},
			[]correlate.Sighting{vouched(1, "s-fr", "a", "DE", t0), vouched(2, "s-fr", "b", "DE", t0)}, ""},
		{"one source, pseudonyms in twelve countries", []src{home("s-fr", "FR")}, func() []correlate.Sighting {
			var out []correlate.Sighting
			for i := range 12 {
				for j := range 3 {
					out = append(out, vouched(i*3+j, "s-fr", fmt.Sprintf("p%d-%d", i, j), string([]byte{'A' + byte(i), 'B'}), t0))
				}
			}
			return out
		}(), ""},
		{"one source at home in pseudonyms everywhere", []src{home("s-fr", "FR")}, func() []correlate.Sighting {
			out := []correlate.Sighting{vouched(100, "s-fr", "a", "FR", t0), vouched(101, "s-fr", "b", "FR", t0)}
			for i := range 12 {
				out = append(out, vouched(i, "s-fr", fmt.Sprintf("p%d", i), string([]byte{'A' + byte(i), 'B'}), t0))
			}
			return out
		}(), "national"},
		{"two foreign sources in one country", []src{home("s-fr", "FR"), home("s-it", "IT")},
			[]correlate.Sighting{vouched(1, "s-fr", "a", "DE", t0), vouched(2, "s-it", "b", "DE", t0)}, "national"},
		{"two sources, three countries", []src{home("s-fr", "FR"), home("s-de", "DE")},
			[]correlate.Sighting{vouched(1, "s-fr", "a", "FR", t0), vouched(2, "s-de", "b", "DE", t0), vouched(3, "s-de", "c", "IT", t0)}, "regional"},
		{"two half-weight sources count as one", []src{{"s-fr", correlate.SourceInfo{Home: "FR", Weight: 0.5}}, {"s-de", correlate.SourceInfo{Home: "DE", Weight: 0.5}}},
			[]correlate.Sighting{vouched(1, "s-fr", "a", "FR", t0), vouched(2, "s-de", "b", "DE", t0), vouched(3, "s-de", "c", "IT", t0)}, ""},
		{"a quarantined source adds nothing", []src{home("s-fr", "FR"), {"s-de", correlate.SourceInfo{Home: "DE", Weight: 1, Quarantined: true}}},
			[]correlate.Sighting{vouched(1, "s-fr", "a", "FR", t0), vouched(2, "s-de", "b", "DE", t0), vouched(3, "s-de", "c", "IT", t0)}, ""},
		{"past its quota a source adds nothing", []src{{"s-fr", correlate.SourceInfo{Home: "FR", Weight: 1, Quota: 1}}},
			[]correlate.Sighting{vouched(1, "s-fr", "a", "FR", t0), vouched(2, "s-fr", "b", "FR", t0)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, correlate.Config{})
			for _, s := range tt.sources {
				e.SetSource(s.id, s.info)
			}
			for _, s := range tt.reports {
				if _, err := e.Add(s, t0.Add(time.Hour)); err != nil && tt.wantTier != "" {
					t.Logf("refused: %v", err)
				}
			}
			top := ""
			for _, a := range e.Alerts() {
				if top == "" || e.Config().TierRank(a.Tier) > e.Config().TierRank(top) {
					top = a.Tier
				}
			}
			if top != tt.wantTier {
				t.Fatalf("highest tier %q, want %q: %+v", top, tt.wantTier, e.Alerts())
			}
		})
	}
}

// TestRemoveWithdrawsAndLowers retracts evidence: removing a source's
// contributions lowers a regional alert it helped raise to what the
// others support, then withdraws it when nothing is left; each change is
// a later version.
func TestRemoveWithdrawsAndLowers(t *testing.T) {
	e := newEngine(t, correlate.Config{})
	for _, s := range []string{"s-fr", "s-de", "s-it"} {
		e.SetSource(s, correlate.SourceInfo{Home: "X" + s[2:3], Weight: 1})
	}
	e.SetSource("s-fr", correlate.SourceInfo{Home: "FR", Weight: 1})
	e.SetSource("s-de", correlate.SourceInfo{Home: "DE", Weight: 1})
	now := t0.Add(time.Hour)
	addAll(t, e, now, []correlate.Sighting{
		vouched(1, "s-fr", "a", "FR", t0), vouched(2, "s-fr", "b", "FR", t0),
		vouched(3, "s-de", "c", "DE", t0), vouched(4, "s-de", "d", "PL", t0),
	})
	all := e.Alerts()
	if len(all) != 1 || all[0].Tier != "regional" || all[0].SourceCount != 2 || len(e.Evidence(all[0].ID)) != 2 {
		t.Fatalf("before: %+v", all)
	}
	v0 := all[0].Version
	changes := e.Remove(func(source, org, object string) bool { return source == "s-de" })
	if len(changes) != 1 || changes[0].Change != correlate.ChangeLowered || changes[0].Tier != "national" ||
		changes[0].SourceCount != 1 || !changes[0].Version.After(v0) {
		t.Fatalf("after removing s-de: %+v", changes)
	}
	if ev := e.Evidence(changes[0].ID); len(ev) != 1 || ev[0].Source != "s-fr" || ev[0].Organisations != 2 || !slices.Equal(ev[0].Countries, []string{"FR"}) {
		t.Fatalf("evidence after removing s-de: %+v", ev)
	}
	if len(changes) != 1 {
		t.Fatalf("after removing s-de: %+v", changes)
	}
	v1 := changes[0].Version
	changes = e.Remove(func(source, org, object string) bool { return object == "indicator--s-fr" })
	if len(changes) != 1 || changes[0].Change != correlate.ChangeWithdrawn || !changes[0].Withdrawn || !changes[0].Version.After(v1) {
		t.Fatalf("after retracting the indicator: %+v", changes)
	}
	if got := e.Alerts(); len(got) != 0 {
		t.Fatalf("alerts left: %+v", got)
	}
}

// TestReassessAfterWeightChange lowers an alert when a source it counts
// on is given no weight.
func TestReassessAfterWeightChange(t *testing.T) {
	e := newEngine(t, correlate.Config{})
	e.SetSource("s-fr", correlate.SourceInfo{Home: "FR", Weight: 1})
	e.SetSource("s-de", correlate.SourceInfo{Home: "DE", Weight: 1})
	addAll(t, e, t0.Add(time.Hour), []correlate.Sighting{
		vouched(1, "s-fr", "a", "FR", t0), vouched(2, "s-de", "b", "DE", t0), vouched(3, "s-de", "c", "IT", t0),
	})
	if a := e.Alerts(); len(a) != 1 || a[0].Tier != "regional" {
		t.Fatalf("before: %+v", a)
	}
	e.SetSource("s-de", correlate.SourceInfo{Home: "DE", Weight: 0})
	changes := e.Reassess()
	if len(changes) != 1 || changes[0].Change != correlate.ChangeWithdrawn {
		t.Fatalf("after weighing s-de 0: %+v", changes)
	}
}

// TestPropertyKMisbehavingOrigins: in a random federation where k
// misbehaving origins report a benign target that no honest one sees,
// under as many pseudonyms in as many countries as they like, no alert
// on the target reaches a tier that needs more than k independent
// sources, and a single misbehaving origin raises no national tier but
// its own country's.
func TestPropertyKMisbehavingOrigins(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tiers := correlate.DefaultTiers()
		tiers[1].MinSources = float64(rapid.IntRange(2, 3).Draw(t, "regional sources"))
		tiers[2].MinSources = tiers[1].MinSources + float64(rapid.IntRange(1, 3).Draw(t, "global extra"))
		e, err := correlate.New(correlate.Config{Tiers: tiers})
		if err != nil {
			t.Fatal(err)
		}
		k := rapid.IntRange(1, 5).Draw(t, "k")
		countries := []string{"FR", "DE", "IT", "PL", "ES", "NL", "BE", "AT", "SE", "FI", "DK", "PT"}
		homes := map[string]string{}
		for i := range k {
			id := fmt.Sprintf("adversary-%d", i)
			homes[id] = rapid.SampledFrom(countries).Draw(t, "home")
			e.SetSource(id, correlate.SourceInfo{Home: homes[id], Weight: 1})
		}
		// Honest sources report other threats, in the same windows.
		for i := range rapid.IntRange(0, 6).Draw(t, "honest") {
			id := fmt.Sprintf("honest-%d", i)
			e.SetSource(id, correlate.SourceInfo{Home: countries[i%len(countries)], Weight: 1})
			s := sighting(10000+i, "malware--00000000-0000-4000-8000-00000000beef", "org-"+id, countries[i%len(countries)], t0)
			s.Source = id
			if _, err := e.Add(s, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		n := rapid.IntRange(1, 200).Draw(t, "sightings")
		for i := range n {
			src := fmt.Sprintf("adversary-%d", rapid.IntRange(0, k-1).Draw(t, "source"))
			s := sighting(i, malware, fmt.Sprintf("pseudonym-%d", rapid.IntRange(0, 50).Draw(t, "pseudonym")),
				rapid.SampledFrom(countries).Draw(t, "country"), t0.Add(time.Duration(rapid.IntRange(0, 600).Draw(t, "minute"))*time.Minute))
			s.Source = src
			_, _ = e.Add(s, t0.Add(11*time.Hour))
		}
		for _, a := range e.Alerts() {
			if a.Threat != malware {
				continue
			}
			need := tiers[e.Config().TierRank(a.Tier)-1].MinSources
			if need > float64(k) {
				t.Fatalf("%d misbehaving origins raised %s, which needs %g sources: %+v", k, a.Tier, need, a)
			}
			if k == 1 && a.Tier == "national" {
				var only string
				for id := range homes {
					only = homes[id]
				}
				// The only country where it can be national is its home.
				if !slices.Contains(a.Countries, only) {
					t.Fatalf("one origin at home in %s raised a national alert in %v", only, a.Countries)
				}
			}
		}
	})
}

// TestWithdrawnAlertIsRaisedAgain: an alert withdrawn when its evidence
// was removed is not revoked, and new evidence raises it again as a later
// version than the withdrawn one.
func TestWithdrawnAlertIsRaisedAgain(t *testing.T) {
	e := newEngine(t, correlate.Config{})
	e.SetSource("s-fr", correlate.SourceInfo{Home: "FR", Weight: 1})
	now := t0.Add(time.Hour)
	addAll(t, e, now, []correlate.Sighting{vouched(1, "s-fr", "a", "FR", t0), vouched(2, "s-fr", "b", "FR", t0)})
	changes := e.Remove(func(source, org, object string) bool { return org == "b" })
	if len(changes) != 1 || changes[0].Change != correlate.ChangeWithdrawn {
		t.Fatalf("after removing b: %+v", changes)
	}
	obj := string(correlate.AlertObject(changes[0]))
	if !strings.Contains(obj, `"withdrawn":true`) || strings.Contains(obj, `"revoked"`) {
		t.Fatalf("withdrawn alert object %s: want withdrawn, not revoked", obj)
	}
	withdrawn := changes[0].Version
	got, err := e.Add(vouched(3, "s-fr", "c", "FR", t0.Add(time.Minute)), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != changes[0].ID || got[0].Change != correlate.ChangeCreated || got[0].Withdrawn || !got[0].Version.After(withdrawn) {
		t.Fatalf("raised again: %+v (withdrawn version %s)", got, withdrawn)
	}
}

// TestEvidenceOfManyAlerts checks that the evidence and the sighted
// objects of each alert are its own among many (they are found through
// the engine's index of alert ids, not by a walk of every threat), that
// an id the engine never gave has none, and that a swept alert has none.
func TestEvidenceOfManyAlerts(t *testing.T) {
	e := newEngine(t, correlate.Config{})
	now := t0.Add(time.Hour)
	const n = 300
	var ss []correlate.Sighting
	for i := range n {
		threat := fmt.Sprintf("malware--00000000-0000-4000-8000-%012d", i)
		for k, org := range []string{"a", "b"} {
			s := sighting(2*i+k, threat, fmt.Sprintf("%s%d", org, i), "FR", t0)
			s.Object = fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
			ss = append(ss, s)
		}
	}
	addAll(t, e, now, ss)
	alerts := e.Alerts()
	if len(alerts) != n {
		t.Fatalf("%d alerts, want %d", len(alerts), n)
	}
	for _, a := range alerts {
		var i int
		if _, err := fmt.Sscanf(string(a.Threat), "malware--00000000-0000-4000-8000-%012d", &i); err != nil {
			t.Fatalf("alert of threat %s: %v", a.Threat, err)
		}
		var sources []string
		for _, s := range e.Evidence(a.ID) {
			sources = append(sources, s.Source)
		}
		slices.Sort(sources)
		if want := []string{fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)}; !slices.Equal(sources, want) {
			t.Fatalf("alert of threat %s: evidence of %v, want %v", a.Threat, sources, want)
		}
		if got, want := e.Sighted(a.ID), fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i); !slices.Equal(got, []string{want}) {
			t.Fatalf("alert of threat %s: sighted %v, want %s", a.Threat, got, want)
		}
	}
	if e.Evidence("x-entente-alert--00000000-0000-5000-8000-000000000000") != nil {
		t.Fatal("evidence for an id the engine never gave")
	}
	e.Sweep(now.Add(365 * 24 * time.Hour))
	for _, a := range alerts {
		if ev := e.Evidence(a.ID); ev != nil {
			t.Fatalf("alert %s swept, still has evidence %+v", a.ID, ev)
		}
	}
}
