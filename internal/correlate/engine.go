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
	// Source is the origin node that vouches for the sighting: the
	// partner it was received from (known from provenance), or the node
	// itself for its own sensors. "" means the organisation vouches for
	// itself. Tiers count independent sources (see [Tier.MinSources]), so
	// pseudonyms a source presents never add sources.
	Source string
	// Object is the sighted object's id (an indicator, a malware…), so
	// that a retraction of it removes what it contributed.
	Object string
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
	ReasonQuota                       // the source's quota of sightings per window is spent
	ReasonQuarantined                 // the source is quarantined
	numReasons
)

var reasonNames = [numReasons]string{"invalid", "unknown_object", "unknown_org", "future", "past", "quota", "quarantined"}

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

// countryIndexes is the number of two-letter codes A–Z × A–Z.
const countryIndexes = 26 * 26

type countrySet [(countryIndexes + 63) / 64]uint64

func (c *countrySet) count() int {
	n := 0
	for _, w := range c {
		n += bits.OnesCount64(w)
	}
	return n
}

// entry is the presence, for one threat, of one organisation in one
// country as one source vouches for it through one sighted object.
type entry struct {
	org, source, object uint32
	// unit is the entry's unit of presence in its country (an index into
	// threatState.units): the organisation when the source is at home in
	// the country, else the source itself (one unit per foreign source).
	unit    uint32
	country uint16
	mask    uint64 // bit i: present in slot base+i
}

// entryKey identifies an entry.
type entryKey struct {
	org, source, object uint32
	country             uint16
}

func (en *entry) key() entryKey {
	return entryKey{org: en.org, source: en.source, object: en.object, country: en.country}
}

// alertState is an alert as last reported.
type alertState struct {
	epoch     int64
	tier      int // i+1: Config.Tiers[i]
	orgs      int
	countries countrySet
	first     int64 // unix nanoseconds
	last      int64
	lastEdge  int64 // slot where its run started when last computed
	id        string
	// sourceCount and sourceWeight are the distinct sources in the span,
	// and their weighted count.
	sourceCount  int
	sourceWeight float64
	modified     int64 // the latest version reported (unix ns)
	bumped       bool  // a version was made later than its content says
}

// threatState is the presence of one threat's reporters. Slot arrays are
// a ring aligned with the masks: index i is slot base+i.
type threatState struct {
	key     ThreatKey
	base    int64 // absolute slot of bit 0 of every mask
	entries []entry
	index   map[entryKey]int32 // → entries index; nil while small
	// units are the units of presence of the entries (see entry.unit),
	// computed with the sources' homes of generation unitsGen.
	units     []unitInfo
	unitIdx   map[uint64]uint32
	unitStamp []uint32
	unitsGen  uint32
	first     [ringSlots]int64 // earliest sighting time within each slot (0: none)
	last      [ringSlots]int64 // latest sighting time within each slot
	tiers     [ringSlots]uint8 // tier met by the window ending at each slot
	// carried is set when the run of tier-meeting windows at base began
	// before it, at slot carryEdge.
	carried   bool
	carryEdge int64
	reported  []*alertState // sorted by epoch
}

// unitInfo is one unit of presence of a threat.
type unitInfo struct {
	country uint16
}

const indexThreshold = 12

func (t *threatState) find(k entryKey) int {
	if t.index != nil {
		if i, ok := t.index[k]; ok {
			return int(i)
		}
		return -1
	}
	for i := range t.entries {
		if t.entries[i].key() == k {
			return i
		}
	}
	return -1
}

func (t *threatState) insert(k entryKey) int {
	t.entries = append(t.entries, entry{org: k.org, source: k.source, object: k.object, country: k.country})
	i := len(t.entries) - 1
	if t.index == nil && len(t.entries) > indexThreshold {
		t.reindex()
	} else if t.index != nil {
		t.index[k] = int32(i)
	}
	return i
}

func (t *threatState) reindex() {
	t.index = nil
	if len(t.entries) <= indexThreshold {
		return
	}
	t.index = make(map[entryKey]int32, 2*len(t.entries))
	for j := range t.entries {
		t.index[t.entries[j].key()] = int32(j)
	}
}

// shift moves the ring so that its first slot is base, dropping older
// presence and remembering where a run of alerting windows that crosses
// the new base began.
func (t *threatState) shift(base int64) {
	d := base - t.base
	if d <= 0 {
		return
	}
	if d < ringSlots && t.tiers[d] > 0 {
		i := d
		for i > 0 && t.tiers[i-1] > 0 {
			i--
		}
		if i > 0 || !t.carried {
			t.carryEdge = t.base + i
		}
		t.carried = true
	} else {
		t.carried = false
	}
	for i := range t.entries {
		if d >= ringSlots {
			t.entries[i].mask = 0
		} else {
			t.entries[i].mask >>= uint(d)
		}
	}
	if d >= ringSlots {
		t.first, t.last, t.tiers = [ringSlots]int64{}, [ringSlots]int64{}, [ringSlots]uint8{}
	} else {
		n := copy(t.first[:], t.first[d:])
		clear(t.first[n:])
		copy(t.last[:], t.last[d:])
		clear(t.last[n:])
		copy(t.tiers[:], t.tiers[d:])
		clear(t.tiers[n:])
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
	t.reindex()
}

// run is a maximal sequence of consecutive window ends (ring indexes
// lo…hi) whose windows meet a tier; edge is the absolute slot where it
// began.
type run struct {
	lo, hi int64
	edge   int64
}

// runs lists the runs of alerting windows in the ring, oldest first.
func (t *threatState) runs(buf []run) []run {
	buf = buf[:0]
	for i := int64(0); i < ringSlots; i++ {
		if t.tiers[i] == 0 {
			continue
		}
		r := run{lo: i, edge: t.base + i}
		if i == 0 && t.carried {
			r.edge = t.carryEdge
		}
		for i+1 < ringSlots && t.tiers[i+1] > 0 {
			i++
		}
		r.hi = i
		buf = append(buf, r)
	}
	return buf
}

func (t *threatState) reportedAt(epoch int64) (int, bool) {
	return slices.BinarySearchFunc(t.reported, epoch, func(s *alertState, e int64) int {
		switch {
		case s.epoch < e:
			return -1
		case s.epoch > e:
			return 1
		}
		return 0
	})
}

// Engine correlates sightings into alerts. It is safe for concurrent use.
type Engine struct {
	mu       sync.Mutex
	cfg      Config
	slot     int64 // slot length in nanoseconds
	g        int64 // slots per window (and per epoch)
	ageSlots int64
	skew     int64 // MaxSkew in slots, rounded up
	threats  map[ThreatKey]*threatState
	// alertOf is the threat of each alert id the engine gave (see
	// alertSpan); entries of alerts no longer held are dropped by Sweep.
	alertOf  map[string]ThreatKey
	orgs     map[string]uint32
	orgNames []string
	stats    Stats
	// Sources and sighted objects, by index.
	srcs     map[string]uint32
	sources  []*sourceState
	objs     map[string]uint32
	objNames []string
	// homeGen changes whenever a source's home changes: the threats'
	// units are recomputed when they are next counted.
	homeGen uint32
	// withdrawn holds the last version (modified, in nanoseconds) of each
	// alert withdrawn, so that new evidence raises it again as a later
	// version.
	withdrawn map[string]int64

	// scratch, reused across evaluations
	stamp    []uint32 // per org: the evaluation that last counted it
	srcStamp []uint32 // per source: the evaluation that last counted it
	stampGen uint32
	perCC    [countryIndexes]int32
	touched  []uint16
	runBuf   []run
}

// noHome is the home of a source that is home nowhere.
const noHome = countryIndexes

// sourceState is what the engine knows of one source.
type sourceState struct {
	name   string
	info   SourceInfo
	set    bool // info was set with SetSource (else the defaults apply)
	home   uint16
	weight float64
	quota  int
	// The sightings the source added per receive slot, a ring aligned
	// like the threats' (qBase is the absolute slot of index 0).
	qBase int64
	q     [ringSlots]uint32
}

// New returns an engine with the given configuration, after filling in
// defaults and validating it.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:       cfg,
		g:         int64(cfg.Slots),
		slot:      int64(cfg.Window) / int64(cfg.Slots),
		threats:   make(map[ThreatKey]*threatState),
		alertOf:   make(map[string]ThreatKey),
		orgs:      make(map[string]uint32),
		srcs:      make(map[string]uint32),
		objs:      make(map[string]uint32),
		homeGen:   1,
		withdrawn: make(map[string]int64),
	}
	e.ageSlots = ceilDiv(int64(cfg.MaxAge), e.slot)
	e.skew = ceilDiv(int64(cfg.MaxSkew), e.slot)
	return e, nil
}

// Config returns the engine's configuration, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// SetSource tells the engine what it knows of a source (see
// [SourceInfo]); it applies to the sightings added from then on, and to
// the counts of every window evaluated from then on. A quarantined
// source's presence is not removed: call [Engine.Remove] for that.
func (e *Engine) SetSource(id string, info SourceInfo) {
	e.mu.Lock()
	defer e.mu.Unlock()
	src := e.sources[e.sourceIndex(id)]
	src.info, src.set = info, true
	e.applySource(src)
}

// sourceIndex returns the index of source id, adding it with the
// defaults when new.
func (e *Engine) sourceIndex(id string) uint32 {
	if i, ok := e.srcs[id]; ok {
		return i
	}
	i := uint32(len(e.sources))
	src := &sourceState{name: id}
	e.sources = append(e.sources, src)
	e.srcs[id] = i
	e.srcStamp = append(e.srcStamp, 0)
	e.applySource(src)
	return i
}

// applySource derives a source's home, weight and quota from its info
// (or the defaults).
func (e *Engine) applySource(src *sourceState) {
	home := uint16(noHome)
	if cc, ok := countryIndex(src.info.Home); ok {
		home = cc
	}
	if home != src.home {
		src.home = home
		e.homeGen++
	}
	src.weight, src.quota = e.cfg.DefaultWeight, e.cfg.DefaultQuota
	if src.set {
		src.weight, src.quota = src.info.Weight, src.info.Quota
	}
	if src.weight < 0 {
		src.weight = 0
	}
}

func (e *Engine) objectIndex(id string) uint32 {
	if i, ok := e.objs[id]; ok {
		return i
	}
	i := uint32(len(e.objNames))
	e.objNames = append(e.objNames, id)
	e.objs[id] = i
	return i
}

// ensureUnits recomputes the units of t's entries when sources' homes
// changed since they were computed (or entries were removed).
func (e *Engine) ensureUnits(t *threatState) {
	if t.unitsGen == e.homeGen {
		return
	}
	if t.unitIdx == nil {
		t.unitIdx = map[uint64]uint32{}
	} else {
		clear(t.unitIdx)
	}
	t.units = t.units[:0]
	t.unitStamp = t.unitStamp[:0]
	t.unitsGen = e.homeGen
	for i := range t.entries {
		e.assignUnit(t, i)
	}
	clear(t.unitStamp)
}

// assignUnit gives entry i of t its unit of presence: the organisation
// when its source is at home in the entry's country, else the source
// itself, once per country.
func (e *Engine) assignUnit(t *threatState, i int) {
	if t.unitsGen != e.homeGen {
		e.ensureUnits(t) // assigns every entry's, this one's included
		return
	}
	en := &t.entries[i]
	var k uint64
	if e.sources[en.source].home == en.country {
		k = uint64(en.country)<<33 | uint64(en.org) // the organisation, at home
	} else {
		k = uint64(en.country)<<33 | 1<<32 | uint64(en.source) // the foreign source, once
	}
	if t.unitIdx == nil {
		t.unitIdx = map[uint64]uint32{}
	}
	u, ok := t.unitIdx[k]
	if !ok {
		u = uint32(len(t.units))
		t.units = append(t.units, unitInfo{country: en.country})
		t.unitStamp = append(t.unitStamp, 0)
		t.unitIdx[k] = u
	}
	en.unit = u
}

// quotaSpent reports whether src added its quota of sightings within
// the window ending at slot now, and otherwise counts one more.
func (e *Engine) quotaSpent(src *sourceState, now int64) bool {
	if src.quota <= 0 {
		return false
	}
	if d := now - (src.qBase + ringSlots - 1); d > 0 {
		if d >= ringSlots {
			src.q = [ringSlots]uint32{}
		} else {
			n := copy(src.q[:], src.q[d:])
			clear(src.q[n:])
		}
		src.qBase += d
	}
	i := now - src.qBase
	if i < 0 {
		i = 0
	}
	var sum uint32
	for j := max(0, i-e.g+1); j <= i; j++ {
		sum += src.q[j]
	}
	if int(sum) >= src.quota {
		return true
	}
	src.q[i]++
	return false
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func (e *Engine) slotOf(t time.Time) int64 { return floorDiv(t.UnixNano(), e.slot) }

func (e *Engine) epochStart(epoch int64) time.Time { return time.Unix(0, epoch*e.g*e.slot).UTC() }

// countryIndex maps an ISO 3166-1 alpha-2 code to 0…675.
func countryIndex(cc string) (uint16, bool) {
	if len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' {
		return 0, false
	}
	return uint16(cc[0]-'A')*26 + uint16(cc[1]-'A'), true
}

// countryCodes holds every two-letter code, indexed by countryIndex.
var countryCodes = func() (t [countryIndexes]string) {
	for i := range t {
		t[i] = string([]byte{byte('A' + i/26), byte('A' + i%26)})
	}
	return t
}()

func (e *Engine) reject(s *Sighting, r Reason, format string, args ...any) error {
	e.stats.Rejected[r]++
	msg := fmt.Sprintf(format, args...)
	if s.ID != "" {
		msg = "sighting " + s.ID + ": " + msg
	}
	return &RejectError{Reason: r, SightingID: s.ID, Err: entente.Errorf(entente.EINVALID, "%s", msg)}
}

// Add records one sighting received at now and returns the alerts it
// created, escalated, updated or superseded, in the order of their epochs.
// A refused sighting is counted in [Stats] and returned as a
// *RejectError; a sighting that adds nothing new (a duplicate) returns no
// alerts and no error.
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
	srcName := s.Source
	if srcName == "" {
		srcName = s.Org // an organisation that vouches for itself
	}
	si := e.sourceIndex(srcName)
	src := e.sources[si]
	if src.set && src.info.Quarantined {
		return nil, e.reject(s, ReasonQuarantined, "source %s is quarantined", srcName)
	}
	if last.After(now.Add(e.cfg.MaxSkew)) {
		return nil, e.reject(s, ReasonFuture, "last_seen %s is more than %s after the node's clock (%s)", fmtTime(last), e.cfg.MaxSkew, fmtTime(now))
	}
	minTime := now.Add(-e.cfg.MaxAge)
	if last.Before(minTime) || last.Unix() < 0 {
		return nil, e.reject(s, ReasonPast, "last_seen %s is more than %s before the node's clock (%s)", fmtTime(last), e.cfg.MaxAge, fmtTime(now))
	}
	if first.Before(minTime) {
		first = minTime
	}

	a, b := e.slotOf(first), e.slotOf(last)
	t, known := e.threats[s.Threat]
	if !known {
		t = &threatState{key: s.Threat, base: e.slotOf(now) + e.skew + e.g - ringSlots}
	}
	// The ring must hold every window the sighting falls in.
	if top := b + e.g - 1; top >= t.base+ringSlots {
		t.shift(top - (ringSlots - 1))
	}
	if b < t.base { // the node's clock went back by more than the horizon
		return nil, e.reject(s, ReasonPast, "last_seen %s is older than what this node still holds", fmtTime(last))
	}
	if a < t.base {
		a = t.base
	}
	if e.quotaSpent(src, e.slotOf(now)) {
		return nil, e.reject(s, ReasonQuota, "source %s added its quota of %d sightings in the last %s", srcName, src.quota, e.cfg.Window)
	}
	if !known {
		e.threats[s.Threat] = t
	}
	org, ok := e.orgs[s.Org]
	if !ok {
		org = uint32(len(e.orgs))
		e.orgs[s.Org] = org
		e.orgNames = append(e.orgNames, s.Org)
		e.stamp = append(e.stamp, 0)
	}
	k := entryKey{org: org, source: si, object: e.objectIndex(s.Object), country: cc}
	i := t.find(k)
	if i < 0 {
		i = t.insert(k)
		e.assignUnit(t, i)
	}
	lo, hi := a-t.base, b-t.base
	want := rangeMask(lo, hi)
	newBits := want &^ t.entries[i].mask
	t.entries[i].mask |= want

	timesChanged := false
	fns, lns := first.UnixNano(), last.UnixNano()
	for j := lo; j <= hi; j++ {
		start := (t.base + j) * e.slot
		f, l := max(fns, start), min(lns, start+e.slot-1)
		if t.first[j] == 0 || f < t.first[j] {
			t.first[j], timesChanged = f, true
		}
		if l > t.last[j] {
			t.last[j], timesChanged = l, true
		}
	}
	if newBits == 0 && !timesChanged {
		e.stats.Duplicates++
		return nil, nil
	}
	e.stats.Accepted++
	if newBits != 0 {
		e.evaluate(t, int64(bits.TrailingZeros64(newBits)), int64(63-bits.LeadingZeros64(newBits)))
	}
	return e.report(t, lo, min(hi+e.g-1, ringSlots-1), newBits != 0), nil
}

// evaluate recomputes the tiers of the windows ending at ring indexes
// lo … hi+G−1, whose presence changed in slots lo … hi.
func (e *Engine) evaluate(t *threatState, lo, hi int64) {
	wHi := min(hi+e.g-1, ringSlots-1)
	// The union of those windows bounds each of them: if it meets no tier
	// above what a window already has, that window cannot rise.
	var u counts
	e.count(t, rangeMask(lo-e.g+1, wHi), &u)
	top := uint8(e.tierOf(&u))
	if top == 0 {
		return
	}
	var w counts
	for end := lo; end <= wHi; end++ {
		if t.tiers[end] >= top {
			continue
		}
		e.count(t, rangeMask(end-e.g+1, end), &w)
		if k := uint8(e.tierOf(&w)); k > t.tiers[end] {
			t.tiers[end] = k
		}
	}
}

// report recomputes the alerts whose runs include a window end in
// lo … hi and returns those that changed; when runs may have merged
// (merged is true) it also supersedes alerts whose run now starts in an
// earlier epoch.
func (e *Engine) report(t *threatState, lo, hi int64, merged bool) []Alert {
	e.runBuf = t.runs(e.runBuf)
	runs := e.runBuf
	var out []Alert
	var done []int64
	for _, r := range runs {
		if r.hi < lo || r.lo > hi {
			continue
		}
		ep := floorDiv(r.edge, e.g)
		if slices.Contains(done, ep) {
			continue
		}
		done = append(done, ep)
		if a, ok := e.recompute(t, runs, ep); ok {
			out = append(out, a)
		}
	}
	if !merged {
		return out
	}
	for k := 0; k < len(t.reported); k++ {
		st := t.reported[k]
		if st.lastEdge < t.base || st.lastEdge > t.base+ringSlots-1 {
			continue
		}
		live, covered := false, false
		var by int64
		for _, r := range runs {
			if floorDiv(r.edge, e.g) == st.epoch {
				live = true
				break
			}
			if r.lo <= st.lastEdge-t.base && st.lastEdge-t.base <= r.hi {
				by, covered = floorDiv(r.edge, e.g), true
			}
		}
		if live || !covered {
			continue
		}
		a := e.alert(t, st, ChangeSuperseded)
		a.SupersededBy = AlertID(t.key, e.epochStart(by))
		out = append(out, a)
		t.reported = slices.Delete(t.reported, k, k+1)
		k--
	}
	return out
}

// measure computes, from the runs that start in epoch ep, the highest
// tier met, the counts over their span, the earliest and latest sighting
// times, where the first run began (-1 when no run starts in ep) and the
// span itself.
func (e *Engine) measure(t *threatState, runs []run, ep int64) (tier uint8, c counts, f, l, edge int64, span uint64) {
	edge = -1
	for _, r := range runs {
		if floorDiv(r.edge, e.g) != ep {
			continue
		}
		if edge < 0 || r.edge < edge {
			edge = r.edge
		}
		for i := r.lo; i <= r.hi; i++ {
			tier = max(tier, t.tiers[i])
		}
		span |= rangeMask(r.lo-e.g+1, r.hi)
	}
	c = counts{wantCountry: true}
	e.count(t, span, &c)
	for m := span; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		if t.first[i] != 0 && (f == 0 || t.first[i] < f) {
			f = t.first[i]
		}
		l = max(l, t.last[i])
	}
	return tier, c, f, l, edge, span
}

// recompute computes the alert of epoch ep from the runs that start in it,
// merges it into what was reported, and returns it if it changed.
func (e *Engine) recompute(t *threatState, runs []run, ep int64) (Alert, bool) {
	tier, c, f, l, edge, span := e.measure(t, runs, ep)
	k, found := t.reportedAt(ep)
	var st *alertState
	if found {
		st = t.reported[k]
	} else {
		st = &alertState{epoch: ep}
		t.reported = slices.Insert(t.reported, k, st)
	}
	before := *st
	st.lastEdge = edge
	st.tier = max(st.tier, int(tier))
	st.orgs = max(st.orgs, c.orgs)
	for i := range st.countries {
		st.countries[i] |= c.countrySet[i]
	}
	if f != 0 && (st.first == 0 || f < st.first) {
		st.first = f
	}
	st.last = max(st.last, l)
	_ = span
	sourcesChanged := c.nsources > st.sourceCount || c.sources > st.sourceWeight
	st.sourceCount = max(st.sourceCount, c.nsources)
	st.sourceWeight = max(st.sourceWeight, c.sources)
	ch := ChangeUpdated
	switch {
	case !found:
		ch = ChangeCreated
	case st.tier > before.tier:
		ch = ChangeEscalated
	case st.orgs == before.orgs && st.countries == before.countries && st.first == before.first && st.last == before.last && !sourcesChanged:
		return Alert{}, false
	}
	return e.alert(t, st, ch), true
}

// Remove drops the presence of every sighting that match selects — by
// its source, organisation and sighted object — and reassesses the
// threats it leaves changed: alerts no longer supported are withdrawn,
// those supported less are lowered or updated, with the evidence that
// remains. It returns the alerts that changed.
func (e *Engine) Remove(match func(source, org, object string) bool) []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Alert
	keys := make([]ThreatKey, 0, len(e.threats))
	for k := range e.threats {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		t := e.threats[k]
		n := 0
		for _, en := range t.entries {
			if match(e.sources[en.source].name, e.orgNames[en.org], e.objNames[en.object]) {
				continue
			}
			t.entries[n] = en
			n++
		}
		if n == len(t.entries) {
			continue
		}
		clear(t.entries[n:])
		t.entries = t.entries[:n]
		t.reindex()
		t.unitsGen = 0 // units are recomputed from what is left
		out = append(out, e.reassess(t)...)
	}
	return out
}

// Reassess recomputes every threat's alerts from the presence the engine
// holds, after the sources' weights or homes changed, and returns those
// that changed (raised, escalated, lowered, withdrawn or updated).
func (e *Engine) Reassess() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	keys := make([]ThreatKey, 0, len(e.threats))
	for k := range e.threats {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []Alert
	for _, k := range keys {
		out = append(out, e.reassess(e.threats[k])...)
	}
	return out
}

// reassess recomputes the tiers of every window of t from scratch and
// reports every alert whose evidence changed, exactly rather than only
// upwards.
func (e *Engine) reassess(t *threatState) []Alert {
	var w counts
	for end := int64(0); end < ringSlots; end++ {
		e.count(t, rangeMask(end-e.g+1, end), &w)
		t.tiers[end] = uint8(e.tierOf(&w))
	}
	e.runBuf = t.runs(e.runBuf)
	runs := e.runBuf
	var out []Alert
	for k := 0; k < len(t.reported); k++ {
		st := t.reported[k]
		tier, c, f, l, edge, span := e.measure(t, runs, st.epoch)
		if edge < 0 {
			// No run starts in its epoch any more: nothing supports it.
			a := e.alert(t, st, ChangeWithdrawn)
			a.Withdrawn = true
			e.withdrawn[st.id] = st.modified
			out = append(out, a)
			t.reported = slices.Delete(t.reported, k, k+1)
			k--
			continue
		}
		before := *st
		_ = span
		st.lastEdge, st.tier, st.orgs, st.countries, st.first, st.last = edge, int(tier), c.orgs, c.countrySet, f, l
		st.sourceCount, st.sourceWeight = c.nsources, c.sources
		switch {
		case st.tier < before.tier:
			out = append(out, e.alert(t, st, ChangeLowered))
		case st.tier > before.tier:
			out = append(out, e.alert(t, st, ChangeEscalated))
		case st.orgs != before.orgs || st.countries != before.countries || st.first != before.first || st.last != before.last ||
			st.sourceCount != before.sourceCount || st.sourceWeight != before.sourceWeight:
			out = append(out, e.alert(t, st, ChangeUpdated))
		}
	}
	var done []int64
	for _, r := range runs {
		ep := floorDiv(r.edge, e.g)
		if slices.Contains(done, ep) {
			continue
		}
		done = append(done, ep)
		if _, found := t.reportedAt(ep); found {
			continue
		}
		if a, ok := e.recompute(t, runs, ep); ok {
			out = append(out, a)
		}
	}
	return out
}

// rangeMask returns bits lo…hi (inclusive, clipped to 0…63).
func rangeMask(lo, hi int64) uint64 {
	lo = max(lo, 0)
	hi = min(hi, ringSlots-1)
	if hi < lo {
		return 0
	}
	n := hi - lo + 1
	if n == ringSlots {
		return ^uint64(0)
	}
	return ((uint64(1) << uint(n)) - 1) << uint(lo)
}

// counts is what one evaluation of a set of slots finds.
type counts struct {
	orgs      int
	countries int
	// maxInOneCC is the most units of presence (see entry.unit) in one
	// country.
	maxInOneCC int
	// sources is the weighted count of the distinct sources present,
	// nsources their number.
	sources     float64
	nsources    int
	countrySet  countrySet
	wantCountry bool
}

// count counts the distinct organisations, sources, countries and units
// of presence in any slot of mask (ring indexes).
func (e *Engine) count(t *threatState, mask uint64, c *counts) {
	e.ensureUnits(t)
	e.stampGen++
	if e.stampGen == 0 { // wrapped: clear every stamp
		clear(e.stamp)
		clear(e.srcStamp)
		e.homeGen++ // the threats' unit stamps are cleared when next counted
		e.ensureUnits(t)
		e.stampGen = 1
	}
	gen := e.stampGen
	*c = counts{wantCountry: c.wantCountry}
	for i := range t.entries {
		en := &t.entries[i]
		if en.mask&mask == 0 {
			continue
		}
		if e.stamp[en.org] != gen {
			e.stamp[en.org] = gen
			c.orgs++
		}
		if e.srcStamp[en.source] != gen {
			e.srcStamp[en.source] = gen
			c.sources += e.sources[en.source].weight
			c.nsources++
		}
		if t.unitStamp[en.unit] == gen {
			continue
		}
		t.unitStamp[en.unit] = gen
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
		c.maxInOneCC = max(c.maxInOneCC, int(n))
	}
	for _, cc := range e.touched {
		e.perCC[cc] = 0
	}
	e.touched = e.touched[:0]
}

// evidence lists, per source present in any slot of mask, the distinct
// organisations and the countries it vouches for, sorted by source. It
// is computed on demand (see [Engine.Evidence]), not on every sighting.
func (e *Engine) evidence(t *threatState, mask uint64) []SourceEvidence {
	type acc struct {
		orgs      map[uint32]bool
		countries countrySet
	}
	by := map[uint32]*acc{}
	for i := range t.entries {
		en := &t.entries[i]
		if en.mask&mask == 0 {
			continue
		}
		a := by[en.source]
		if a == nil {
			a = &acc{orgs: map[uint32]bool{}}
			by[en.source] = a
		}
		a.orgs[en.org] = true
		a.countries[en.country/64] |= 1 << (en.country % 64)
	}
	out := make([]SourceEvidence, 0, len(by))
	for src, a := range by {
		s := e.sources[src]
		out = append(out, SourceEvidence{Source: s.name, Weight: s.weight, Organisations: len(a.orgs), Countries: countriesOf(a.countries)})
	}
	slices.SortFunc(out, func(a, b SourceEvidence) int { return strings.Compare(a.Source, b.Source) })
	return out
}

// Evidence returns, for the alert with the given id that the engine
// holds, what each independent source vouched for within its span, as
// the engine holds it now; nil for an alert it does not hold.
func (e *Engine) Evidence(alertID string) []SourceEvidence {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, span := e.alertSpan(alertID)
	if t == nil {
		return nil
	}
	return e.evidence(t, span)
}

// alertSpan returns the threat of the alert with the given id that the
// engine holds, and the mask of the sightings within the alert's span
// (nil for an alert it does not hold). The caller holds e.mu.
func (e *Engine) alertSpan(alertID string) (*threatState, uint64) {
	t := e.threats[e.alertOf[alertID]]
	if t == nil {
		return nil, 0
	}
	for _, st := range t.reported {
		if st.id == alertID {
			e.runBuf = t.runs(e.runBuf)
			_, _, _, _, _, span := e.measure(t, e.runBuf, st.epoch)
			return t, span
		}
	}
	return nil, 0
}

// Sighted returns the objects (indicators…) whose sightings support the
// alert with the given id, within its span, sorted; nil for an alert the
// engine does not hold.
func (e *Engine) Sighted(alertID string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, span := e.alertSpan(alertID)
	if t == nil {
		return nil
	}
	seen := map[uint32]bool{}
	var out []string
	for i := range t.entries {
		en := &t.entries[i]
		if en.mask&span == 0 || seen[en.object] {
			continue
		}
		seen[en.object] = true
		if name := e.objNames[en.object]; name != "" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// tierOf returns the highest tier (1-based; 0 for none) met by a window
// with the given counts.
func (e *Engine) tierOf(c *counts) int {
	for k := len(e.cfg.Tiers) - 1; k >= 0; k-- {
		if e.cfg.Tiers[k].met(c.maxInOneCC, c.countries, e.cfg.FederationCountries, c.sources) {
			return k + 1
		}
	}
	return 0
}

// alertNamespace is the UUIDv5 namespace of alert identifiers.
var alertNamespace = uuid.MustParse("6f0b7a2e-4d1c-5e8a-9b3f-2c7d1e0a5b94")

// AlertID returns the identifier of the alert on threat whose run of
// alerting windows began in the epoch that starts at epochStart: the same
// on every node.
func AlertID(threat ThreatKey, epochStart time.Time) string {
	name := string(threat) + "|" + fmtTime(epochStart)
	return AlertType + "--" + uuid.NewSHA1(alertNamespace, []byte(name)).String()
}

func (e *Engine) alert(t *threatState, st *alertState, ch Change) Alert {
	start := e.epochStart(st.epoch)
	if st.id == "" {
		st.id = AlertID(t.key, start)
		e.alertOf[st.id] = t.key
		if m, ok := e.withdrawn[st.id]; ok {
			// Raised again after it was withdrawn: a later version.
			st.modified, st.bumped = m, true
			delete(e.withdrawn, st.id)
		}
	}
	a := Alert{
		ID:            st.id,
		Threat:        t.key,
		Tier:          e.cfg.Tiers[max(st.tier, 1)-1].Name,
		TierRank:      st.tier,
		Change:        ch,
		Epoch:         start,
		Window:        e.cfg.Window,
		Organisations: st.orgs,
		FirstSeen:     time.Unix(0, st.first).UTC(),
		LastSeen:      time.Unix(0, st.last).UTC(),
	}
	a.Countries = countriesOf(st.countries)
	a.SourceCount, a.SourceWeight = st.sourceCount, st.sourceWeight
	if ch == ChangeWithdrawn {
		a.Withdrawn = true
	}
	// The version derives from the content (see Alert.Modified), which
	// only grows as sightings arrive, so that nodes holding the same
	// sightings hold the same version whatever their order. A change that
	// lowers or withdraws the alert is a later version all the same, and
	// so is every change after it.
	v := a.Modified()
	switch {
	case ch == ChangeLowered || ch == ChangeWithdrawn || st.bumped && ch != ChangeNone:
		if v.UnixNano() <= st.modified {
			v = time.Unix(0, st.modified).UTC().Add(time.Millisecond)
		}
		st.bumped = true
	case v.UnixNano() < st.modified:
		v = time.Unix(0, st.modified).UTC()
	}
	st.modified = max(st.modified, v.UnixNano())
	a.Version = v
	return a
}

// countriesOf lists the codes of a country set, sorted.
func countriesOf(set countrySet) []string {
	out := make([]string, 0, set.count())
	for i, w := range set {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			w &^= 1 << uint(b)
			out = append(out, countryCodes[i*64+b])
		}
	}
	return out
}

// Alerts returns every alert the engine currently holds (as last
// reported by [Engine.Add]), sorted by identifier.
func (e *Engine) Alerts() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Alert
	for _, t := range e.threats {
		for _, st := range t.reported {
			out = append(out, e.alert(t, st, ChangeNone))
		}
	}
	slices.SortFunc(out, func(a, b Alert) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Sweep forgets what no sighting acceptable at now can change any more:
// presence older than the horizon, alerts whose run of windows has left
// it, and threats left with nothing. It returns how many threats it
// forgot. Call it periodically (for example once a minute); memory then
// stays proportional to the active threats.
func (e *Engine) Sweep(now time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	// Presence is needed back to the start of the oldest window an
	// acceptable sighting can still fall into, and one window more.
	keepFrom := e.slotOf(now.Add(-e.cfg.MaxAge)) - 2*e.g
	forgot := 0
	for k, t := range e.threats {
		t.shift(keepFrom)
		t.compact()
		e.runBuf = t.runs(e.runBuf)
		t.reported = slices.DeleteFunc(t.reported, func(st *alertState) bool {
			for _, r := range e.runBuf {
				if floorDiv(r.edge, e.g) == st.epoch {
					return false
				}
			}
			return true
		})
		if len(t.entries) == 0 && len(t.reported) == 0 {
			delete(e.threats, k)
			forgot++
		}
	}
	// The ids of alerts the engine no longer holds (withdrawn, superseded,
	// forgotten) are dropped from the index.
	for id, k := range e.alertOf {
		t := e.threats[k]
		if t == nil || !slices.ContainsFunc(t.reported, func(st *alertState) bool { return st.id == id }) {
			delete(e.alertOf, id)
		}
	}
	// A withdrawn alert older than any sighting still accepted cannot be
	// raised again.
	oldest := keepFrom * e.slot
	for id, m := range e.withdrawn {
		if m < oldest {
			delete(e.withdrawn, id)
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
