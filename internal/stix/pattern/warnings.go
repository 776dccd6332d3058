package pattern

import (
	"fmt"
	"sort"
	"strings"
)

// Warnings lists valid but suspicious constructs of the pattern, as
// sentences. Today it reports observations that can never match because
// every way of satisfying them joins comparisons on different object
// types with AND: as in the reference matcher, the comparisons joined by
// AND in one observation must hold for a single object. (The reference
// validator accepts such patterns, so Parse does too.)
func (p *Pattern) Warnings() []string {
	var out []string
	var walk func(e ObservationExpr)
	walk = func(e ObservationExpr) {
		switch e := e.(type) {
		case *ObservationOp:
			walk(e.Left)
			walk(e.Right)
		case *Qualified:
			walk(e.Expr)
		case *SimpleObservation:
			if types := andTypes(e.Expr); len(types) > 1 {
				out = append(out, fmt.Sprintf("comparisons joined by AND in %s name different object types (%s); no single object can satisfy them", e, strings.Join(types, ", ")))
			}
		}
	}
	walk(p.Root)
	return out
}

// andTypes returns the object types named by e when every way of
// satisfying e (every branch of its disjunctive form) needs one object to
// be of more than one type, so that e can never hold; otherwise nil.
func andTypes(e ComparisonExpr) []string {
	const maxBranches = 64
	exact := true
	var branches func(e ComparisonExpr) [][]*Test
	branches = func(e ComparisonExpr) [][]*Test {
		switch e := e.(type) {
		case *Test:
			return [][]*Test{{e}}
		case *ComparisonOp:
			l, r := branches(e.Left), branches(e.Right)
			if e.Op == ObsOr || len(l)*len(r) > maxBranches {
				exact = exact && e.Op == ObsOr
				return append(l, r...)
			}
			var out [][]*Test
			for _, a := range l {
				for _, b := range r {
					out = append(out, append(append([]*Test{}, a...), b...))
				}
			}
			return out
		}
		return nil
	}
	all := map[string]bool{}
	for _, br := range branches(e) {
		set := map[string]bool{}
		for _, t := range br {
			set[t.Path.ObjectType] = true
			all[t.Path.ObjectType] = true
		}
		if len(set) < 2 {
			return nil
		}
	}
	if !exact {
		return nil
	}
	types := make([]string, 0, len(all))
	for typ := range all {
		types = append(types, typ)
	}
	sort.Strings(types)
	return types
}
