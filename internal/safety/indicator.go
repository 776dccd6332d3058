package safety

import (
	"encoding/json"
	"strings"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix/pattern"
)

// Value is an observable value named in a pattern.
type Value struct {
	Kind  observable.Kind
	Value string // canonical
}

// PatternValues returns the values a pattern names positively: the
// string literals of its =, IN and ISSUBSET comparisons (not negated) on
// the observables internal/observable knows, and on the addresses of
// network-traffic's src_ref and dst_ref, normalised. Values that are not
// valid for their observable are left out.
func PatternValues(p *pattern.Pattern) []Value {
	var out []Value
	var obs func(e pattern.ObservationExpr)
	var cmp func(e pattern.ComparisonExpr)
	obs = func(e pattern.ObservationExpr) {
		switch e := e.(type) {
		case *pattern.SimpleObservation:
			cmp(e.Expr)
		case *pattern.ObservationOp:
			obs(e.Left)
			obs(e.Right)
		case *pattern.Qualified:
			obs(e.Expr)
		}
	}
	cmp = func(e pattern.ComparisonExpr) {
		switch e := e.(type) {
		case *pattern.ComparisonOp:
			cmp(e.Left)
			cmp(e.Right)
		case *pattern.Test:
			if e.Negated || (e.Op != pattern.OpEQ && e.Op != pattern.OpIn && e.Op != pattern.OpIsSubset) {
				return
			}
			keys := make([]string, 0, len(e.Path.Steps))
			for _, s := range e.Path.Steps {
				if s.IsIndex {
					return
				}
				keys = append(keys, s.Key)
			}
			path := strings.Join(keys, ".")
			lits := e.Set
			if e.Op != pattern.OpIn {
				lits = []pattern.Literal{e.Value}
			}
			for _, l := range lits {
				if l.Kind != pattern.LitString {
					continue
				}
				if e.Path.ObjectType == "network-traffic" && (path == "src_ref.value" || path == "dst_ref.value") {
					if k, v, err := observable.Detect(l.Str); err == nil {
						switch k {
						case observable.IPv4, observable.IPv6, observable.CIDR4, observable.CIDR6:
							out = append(out, Value{k, v})
						}
					}
					continue
				}
				k, ok := observable.FromComparison(e.Path.ObjectType, path)
				if !ok {
					continue
				}
				if k, v, err := observable.NormalizeKind(k, l.Str); err == nil {
					out = append(out, Value{k, v})
				}
			}
		}
	}
	if p != nil {
		obs(p.Root)
	}
	return out
}

// AdmitPattern reports whether a pattern that is evaluated against each
// record as a whole (AND, NOT, qualifiers…: it cannot be cut) may be
// acted on: not when one of the values it names is protected, inside or
// around protected space, or refused. A pattern left out is counted once,
// under the rule of its first such value.
func (g Guard) AdmitPattern(p *pattern.Pattern) bool {
	if g.n == nil {
		return true
	}
	for _, v := range PatternValues(p) {
		if d := g.n.decide(v.Kind, v.Value, false); d.Action != Keep {
			d.layer.count(g.out, d.rule)
			return false
		}
	}
	return true
}

// ProtectedIndicator reports whether a sighting of the STIX object raw
// must not count towards an alert, and names the rule: an indicator
// whose pattern is a disjunction of values of which the net acts on none
// (each is protected, inside protected space or refused), or a pattern
// evaluated as a whole that names a protected value (sensors never match
// those). Anything else, and anything that is not a STIX indicator, is
// not protected. A protected sighting is counted in g's output.
func (g Guard) ProtectedIndicator(raw json.RawMessage) (bool, string) {
	if g.n == nil {
		return false, ""
	}
	var ind struct {
		Type        string `json:"type"`
		Pattern     string `json:"pattern"`
		PatternType string `json:"pattern_type"`
	}
	if json.Unmarshal(raw, &ind) != nil || ind.Type != "indicator" || (ind.PatternType != "" && ind.PatternType != "stix") {
		return false, ""
	}
	p, err := pattern.Parse(ind.Pattern)
	if err != nil {
		return false, ""
	}
	if _, ok := p.Disjunction(); !ok {
		for _, v := range PatternValues(p) {
			if d := g.n.decide(v.Kind, v.Value, false); d.Action != Keep {
				d.layer.count(g.out, d.rule)
				return true, d.layer.rules[d.rule].String()
			}
		}
		return false, ""
	}
	vals := PatternValues(p)
	if len(vals) == 0 {
		return false, ""
	}
	var first Decision
	for i, v := range vals {
		d := g.n.decide(v.Kind, v.Value, false)
		if d.Action == Keep || d.Action == Cut {
			return false, ""
		}
		if i == 0 {
			first = d
		}
	}
	first.layer.count(g.out, first.rule)
	return true, first.layer.rules[first.rule].String()
}
