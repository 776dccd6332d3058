package match

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/stix/pattern"
)

// PatternSet holds the indicators whose STIX patterns a [Snapshot] cannot
// hold (AND, NOT, FOLLOWEDBY, qualifiers, ports, LIKE, MATCHES...): they
// are evaluated against each log record as an observation (see [Run]).
//
// Evaluating a pattern needs the whole record decoded, which costs far
// more than a lookup, so it is done only for records that may match: a
// pattern whose every observation expression requires an equality on an
// address, name, URL, hash or e-mail address ("anchors") is evaluated
// only on records holding one of those values, found by the same lookup
// as the snapshot's (in a small snapshot of the anchors); an equality on
// an HTTP request's target (network-traffic's http-request-ext
// request_value, as Maltrail's URL paths become) anchors a pattern too,
// found by the exact target the record holds. Other patterns are
// evaluated on every record that has an object of a type they name.
//
// A pattern of one observation expression (or an OR of them) without
// qualifiers is decided by each record alone. Any other pattern (AND or
// FOLLOWEDBY between observations, WITHIN, REPEATS, START/STOP) is
// decided over the stream, in input order: the records that satisfy one
// of its observation expressions are kept in a window (the last
// [WindowSize], and for a top-level WITHIN only those within its
// duration of the newest), the pattern is matched against the window
// after each, and a match is a hit at the record that completed it,
// after which the window starts afresh: each hit stands on records of its
// own. The stream stage is serial; a pattern whose observation
// expressions most records satisfy makes it the bottleneck.
type PatternSet struct {
	pats    []*evalPattern
	anchors *Builder
	snap    *Snapshot
	open    []int // patterns without anchors
	// targets are the patterns anchored on an HTTP request target, by
	// target.
	targets map[string][]int
}

// kindTarget is the anchor kind of an HTTP request target: the
// request_value of network-traffic's http-request-ext. It is not an
// observable kind: its anchors live in PatternSet.targets, not in the
// anchor snapshot.
const kindTarget observable.Kind = "http-request-target"

// requestValue is the path of an HTTP request's target, as anchorsOf
// joins a Test's keys.
const requestValue = "extensions.http-request-ext.request_value"

// WindowSize is the most records kept for one pattern decided over the
// stream, unless a match needs more (REPEATS 300 TIMES keeps 600); no
// window holds more than maxWindow.
const WindowSize = 256

const maxWindow = 10000

// need returns how many observations one match of e binds at most.
func need(e pattern.ObservationExpr) int {
	switch e := e.(type) {
	case *pattern.ObservationOp:
		l, r := need(e.Left), need(e.Right)
		if e.Op == pattern.ObsOr {
			return max(l, r)
		}
		return min(l+r, maxWindow)
	case *pattern.Qualified:
		n := need(e.Expr)
		if e.Kind == pattern.Repeats {
			return min(n*max(e.Count, 1), maxWindow)
		}
		return n
	}
	return 1
}

type evalPattern struct {
	id       string // the indicator's id
	p        *pattern.Pattern
	src      string
	stream   bool
	leaves   []*pattern.Pattern // the observation expressions, for stream patterns
	types    uint16
	within   time.Duration // of a top-level WITHIN; 0 when none
	window   int           // records kept
	anchored bool
}

// NewPatternSet returns an empty set.
func NewPatternSet() *PatternSet { return &PatternSet{anchors: NewBuilder()} }

// Unobservable returns how many patterns of the set name only object
// types that no log record yields (process, user-account, registry keys
// ...): they are kept but can never match a network log.
func (ps *PatternSet) Unobservable() int {
	if ps == nil {
		return 0
	}
	n := 0
	for _, p := range ps.pats {
		if p.types&^tOther == 0 {
			n++
		}
	}
	return n
}

// Len returns the number of patterns in the set.
func (ps *PatternSet) Len() int {
	if ps == nil {
		return 0
	}
	return len(ps.pats)
}

// Add adds the parsed pattern of indicator id.
func (ps *PatternSet) Add(id string, p *pattern.Pattern) error {
	ep := &evalPattern{id: id, p: p, src: p.Source()}
	if ep.src == "" {
		ep.src = p.String()
	}
	ep.stream = !stateless(p.Root)
	ep.window = min(max(WindowSize, 2*need(p.Root)), maxWindow)
	var leaves []*pattern.SimpleObservation
	collectLeaves(p.Root, &leaves)
	anchored := len(leaves) > 0
	var anchors []kindValue
	for _, l := range leaves {
		if ep.stream {
			ep.leaves = append(ep.leaves, &pattern.Pattern{Root: l})
		}
		ep.types |= typesOf(l.Expr)
		a, ok := anchorsOf(l.Expr)
		if !ok {
			anchored = false
		}
		anchors = append(anchors, a...)
	}
	if q, ok := p.Root.(*pattern.Qualified); ok && q.Kind == pattern.Within {
		ep.within = time.Duration(q.Seconds * float64(time.Second))
	}
	i := len(ps.pats)
	ps.pats = append(ps.pats, ep)
	ps.snap = nil
	if !anchored {
		ps.open = append(ps.open, i)
		return nil
	}
	ep.anchored = true
	ref, err := ps.anchors.Indicator("p" + strconv.Itoa(i))
	if err != nil {
		return err
	}
	for _, a := range anchors {
		if a.kind == kindTarget {
			if ps.targets == nil {
				ps.targets = map[string][]int{}
			}
			if t := ps.targets[a.value]; len(t) == 0 || t[len(t)-1] != i {
				ps.targets[a.value] = append(t, i)
			}
			continue
		}
		if err := ps.anchors.Add(a.kind, a.value, ref); err != nil {
			return fmt.Errorf("pattern of %s: %w", id, err)
		}
	}
	return nil
}

// snapshotForRun builds the anchor snapshot and returns the set.
func (ps *PatternSet) snapshotForRun() *PatternSet {
	ps.snapshot()
	return ps
}

func (ps *PatternSet) snapshot() *Snapshot {
	if ps.snap == nil {
		ps.snap = ps.anchors.Snapshot()
	}
	return ps.snap
}

// stateless reports whether e is decided by one observation: an OR of
// bracketed expressions without qualifiers.
func stateless(e pattern.ObservationExpr) bool {
	switch e := e.(type) {
	case *pattern.SimpleObservation:
		return true
	case *pattern.ObservationOp:
		return e.Op == pattern.ObsOr && stateless(e.Left) && stateless(e.Right)
	}
	return false
}

func collectLeaves(e pattern.ObservationExpr, out *[]*pattern.SimpleObservation) {
	switch e := e.(type) {
	case *pattern.SimpleObservation:
		*out = append(*out, e)
	case *pattern.ObservationOp:
		collectLeaves(e.Left, out)
		collectLeaves(e.Right, out)
	case *pattern.Qualified:
		collectLeaves(e.Expr, out)
	}
}

// The object types records are made of, as bits.
const (
	tIPv4 uint16 = 1 << iota
	tIPv6
	tTraffic
	tDomain
	tURL
	tFile
	tCert
	tEmail
	tOther // a type no record holds
)

var typeBits = map[string]uint16{
	"ipv4-addr": tIPv4, "ipv6-addr": tIPv6, "network-traffic": tTraffic, "domain-name": tDomain,
	"url": tURL, "file": tFile, "x509-certificate": tCert, "email-addr": tEmail,
}

func typesOf(e pattern.ComparisonExpr) uint16 {
	switch e := e.(type) {
	case *pattern.ComparisonOp:
		return typesOf(e.Left) | typesOf(e.Right)
	case *pattern.Test:
		if b, ok := typeBits[e.Path.ObjectType]; ok {
			return b
		}
		return tOther
	}
	return 0
}

// anchorsOf returns values one of which a record must hold for e to hold
// on it (as the snapshot matches them: a network holds its addresses, a
// domain its subdomains), or false when there are none such.
func anchorsOf(e pattern.ComparisonExpr) ([]kindValue, bool) {
	switch e := e.(type) {
	case *pattern.ComparisonOp:
		l, lok := anchorsOf(e.Left)
		r, rok := anchorsOf(e.Right)
		if e.Op == pattern.ObsAnd {
			switch {
			case lok && rok && len(r) < len(l):
				return r, true
			case lok:
				return l, true
			}
			return r, rok
		}
		if lok && rok {
			return append(l, r...), true
		}
		return nil, false
	case *pattern.Test:
		if e.Negated || (e.Op != pattern.OpEQ && e.Op != pattern.OpIn && e.Op != pattern.OpIsSubset) {
			return nil, false
		}
		var keys []string
		for _, s := range e.Path.Steps {
			if s.IsIndex {
				return nil, false
			}
			keys = append(keys, s.Key)
		}
		path := strings.Join(keys, ".")
		lits := e.Set
		if e.Op != pattern.OpIn {
			lits = []pattern.Literal{e.Value}
		}
		var out []kindValue
		for _, l := range lits {
			if l.Kind != pattern.LitString {
				return nil, false
			}
			var k observable.Kind
			var v string
			var err error
			switch {
			case e.Path.ObjectType == "network-traffic" && path == requestValue:
				if e.Op == pattern.OpIsSubset || l.Str == "" {
					return nil, false
				}
				k, v = kindTarget, l.Str
			case e.Path.ObjectType == "network-traffic" && (path == "src_ref.value" || path == "dst_ref.value"):
				k, v, err = observable.Detect(l.Str)
				if k != observable.IPv4 && k != observable.IPv6 && k != observable.CIDR4 && k != observable.CIDR6 {
					return nil, false
				}
			default:
				kk, ok := observable.FromComparison(e.Path.ObjectType, path)
				if !ok || (e.Op == pattern.OpIsSubset && kk != observable.IPv4 && kk != observable.IPv6) {
					return nil, false
				}
				k, v, err = observable.NormalizeKind(kk, l.Str)
			}
			if err != nil {
				return nil, false
			}
			out = append(out, kindValue{k, v})
		}
		return out, len(out) > 0
	}
	return nil, false
}

// evaluator is one worker's state for a PatternSet.
type evaluator struct {
	ps *PatternSet
	// anchored is whether any pattern has anchors.
	anchored bool
	m        *Matcher
	hits     []Hit
	cands    []int
	seen     map[int]bool
}

func newEvaluator(ps *PatternSet) *evaluator {
	return &evaluator{ps: ps, m: NewMatcher(ps.snapshot()), seen: map[int]bool{}, anchored: len(ps.open) < len(ps.pats)}
}

// obsTypes is what object types a record with these observables may
// hold, before it is decoded.
func obsTypes(obs []sensor.Obs) uint16 {
	var t uint16
	for _, o := range obs {
		switch o.Kind {
		case sensor.ObsIP:
			t |= tIPv4 | tIPv6 | tTraffic
		case sensor.ObsDomain:
			t |= tDomain
		case sensor.ObsHost, sensor.ObsAny:
			t |= tDomain | tIPv4 | tIPv6 | tTraffic
		case sensor.ObsURL:
			t |= tURL | tDomain | tTraffic
		case sensor.ObsHash:
			t |= tFile | tCert
		case sensor.ObsEmail:
			t |= tEmail
		}
	}
	return t
}

// candidates returns the patterns that may match a record with these
// observables.
func (e *evaluator) candidates(obs []sensor.Obs) []int {
	c := e.cands[:0]
	clear(e.seen)
	if e.anchored {
		hits := e.hits[:0]
		for _, o := range obs {
			hits = e.m.Match(o, hits)
		}
		e.hits = hits
		for _, h := range hits {
			id := e.ps.snap.IndicatorID(h.Ref, h.Kind, h.Matched)
			i, err := strconv.Atoi(strings.TrimPrefix(id, "p"))
			if err == nil && !e.seen[i] {
				e.seen[i] = true
				c = append(c, i)
			}
		}
	}
	if len(e.ps.targets) > 0 {
		for _, o := range obs {
			if o.Kind != sensor.ObsURL {
				continue
			}
			for _, i := range e.ps.targets[string(o.Aux)] {
				if !e.seen[i] {
					e.seen[i] = true
					c = append(c, i)
				}
			}
		}
	}
	if len(e.ps.open) > 0 {
		t := obsTypes(obs)
		for _, i := range e.ps.open {
			if e.ps.pats[i].types&t != 0 && !e.seen[i] {
				c = append(c, i)
			}
		}
	}
	e.cands = c
	return c
}

// streamEvent is a record that satisfied an observation expression of a
// pattern decided over the stream, handed to the in-order stage.
type streamEvent struct {
	pat    int
	obs    pattern.Observation
	file   string
	line   int64
	leaves uint64 // the observation expressions it satisfies (see leafBit)
}

// leafBit is the bit of observation expression j in a leaf set; past 63
// they share the last bit, which then only says "some of them".
func leafBit(j int) uint64 { return 1 << min(j, 63) }

// possible reports whether the records kept, which satisfy observation
// expression j counts[j] times, could match e: a necessary condition,
// cheap to test, that spares matching a window that cannot match (one
// side of a FOLLOWEDBY seen often, the other not yet). leaf numbers the
// observation expressions in the order collectLeaves lists them.
func possible(e pattern.ObservationExpr, counts []int, leaf *int) bool {
	switch e := e.(type) {
	case *pattern.SimpleObservation:
		j := *leaf
		*leaf++
		if j >= 63 {
			return true // shares the last bit: no telling
		}
		return counts[j] > 0
	case *pattern.ObservationOp:
		l := possible(e.Left, counts, leaf)
		r := possible(e.Right, counts, leaf)
		if e.Op == pattern.ObsOr {
			return l || r
		}
		return l && r
	case *pattern.Qualified:
		first := *leaf
		ok := possible(e.Expr, counts, leaf)
		if _, one := e.Expr.(*pattern.SimpleObservation); one && e.Kind == pattern.Repeats && first < 63 {
			ok = ok && counts[first] >= e.Count
		}
		return ok
	}
	return true
}

// window is the records kept for one stream pattern.
type window struct {
	obs    []pattern.Observation
	where  []string
	leaves []uint64
	counts []int // records kept satisfying each observation expression
}

func (w *window) count(leaves uint64, d int) {
	for j := range w.counts {
		if leaves&leafBit(j) != 0 {
			w.counts[j] += d
		}
	}
}

// streamStage decides the stream patterns, in input order.
type streamStage struct {
	ps       *PatternSet
	windows  map[int]*window
	errs     int64
	problems []string
}

// add adds a record to its pattern's window and matches the window; it
// returns whether the pattern matched and, if so, where the bound
// records are.
func (st *streamStage) add(ev *streamEvent) (bool, []string) {
	p := st.ps.pats[ev.pat]
	w := st.windows[ev.pat]
	if w == nil {
		w = &window{counts: make([]int, min(len(p.leaves), 64))}
		st.windows[ev.pat] = w
	}
	w.obs = append(w.obs, ev.obs)
	w.where = append(w.where, ev.file+":"+strconv.FormatInt(ev.line, 10))
	w.leaves = append(w.leaves, ev.leaves)
	w.count(ev.leaves, 1)
	drop := 0
	if len(w.obs) > p.window {
		drop = len(w.obs) - p.window
	}
	if p.within > 0 {
		newest := ev.obs.LastObserved
		for drop < len(w.obs)-1 && newest.Sub(w.obs[drop].FirstObserved) > p.within {
			drop++
		}
	}
	if drop > 0 {
		for _, l := range w.leaves[:drop] {
			w.count(l, -1)
		}
		w.obs = append(w.obs[:0], w.obs[drop:]...)
		w.where = append(w.where[:0], w.where[drop:]...)
		w.leaves = append(w.leaves[:0], w.leaves[drop:]...)
	}
	leaf := 0
	if !possible(p.p.Root, w.counts, &leaf) {
		return false, nil
	}
	res, err := pattern.Match(p.p, w.obs)
	if err != nil {
		st.errs++
		if len(st.problems) < maxEvalProblems {
			st.problems = append(st.problems, fmt.Sprintf("%s:%d: indicator %s on the %d records kept: %v", ev.file, ev.line, p.id, len(w.obs), err))
		}
		return false, nil
	}
	if !res.Matched {
		return false, nil
	}
	var where []string
	for _, b := range res.Bindings {
		for _, i := range b.Observations {
			where = append(where, w.where[i])
		}
	}
	w.obs, w.where, w.leaves = w.obs[:0], w.where[:0], w.leaves[:0]
	clear(w.counts)
	return true, where
}
