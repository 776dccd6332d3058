package alerting

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
)

// Event is one change the node reports live to subscribers (the
// dashboard): a sighting correlated, or an alert raised or changed. It
// carries what a map and a list need, not objects: a subscriber that
// wants more reads it through the service, as any reader.
type Event struct {
	// Kind is "sighting" or "alert".
	Kind string `json:"kind"`
	// At is when the node learnt of it.
	At time.Time `json:"at"`
	// ID is the sighting's or the alert's STIX id.
	ID string `json:"id"`
	// Countries are where the sighting was made, or the alert's
	// countries.
	Countries []string `json:"countries,omitempty"`
	// Change, Tier and Status describe an alert event.
	Change correlate.Change `json:"change,omitempty"`
	Tier   string           `json:"tier,omitempty"`
	Status correlate.Status `json:"status,omitempty"`
}

// Event kinds.
const (
	EventSighting = "sighting"
	EventAlert    = "alert"
)

// subscriberBuffer is how many events a subscriber may fall behind
// before further events are dropped for it (and counted).
const subscriberBuffer = 256

// activityDays is the longest overview window.
const activityDays = 31

// maxActivityHours bounds the hours of sighting activity kept in memory
// (the most recent by data time are kept): three years of hours.
const maxActivityHours = 3 * 366 * 24

// eventHub fans events out to subscribers and keeps the activity of
// sightings per hour and country since the node started (the replay of
// stored sightings included), for overviews.
type eventHub struct {
	mu    sync.Mutex
	subs  map[*Subscription]struct{}
	hours map[int64]*hourActivity // by Unix hour
	// latest is the latest hour in hours.
	latest int64
	// starting is set once Overview has started correlation.
	starting bool
	// refsAt is when refreshRefs last read the relationships.
	refsAt time.Time
}

type hourActivity struct {
	total     int
	countries map[string]int
}

// Subscription receives the node's events on C until Close.
type Subscription struct {
	// C delivers events in the order they happened.
	C <-chan Event
	c chan Event
	h *eventHub

	mu      sync.Mutex
	dropped int
	closed  bool
}

// Subscribe returns a subscription to the node's live events (analyst
// or admin: events reveal alerts and where sightings are made).
func (s *Service) Subscribe(p entente.Principal) (*Subscription, error) {
	if err := requireAnalyst(p, "following live events"); err != nil {
		return nil, err
	}
	c := make(chan Event, subscriberBuffer)
	sub := &Subscription{C: c, c: c, h: &s.events}
	s.events.mu.Lock()
	if s.events.subs == nil {
		s.events.subs = map[*Subscription]struct{}{}
	}
	s.events.subs[sub] = struct{}{}
	s.events.mu.Unlock()
	return sub, nil
}

// Dropped returns how many events were dropped because the subscriber
// fell behind, and resets the count.
func (sub *Subscription) Dropped() int {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	n := sub.dropped
	sub.dropped = 0
	return n
}

// Close ends the subscription and closes C.
func (sub *Subscription) Close() {
	sub.h.mu.Lock()
	delete(sub.h.subs, sub)
	sub.h.mu.Unlock()
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if !sub.closed {
		sub.closed = true
		close(sub.c)
	}
}

// publish delivers ev to every subscriber without ever blocking.
func (h *eventHub) publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		sub.mu.Lock()
		if !sub.closed {
			select {
			case sub.c <- ev:
			default:
				sub.dropped++
			}
		}
		sub.mu.Unlock()
	}
}

// sighting records a sighting correlation accepted, and publishes it
// unless it is the replay of a stored one.
func (h *eventHub) sighting(sg correlate.Sighting, now time.Time, replaying bool) {
	h.record(sg, now)
	if !replaying {
		h.publish(Event{Kind: EventSighting, At: now, ID: sg.ID, Countries: []string{sg.Country}})
	}
}

// record counts a sighting in the activity of the hour it was seen (its
// data time, however old: replayed historical logs show where and when
// they were seen), without publishing it.
func (h *eventHub) record(sg correlate.Sighting, now time.Time) {
	at := sg.LastSeen
	if at.IsZero() {
		at = sg.FirstSeen
	}
	if at.IsZero() || at.After(now) {
		at = now
	}
	h.mu.Lock()
	if h.hours == nil {
		h.hours = map[int64]*hourActivity{}
	}
	hour := at.Unix() / 3600
	a := h.hours[hour]
	if a == nil {
		a = &hourActivity{countries: map[string]int{}}
		h.hours[hour] = a
		h.forgetLocked()
	}
	a.total++
	if sg.Country != "" {
		a.countries[sg.Country]++
	}
	if hour >= h.latest {
		h.latest = hour
	}
	h.mu.Unlock()
}

// forgetLocked drops the oldest hours past maxActivityHours.
func (h *eventHub) forgetLocked() {
	if len(h.hours) <= maxActivityHours {
		return
	}
	hours := slices.Sorted(maps.Keys(h.hours))
	for _, hour := range hours[:len(hours)-maxActivityHours] {
		delete(h.hours, hour)
	}
}

// alert publishes an alert's change, unless replaying.
func (h *eventHub) alert(al correlate.Alert, status correlate.Status, now time.Time, replaying bool) {
	if replaying {
		return
	}
	h.publish(Event{Kind: EventAlert, At: now, ID: al.ID, Countries: slices.Clone(al.Countries), Change: al.Change, Tier: al.Tier, Status: status})
}

// transitioned publishes an alert's new status after an analyst's
// action.
func (h *eventHub) transitioned(info AlertInfo, now time.Time) {
	h.publish(Event{Kind: EventAlert, At: now, ID: info.ID, Countries: info.Countries, Tier: info.Tier, Status: info.Status})
}

// Overview is what the dashboard's first screen shows for a window of
// time: sightings and alerts, per country and over time.
type Overview struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Latest is the end of the latest hour any sighting was seen in (by
	// its data time, which replayed logs put in the past): a window
	// ending there shows them. Zero when there is none.
	Latest time.Time `json:"latest,omitzero"`
	// Sightings counts the sightings correlation accepted in the window,
	// one per reporting organisation of each sighting object.
	Sightings int `json:"sightings"`
	// Alerts counts the alerts last seen in the window, by status.
	Alerts map[correlate.Status]int `json:"alerts"`
	// Countries are the counts per ISO 3166-1 alpha-2 country.
	Countries map[string]*CountryActivity `json:"countries"`
	// Timeline splits the window into equal buckets, oldest first.
	Timeline []TimeBucket `json:"timeline"`
	// Threats is how many threats correlation tracks.
	Threats int `json:"threats"`
	// Replaying is true while correlation replays the stored sightings
	// (after the node starts): sightings and threats are then partial.
	Replaying bool `json:"replaying,omitempty"`
}

// correlationReady returns the threats correlation tracks, without
// waiting: when correlation is busy (replaying the stored sightings
// after a start, which takes seconds on a large store) or not started
// (it is then started in the background), ready is false.
func (s *Service) correlationReady() (threats int, ready bool) {
	if !s.mu.TryLock() {
		return 0, false
	}
	defer s.mu.Unlock()
	if s.engine != nil {
		return s.engine.Stats().Threats, true
	}
	s.events.mu.Lock()
	starting := s.events.starting
	s.events.starting = true
	s.events.mu.Unlock()
	if !starting {
		go func() {
			s.mu.Lock()
			err := s.startAlerts(context.Background(), nil)
			s.mu.Unlock()
			if err != nil {
				s.log.Error("correlation did not start", "err", err)
				s.events.mu.Lock()
				s.events.starting = false
				s.events.mu.Unlock()
			}
		}()
	}
	return 0, false
}

// CountryActivity is one country's counts in an Overview.
type CountryActivity struct {
	Sightings int `json:"sightings"`
	// Alerts counts the open (not resolved) alerts with the country.
	Alerts int `json:"alerts"`
}

// TimeBucket is one interval of an Overview's timeline.
type TimeBucket struct {
	Start     time.Time `json:"start"`
	Sightings int       `json:"sightings"`
	Alerts    int       `json:"alerts"`
}

// OverviewWindows bounds the windows an overview accepts.
const (
	MinOverviewWindow = time.Hour
	MaxOverviewWindow = activityDays * 24 * time.Hour
)

// Overview summarises the sightings and alerts of the window ending at
// until (now when zero: a window may be moved to the time of the data,
// see Overview.Latest) (analyst or admin), split into buckets for the
// timeline (1 to 200). Sightings are counted by the hour they were seen,
// so the window is rounded to whole hours. EINVALID if the window or the
// buckets are out of range.
func (s *Service) Overview(ctx context.Context, p entente.Principal, window time.Duration, buckets int, until time.Time) (Overview, error) {
	if err := requireAnalyst(p, "reading the overview"); err != nil {
		return Overview{}, err
	}
	if window < MinOverviewWindow || window > MaxOverviewWindow {
		return Overview{}, entente.Errorf(entente.EINVALID, "window %s is not between %s and %s", window, MinOverviewWindow, MaxOverviewWindow)
	}
	if buckets < 1 || buckets > 200 {
		return Overview{}, entente.Errorf(entente.EINVALID, "buckets %d is not between 1 and 200", buckets)
	}
	threats, ready := s.correlationReady()
	now := s.now()
	if !until.IsZero() && until.Before(now) {
		now = until.UTC()
	}
	endHour := now.Unix()/3600 + 1 // exclusive
	hours := int64(window / time.Hour)
	startHour := endHour - hours
	o := Overview{
		Since: time.Unix(startHour*3600, 0).UTC(), Until: now,
		Alerts: map[correlate.Status]int{}, Countries: map[string]*CountryActivity{},
		Timeline: make([]TimeBucket, buckets), Threats: threats, Replaying: !ready,
	}
	span := time.Duration(hours) * time.Hour
	width := span / time.Duration(buckets)
	for i := range o.Timeline {
		o.Timeline[i].Start = o.Since.Add(time.Duration(i) * width)
	}
	bucketOf := func(t time.Time) int {
		i := int(t.Sub(o.Since) / width)
		return min(max(i, 0), buckets-1)
	}
	country := func(cc string) *CountryActivity {
		c := o.Countries[cc]
		if c == nil {
			c = &CountryActivity{}
			o.Countries[cc] = c
		}
		return c
	}
	s.events.mu.Lock()
	if len(s.events.hours) > 0 {
		o.Latest = time.Unix((s.events.latest+1)*3600, 0).UTC()
	}
	for hour, a := range s.events.hours {
		if hour < startHour || hour >= endHour {
			continue
		}
		o.Sightings += a.total
		o.Timeline[bucketOf(time.Unix(hour*3600, 0))].Sightings += a.total
		for cc, n := range a.countries {
			country(cc).Sightings += n
		}
	}
	s.events.mu.Unlock()

	alerts, err := s.list(ctx, p, AlertFilter{}) // counts: no descriptions
	if err != nil {
		return Overview{}, err
	}
	for _, al := range alerts {
		if al.LastSeen.Before(o.Since) && al.Updated.Before(o.Since) || al.FirstSeen.After(now) {
			continue
		}
		o.Alerts[al.Status]++
		o.Timeline[bucketOf(al.FirstSeen)].Alerts++
		if al.Status == correlate.StatusResolved {
			continue
		}
		for _, cc := range al.Countries {
			country(cc).Alerts++
		}
	}
	return o, nil
}
