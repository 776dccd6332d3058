package pattern

import "strings"

// Comparison is one equality-like test of a pattern that is a plain
// disjunction; see Disjunction.
type Comparison struct {
	ObjectType string   // "ipv4-addr", "domain-name", "url", "file", "email-addr", "ipv6-addr", ...
	Path       string   // property path, quotes removed: "value", "hashes.SHA-256", "name"
	Values     []string // string literals compared with '=' (or listed by IN); for ISSUBSET the CIDR
	Op         string   // "=", "IN", "ISSUBSET"
}

// Disjunction reports whether the whole pattern is an OR of simple
// comparisons, written inside one observation ([a OR b]) or across
// observations ([a] OR [b]), and if so returns them in order. A simple
// comparison is "path = 'string'", "path IN ('s1', 's2')" or
// "path ISSUBSET 'cidr'" on a path of property names only (no list
// indexes). Qualifiers, AND, NOT, FOLLOWEDBY, other operators and
// non-string literals make ok false.
func (p *Pattern) Disjunction() ([]Comparison, bool) {
	var out []Comparison
	if !obsDisjunction(p.Root, &out) {
		return nil, false
	}
	return out, true
}

func obsDisjunction(e ObservationExpr, out *[]Comparison) bool {
	switch e := e.(type) {
	case *ObservationOp:
		return e.Op == ObsOr && obsDisjunction(e.Left, out) && obsDisjunction(e.Right, out)
	case *SimpleObservation:
		return cmpDisjunction(e.Expr, out)
	}
	return false
}

func cmpDisjunction(e ComparisonExpr, out *[]Comparison) bool {
	switch e := e.(type) {
	case *ComparisonOp:
		return e.Op == ObsOr && cmpDisjunction(e.Left, out) && cmpDisjunction(e.Right, out)
	case *Test:
		if e.Negated {
			return false
		}
		keys := make([]string, 0, len(e.Path.Steps))
		for _, s := range e.Path.Steps {
			if s.IsIndex {
				return false
			}
			keys = append(keys, s.Key)
		}
		c := Comparison{ObjectType: e.Path.ObjectType, Path: strings.Join(keys, "."), Op: string(e.Op)}
		switch e.Op {
		case OpEQ, OpIsSubset:
			if e.Value.Kind != LitString {
				return false
			}
			c.Values = []string{e.Value.Str}
		case OpIn:
			if len(e.Set) == 0 {
				return false
			}
			for _, l := range e.Set {
				if l.Kind != LitString {
					return false
				}
				c.Values = append(c.Values, l.Str)
			}
		default:
			return false
		}
		*out = append(*out, c)
		return true
	}
	return false
}
