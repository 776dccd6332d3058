package stix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CanonicalRef returns a STIX identifier in its one canonical spelling:
// the STIX schema lets a UUID's hexadecimal digits be upper- or
// lower-case, and RFC 9562 says they compare without regard to case, so
// "marking-definition--E828B379-…" and "marking-definition--e828b379-…"
// name the same object. Code that compares identifiers (the policy gate
// above all) compares canonical ones. An identifier already canonical is
// returned as it is, without allocating.
func CanonicalRef(ref string) string {
	for i := 0; i < len(ref); i++ {
		if c := ref[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(ref)
		}
	}
	return ref
}

// GranularMarking is one entry of an object's granular_markings: the
// marking (marking_ref, or a language) that applies to the content its
// selectors name.
type GranularMarking struct {
	Selectors  []string `json:"selectors"`
	MarkingRef string   `json:"marking_ref,omitempty"`
	Lang       string   `json:"lang,omitempty"`
}

// GranularMarkings returns the granular_markings of an object's JSON,
// with each marking_ref in its canonical spelling; none when the object
// has none. An error says what is malformed.
func GranularMarkings(raw []byte) ([]GranularMarking, error) {
	if !bytes.Contains(raw, []byte(`granular_markings`)) && bytes.IndexByte(raw, '\\') < 0 {
		return nil, nil // no property of that name, not even escaped
	}
	var o struct {
		GM []GranularMarking `json:"granular_markings"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, fmt.Errorf("property \"granular_markings\": %w", err)
	}
	for i := range o.GM {
		o.GM[i].MarkingRef = CanonicalRef(o.GM[i].MarkingRef)
	}
	return o.GM, nil
}

// selectorStep is one step of a granular-marking selector: a property
// name, or an index into a list.
type selectorStep struct {
	name  string
	index int // -1 for a name
}

// parseSelector reads a selector: property names and list indexes
// ("[n]") joined by dots, as STIX 2.1 section 7.2.3.1 defines them.
func parseSelector(sel string) ([]selectorStep, error) {
	if sel == "" {
		return nil, fmt.Errorf("selector is empty")
	}
	parts := strings.Split(sel, ".")
	out := make([]selectorStep, 0, len(parts))
	for i, p := range parts {
		if strings.HasPrefix(p, "[") && strings.HasSuffix(p, "]") {
			n, err := strconv.Atoi(p[1 : len(p)-1])
			if err != nil || n < 0 || i == 0 {
				return nil, fmt.Errorf("selector %q: step %q is not a list index", sel, p)
			}
			out = append(out, selectorStep{index: n})
			continue
		}
		if p == "" {
			return nil, fmt.Errorf("selector %q: empty step", sel)
		}
		out = append(out, selectorStep{name: p, index: -1})
	}
	return out, nil
}

// RemoveSelected returns an object's JSON without the content that the
// given granular-marking selectors name, and removes, from its own
// granular_markings, the selectors that named that content (and the
// markings left with no selector), so that what remains still refers
// only to content that is there. List indexes in the remaining selectors
// are renumbered when list elements before them are removed.
//
// The removal never reaches the object's identity: a selector of "id",
// "type", "spec_version", "created" or "modified" is refused (the caller
// withholds the whole object instead), as is a selector that names
// nothing in the object. The result is re-encoded (member order is not
// kept; numbers are).
func RemoveSelected(raw []byte, selectors []string) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	paths := make([][]selectorStep, 0, len(selectors))
	for _, s := range selectors {
		p, err := parseSelector(s)
		if err != nil {
			return nil, err
		}
		switch p[0].name {
		case "id", "type", "spec_version", "created", "modified":
			return nil, fmt.Errorf("selector %q names the object's identity", s)
		}
		if !selects(obj, p) {
			return nil, fmt.Errorf("selector %q names nothing in the object", s)
		}
		paths = append(paths, p)
	}
	// Remove the deepest and the last list elements first, so that an
	// index still names the element it named when the object was read.
	order := make([]int, len(paths))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return comparePaths(paths[b], paths[a]) })
	// The remaining granular markings' selectors, renumbered as elements
	// go.
	gms, _ := obj["granular_markings"].([]any)
	var kept [][]selectorStep // parsed selectors of gms, nil when dropped
	type ref struct{ gm, sel int }
	var refs []ref
	for gi, g := range gms {
		m, _ := g.(map[string]any)
		sels, _ := m["selectors"].([]any)
		for si, s := range sels {
			str, _ := s.(string)
			p, err := parseSelector(str)
			if err != nil {
				continue
			}
			kept = append(kept, p)
			refs = append(refs, ref{gi, si})
		}
	}
	done := map[string]bool{}
	for _, i := range order {
		p := paths[i]
		key := joinSelector(p)
		if done[key] {
			continue
		}
		done[key] = true
		removeAt(obj, p)
		for k, q := range kept {
			switch {
			case q == nil:
			case hasPrefix(q, p):
				kept[k] = nil // names removed content
			default:
				kept[k] = renumber(q, p)
			}
		}
	}
	if len(gms) > 0 {
		newSels := make([][]any, len(gms))
		for k, r := range refs {
			if kept[k] != nil {
				newSels[r.gm] = append(newSels[r.gm], joinSelector(kept[k]))
			}
		}
		var out []any
		for gi, g := range gms {
			if len(newSels[gi]) == 0 {
				continue
			}
			m, _ := g.(map[string]any)
			c := make(map[string]any, len(m))
			for k, v := range m {
				c[k] = v
			}
			c["selectors"] = newSels[gi]
			out = append(out, c)
		}
		if len(out) == 0 {
			delete(obj, "granular_markings")
		} else {
			obj["granular_markings"] = out
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode object: %w", err)
	}
	return b, nil
}

// selects reports whether path names content of v.
func selects(v any, path []selectorStep) bool {
	for _, st := range path {
		if st.index < 0 {
			m, ok := v.(map[string]any)
			if !ok {
				return false
			}
			if v, ok = m[st.name]; !ok {
				return false
			}
			continue
		}
		l, ok := v.([]any)
		if !ok || st.index >= len(l) {
			return false
		}
		v = l[st.index]
	}
	return true
}

// removeAt removes the content path names from obj.
func removeAt(obj map[string]any, path []selectorStep) {
	var parent any = obj
	for _, st := range path[:len(path)-1] {
		if st.index < 0 {
			parent = parent.(map[string]any)[st.name]
		} else {
			parent = parent.([]any)[st.index]
		}
	}
	last := path[len(path)-1]
	if last.index < 0 {
		delete(parent.(map[string]any), last.name)
		return
	}
	// A list element: the list itself is replaced in its parent.
	gp := any(obj)
	for _, st := range path[:len(path)-2] {
		if st.index < 0 {
			gp = gp.(map[string]any)[st.name]
		} else {
			gp = gp.([]any)[st.index]
		}
	}
	l := parent.([]any)
	nl := slices.Delete(slices.Clone(l), last.index, last.index+1)
	at := path[len(path)-2]
	if at.index < 0 {
		m := gp.(map[string]any)
		if len(nl) == 0 {
			delete(m, at.name) // STIX lists are never empty
		} else {
			m[at.name] = nl
		}
	} else {
		gp.([]any)[at.index] = nl
	}
}

// hasPrefix reports whether q names p's content or content inside it.
func hasPrefix(q, p []selectorStep) bool {
	return len(q) >= len(p) && slices.Equal(q[:len(p)], p)
}

// renumber returns q after the removal of p: a list index after p's
// removed element, in the same list, moves down by one.
func renumber(q, p []selectorStep) []selectorStep {
	last := p[len(p)-1]
	if last.index < 0 || len(q) < len(p) || !slices.Equal(q[:len(p)-1], p[:len(p)-1]) {
		return q
	}
	if qi := q[len(p)-1]; qi.index > last.index {
		q = slices.Clone(q)
		q[len(p)-1].index--
	}
	return q
}

// comparePaths orders paths so that deeper content and later list
// elements come last.
func comparePaths(a, b []selectorStep) int {
	for i := 0; i < min(len(a), len(b)); i++ {
		if a[i] != b[i] {
			if a[i].index >= 0 && b[i].index >= 0 {
				return a[i].index - b[i].index
			}
			return strings.Compare(a[i].name, b[i].name)
		}
	}
	return len(a) - len(b)
}

func joinSelector(p []selectorStep) string {
	var b strings.Builder
	for i, st := range p {
		if i > 0 {
			b.WriteByte('.')
		}
		if st.index >= 0 {
			b.WriteString("[" + strconv.Itoa(st.index) + "]")
		} else {
			b.WriteString(st.name)
		}
	}
	return b.String()
}

// PruneGranular returns an object's JSON with the granular-marking
// selectors that name nothing in it removed (and the markings left with
// no selector), after a redaction removed content: what remains refers
// only to content that is there. changed is false, and raw returned as
// it is, when every selector names content.
func PruneGranular(raw []byte) (out json.RawMessage, changed bool, err error) {
	gms, err := GranularMarkings(raw)
	if err != nil || len(gms) == 0 {
		return raw, false, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, false, fmt.Errorf("decode object: %w", err)
	}
	list, _ := obj["granular_markings"].([]any)
	var kept []any
	for _, g := range list {
		m, _ := g.(map[string]any)
		sels, _ := m["selectors"].([]any)
		var live []any
		for _, s := range sels {
			str, _ := s.(string)
			if p, err := parseSelector(str); err == nil && selects(obj, p) {
				live = append(live, s)
			}
		}
		if len(live) != len(sels) {
			changed = true
		}
		if len(live) == 0 {
			continue
		}
		c := make(map[string]any, len(m))
		for k, v := range m {
			c[k] = v
		}
		c["selectors"] = live
		kept = append(kept, c)
	}
	if !changed {
		return raw, false, nil
	}
	if len(kept) == 0 {
		delete(obj, "granular_markings")
	} else {
		obj["granular_markings"] = kept
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, false, fmt.Errorf("encode object: %w", err)
	}
	return b, true, nil
}
