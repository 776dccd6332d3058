package correlate

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/entente-cti/entente"
)

// ThreatKey identifies a threat: the STIX id of the malware or campaign an
// indicator indicates, or of the indicator itself when it indicates
// nothing known (see [ThreatResolver]).
type ThreatKey string

// Sighting is one report that a threat was seen, reduced to what
// correlation needs. The caller resolves the sighted object to its threat
// and the reporting organisation to its country.
type Sighting struct {
	// ID is the STIX id of the sighting.
	ID string
	// Threat is the threat sighted; empty means the sighted object is not
	// known to the node.
	Threat ThreatKey
	// Org is the STIX identity id of the organisation that saw it.
	Org string
	// Country is where it was seen: ISO 3166-1 alpha-2, upper case.
	Country string
	// FirstSeen and LastSeen bound when it was seen. Either may be zero,
	// in which case it takes the other's value.
	FirstSeen, LastSeen time.Time
	// Count is how many times it was seen; it does not weigh in the
	// counts, which are of organisations and countries.
	Count int
}

// Reason is why the engine refused a sighting.
type Reason int

// The reasons a sighting is refused.
const (
	ReasonInvalid       Reason = iota // a required property is missing or malformed
	ReasonUnknownObject               // the sighted object resolves to no threat
	ReasonUnknownOrg                  // the reporting organisation is not a known partner
	ReasonFuture                      // last_seen is beyond now + MaxSkew
	ReasonPast                        // last_seen is before now − MaxAge
	numReasons
)

var reasonNames = [numReasons]string{"invalid", "unknown_object", "unknown_org", "future", "past"}

// String returns the reason's name as used in metrics.
func (r Reason) String() string {
	if r < 0 || r >= numReasons {
		return fmt.Sprintf("reason(%d)", int(r))
	}
	return reasonNames[r]
}

// Stats counts what the engine did with the sightings it was given.
type Stats struct {
	// Accepted counts sightings that added presence to some threat.
	Accepted uint64
	// Duplicates counts sightings that added nothing new: repeated
	// sightings, or an organisation reporting a threat again within slots
	// it was already present in.
	Duplicates uint64
	// Rejected counts refused sightings by reason.
	Rejected [numReasons]uint64
	// Threats is the number of threats currently tracked.
	Threats int
}

// RejectedBy returns how many sightings were refused for reason r.
func (s Stats) RejectedBy(r Reason) uint64 {
	if r < 0 || r >= numReasons {
		return 0
	}
	return s.Rejected[r]
}

// RejectError is the error [Engine.Add] returns for a refused sighting.
// It unwraps to an *entente.Error with code EINVALID.
type RejectError struct {
	Reason     Reason
	SightingID string
	Err        *entente.Error
}

// Error names the sighting and what is wrong with it.
func (e *RejectError) Error() string { return e.Err.Error() }

// Unwrap returns the client-facing error.
func (e *RejectError) Unwrap() error { return e.Err }

// ringSlots is how many slots one presence mask covers.
const ringSlots = 64

// maxRefs is how many sighting ids an alert lists (the lexicographically
// smallest, so that the list is the same on every node).
const maxRefs = 16

// countryIndexes is the number of two-letter codes A–Z × A–Z.
const countryIndexes = 26 * 26

// entry is one (organisation, country) pair's presence for one threat.
type entry struct {
	org     uint32
	country uint16
	mask    uint64 // bit i: present in slot base+i
}

// epochState is what the engine knows of one epoch of one threat.
type epochState struct {
	epoch     int64
	tier      int // 0: no tier met; i+1: Config.Tiers[i]
	orgs      int
	countries [(countryIndexes + 63) / 64]uint64
	first     time.Time
	last      time.Time
	refs      []string
}

func (s *epochState) countryCount() int {
	n := 0
	for _, w := range s.countries {
		n += bits.OnesCount64(w)
	}
	return n
}

// threatState is the presence of one threat's reporters.
type threatState struct {
	key     ThreatKey
	base    int64 // absolute slot of bit 0 of every mask
	entries []entry
	index   map[uint64]int32 // (org<<16 | country) → entries index; nil while small
	epochs  []*epochState    // sorted by epoch
}

const indexThreshold = 12

func (t *threatState) find(org uint32, country uint16) int {
	if t.index != nil {
		if i, ok := t.index[uint64(org)<<16|uint64(country)]; ok {
			return int(i)
		}
		return -1
	}
	for i := range t.entries {
		if t.entries[i].org == org && t.entries[i].country == country {
			return i
		}
	}
	return -1
}

func (t *threatState) insert(org uint32, country uint16) int {
	t.entries = append(t.entries, entry{org: org, country: country})
	i := len(t.entries) - 1
	if t.index == nil && len(t.entries) > indexThreshold {
		t.index = make(map[uint64]int32, 2*len(t.entries))
		for j, e := range t.entries {
			t.index[uint64(e.org)<<16|uint64(e.country)] = int32(j)
		}
	} else if t.index != nil {
		t.index[uint64(org)<<16|uint64(country)] = int32(i)
	}
	return i
}

// shift moves the ring so that its first slot is base, dropping older bits.
func (t *threatState) shift(base int64) {
	d := base - t.base
	if d <= 0 {
		return
	}
	for i := range t.entries {
		if d >= ringSlots {
			t.entries[i].mask = 0
		} else {
			t.entries[i].mask >>= uint(d)
		}
	}
	t.base = base
}

// compact drops entries with no presence left.
func (t *threatState) compact() {
	n := 0
	for _, e := range t.entries {
		if e.mask != 0 {
			t.entries[n] = e
			n++
		}
	}
	if n == len(t.entries) {
		return
	}
	clear(t.entries[n:])
	t.entries = t.entries[:n]
	t.index = nil
	if n > indexThreshold {
		t.index = make(map[uint64]int32, 2*n)
		for j, e := range t.entries {
			t.index[uint64(e.org)<<16|uint64(e.country)] = int32(j)
		}
	}
}

func (t *threatState) epochAt(e int64, create bool) *epochState {
	i, found := slices.BinarySearchFunc(t.epochs, e, func(s *epochState, e int64) int {
		switch {
		case s.epoch < e:
			return -1
		case s.epoch > e:
			return 1
		}
		return 0
	})
	if found {
		return t.epochs[i]
	}
	if !create {
		return nil
	}
	s := &epochState{epoch: e}
	t.epochs = slices.Insert(t.epochs, i, s)
	return s
}

// Engine correlates sightings into alerts. It is safe for concurrent use.
type Engine struct {
	mu       sync.Mutex
	cfg      Config
	slot     int64 // slot length in nanoseconds
	g        int64 // slots per window (and window ends per epoch)
	ageSlots int64
	skew     int64 // MaxSkew in slots, rounded up
	threats  map[ThreatKey]*threatState
	orgs     map[string]uint32
	stats    Stats

	// scratch, reused across evaluations
	stamp    []uint32 // per org: last evaluation that counted it
	stampGen uint32
	perCC    [countryIndexes]int32
	touched  []uint16
}

// New returns an engine with the given configuration, after filling in
// defaults and validating it.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:     cfg,
		g:       int64(cfg.Slots),
		slot:    int64(cfg.Window) / int64(cfg.Slots),
		threats: make(map[ThreatKey]*threatState),
		orgs:    make(map[string]uint32),
	}
	e.ageSlots = ceilDiv(int64(cfg.MaxAge), e.slot)
	e.skew = ceilDiv(int64(cfg.MaxSkew), e.slot)
	return e, nil
}

// Config returns the engine's configuration, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func (e *Engine) slotOf(t time.Time) int64 { return floorDiv(t.UnixNano(), e.slot) }

func (e *Engine) slotStart(s int64) time.Time { return time.Unix(0, s*e.slot).UTC() }

// countryIndex maps an ISO 3166-1 alpha-2 code to 0…675.
func countryIndex(cc string) (uint16, bool) {
	if len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' {
		return 0, false
	}
	return uint16(cc[0]-'A')*26 + uint16(cc[1]-'A'), true
}

func countryCode(i int) string { return string([]byte{byte('A' + i/26), byte('A' + i%26)}) }

func (e *Engine) reject(s *Sighting, r Reason, format string, args ...any) error {
	e.stats.Rejected[r]++
	msg := fmt.Sprintf(format, args...)
	if s.ID != "" {
		msg = "sighting " + s.ID + ": " + msg
	}
	return &RejectError{Reason: r, SightingID: s.ID, Err: entente.Errorf(entente.EINVALID, "%s", msg)}
}

// Add records one sighting received at now and returns the alerts it
// created, escalated or updated, sorted by identifier. A refused sighting
// is counted in [Stats] and returned as a *RejectError; a sighting that adds
// nothing new (a duplicate) returns no alerts and no error.
func (e *Engine) Add(s Sighting, now time.Time) ([]Alert, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.add(&s, now)
}

func (e *Engine) add(s *Sighting, now time.Time) ([]Alert, error) {
	if s.Threat == "" {
		return nil, e.reject(s, ReasonUnknownObject, "the sighted object is not known to this node")
	}
	if s.Org == "" {
		return nil, e.reject(s, ReasonInvalid, "no reporting organisation (where_sighted_refs or created_by_ref)")
	}
	cc, ok := countryIndex(s.Country)
	if !ok {
		return nil, e.reject(s, ReasonInvalid, "country %q is not an ISO 3166-1 alpha-2 code", s.Country)
	}
	first, last := s.FirstSeen, s.LastSeen
	switch {
	case first.IsZero() && last.IsZero():
		return nil, e.reject(s, ReasonInvalid, "neither first_seen nor last_seen is set")
	case first.IsZero():
		first = last
	case last.IsZero():
		last = first
	}
	if last.Before(first) {
		return nil, e.reject(s, ReasonInvalid, "last_seen %s is before first_seen %s", fmtTime(last), fmtTime(first))
	}
	if e.cfg.KnownOrg != nil && !e.cfg.KnownOrg(s.Org) {
		return nil, e.reject(s, ReasonUnknownOrg, "organisation %s is not a known partner", s.Org)
	}
	if last.After(now.Add(e.cfg.MaxSkew)) {
		return nil, e.reject(s, ReasonFuture, "last_seen %s is more than %s after the node's clock (%s)", fmtTime(last), e.cfg.MaxSkew, fmtTime(now))
	}
	minTime := now.Add(-e.cfg.MaxAge)
	if last.Before(minTime) {
		return nil, e.reject(s, ReasonPast, "last_seen %s is more than %s before the node's clock (%s)", fmtTime(last), e.cfg.MaxAge, fmtTime(now))
	}
	if first.Before(minTime) {
		first = minTime
	}

	org, ok := e.orgs[s.Org]
	if !ok {
		org = uint32(len(e.orgs))
		e.orgs[s.Org] = org
		e.stamp = append(e.stamp, 0)
	}
	a, b := e.slotOf(first), e.slotOf(last)
	nowBase := e.slotOf(now) + e.skew - (ringSlots - 1)
	t := e.threats[s.Threat]
	if t == nil {
		t = &threatState{key: s.Threat, base: nowBase}
		e.threats[s.Threat] = t
	}
	if b >= t.base+ringSlots {
		t.shift(b - (ringSlots - 1))
	}
	if a < t.base {
		a = t.base
	}
	i := t.find(org, cc)
	if i < 0 {
		i = t.insert(org, cc)
	}
	want := rangeMask(a-t.base, b-t.base)
	newBits := want &^ t.entries[i].mask
	t.entries[i].mask |= want

	// Update the epochs whose span the sighting touches: an epoch's span is
	// the slots its windows cover, e·G−G+1 … e·G+G−1.
	var out []Alert
	firstEpoch := floorDiv(a+e.g-1, e.g) // smallest e with e·G+G−1 ≥ a
	lastEpoch := floorDiv(b+e.g-1, e.g)  // largest e with e·G−G+1 ≤ b
	changed := false
	for ep := firstEpoch; ep <= lastEpoch; ep++ {
		st := t.epochAt(ep, true)
		spanStart := e.slotStart(ep*e.g - e.g + 1)
		spanEnd := e.slotStart(ep*e.g + e.g).Add(-1)
		f, l := maxTime(first, spanStart), minTime2(last, spanEnd)
		touched := false
		if st.first.IsZero() || f.Before(st.first) {
			st.first, touched = f, true
		}
		if l.After(st.last) {
			st.last, touched = l, true
		}
		if s.ID != "" && addRef(st, s.ID) {
			touched = true
		}
		before := *st
		if newBits != 0 {
			e.evaluate(t, st)
		}
		if !touched && st.tier == before.tier && st.orgs == before.orgs && st.countries == before.countries {
			continue
		}
		changed = true
		if st.tier == 0 {
			continue
		}
		ch := ChangeUpdated
		switch {
		case before.tier == 0:
			ch = ChangeCreated
		case st.tier > before.tier:
			ch = ChangeEscalated
		}
		out = append(out, e.alert(t, st, ch))
	}
	if newBits == 0 && !changed {
		e.stats.Duplicates++
		return nil, nil
	}
	e.stats.Accepted++
	return out, nil
}

func addRef(st *epochState, id string) bool {
	i, found := slices.BinarySearch(st.refs, id)
	if found || i >= maxRefs {
		return false
	}
	st.refs = slices.Insert(st.refs, i, id)
	if len(st.refs) > maxRefs {
		st.refs = st.refs[:maxRefs]
	}
	return true
}

// rangeMask returns bits lo…hi (inclusive, clipped to 0…63).
func rangeMask(lo, hi int64) uint64 {
	if lo < 0 {
		lo = 0
	}
	if hi > ringSlots-1 {
		hi = ringSlots - 1
	}
	if hi < lo {
		return 0
	}
	n := hi - lo + 1
	if n == ringSlots {
		return ^uint64(0)
	}
	return ((uint64(1) << uint(n)) - 1) << uint(lo)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime2(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// counts is what one evaluation of a set of slots finds.
type counts struct {
	orgs        int
	countries   int
	maxInOneCC  int
	countrySet  [(countryIndexes + 63) / 64]uint64
	wantCountry bool
}

// count counts the distinct organisations and countries present in any
// slot of mask (relative to t.base).
func (e *Engine) count(t *threatState, mask uint64, c *counts) {
	e.stampGen++
	if e.stampGen == 0 { // wrapped: clear stamps
		clear(e.stamp)
		e.stampGen = 1
	}
	gen := e.stampGen
	*c = counts{wantCountry: c.wantCountry}
	for _, en := range t.entries {
		if en.mask&mask == 0 {
			continue
		}
		if e.stamp[en.org] != gen {
			e.stamp[en.org] = gen
			c.orgs++
		}
		n := e.perCC[en.country]
		if n == 0 {
			e.touched = append(e.touched, en.country)
			c.countries++
			if c.wantCountry {
				c.countrySet[en.country/64] |= 1 << (en.country % 64)
			}
		}
		n++
		e.perCC[en.country] = n
		if int(n) > c.maxInOneCC {
			c.maxInOneCC = int(n)
		}
	}
	for _, cc := range e.touched {
		e.perCC[cc] = 0
	}
	e.touched = e.touched[:0]
}

// evaluate recomputes the counts and tier of one epoch from the presence
// masks, merging them into what is already known (the state only grows).
func (e *Engine) evaluate(t *threatState, st *epochState) {
	spanLo := st.epoch*e.g - e.g + 1 - t.base
	spanHi := st.epoch*e.g + e.g - 1 - t.base
	c := counts{wantCountry: true}
	e.count(t, rangeMask(spanLo, spanHi), &c)
	if c.orgs > st.orgs {
		st.orgs = c.orgs
	}
	for i := range st.countries {
		st.countries[i] |= c.countrySet[i]
	}
	// The span's counts bound every window's: if even they meet no tier
	// above the current one, no window does.
	if e.tierOf(c.maxInOneCC, c.countries) <= st.tier {
		return
	}
	w := counts{}
	for end := st.epoch * e.g; end < st.epoch*e.g+e.g; end++ {
		e.count(t, rangeMask(end-e.g+1-t.base, end-t.base), &w)
		if k := e.tierOf(w.maxInOneCC, w.countries); k > st.tier {
			st.tier = k
			if k == len(e.cfg.Tiers) {
				return
			}
		}
	}
}

// tierOf returns the highest tier (1-based; 0 for none) met by a window
// with the given counts.
func (e *Engine) tierOf(maxInOneCC, countries int) int {
	for k := len(e.cfg.Tiers) - 1; k >= 0; k-- {
		if e.cfg.Tiers[k].met(maxInOneCC, countries, e.cfg.FederationCountries) {
			return k + 1
		}
	}
	return 0
}

// alertNamespace is the UUIDv5 namespace of alert identifiers.
var alertNamespace = uuid.MustParse("6f0b7a2e-4d1c-5e8a-9b3f-2c7d1e0a5b94")

// AlertID returns the identifier of the alert of threat in the epoch that
// starts at epochStart: the same on every node.
func AlertID(threat ThreatKey, epochStart time.Time) string {
	name := string(threat) + "|" + fmtTime(epochStart)
	return AlertType + "--" + uuid.NewSHA1(alertNamespace, []byte(name)).String()
}

func (e *Engine) alert(t *threatState, st *epochState, ch Change) Alert {
	start := e.slotStart(st.epoch * e.g)
	a := Alert{
		ID:            AlertID(t.key, start),
		Threat:        t.key,
		Tier:          e.cfg.Tiers[st.tier-1].Name,
		TierRank:      st.tier,
		Change:        ch,
		Epoch:         start,
		Window:        e.cfg.Window,
		Organisations: st.orgs,
		FirstSeen:     st.first,
		LastSeen:      st.last,
		SightingRefs:  slices.Clone(st.refs),
	}
	for i, w := range st.countries {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			w &^= 1 << uint(b)
			a.Countries = append(a.Countries, countryCode(i*64+b))
		}
	}
	return a
}

// Alerts returns every alert the engine currently holds, sorted by
// identifier.
func (e *Engine) Alerts() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Alert
	for _, t := range e.threats {
		for _, st := range t.epochs {
			if st.tier > 0 {
				out = append(out, e.alert(t, st, ChangeNone))
			}
		}
	}
	slices.SortFunc(out, func(a, b Alert) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Sweep forgets what no sighting acceptable at now can change any more:
// presence older than the horizon, epochs whose span ends before it, and
// threats left with neither. It returns how many threats it forgot. Call
// it periodically (for example once a minute); memory then stays
// proportional to the active threats.
func (e *Engine) Sweep(now time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	minSlot := e.slotOf(now.Add(-e.cfg.MaxAge))
	// Presence is needed back to the start of the oldest window an
	// acceptable sighting can still fall into.
	keepFrom := minSlot - 2*e.g
	forgot := 0
	for k, t := range e.threats {
		t.shift(keepFrom)
		t.compact()
		n := 0
		for _, st := range t.epochs {
			if st.epoch*e.g+e.g-1 >= minSlot {
				t.epochs[n] = st
				n++
			}
		}
		clear(t.epochs[n:])
		t.epochs = t.epochs[:n]
		if len(t.entries) == 0 && len(t.epochs) == 0 {
			delete(e.threats, k)
			forgot++
		}
	}
	return forgot
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Threats = len(e.threats)
	return s
}

func fmtTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
