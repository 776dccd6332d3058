package correlate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente/internal/correlate"
)

// TestLateSightingSupersedes builds the one case where an alert is
// withdrawn: sightings that arrive late show that the outbreak began in the
// previous epoch.
func TestLateSightingSupersedes(t *testing.T) {
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	now := day.Add(2 * time.Hour)
	early := []correlate.Sighting{
		sighting(1, malware, "identity--c", "FR", day.Add(-2*time.Hour)),
		sighting(2, malware, "identity--d", "FR", day.Add(-2*time.Hour)),
	}
	late := []correlate.Sighting{
		sighting(3, malware, "identity--a", "FR", day.Add(time.Hour)),
		sighting(4, malware, "identity--b", "FR", day.Add(time.Hour)),
	}
	prev, this := correlate.AlertID(malware, day.Add(-24*time.Hour)), correlate.AlertID(malware, day)

	// In time order: one alert, for the previous epoch, that grows.
	inOrder := newEngine(t, correlate.Config{})
	addAll(t, inOrder, now, append(append([]correlate.Sighting{}, early...), late...))

	// Out of order: first an alert for this epoch, then it is superseded.
	outOfOrder := newEngine(t, correlate.Config{})
	first := addAll(t, outOfOrder, now, late)
	if _, ok := first[this]; !ok {
		t.Fatalf("the later pair alone should raise %s, got %v", this, first)
	}
	var superseded *correlate.Alert
	for _, s := range early {
		as, err := outOfOrder.Add(s, now)
		if err != nil {
			t.Fatal(err)
		}
		for i := range as {
			if as[i].Change == correlate.ChangeSuperseded {
				superseded = &as[i]
			}
		}
	}
	if superseded == nil || superseded.ID != this || superseded.SupersededBy != prev {
		t.Fatalf("want %s superseded by %s, got %+v", this, prev, superseded)
	}
	want := inOrder.Alerts()
	if len(want) != 1 || want[0].ID != prev || want[0].Organisations != 4 {
		t.Fatalf("in order: want one alert %s with 4 organisations, got %+v", prev, want)
	}
	if diff := cmp.Diff(want, outOfOrder.Alerts()); diff != "" {
		t.Errorf("nodes diverge (-in order +out of order):\n%s", diff)
	}
	obj := string(correlate.AlertObject(*superseded))
	for _, s := range []string{`"revoked":true`, `"superseded_by_ref":"` + prev + `"`} {
		if !strings.Contains(obj, s) {
			t.Errorf("superseded alert object lacks %s: %s", s, obj)
		}
	}
}

// TestLongOutbreakIsOneAlert follows an outbreak for ten days, longer than
// the engine's ring of slots: it stays one alert.
func TestLongOutbreakIsOneAlert(t *testing.T) {
	e := newEngine(t, correlate.Config{})
	start := time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC)
	ids := map[string]bool{}
	var at time.Time
	for i := range 40 { // every 6 hours
		at = start.Add(time.Duration(i) * 6 * time.Hour)
		for j, org := range []string{"identity--a", "identity--b"} {
			as, err := e.Add(sighting(i*2+j, malware, org, "FR", at), at)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range as {
				ids[a.ID] = true
				if a.Change == correlate.ChangeSuperseded {
					t.Fatalf("alert superseded during a continuous outbreak: %+v", a)
				}
			}
		}
		e.Sweep(at)
	}
	if len(ids) != 1 {
		t.Fatalf("a continuous outbreak raised %d alerts: %v", len(ids), ids)
	}
	got := e.Alerts()
	if len(got) != 1 || !got[0].LastSeen.Equal(at) || got[0].Epoch != start.Truncate(24*time.Hour) {
		t.Fatalf("want the one alert of %s last seen %s, got %+v", start.Truncate(24*time.Hour), at, got)
	}
}
