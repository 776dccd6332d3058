package correlate_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
)

func TestLifecycle(t *testing.T) {
	national := correlate.Alert{Tier: "national", TierRank: 1}
	regional := correlate.Alert{Tier: "regional", TierRank: 2}
	global := correlate.Alert{Tier: "global", TierRank: 3}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

	l := correlate.NewLifecycle(national, "identity--node", at(0))
	steps := []struct {
		name string
		do   func() error
		code entente.Code // "" for success
		want correlate.Status
	}{
		{"acknowledge", func() error { return l.Acknowledge("analyst@cert-fr", at(1), "looking") }, "", correlate.StatusAcknowledged},
		{"acknowledge again", func() error { return l.Acknowledge("analyst@cert-fr", at(2), "") }, entente.ECONFLICT, correlate.StatusAcknowledged},
		{"escalate to regional", func() error { return l.Escalate(regional, "identity--node", at(3), "") }, "", correlate.StatusEscalated},
		{"escalate to the same tier", func() error { return l.Escalate(regional, "identity--node", at(4), "") }, entente.ECONFLICT, correlate.StatusEscalated},
		{"no principal", func() error { return l.Acknowledge("", at(5), "") }, entente.EINVALID, correlate.StatusEscalated},
		{"time going back", func() error { return l.Acknowledge("x", at(2), "") }, entente.EINVALID, correlate.StatusEscalated},
		{"resolve", func() error { return l.Resolve("analyst@cert-de", at(6), "blocked") }, "", correlate.StatusResolved},
		{"acknowledge a resolved alert", func() error { return l.Acknowledge("x", at(7), "") }, entente.ECONFLICT, correlate.StatusResolved},
		{"a resolved alert still escalates", func() error { return l.Escalate(global, "identity--node", at(8), "spread") }, "", correlate.StatusEscalated},
	}
	for _, st := range steps {
		err := st.do()
		if got := entente.ErrorCode(err); got != st.code {
			t.Fatalf("%s: error %v (code %q), want code %q", st.name, err, got, st.code)
		}
		if l.Status != st.want {
			t.Fatalf("%s: status %s, want %s", st.name, l.Status, st.want)
		}
	}
	want := []correlate.Transition{
		{To: correlate.StatusNew, By: "identity--node", At: at(0), Tier: "national"},
		{From: correlate.StatusNew, To: correlate.StatusAcknowledged, By: "analyst@cert-fr", At: at(1), Tier: "national", Note: "looking"},
		{From: correlate.StatusAcknowledged, To: correlate.StatusEscalated, By: "identity--node", At: at(3), Tier: "regional"},
		{From: correlate.StatusEscalated, To: correlate.StatusResolved, By: "analyst@cert-de", At: at(6), Tier: "regional", Note: "blocked"},
		{From: correlate.StatusResolved, To: correlate.StatusEscalated, By: "identity--node", At: at(8), Tier: "global", Note: "spread"},
	}
	if diff := cmp.Diff(want, l.History); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if l.Tier != "global" {
		t.Errorf("tier %s, want global", l.Tier)
	}
}
