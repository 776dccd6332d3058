package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/node"
)

func TestOverviewCountsCountriesAndAlerts(t *testing.T) {
	s, clk, id := alertNode(t)
	ctx := context.Background()
	sensor := sensorOf(t, s, id, entente.RoleSensor)
	analyst := sensorOf(t, s, id, entente.RoleAnalyst)
	now := clk.now()
	sub, err := s.Subscribe(analyst)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// FR, FR (a national alert), then DE.
	postSightings(t, s, sensor, alertSighting(0, now), alertSighting(1, now))
	postSightings(t, s, sensor, alertSighting(2, now))

	o, err := s.Overview(ctx, analyst, 24*time.Hour, 24, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Sightings != 3 || o.Countries["FR"].Sightings != 2 || o.Countries["DE"].Sightings != 1 {
		t.Errorf("sightings %d, FR %+v, DE %+v", o.Sightings, o.Countries["FR"], o.Countries["DE"])
	}
	if o.Alerts[correlate.StatusNew]+o.Alerts[correlate.StatusEscalated] != 1 || o.Countries["FR"].Alerts != 1 || o.Countries["DE"].Alerts != 1 {
		t.Errorf("alerts %v, FR %+v, DE %+v", o.Alerts, o.Countries["FR"], o.Countries["DE"])
	}
	var inTimeline int
	for _, b := range o.Timeline {
		inTimeline += b.Sightings
	}
	if len(o.Timeline) != 24 || inTimeline != 3 || o.Timeline[22].Sightings != 3 {
		t.Errorf("timeline of %d buckets holds %d sightings (%+v)", len(o.Timeline), inTimeline, o.Timeline[22])
	}

	// The subscriber saw three sightings and the alert's changes, in order.
	var kinds []string
	for len(sub.C) > 0 {
		kinds = append(kinds, (<-sub.C).Kind)
	}
	if len(kinds) < 4 || kinds[0] != node.EventSighting || kinds[2] != node.EventAlert {
		t.Errorf("events %v", kinds)
	}

	// Two days later, the 24-hour window holds none of it; a week's does.
	clk.add(48 * time.Hour)
	if o, _ := s.Overview(ctx, analyst, 24*time.Hour, 24, time.Time{}); o.Sightings != 0 || len(o.Countries) != 0 {
		t.Errorf("a day's window two days later: %d sightings, %v", o.Sightings, o.Countries)
	}
	if o, _ := s.Overview(ctx, analyst, 7*24*time.Hour, 7, time.Time{}); o.Sightings != 3 {
		t.Errorf("a week's window: %d sightings", o.Sightings)
	}

	// Sightings from replayed historical logs (a year old: too old for
	// any alert) are on no window ending now, but the overview says
	// where the data is, and a window moved there shows them.
	old := now.AddDate(-1, 0, 0)
	postSightings(t, s, sensor, alertSighting(3, old.Add(time.Hour)), alertSighting(4, old.Add(time.Hour)))
	o, err = s.Overview(ctx, analyst, 24*time.Hour, 24, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Sightings != 0 || o.Latest.IsZero() {
		t.Fatalf("now: %d sightings, latest %s", o.Sightings, o.Latest)
	}
	o, err = s.Overview(ctx, analyst, 24*time.Hour, 24, old.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if o.Sightings != 2 || o.Countries["IT"] == nil || o.Countries["ES"] == nil || !o.Until.Equal(old.Add(2*time.Hour)) {
		t.Errorf("a day's window a year ago: %d sightings, %v, until %s", o.Sightings, o.Countries, o.Until)
	}

	for _, tc := range []struct {
		p       entente.Principal
		window  time.Duration
		buckets int
		code    entente.Code
	}{
		{sensor, 24 * time.Hour, 24, entente.EFORBIDDEN},
		{analyst, time.Minute, 24, entente.EINVALID},
		{analyst, 90 * 24 * time.Hour, 24, entente.EINVALID},
		{analyst, 24 * time.Hour, 0, entente.EINVALID},
	} {
		if _, err := s.Overview(ctx, tc.p, tc.window, tc.buckets, time.Time{}); entente.ErrorCode(err) != tc.code {
			t.Errorf("Overview(%s, %s, %d): %v, want %s", tc.p.Role, tc.window, tc.buckets, err, tc.code)
		}
	}
	if _, err := s.Subscribe(sensor); entente.ErrorCode(err) != entente.EFORBIDDEN {
		t.Errorf("a sensor subscribed: %v", err)
	}
}
