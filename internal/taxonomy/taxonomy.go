// Package taxonomy reads MISP taxonomies (the machinetag.json files of
// github.com/MISP/misp-taxonomies) and checks MISP machine tags against
// them: namespace:predicate or namespace:predicate="value". A few real
// taxonomies are embedded (see data/SOURCES.md for their origin and
// licence). Labels that are not machine tags of a known namespace are
// free labels, which it leaves alone.
package taxonomy

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Taxonomy is one MISP taxonomy: a namespace, its predicates and, for
// predicates that have them, their values.
type Taxonomy struct {
	// Namespace is the tag's prefix ("tlp", "admiralty-scale").
	Namespace   string `json:"namespace"`
	Description string `json:"description,omitempty"`
	Version     int    `json:"version"`
	// Exclusive says an object carries at most one tag of the
	// namespace.
	Exclusive  bool        `json:"exclusive,omitempty"`
	Predicates []Predicate `json:"predicates"`
}

// Predicate is one predicate of a taxonomy, with its values when it has
// some: then a tag names one (namespace:predicate="value"); without,
// the tag is namespace:predicate.
type Predicate struct {
	Value    string  `json:"value"`
	Expanded string  `json:"expanded,omitempty"`
	Colour   string  `json:"colour,omitempty"`
	Values   []Entry `json:"values,omitempty"`
}

// Entry is one value of a predicate.
type Entry struct {
	Value    string `json:"value"`
	Expanded string `json:"expanded,omitempty"`
}

// MaxSize bounds the machinetag.json Parse reads (the largest upstream
// taxonomy is under 1 MiB).
const MaxSize = 4 << 20

// Parse reads a machinetag.json file. It refuses a file without a
// namespace or predicates, names that could not be written in a machine
// tag (empty, or holding ':', '=', '"', a control character or
// malformed UTF-8), duplicate predicates or values, and values of a
// predicate the file does not declare.
func Parse(b []byte) (Taxonomy, error) {
	if len(b) > MaxSize {
		return Taxonomy{}, fmt.Errorf("taxonomy: %d bytes, more than %d", len(b), MaxSize)
	}
	var raw struct {
		Namespace   string `json:"namespace"`
		Description string `json:"description"`
		Version     int    `json:"version"`
		Exclusive   bool   `json:"exclusive"`
		Predicates  []struct {
			Value    string `json:"value"`
			Expanded string `json:"expanded"`
			Colour   string `json:"colour"`
		} `json:"predicates"`
		Values []struct {
			Predicate string `json:"predicate"`
			Entry     []struct {
				Value    string `json:"value"`
				Expanded string `json:"expanded"`
			} `json:"entry"`
		} `json:"values"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Taxonomy{}, fmt.Errorf("taxonomy: %w", err)
	}
	if err := checkName("namespace", raw.Namespace, `:="`); err != nil {
		return Taxonomy{}, err
	}
	t := Taxonomy{Namespace: raw.Namespace, Description: raw.Description, Version: raw.Version, Exclusive: raw.Exclusive}
	if len(raw.Predicates) == 0 {
		return Taxonomy{}, fmt.Errorf("taxonomy %s: no predicates", t.Namespace)
	}
	index := map[string]int{}
	for i, p := range raw.Predicates {
		if err := checkName(fmt.Sprintf("taxonomy %s: predicates[%d]", t.Namespace, i), p.Value, `="`); err != nil {
			return Taxonomy{}, err
		}
		if _, dup := index[p.Value]; dup {
			return Taxonomy{}, fmt.Errorf("taxonomy %s: predicate %q twice", t.Namespace, p.Value)
		}
		index[p.Value] = i
		t.Predicates = append(t.Predicates, Predicate{Value: p.Value, Expanded: p.Expanded, Colour: p.Colour})
	}
	for i, v := range raw.Values {
		pi, ok := index[v.Predicate]
		if !ok {
			return Taxonomy{}, fmt.Errorf("taxonomy %s: values[%d]: predicate %q is not declared", t.Namespace, i, v.Predicate)
		}
		p := &t.Predicates[pi]
		if len(p.Values) > 0 {
			return Taxonomy{}, fmt.Errorf("taxonomy %s: values of predicate %q twice", t.Namespace, v.Predicate)
		}
		seen := map[string]bool{}
		for j, e := range v.Entry {
			if err := checkValue(fmt.Sprintf("taxonomy %s: values[%d].entry[%d]", t.Namespace, i, j), e.Value); err != nil {
				return Taxonomy{}, err
			}
			if seen[e.Value] {
				return Taxonomy{}, fmt.Errorf("taxonomy %s: value %q of predicate %q twice", t.Namespace, e.Value, v.Predicate)
			}
			seen[e.Value] = true
			p.Values = append(p.Values, Entry{Value: e.Value, Expanded: e.Expanded})
		}
		if len(p.Values) == 0 {
			return Taxonomy{}, fmt.Errorf("taxonomy %s: values[%d]: predicate %q has an empty list of values", t.Namespace, i, v.Predicate)
		}
	}
	return t, nil
}

// checkName refuses a namespace or predicate that a machine tag could
// not carry: empty, with spaces, or holding one of the bytes of not (a
// predicate may hold ':', as tlp:ex:chr does; a namespace may not).
func checkName(what, s, not string) error {
	if s == "" || strings.ContainsAny(s, not+" ") {
		return fmt.Errorf("%s: %q is not a machine tag name (empty, or a space or one of %s in it)", what, s, not)
	}
	return checkText(what, s)
}

// checkValue refuses a value that a machine tag could not carry.
func checkValue(what, s string) error {
	if s == "" || strings.Contains(s, `"`) {
		return fmt.Errorf("%s: %q is not a machine tag value (empty, or '\"' in it)", what, s)
	}
	return checkText(what, s)
}

func checkText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: %q is not UTF-8", what, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s: %q holds a control character", what, s)
		}
	}
	return nil
}

// Tag is a machine tag's parts.
type Tag struct {
	Namespace, Predicate, Value string
	// HasValue says the tag names a value (namespace:predicate="value").
	HasValue bool
}

// String writes the tag as MISP does: namespace:predicate or
// namespace:predicate="value".
func (t Tag) String() string {
	if t.HasValue {
		return t.Namespace + ":" + t.Predicate + `="` + t.Value + `"`
	}
	return t.Namespace + ":" + t.Predicate
}

// ParseTag reads a machine tag: namespace:predicate, or
// namespace:predicate="value" (the value in double quotes, which it may
// not hold; the predicate may hold ':', as tlp:ex:chr does). ok is false
// for anything else, which is a free label.
func ParseTag(s string) (Tag, bool) {
	ns, rest, found := strings.Cut(s, ":")
	if !found || ns == "" || rest == "" || strings.ContainsAny(ns, ` ="`) {
		return Tag{}, false
	}
	pred, val, hasVal := strings.Cut(rest, "=")
	if pred == "" || strings.ContainsAny(pred, `" `) {
		return Tag{}, false
	}
	if !hasVal {
		return Tag{Namespace: ns, Predicate: pred}, true
	}
	if len(val) < 3 || val[0] != '"' || val[len(val)-1] != '"' || strings.Contains(val[1:len(val)-1], `"`) {
		return Tag{}, false
	}
	return Tag{Namespace: ns, Predicate: pred, Value: val[1 : len(val)-1], HasValue: true}, true
}

// Set is a set of taxonomies, by namespace.
type Set struct {
	list []Taxonomy
	// byNS indexes list by lower-case namespace.
	byNS map[string]int
}

// NewSet returns the set of ts; a namespace twice (whatever its case) is
// an error.
func NewSet(ts ...Taxonomy) (*Set, error) {
	s := &Set{byNS: map[string]int{}}
	for _, t := range ts {
		k := strings.ToLower(t.Namespace)
		if _, dup := s.byNS[k]; dup {
			return nil, fmt.Errorf("taxonomy %s twice", t.Namespace)
		}
		s.byNS[k] = len(s.list)
		s.list = append(s.list, t)
	}
	slices.SortFunc(s.list, func(a, b Taxonomy) int { return strings.Compare(a.Namespace, b.Namespace) })
	for i, t := range s.list {
		s.byNS[strings.ToLower(t.Namespace)] = i
	}
	return s, nil
}

// Taxonomies returns the set's taxonomies, by namespace (the caller must
// not change them).
func (s *Set) Taxonomies() []Taxonomy { return s.list }

// ErrUnknownTag is what Check's errors wrap.
var ErrUnknownTag = errors.New("not in its taxonomy")

// Check checks a label: a machine tag of a namespace in the set must name
// a predicate of it and, when the predicate has values, one of them
// (and no value when it has none), all spelt as the taxonomy spells them.
// Anything else is a free label, which passes. The error names the label
// and what the taxonomy allows, or the tag it meant when only the case
// differs.
func (s *Set) Check(label string) error {
	tag, ok := ParseTag(label)
	if !ok {
		return nil
	}
	i, known := s.byNS[strings.ToLower(tag.Namespace)]
	if !known {
		return nil
	}
	t := s.list[i]
	fail := func(format string, args ...any) error {
		return fmt.Errorf("label %s: %w: %s", strconv.Quote(label), ErrUnknownTag, fmt.Sprintf(format, args...))
	}
	p := spelled(t.Predicates, func(q *Predicate) string { return q.Value }, tag.Predicate)
	if p == nil {
		names := make([]string, len(t.Predicates))
		for j, q := range t.Predicates {
			names[j] = q.Value
		}
		return fail("taxonomy %s has no predicate %q; it has %s", t.Namespace, tag.Predicate, list(names))
	}
	want := Tag{Namespace: t.Namespace, Predicate: p.Value}
	if len(p.Values) == 0 {
		if tag.HasValue {
			return fail("%s takes no value: write %s", want, want)
		}
	} else {
		if !tag.HasValue {
			return fail("%s takes a value, one of %s: write %s=\"%s\"", want, list(values(p)), want, p.Values[0].Value)
		}
		e := spelled(p.Values, func(v *Entry) string { return v.Value }, tag.Value)
		if e == nil {
			return fail("%s has no value %q; it has %s", want, tag.Value, list(values(p)))
		}
		want.Value, want.HasValue = e.Value, true
	}
	if want.String() != label {
		return fail("the taxonomy spells it %s", want)
	}
	return nil
}

func values(p *Predicate) []string {
	out := make([]string, len(p.Values))
	for i, e := range p.Values {
		out[i] = e.Value
	}
	return out
}

// list names at most 12 values.
func list(vs []string) string {
	q := make([]string, 0, min(len(vs), 12))
	for _, v := range vs[:min(len(vs), 12)] {
		q = append(q, strconv.Quote(v))
	}
	s := strings.Join(q, ", ")
	if len(vs) > 12 {
		s += fmt.Sprintf(" and %d more", len(vs)-12)
	}
	return s
}

//go:embed data/*.json
var data embed.FS

var (
	builtinOnce sync.Once
	builtin     *Set
	builtinErr  error
)

// Builtin returns the embedded taxonomies (see data/SOURCES.md).
func Builtin() (*Set, error) {
	builtinOnce.Do(func() {
		var ts []Taxonomy
		files, _ := fs.Glob(data, "data/*.json")
		for _, f := range files {
			b, err := data.ReadFile(f)
			if err != nil {
				builtinErr = fmt.Errorf("read %s: %w", f, err)
				return
			}
			t, err := Parse(b)
			if err != nil {
				builtinErr = fmt.Errorf("%s: %w", f, err)
				return
			}
			ts = append(ts, t)
		}
		builtin, builtinErr = NewSet(ts...)
	})
	return builtin, builtinErr
}

// spelled returns the item of items whose value is want, ignoring case,
// the one spelled exactly as want if there is one; nil if none.
func spelled[T any](items []T, value func(*T) string, want string) *T {
	var found *T
	for j := range items {
		v := value(&items[j])
		if strings.EqualFold(v, want) {
			if v == want {
				return &items[j]
			}
			if found == nil {
				found = &items[j]
			}
		}
	}
	return found
}
