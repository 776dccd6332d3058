package stix

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Problem is one way in which an object breaks the STIX 2.1
// specification: the property at fault (a path such as
// "external_references[1].source_name"; empty for the object as a whole)
// and why.
type Problem struct {
	Property string
	Message  string
}

// String formats the problem as `property "p": message`.
func (p Problem) String() string {
	if p.Property == "" {
		return p.Message
	}
	return fmt.Sprintf("property %q: %s", p.Property, p.Message)
}

// ValidationError lists every problem found in one object. Its message
// names the object (by id, or by type when it has no usable id) and each
// faulty property with the reason.
type ValidationError struct {
	ObjectID string
	Type     string
	Problems []Problem
}

// Error returns e.g. `indicator--…: property "valid_until": must be later
// than valid_from; property "pattern": required`.
func (e *ValidationError) Error() string {
	var b strings.Builder
	switch {
	case e.ObjectID != "":
		b.WriteString(e.ObjectID)
	case e.Type != "":
		b.WriteString("object of type ")
		b.WriteString(strconv.Quote(e.Type))
	default:
		b.WriteString("object")
	}
	b.WriteString(": ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Validate checks o's JSON against the rules the STIX 2.1 specification
// makes MUST: the common properties and their forms, the required
// properties and value rules of every SDO, SRO, SCO and meta object, the
// closed enumerations, marking references and granular markings. Open
// vocabularies and SHOULD rules are not enforced. Custom object types and
// custom properties are accepted when they follow the generic rules.
// The result is nil or a *ValidationError listing every problem.
func Validate(o *Object) error {
	if o == nil || len(o.Raw) == 0 {
		return &ValidationError{Problems: []Problem{{"", "empty object"}}}
	}
	// The tree lives in a pooled scratch: nothing of it outlives this
	// call (the error's strings are copies or share o.Raw).
	sc := scratchPool.Get().(*scratch)
	defer func() {
		sc.reset()
		scratchPool.Put(sc)
	}()
	root, err := parseJSONScratch(o.Raw, sc)
	if err != nil {
		return &ValidationError{ObjectID: o.ID, Type: o.Type, Problems: []Problem{{"", err.Error()}}}
	}
	sc.root = root // the checker points to it: kept in the scratch, not allocated
	return validateTree(&sc.root, &sc.chk)
}

// validateTree validates a parsed object with c, a checker to reuse.
// The tree's strings may live in a scratch buffer that is reused after
// the call: what the error keeps of them is copied.
func validateTree(root *value, c *checker) error {
	if root.kind != kObject {
		return &ValidationError{Problems: []Problem{{"", "a STIX object must be a JSON object, not a " + root.kind.String()}}}
	}
	*c = checker{root: root, stack: c.stack[:0]}
	c.check()
	if len(c.probs) == 0 {
		return nil
	}
	e := &ValidationError{Type: strings.Clone(c.typ), Problems: c.probs}
	if id, ok := root.get("id"); ok && id.kind == kString {
		e.ObjectID = strings.Clone(id.str)
	}
	return e
}

// category is the kind of STIX object a type names.
type category uint8

const (
	catCustom category = iota // a type the specification does not define
	catSDO
	catSRO
	catSCO
	catMeta
)

// checker accumulates the problems of one object.
type checker struct {
	root  *value
	typ   string
	cat   category
	spec  *typeSpec
	probs []Problem
	stack []pathSeg // path of the value refsIn is at
}

// add records a problem. prop is copied: it may be a member name whose
// memory is reused once the validation is over.
func (c *checker) add(prop, format string, args ...any) {
	c.probs = append(c.probs, Problem{strings.Clone(prop), fmt.Sprintf(format, args...)})
}

func (c *checker) check() {
	r := c.root
	if r.dup != 0 {
		c.add(r.dupName(), "appears more than once in the object")
	}
	tv, ok := r.get("type")
	switch {
	case !ok:
		c.add("type", "required")
	case tv.kind != kString:
		c.add("type", "must be a string, not a %s", tv.kind)
	default:
		c.typ = tv.str
		if msg := typeNameProblem(tv.str); msg != "" {
			c.add("type", "%s", msg)
		}
	}
	if c.typ == "bundle" {
		c.add("type", "a bundle is a container, not a STIX object: read its objects with ReadBundle")
		return
	}
	c.spec = specs[c.typ]
	if c.spec != nil {
		c.cat = c.spec.cat
	} else if c.typ != "" && isNewSCO(r) {
		c.cat = catSCO
	}

	c.checkID()
	c.checkSpecVersion()
	c.checkCommon()
	c.checkProperties()
	if c.spec != nil {
		for _, p := range c.spec.required {
			if !r.has(p) {
				c.add(p, "required for %s objects", c.typ)
			}
		}
		if c.spec.check != nil {
			c.spec.check(c, r)
		}
	}
}

// isNewSCO reports whether an object of a custom type declares itself a
// cyber-observable through a "new-sco" extension.
func isNewSCO(r *value) bool {
	ext, ok := r.get("extensions")
	if !ok || ext.kind != kObject {
		return false
	}
	for _, m := range ext.obj {
		if et, ok := m.val.get("extension_type"); ok && et.kind == kString && et.str == "new-sco" {
			return true
		}
	}
	return false
}

// typeNameProblem checks the form of an object type name.
func typeNameProblem(s string) string {
	if len(s) < 3 || len(s) > 250 {
		return fmt.Sprintf("%q must be 3 to 250 characters long", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Sprintf("%q may contain only a-z, 0-9 and '-'", s)
		}
	}
	if strings.Contains(s, "--") {
		return fmt.Sprintf("%q must not contain \"--\"", s)
	}
	if s[0] < 'a' || s[0] > 'z' {
		return fmt.Sprintf("%q must start with a letter", s)
	}
	if s[len(s)-1] == '-' {
		return fmt.Sprintf("%q must not end with '-'", s)
	}
	return ""
}

// identifierProblem checks that s is a STIX identifier: an object type,
// "--" and an RFC 4122 UUID.
func identifierProblem(s string) string {
	i := strings.LastIndex(s, "--")
	if i < 0 {
		return fmt.Sprintf("%q is not an identifier (type--UUID)", s)
	}
	if msg := typeNameProblem(s[:i]); msg != "" {
		return fmt.Sprintf("%q is not an identifier: type %s", s, msg)
	}
	if !isUUID(s[i+2:]) {
		return fmt.Sprintf("%q is not an identifier: %q is not an RFC 4122 UUID", s, s[i+2:])
	}
	return ""
}

// idType returns the type part of an identifier.
func idType(id string) string {
	if i := strings.LastIndex(id, "--"); i >= 0 {
		return id[:i]
	}
	return ""
}

// isUUID reports whether s is a UUID in the 8-4-4-4-12 hex form with an
// RFC 4122 variant and a version from 1 to 8.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	if s[14] < '1' || s[14] > '8' {
		return false
	}
	switch s[19] {
	case '8', '9', 'a', 'b', 'A', 'B':
		return true
	}
	return false
}

func (c *checker) checkID() {
	v, ok := c.root.get("id")
	if !ok {
		c.add("id", "required")
		return
	}
	if v.kind != kString {
		c.add("id", "must be a string, not a %s", v.kind)
		return
	}
	if msg := identifierProblem(v.str); msg != "" {
		c.add("id", "%s", msg)
		return
	}
	if c.typ != "" && idType(v.str) != c.typ {
		c.add("id", "%q must start with the object's type %q", v.str, c.typ+"--")
	}
}

func (c *checker) checkSpecVersion() {
	v, ok := c.root.get("spec_version")
	if !ok {
		if c.cat != catSCO {
			c.add("spec_version", "required (must be \"2.1\")")
		}
		return
	}
	if v.kind != kString {
		c.add("spec_version", "must be the string \"2.1\", not a %s", v.kind)
		return
	}
	if v.str != "2.1" {
		c.add("spec_version", "is %q: only STIX 2.1 objects are accepted (spec_version must be \"2.1\")", v.str)
	}
}

// checkCommon checks the common properties that every object may carry.
func (c *checker) checkCommon() {
	r := c.root
	created, hasCreated := c.timestamp("created")
	modified, hasModified := c.timestamp("modified")
	switch c.cat {
	case catSDO, catSRO, catCustom:
		if !hasCreated && !r.has("created") {
			c.add("created", "required")
		}
		if !hasModified && !r.has("modified") {
			c.add("modified", "required")
		}
	case catMeta:
		if !hasCreated && !r.has("created") {
			c.add("created", "required")
		}
		if c.typ != "marking-definition" && !hasModified && !r.has("modified") {
			c.add("modified", "required")
		}
	}
	for _, p := range []string{"created", "modified"} {
		if v, ok := r.get(p); ok && v.kind == kString && !MillisecondPrecise(v.str) {
			if (p == "created" && hasCreated) || (p == "modified" && hasModified) {
				c.add(p, "timestamp %q must be precise to the millisecond (at least 3 fractional digits)", v.str)
			}
		}
	}
	if hasCreated && hasModified && modified.Before(created) {
		c.add("modified", "must not be earlier than created (%s < %s)", FormatTimestamp(modified), FormatTimestamp(created))
	}
	if c.cat == catSCO {
		for _, p := range []string{"created", "modified", "created_by_ref", "revoked", "labels", "confidence", "lang", "external_references"} {
			if c.spec != nil && r.has(p) && !c.spec.props[p] {
				c.add(p, "is not a property of cyber-observable objects")
			}
		}
	}
	if v, ok := r.get("created_by_ref"); ok {
		c.ref("created_by_ref", v, "identity")
	}
	if v, ok := r.get("revoked"); ok && v.kind != kBool {
		c.add("revoked", "must be a boolean, not a %s", v.kind)
	}
	if v, ok := r.get("confidence"); ok {
		c.intRange("confidence", v, 0, 100)
	}
	if v, ok := r.get("lang"); ok && v.kind != kString {
		c.add("lang", "must be a string, not a %s", v.kind)
	}
	if v, ok := r.get("labels"); ok {
		c.stringList("labels", v)
	}
	if v, ok := r.get("object_marking_refs"); ok {
		if c.list("object_marking_refs", v) {
			for i := range v.obj {
				if !refOK(&v.obj[i].val, "marking-definition") {
					c.ref(fmt.Sprintf("object_marking_refs[%d]", i), &v.obj[i].val, "marking-definition")
				}
			}
		}
	}
	if v, ok := r.get("external_references"); ok {
		c.externalReferences(v)
	}
	if v, ok := r.get("granular_markings"); ok {
		c.granularMarkings(v)
	}
	if v, ok := r.get("kill_chain_phases"); ok {
		c.killChainPhases(v)
	}
	if v, ok := r.get("extensions"); ok {
		c.extensions(v)
	}
	if v, ok := r.get("defanged"); ok && v.kind != kBool {
		c.add("defanged", "must be a boolean, not a %s", v.kind)
	}
}

// checkProperties checks every property: the form of custom property
// names, the data type of the properties the specification defines for
// the type, and that every *_ref and *_refs value is an identifier.
func (c *checker) checkProperties() {
	for i := range c.root.obj {
		m := &c.root.obj[i]
		known := commonProps[m.name] || (c.spec != nil && c.spec.props[m.name])
		if !known {
			if msg := customPropertyNameProblem(m.name); msg != "" {
				c.add(m.name, "%s", msg)
			}
		}
		if known && c.spec != nil {
			if k, ok := propKinds[m.name]; ok {
				c.kindCheck(m.name, &m.val, k)
			}
			if timestampProps[m.name] && !commonProps[m.name] {
				c.timestampValue(m.name, &m.val)
			}
		}
		if m.name == "granular_markings" {
			continue // marking_ref is checked with the granular markings
		}
		c.stack = append(c.stack[:0], pathSeg{name: m.name, index: -1})
		c.refsIn(m.name, &m.val, 0)
	}
}

// customPropertyNameProblem checks the form the specification requires of
// custom property names.
func customPropertyNameProblem(name string) string {
	if len(name) < 3 || len(name) > 250 {
		return "custom property names must be 3 to 250 characters long"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return "custom property names may contain only a-z, 0-9 and '_'"
		}
	}
	return ""
}

// refsIn checks, at any depth, that the values of properties named *_ref
// or *_refs are identifiers (and, for the properties whose target types
// the specification fixes, identifiers of those types). name is the
// member name of v ("" for list elements); c.stack holds the path to v.
func (c *checker) refsIn(name string, v *value, depth int) {
	switch {
	case strings.HasSuffix(name, "_ref"):
		if depth == 0 && name == "created_by_ref" {
			return // checked with the common properties
		}
		if depth == 0 && v.kind == kString && v.str == "" && !(c.spec != nil && c.spec.props[name]) {
			// Tolerated: a custom reference property left empty (ATT&CK
			// writes x_mitre_data_source_ref: "" for "no reference").
			return
		}
		if targets := c.targets(name, depth); !refOK(v, targets...) {
			c.ref(c.pathString(), v, targets...)
		}
		return
	case strings.HasSuffix(name, "_refs"):
		if depth == 0 && name == "object_marking_refs" {
			return
		}
		if v.kind != kArray || len(v.obj) == 0 {
			c.list(c.pathString(), v) // reports why
			return
		}
		targets := c.targets(name, depth)
		for i := range v.obj {
			if !refOK(&v.obj[i].val, targets...) {
				c.ref(fmt.Sprintf("%s[%d]", c.pathString(), i), &v.obj[i].val, targets...)
			}
		}
		return
	}
	if depth > 8 {
		return
	}
	switch v.kind {
	case kObject:
		if v.dup != 0 {
			c.add(c.pathString()+"."+v.dupName(), "appears more than once")
		}
		for i := range v.obj {
			c.stack = append(c.stack, pathSeg{name: v.obj[i].name, index: -1})
			c.refsIn(v.obj[i].name, &v.obj[i].val, depth+1)
			c.stack = c.stack[:len(c.stack)-1]
		}
	case kArray:
		for i := range v.obj {
			if v.obj[i].val.kind == kObject || v.obj[i].val.kind == kArray {
				c.stack = append(c.stack, pathSeg{index: i})
				c.refsIn("", &v.obj[i].val, depth+1)
				c.stack = c.stack[:len(c.stack)-1]
			}
		}
	}
}

// pathSeg is one step of a property path: a member name, or a list
// index when index >= 0.
type pathSeg struct {
	name  string
	index int
}

// pathString formats c.stack as "a.b[2].c".
func (c *checker) pathString() string {
	var b strings.Builder
	for i, s := range c.stack {
		if s.index >= 0 {
			fmt.Fprintf(&b, "[%d]", s.index)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.name)
	}
	return b.String()
}

// targets returns the types a top-level reference property of the
// object's type may point to (nil for any type).
func (c *checker) targets(name string, depth int) []string {
	if depth != 0 {
		return nil
	}
	var buf [96]byte
	key := append(append(append(buf[:0], c.typ...), '.'), name...)
	return refTargets[string(key)] // no allocation for the lookup
}

// refOK reports whether ref would find no problem with v.
func refOK(v *value, types ...string) bool {
	if v.kind != kString || identifierProblem(v.str) != "" {
		return false
	}
	return len(types) == 0 || refTypeOK(idType(v.str), types)
}

// refTypeOK reports whether an identifier of type t may be referenced
// where the given types are expected.
func refTypeOK(t string, types []string) bool {
	for _, want := range types {
		switch want {
		case "SCO":
			if s := specs[t]; s != nil && s.cat == catSCO {
				return true
			}
		case "SDO":
			if s := specs[t]; s == nil || s.cat == catSDO {
				return true // custom types may be SDOs
			}
		default:
			if t == want {
				return true
			}
		}
	}
	return false
}

// ref checks that v is an identifier, of one of the given types if any.
func (c *checker) ref(path string, v *value, types ...string) {
	if v.kind != kString {
		c.add(path, "must be an identifier string, not a %s", v.kind)
		return
	}
	if msg := identifierProblem(v.str); msg != "" {
		c.add(path, "%s", msg)
		return
	}
	if len(types) == 0 {
		return
	}
	if refTypeOK(idType(v.str), types) {
		return
	}
	c.add(path, "%q must reference an object of type %s", v.str, strings.Join(types, " or "))
}

// timestamp returns the top-level timestamp property p, reporting a
// problem when it is present but malformed.
func (c *checker) timestamp(p string) (time.Time, bool) {
	v, ok := c.root.get(p)
	if !ok {
		return time.Time{}, false
	}
	return c.timestampValue(p, v)
}

func (c *checker) timestampValue(p string, v *value) (time.Time, bool) {
	if v.kind != kString {
		c.add(p, "must be a timestamp string, not a %s", v.kind)
		return time.Time{}, false
	}
	t, err := ParseTimestamp(v.str)
	if err != nil {
		c.add(p, "invalid timestamp: %v", err)
		return time.Time{}, false
	}
	return t, true
}

// order checks that the timestamp property later is not before (or, when
// strict, is after) the timestamp property earlier.
func (c *checker) order(earlier, later string, strict bool) {
	e, ok1 := c.quietTimestamp(earlier)
	l, ok2 := c.quietTimestamp(later)
	if !ok1 || !ok2 {
		return
	}
	if strict && !l.After(e) {
		c.add(later, "must be later than %s", earlier)
	} else if !strict && l.Before(e) {
		c.add(later, "must not be earlier than %s", earlier)
	}
}

// quietTimestamp returns a top-level timestamp without reporting problems
// (they are reported once by checkProperties).
func (c *checker) quietTimestamp(p string) (time.Time, bool) {
	v, ok := c.root.get(p)
	if !ok || v.kind != kString {
		return time.Time{}, false
	}
	t, err := ParseTimestamp(v.str)
	return t, err == nil
}

// list checks that v is a non-empty list.
func (c *checker) list(path string, v *value) bool {
	if v.kind != kArray {
		c.add(path, "must be a list, not a %s", v.kind)
		return false
	}
	if len(v.obj) == 0 {
		c.add(path, "must not be an empty list")
		return false
	}
	return true
}

// stringList checks that v is a non-empty list of strings.
func (c *checker) stringList(path string, v *value) {
	if !c.list(path, v) {
		return
	}
	for i := range v.obj {
		if v.obj[i].val.kind != kString {
			c.add(fmt.Sprintf("%s[%d]", path, i), "must be a string, not a %s", v.obj[i].val.kind)
		}
	}
}

// integer returns v as an integer, reporting a problem when it is not one.
func (c *checker) integer(path string, v *value) (int64, bool) {
	if v.kind != kNumber {
		c.add(path, "must be an integer, not a %s", v.kind)
		return 0, false
	}
	n, err := strconv.ParseInt(v.str, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(v.str, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			c.add(path, "must be an integer, not %s", v.str)
			return 0, false
		}
		n = int64(f)
	}
	return n, true
}

func (c *checker) intRange(path string, v *value, lo, hi int64) {
	n, ok := c.integer(path, v)
	if ok && (n < lo || n > hi) {
		c.add(path, "must be between %d and %d, not %d", lo, hi, n)
	}
}

func (c *checker) number(path string, v *value) (float64, bool) {
	if v.kind != kNumber {
		c.add(path, "must be a number, not a %s", v.kind)
		return 0, false
	}
	f, err := strconv.ParseFloat(v.str, 64)
	if err != nil {
		c.add(path, "must be a number, not %s", v.str)
		return 0, false
	}
	return f, true
}

// kindCheck checks the data type of a property the specification defines.
func (c *checker) kindCheck(path string, v *value, k propKind) {
	switch k {
	case pString:
		if v.kind != kString {
			c.add(path, "must be a string, not a %s", v.kind)
		}
	case pBool:
		if v.kind != kBool {
			c.add(path, "must be a boolean, not a %s", v.kind)
		}
	case pInt:
		c.integer(path, v)
	case pNonNegInt:
		if n, ok := c.integer(path, v); ok && n < 0 {
			c.add(path, "must not be negative")
		}
	case pNumber:
		c.number(path, v)
	case pStringList:
		c.stringList(path, v)
	case pObjectList:
		if c.list(path, v) {
			for i := range v.obj {
				if v.obj[i].val.kind != kObject {
					c.add(fmt.Sprintf("%s[%d]", path, i), "must be an object, not a %s", v.obj[i].val.kind)
				}
			}
		}
	case pDict:
		if v.kind != kObject {
			c.add(path, "must be a dictionary (JSON object), not a %s", v.kind)
		} else if path == "hashes" || strings.HasSuffix(path, ".hashes") {
			c.hashes(path, v)
		}
	}
}

// hashLengths are the hexadecimal lengths the specification's hashes
// type fixes for the hash algorithms it names.
var hashLengths = map[string]int{
	"MD5": 32, "SHA-1": 40, "SHA-256": 64, "SHA-512": 128, "SHA3-256": 64, "SHA3-512": 128,
}

// hashes checks a hashes dictionary.
func (c *checker) hashes(path string, v *value) {
	if len(v.obj) == 0 {
		c.add(path, "must not be empty")
	}
	for i := range v.obj {
		m := &v.obj[i]
		p := path + "." + m.name
		if len(m.name) < 3 || len(m.name) > 250 {
			c.add(p, "hash algorithm names must be 3 to 250 characters long")
		}
		if m.val.kind != kString {
			c.add(p, "must be a string, not a %s", m.val.kind)
			continue
		}
		if n, ok := hashLengths[m.name]; ok {
			if !HashValue(m.name, m.val.str) {
				c.add(p, "%q is not a %s hash (%d hexadecimal digits)", m.val.str, m.name, n)
			}
		}
	}
}

// HashValue reports whether v is a hash of algorithm alg, one the
// specification names, as Validate accepts it: its number of hexadecimal
// digits. It is false for other algorithms.
func HashValue(alg, v string) bool {
	n, ok := hashLengths[alg]
	return ok && len(v) == n && AllHex(v)
}

// AllHex reports whether s is all hexadecimal digits.
func AllHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func (c *checker) externalReferences(v *value) {
	if !c.list("external_references", v) {
		return
	}
	for i := range v.obj {
		// at formats the path only when there is a problem to report.
		at := func(prop string) string {
			if prop == "" {
				return fmt.Sprintf("external_references[%d]", i)
			}
			return fmt.Sprintf("external_references[%d].%s", i, prop)
		}
		e := &v.obj[i].val
		if e.kind != kObject {
			c.add(at(""), "must be an object, not a %s", e.kind)
			continue
		}
		sn, ok := e.get("source_name")
		if !ok {
			c.add(at("source_name"), "required")
		} else if sn.kind != kString {
			c.add(at("source_name"), "must be a string, not a %s", sn.kind)
		}
		for _, s := range [...]string{"description", "url", "external_id"} {
			if x, ok := e.get(s); ok && x.kind != kString {
				c.add(at(s), "must be a string, not a %s", x.kind)
			}
		}
		if h, ok := e.get("hashes"); ok {
			if h.kind != kObject {
				c.add(at("hashes"), "must be a dictionary, not a %s", h.kind)
			} else {
				c.hashes(at("hashes"), h)
			}
		}
	}
}

func (c *checker) killChainPhases(v *value) {
	if !c.list("kill_chain_phases", v) {
		return
	}
	for i := range v.obj {
		at := func(prop string) string {
			if prop == "" {
				return fmt.Sprintf("kill_chain_phases[%d]", i)
			}
			return fmt.Sprintf("kill_chain_phases[%d].%s", i, prop)
		}
		k := &v.obj[i].val
		if k.kind != kObject {
			c.add(at(""), "must be an object, not a %s", k.kind)
			continue
		}
		for _, s := range [...]string{"kill_chain_name", "phase_name"} {
			x, ok := k.get(s)
			switch {
			case !ok:
				c.add(at(s), "required")
			case x.kind != kString:
				c.add(at(s), "must be a string, not a %s", x.kind)
			case x.str == "":
				c.add(at(s), "must not be empty")
			}
		}
	}
}

func (c *checker) granularMarkings(v *value) {
	if !c.list("granular_markings", v) {
		return
	}
	for i := range v.obj {
		p := fmt.Sprintf("granular_markings[%d]", i)
		g := &v.obj[i].val
		if g.kind != kObject {
			c.add(p, "must be an object, not a %s", g.kind)
			continue
		}
		mref, hasRef := g.get("marking_ref")
		lang, hasLang := g.get("lang")
		switch {
		case hasRef && hasLang:
			c.add(p, "must have marking_ref or lang, not both")
		case !hasRef && !hasLang:
			c.add(p, "must have marking_ref or lang")
		case hasRef:
			c.ref(p+".marking_ref", mref, "marking-definition")
		case lang.kind != kString:
			c.add(p+".lang", "must be a string, not a %s", lang.kind)
		}
		sel, ok := g.get("selectors")
		if !ok {
			c.add(p+".selectors", "required")
			continue
		}
		if !c.list(p+".selectors", sel) {
			continue
		}
		for j := range sel.obj {
			sp := fmt.Sprintf("%s.selectors[%d]", p, j)
			s := &sel.obj[j].val
			if s.kind != kString {
				c.add(sp, "must be a string, not a %s", s.kind)
				continue
			}
			if !selectorResolves(c.root, s.str) {
				c.add(sp, "%q does not select a property of this object", s.str)
			}
		}
	}
}

// selectorResolves reports whether a granular-marking selector
// ("description", "external_references.[0].source_name") names a
// property present in the object.
func selectorResolves(root *value, sel string) bool {
	if sel == "" {
		return false
	}
	cur := root
	for _, part := range strings.Split(sel, ".") {
		if strings.HasPrefix(part, "[") && strings.HasSuffix(part, "]") {
			n, err := strconv.Atoi(part[1 : len(part)-1])
			if err != nil || cur.kind != kArray || n < 0 || n >= len(cur.obj) {
				return false
			}
			cur = &cur.obj[n].val
			continue
		}
		next, ok := cur.get(part)
		if !ok {
			return false
		}
		cur = next
	}
	return true
}

// predefinedExtensions are the extension names the specification defines
// for cyber-observable objects.
var predefinedExtensions = map[string]bool{
	"archive-ext": true, "ntfs-ext": true, "pdf-ext": true, "raster-image-ext": true,
	"windows-pebinary-ext": true, "http-request-ext": true, "icmp-ext": true,
	"socket-ext": true, "tcp-ext": true, "windows-process-ext": true,
	"windows-service-ext": true, "unix-account-ext": true,
}

// extensionTypes is the closed extension-type-enum.
var extensionTypes = map[string]bool{
	"new-sdo": true, "new-sco": true, "new-sro": true,
	"property-extension": true, "toplevel-property-extension": true,
}

func (c *checker) extensions(v *value) {
	if v.kind != kObject {
		c.add("extensions", "must be a dictionary (JSON object), not a %s", v.kind)
		return
	}
	if len(v.obj) == 0 {
		c.add("extensions", "must not be empty")
	}
	for i := range v.obj {
		m := &v.obj[i]
		p := "extensions." + m.name
		if !predefinedExtensions[m.name] {
			if !strings.HasPrefix(m.name, "extension-definition--") {
				c.add(p, "extension names must be a predefined extension or an extension-definition identifier")
			} else if msg := identifierProblem(m.name); msg != "" {
				c.add(p, "%s", msg)
			}
		}
		if m.val.kind != kObject {
			c.add(p, "must be an object, not a %s", m.val.kind)
			continue
		}
		if et, ok := m.val.get("extension_type"); ok {
			if et.kind != kString || !extensionTypes[et.str] {
				c.add(p+".extension_type", "must be one of new-sdo, new-sco, new-sro, property-extension, toplevel-property-extension")
			}
		}
		if predefinedExtensions[m.name] && len(m.val.obj) == 0 {
			c.add(p, "must contain at least one property of the extension")
		}
		if check := extensionChecks[m.name]; check != nil {
			check(c, p, &m.val)
		}
	}
}

// enum checks that the string property at path is one of a closed set.
func (c *checker) enum(path string, v *value, allowed ...string) {
	if v.kind != kString {
		c.add(path, "must be a string, not a %s", v.kind)
		return
	}
	for _, a := range allowed {
		if v.str == a {
			return
		}
	}
	c.add(path, "%q is not one of %s", v.str, strings.Join(allowed, ", "))
}

// enumProp checks an optional top-level (or nested) enum property.
func (c *checker) enumProp(obj *value, prefix, name string, allowed ...string) {
	if v, ok := obj.get(name); ok {
		c.enum(join(prefix, name), v, allowed...)
	}
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// atLeastOne checks that obj has at least one of the properties.
func (c *checker) atLeastOne(obj *value, props ...string) {
	for _, p := range props {
		if obj.has(p) {
			return
		}
	}
	c.add(props[0], "at least one of %s is required", strings.Join(props, ", "))
}

// anySpecificProperty checks that an SCO has at least one property
// besides the common ones (for types whose properties are all optional).
func (c *checker) anySpecificProperty() {
	for _, m := range c.root.obj {
		if !commonProps[m.name] || m.name == "extensions" {
			return
		}
	}
	c.add("", "a %s object must have at least one property besides the common ones", c.typ)
}

// ipValue checks an ipv4-addr or ipv6-addr value: an address or a CIDR
// block of the right family.
func (c *checker) ipValue(want4 bool) {
	v, ok := c.root.get("value")
	if !ok || v.kind != kString {
		return
	}
	s := v.str
	fam := "IPv6"
	if want4 {
		fam = "IPv4"
	}
	if !IPValueOfFamily(s, want4) {
		c.add("value", "%q is not an %s address or CIDR block", s, fam)
	}
}

// IPValueOfFamily reports whether s is what Validate accepts as the value
// of an ipv4-addr (want4) or ipv6-addr: an address or CIDR block of the
// family, without a zone.
func IPValueOfFamily(s string, want4 bool) bool {
	var addr netip.Addr
	var err error
	if strings.Contains(s, "/") {
		var p netip.Prefix
		p, err = netip.ParsePrefix(s)
		addr = p.Addr()
	} else {
		addr, err = netip.ParseAddr(s)
	}
	return err == nil && addr.Zone() == "" && addr.Is4() == want4
}

// MillisecondPrecise reports whether a timestamp has at least three
// fractional digits, as created and modified must.
func MillisecondPrecise(s string) bool {
	dot := strings.LastIndexByte(s, '.')
	return dot >= 0 && len(s)-dot-2 >= 3
}

// ValidID reports whether s is a STIX identifier: a type name, "--" and
// an RFC 4122 UUID.
func ValidID(s string) bool { return identifierProblem(s) == "" }
