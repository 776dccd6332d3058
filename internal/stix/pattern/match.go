package pattern

import (
	"errors"
	"fmt"
	"iter"
	"time"
)

// Result is the outcome of matching a pattern against observations.
type Result struct {
	// Matched reports whether the observations satisfy the pattern.
	Matched bool
	// Bindings, when Matched, say which observations satisfied each
	// bracketed observation expression of the pattern, in pattern order.
	// Expressions that took no part in the match (one side of an OR) are
	// left out.
	Bindings []Binding
}

// Binding ties one observation expression of a pattern to the
// observations bound to it.
type Binding struct {
	// Expression is the canonical text of the observation expression.
	Expression string
	// Observations are indexes into the observations given to Match.
	Observations []int
	// ObservedData are the ids of those observed-data objects.
	ObservedData []string
}

// ErrTooExpensive is returned (wrapped) when matching would take more
// steps than Match allows, which only hostile or degenerate combinations
// of REPEATS, AND and large number_observed values reach.
var ErrTooExpensive = errors.New("pattern too expensive to evaluate against these observations")

// matchBudget bounds the work of one Match call.
const matchBudget = 2_000_000

// Match evaluates the pattern against the observations, following the
// semantics of the OASIS reference matcher: an observed-data object with
// number_observed n counts as n observations over its
// [first_observed, last_observed] interval; AND and FOLLOWEDBY need
// distinct observations on each side; FOLLOWEDBY needs the right side to
// be possibly no earlier than the left; WITHIN needs all bound intervals to
// fit in one window of that length; REPEATS n needs n disjoint bindings;
// START/STOP needs each bound interval to overlap [START, STOP).
func Match(p *Pattern, observations []Observation) (Result, error) {
	m := &matcher{obs: observations, budget: matchBudget}
	for i := range observations {
		if observations[i].NumberObserved < 1 {
			return Result{}, fmt.Errorf("observation %d (%s): number_observed must be at least 1", i, observations[i].ID)
		}
	}
	if n := size(p.Root); n > maxBindingSize {
		return Result{}, fmt.Errorf("a match would bind more than %d observations (REPEATS counts multiply): %w", maxBindingSize, ErrTooExpensive)
	}
	if err := m.prepare(p.Root); err != nil {
		return Result{}, err
	}
	var first binding
	for b := range m.seq(p.Root) {
		first = b
		break
	}
	if m.err != nil {
		return Result{}, m.err
	}
	if first == nil {
		return Result{}, nil
	}
	res := Result{Matched: true}
	layout := m.layout(p.Root, nil)
	byLeaf := map[int]int{} // leaf -> index in res.Bindings
	seen := map[[2]int]bool{}
	for pos, in := range first {
		if in.obs < 0 {
			continue
		}
		leaf := layout[pos]
		bi, ok := byLeaf[leaf]
		if !ok {
			bi = len(res.Bindings)
			byLeaf[leaf] = bi
			res.Bindings = append(res.Bindings, Binding{Expression: m.leaves[leaf].String()})
		}
		if seen[[2]int{leaf, int(in.obs)}] {
			continue
		}
		seen[[2]int{leaf, int(in.obs)}] = true
		b := &res.Bindings[bi]
		b.Observations = append(b.Observations, int(in.obs))
		b.ObservedData = append(b.ObservedData, observations[in.obs].ID)
	}
	return res, nil
}

// String renders a bracketed observation expression.
func (o *SimpleObservation) String() string {
	return (&Pattern{Root: o}).String()
}

// inst is one instance of an observation: observed-data obs, repetition n
// (of number_observed). obs -1 marks a position left unbound by OR.
type inst struct{ obs, n int32 }

// binding assigns instances to the leaves of an expression, in order.
type binding []inst

type matcher struct {
	obs     []Observation
	leaves  []*SimpleObservation
	leafIdx map[*SimpleObservation]int
	matches [][]int // per leaf, the observations it matches
	budget  int
	err     error
}

// prepare evaluates every bracketed expression against every observation.
func (m *matcher) prepare(e ObservationExpr) error {
	switch e := e.(type) {
	case *ObservationOp:
		if err := m.prepare(e.Left); err != nil {
			return err
		}
		return m.prepare(e.Right)
	case *Qualified:
		return m.prepare(e.Expr)
	case *SimpleObservation:
		if m.leafIdx == nil {
			m.leafIdx = map[*SimpleObservation]int{}
		}
		m.leafIdx[e] = len(m.leaves)
		m.leaves = append(m.leaves, e)
		var ev evaluator
		var hits []int
		for i := range m.obs {
			roots, err := ev.roots(e.Expr, &m.obs[i])
			if err != nil {
				return fmt.Errorf("match observation %s: %w", m.obs[i].ID, err)
			}
			for _, r := range roots {
				if r {
					hits = append(hits, i)
					break
				}
			}
		}
		m.matches = append(m.matches, hits)
		return nil
	}
	return fmt.Errorf("unknown observation expression %T", e)
}

// spend takes n steps from the budget, recording the error when it runs
// out.
func (m *matcher) spend(n int) bool {
	m.budget -= n
	if m.budget < 0 {
		if m.err == nil {
			m.err = ErrTooExpensive
		}
		return false
	}
	return true
}

// maxBindingSize bounds how many observations one binding may hold (the
// product of nested REPEATS counts, summed over the pattern).
const maxBindingSize = 1 << 16

// size is the length of the bindings e produces, saturating above
// maxBindingSize.
func size(e ObservationExpr) int {
	switch e := e.(type) {
	case *ObservationOp:
		return min(size(e.Left)+size(e.Right), maxBindingSize+1)
	case *Qualified:
		if e.Kind == Repeats {
			n := size(e.Expr)
			if e.Count > (maxBindingSize+1)/n {
				return maxBindingSize + 1
			}
			return min(n*e.Count, maxBindingSize+1)
		}
		return size(e.Expr)
	}
	return 1
}

// layout lists, for each binding position of e, the leaf it belongs to.
func (m *matcher) layout(e ObservationExpr, out []int) []int {
	switch e := e.(type) {
	case *ObservationOp:
		return m.layout(e.Right, m.layout(e.Left, out))
	case *Qualified:
		n := 1
		if e.Kind == Repeats {
			n = e.Count
		}
		for range n {
			out = m.layout(e.Expr, out)
		}
		return out
	case *SimpleObservation:
		return append(out, m.leafIdx[e])
	}
	return out
}

func concat(a, b binding) binding {
	out := make(binding, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

func disjoint(a, b binding) bool {
	for _, x := range a {
		if x.obs < 0 {
			continue
		}
		for _, y := range b {
			if x == y {
				return false
			}
		}
	}
	return true
}

func (m *matcher) interval(in inst) (time.Time, time.Time) {
	o := &m.obs[in.obs]
	return o.FirstObserved, o.LastObserved
}

// seq returns the bindings e admits, lazily.
func (m *matcher) seq(e ObservationExpr) iter.Seq[binding] {
	switch e := e.(type) {
	case *SimpleObservation:
		hits := m.matches[m.leafIdx[e]]
		return func(yield func(binding) bool) {
			for _, o := range hits {
				for n := 0; n < m.obs[o].NumberObserved; n++ {
					if !m.spend(1) || !yield(binding{{int32(o), int32(n)}}) {
						return
					}
				}
			}
		}
	case *ObservationOp:
		switch e.Op {
		case ObsOr:
			return m.or(e)
		case ObsAnd:
			return m.join(m.seq(e.Left), m.seq(e.Right), func(l, r binding) bool { return true })
		default:
			return m.join(m.seq(e.Left), m.seq(e.Right), m.followedBy)
		}
	case *Qualified:
		inner := m.seq(e.Expr)
		switch e.Kind {
		case Within:
			d := time.Duration(e.Seconds * float64(time.Second))
			return filter(inner, func(b binding) bool { return m.within(b, d) })
		case StartStop:
			return filter(inner, func(b binding) bool { return m.startStop(b, e.Start, e.Stop) })
		default:
			return m.repeats(inner, e.Count)
		}
	}
	return func(func(binding) bool) {}
}

func filter(s iter.Seq[binding], keep func(binding) bool) iter.Seq[binding] {
	return func(yield func(binding) bool) {
		for b := range s {
			if keep(b) && !yield(b) {
				return
			}
		}
	}
}

// followedBy reports whether timestamps can be chosen so that every
// instance of r is no earlier than every instance of l.
func (m *matcher) followedBy(l, r binding) bool {
	var latestFirst, earliestLast time.Time
	for _, in := range l {
		if in.obs < 0 {
			continue
		}
		if f, _ := m.interval(in); f.After(latestFirst) {
			latestFirst = f
		}
	}
	set := false
	for _, in := range r {
		if in.obs < 0 {
			continue
		}
		if _, last := m.interval(in); !set || last.Before(earliestLast) {
			earliestLast, set = last, true
		}
	}
	return !latestFirst.After(earliestLast)
}

// within reports whether one window of length d overlaps every interval
// of the binding (touching counts).
func (m *matcher) within(b binding, d time.Duration) bool {
	var earliestLast time.Time
	set := false
	for _, in := range b {
		if in.obs < 0 {
			continue
		}
		if _, last := m.interval(in); !set || last.Before(earliestLast) {
			earliestLast, set = last, true
		}
	}
	end := earliestLast.Add(d)
	for _, in := range b {
		if in.obs < 0 {
			continue
		}
		first, last := m.interval(in)
		if first.After(end) || last.Before(earliestLast) {
			return false
		}
	}
	return true
}

// startStop reports whether every interval of the binding overlaps
// [start, stop): touching start counts, touching stop does not.
func (m *matcher) startStop(b binding, start, stop time.Time) bool {
	for _, in := range b {
		if in.obs < 0 {
			continue
		}
		first, last := m.interval(in)
		if !first.Before(stop) || last.Before(start) {
			return false
		}
	}
	return true
}

// join pairs every left binding with every disjoint right binding that
// ok accepts, interleaving both sides so that a match is found without
// exhausting either.
func (m *matcher) join(left, right iter.Seq[binding], ok func(l, r binding) bool) iter.Seq[binding] {
	return func(yield func(binding) bool) {
		nextL, stopL := iter.Pull(left)
		defer stopL()
		nextR, stopR := iter.Pull(right)
		defer stopR()
		l, lok := nextL()
		r, rok := nextR()
		if !lok || !rok {
			return
		}
		var lc, rc []binding
		for lok || rok {
			if rok {
				for _, lb := range lc {
					if !m.spend(1) {
						return
					}
					if disjoint(lb, r) && ok(lb, r) && !yield(concat(lb, r)) {
						return
					}
				}
				rc = append(rc, r)
				r, rok = nextR()
			}
			if lok {
				for _, rb := range rc {
					if !m.spend(1) {
						return
					}
					if disjoint(l, rb) && ok(l, rb) && !yield(concat(l, rb)) {
						return
					}
				}
				lc = append(lc, l)
				l, lok = nextL()
			}
		}
	}
}

// or yields the bindings of either side, padding the other side's
// positions with unbound instances.
func (m *matcher) or(e *ObservationOp) iter.Seq[binding] {
	lpad := make(binding, size(e.Left))
	rpad := make(binding, size(e.Right))
	for i := range lpad {
		lpad[i] = inst{-1, -1}
	}
	for i := range rpad {
		rpad[i] = inst{-1, -1}
	}
	left, right := m.seq(e.Left), m.seq(e.Right)
	return func(yield func(binding) bool) {
		nextL, stopL := iter.Pull(left)
		defer stopL()
		nextR, stopR := iter.Pull(right)
		defer stopR()
		l, lok := nextL()
		r, rok := nextR()
		for lok || rok {
			if lok {
				if !yield(concat(l, rpad)) {
					return
				}
				l, lok = nextL()
			}
			if rok {
				if !yield(concat(lpad, r)) {
					return
				}
				r, rok = nextR()
			}
		}
	}
}

// repeats yields combinations of n pairwise-disjoint bindings, flattened.
func (m *matcher) repeats(s iter.Seq[binding], n int) iter.Seq[binding] {
	if n == 1 {
		return s
	}
	return func(yield func(binding) bool) {
		var generated []binding
		for next := range s {
			var filtered []binding
			for _, c := range generated {
				if !m.spend(1) {
					return
				}
				if disjoint(c, next) {
					filtered = append(filtered, c)
				}
			}
			cont, _ := m.combos(filtered, n-1, nil, func(combo []binding) bool {
				return yield(flatten(append(combo, next)))
			})
			if !cont {
				return
			}
			generated = append(generated, next)
		}
	}
}

func flatten(bs []binding) binding {
	var out binding
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// combos yields every k-combination of pairwise-disjoint bindings of vals
// (in order), prefixed by prefix. cont is false when yield asked to stop;
// missing > 0 reports that no combination can exist, and how many values
// short the list is (the reference matcher's pruning).
func (m *matcher) combos(vals []binding, k int, prefix []binding, yield func([]binding) bool) (cont bool, missing int) {
	if k == 1 {
		for _, v := range vals {
			if !m.spend(1) {
				return false, 0
			}
			combo := append(append(make([]binding, 0, len(prefix)+2), prefix...), v)
			if !yield(combo) {
				return false, 0
			}
		}
		return true, 0
	}
	if !m.spend(len(vals)) {
		return false, 0
	}
	if bound := boundLargestCombination(vals); bound < k {
		return true, k - bound
	}
	for i := 0; i < len(vals)+1-k; i++ {
		var filtered []binding
		for _, c := range vals[i+1:] {
			if !m.spend(1) {
				return false, 0
			}
			if disjoint(vals[i], c) {
				filtered = append(filtered, c)
			}
		}
		yielded := false
		cont, miss := m.combos(filtered, k-1, append(prefix[:len(prefix):len(prefix)], vals[i]), func(c []binding) bool {
			yielded = true
			return yield(c)
		})
		if !cont {
			return false, 0
		}
		if miss > 0 && !yielded {
			maxAdd := min(len(vals[i+1:])-len(filtered), tupleSize(vals[i]))
			if expected := miss + 1 - maxAdd; expected > 0 {
				if i == 0 {
					return true, expected
				}
				return true, 0
			}
		}
	}
	return true, 0
}

func tupleSize(b binding) int {
	n := 0
	for _, in := range b {
		if in.obs >= 0 {
			n++
		}
	}
	return n
}

// boundLargestCombination bounds the size of the largest set of pairwise
// disjoint bindings in vals (the reference matcher's bound).
func boundLargestCombination(vals []binding) int {
	if len(vals) == 0 {
		return 0
	}
	maxSize := 0
	for _, v := range vals {
		maxSize = max(maxSize, tupleSize(v))
	}
	bySize := make([]map[inst]bool, maxSize+1)
	for i := range bySize {
		bySize[i] = map[inst]bool{}
	}
	for _, v := range vals {
		s := tupleSize(v)
		for _, in := range v {
			if in.obs >= 0 {
				bySize[s][in] = true
			}
		}
	}
	consumed := map[inst]bool{}
	total := 0
	for i := 1; i <= maxSize; i++ {
		avail := 0
		for in := range bySize[i] {
			if !consumed[in] {
				avail++
				consumed[in] = true
			}
		}
		if i < maxSize {
			total += (avail + i - 1) / i
		} else {
			total += avail / i
		}
	}
	return total
}
