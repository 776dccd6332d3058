package pattern

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// refKind records whether a selected value is a reference to be followed
// by the next key step.
type refKind uint8

const (
	notRef  refKind = iota
	refOne          // the value of an *_ref property
	refList         // the value of an *_refs property
)

// pval is a value an object path selected.
type pval struct {
	v   any
	ref refKind
}

// selectValues follows the path's steps (all but the object type) from
// root, dereferencing *_ref and *_refs properties when a further key step
// needs it. It returns every value reached.
func selectValues(obs *Observation, root map[string]any, steps []Step) ([]pval, error) {
	cur := []pval{{v: root}}
	for _, st := range steps {
		var next []pval
		for _, c := range cur {
			if st.IsIndex {
				list, ok := c.v.([]any)
				if !ok {
					continue
				}
				elemRef := notRef
				if c.ref == refList {
					elemRef = refOne
				}
				if st.Star {
					for _, e := range list {
						next = append(next, pval{v: e, ref: elemRef})
					}
				} else if st.Index >= 0 && st.Index < len(list) {
					next = append(next, pval{v: list[st.Index], ref: elemRef})
				}
				continue
			}
			v := c.v
			if c.ref == refOne {
				id, ok := v.(string)
				if !ok {
					return nil, fmt.Errorf("reference %v is not a string", v)
				}
				target, ok := obs.refs[id]
				if !ok {
					continue // unresolved references select nothing
				}
				v = target
			}
			m, ok := v.(map[string]any)
			if !ok {
				continue
			}
			val, ok := m[st.Key]
			if !ok {
				continue
			}
			val, err := decodeSuffixed(st.Key, val)
			if err != nil {
				return nil, err
			}
			pv := pval{v: val}
			switch {
			case strings.HasSuffix(st.Key, "_ref"):
				pv.ref = refOne
			case strings.HasSuffix(st.Key, "_refs"):
				pv.ref = refList
			}
			next = append(next, pv)
		}
		cur = next
		if len(cur) == 0 {
			break
		}
	}
	return cur, nil
}

// decodeSuffixed turns the values of *_hex and *_bin properties into
// bytes, as STIX defines those suffixes.
func decodeSuffixed(key string, v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return v, nil
	}
	switch {
	case strings.HasSuffix(key, "_hex"):
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("property %s: %q is not hexadecimal", key, s)
		}
		return b, nil
	case strings.HasSuffix(key, "_bin"):
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("property %s: %q is not base64", key, s)
		}
		return b, nil
	}
	return v, nil
}

// latin1 converts s to bytes when every rune is below 256, the rule STIX
// gives for comparing strings with binary values.
func latin1(s string) ([]byte, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 255 {
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}

// bytesAsRunes renders bytes as a string of runes U+0000-U+00FF, so that a
// regular expression can run over binary data.
func bytesAsRunes(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// numberOf returns a JSON number as an int (when exact) and a float.
func numberOf(n json.Number) (i int64, isInt bool, f float64, ok bool) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, true, float64(i), true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return 0, false, f, err == nil
}

// compareNumbers orders a JSON number against a numeric literal.
func compareNumbers(n json.Number, l *Literal) (int, bool) {
	i, isInt, f, ok := numberOf(n)
	if !ok {
		return 0, false
	}
	if isInt && l.Kind == LitInt {
		switch {
		case i < l.Int:
			return -1, true
		case i > l.Int:
			return 1, true
		}
		return 0, true
	}
	switch {
	case f < l.Float:
		return -1, true
	case f > l.Float:
		return 1, true
	case f == l.Float:
		return 0, true
	}
	return 0, false // NaN
}

// valueTime parses a property value compared with a timestamp literal; a
// value that is not a timestamp is an error, as in the reference matcher.
func valueTime(v string) (time.Time, error) {
	t, err := parseDataTimestamp(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot compare with a timestamp: %w", err)
	}
	return t, nil
}

// order compares value v with literal l. ok is false when the two cannot
// be compared (different types).
func order(v any, l *Literal) (c int, ok bool, err error) {
	switch l.Kind {
	case LitInt, LitFloat:
		if n, isNum := v.(json.Number); isNum {
			c, ok = compareNumbers(n, l)
			return c, ok, nil
		}
	case LitString:
		switch v := v.(type) {
		case string:
			return strings.Compare(v, l.Str), true, nil
		case []byte:
			if b, ok := latin1(l.Str); ok {
				return bytes.Compare(v, b), true, nil
			}
		}
	case LitHex, LitBinary:
		switch v := v.(type) {
		case []byte:
			return bytes.Compare(v, l.Bytes), true, nil
		case string:
			if b, ok := latin1(v); ok {
				return bytes.Compare(b, l.Bytes), true, nil
			}
		}
	case LitTimestamp:
		if s, isStr := v.(string); isStr {
			t, err := valueTime(s)
			if err != nil {
				return 0, false, err
			}
			return t.Compare(l.Time), true, nil
		}
	case LitBool:
		if b, isBool := v.(bool); isBool {
			if b == l.Bool {
				return 0, true, nil
			}
			return 1, true, nil // only equality is asked of booleans
		}
	}
	return 0, false, nil
}

// evaluator evaluates comparison expressions, caching compiled regular
// expressions per test.
type evaluator struct {
	regexps map[*Test]*regexp.Regexp
}

func (ev *evaluator) regexpFor(t *Test) *regexp.Regexp {
	if re, ok := ev.regexps[t]; ok {
		return re
	}
	var src string
	if t.Op == OpLike {
		src = likeToRegexp(norm.NFC.String(t.Value.Str))
	} else {
		src = norm.NFC.String(t.Value.Str)
	}
	re, err := regexp.Compile(src)
	if err != nil {
		re = nil // checked by Parse; a pattern built by hand may still fail
	}
	if ev.regexps == nil {
		ev.regexps = map[*Test]*regexp.Regexp{}
	}
	ev.regexps[t] = re
	return re
}

// likeToRegexp converts a LIKE pattern (% any run, _ any one character) to
// an anchored regular expression.
func likeToRegexp(like string) string {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for _, r := range like {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return b.String()
}

// holds reports whether value v satisfies the test, before NOT.
func (ev *evaluator) holds(t *Test, v any) (bool, error) {
	if v == nil {
		// null equals nothing, so it differs from everything.
		return t.Op == OpNEQ, nil
	}
	switch t.Op {
	case OpEQ, OpNEQ:
		c, ok, err := order(v, &t.Value)
		if err != nil {
			return false, err
		}
		eq := ok && c == 0
		if t.Op == OpNEQ {
			return !eq, nil
		}
		return eq, nil
	case OpLT, OpLE, OpGT, OpGE:
		if t.Value.Kind == LitBool {
			return false, nil
		}
		c, ok, err := order(v, &t.Value)
		if err != nil || !ok {
			return false, err
		}
		switch t.Op {
		case OpLT:
			return c < 0, nil
		case OpLE:
			return c <= 0, nil
		case OpGT:
			return c > 0, nil
		}
		return c >= 0, nil
	case OpIn:
		for i := range t.Set {
			c, ok, err := order(v, &t.Set[i])
			if err != nil {
				return false, err
			}
			if ok && c == 0 {
				return true, nil
			}
		}
		return false, nil
	case OpLike, OpMatches:
		re := ev.regexpFor(t)
		if re == nil {
			return false, fmt.Errorf("%s expression %s does not compile", t.Op, quote(t.Value.Str))
		}
		switch v := v.(type) {
		case string:
			return re.MatchString(norm.NFC.String(v)), nil
		case []byte:
			if t.Op == OpMatches {
				if _, ok := latin1(t.Value.Str); !ok {
					return false, nil
				}
				return re.MatchString(bytesAsRunes(v)), nil
			}
		}
		return false, nil
	case OpIsSubset, OpIsSuperset:
		s, ok := v.(string)
		if !ok {
			return false, nil
		}
		val, ok1 := parsePrefix(s)
		lit, ok2 := parsePrefix(t.Value.Str)
		if !ok1 || !ok2 {
			return false, nil
		}
		if t.Op == OpIsSubset {
			return prefixContains(lit, val), nil
		}
		return prefixContains(val, lit), nil
	case OpExists:
		return true, nil
	}
	return false, fmt.Errorf("unsupported operator %s", t.Op)
}

// parsePrefix reads an IP address (as a full-length prefix) or a CIDR
// block, masked.
func parsePrefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// prefixContains reports whether outer contains all of inner.
func prefixContains(outer, inner netip.Prefix) bool {
	return outer.Addr().Is4() == inner.Addr().Is4() && outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

// testRoot reports whether the test holds for the object root: whether
// any value the path selects satisfies it (after NOT).
func (ev *evaluator) testRoot(t *Test, obs *Observation, root map[string]any) (bool, error) {
	if root["type"] != t.Path.ObjectType {
		return false, nil
	}
	vals, err := selectValues(obs, root, t.Path.Steps)
	if err != nil {
		return false, err
	}
	for _, pv := range vals {
		ok, err := ev.holds(t, pv.v)
		if err != nil {
			return false, err
		}
		if ok != t.Negated {
			return true, nil
		}
	}
	return false, nil
}

// roots returns which of the observation's objects satisfy e. As in the
// reference matcher, AND requires the same object to satisfy both sides.
func (ev *evaluator) roots(e ComparisonExpr, obs *Observation) ([]bool, error) {
	switch e := e.(type) {
	case *ComparisonOp:
		l, err := ev.roots(e.Left, obs)
		if err != nil {
			return nil, err
		}
		r, err := ev.roots(e.Right, obs)
		if err != nil {
			return nil, err
		}
		for i := range l {
			if e.Op == ObsAnd {
				l[i] = l[i] && r[i]
			} else {
				l[i] = l[i] || r[i]
			}
		}
		return l, nil
	case *Test:
		out := make([]bool, len(obs.Objects))
		for i, root := range obs.Objects {
			ok, err := ev.testRoot(e, obs, root)
			if err != nil {
				id, _ := root["id"].(string)
				if id == "" {
					id = fmt.Sprintf("object %d", i)
				}
				return nil, fmt.Errorf("%s in %s: %w", e, id, err)
			}
			out[i] = ok
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown comparison expression %T", e)
}
