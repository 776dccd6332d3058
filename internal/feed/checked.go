package feed

import (
	"encoding/json"
	"strings"
	"time"
	"unsafe"

	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/stix/pattern"
)

// Object is one object an [Importer] hands on: its JSON and, for an
// indicator it rendered itself from what it parsed, the envelope
// [stix.Decode] reads from that JSON, which [stix.Validate] is known to
// accept. A store can then take the object as it is: decoding and
// validating JSON the importer has just written from fields it holds was
// a fifth of a feeds import's CPU. Checked is nil for the objects the
// importer keeps as JSON (observables, relationships, MISP's identities
// and galaxy clusters, markings) and for any indicator it cannot vouch
// for by construction: decode and validate those.
type Object struct {
	Raw     json.RawMessage
	Checked *stix.Object
}

// checked returns the envelope of in, whose JSON is raw, as stix.Decode
// reads it, and true, or false unless stix.Validate is sure to find no
// problem with raw. It checks what Validate would check of an indicator this package
// renders, property by property: everything else in it is a string, a
// non-empty list of strings, or a list of objects of strings, which
// Validate accepts (appendJSON and json.Marshal render invalid UTF-8 as
// U+FFFD, so every string is valid), under names Validate accepts
// (TestCheckedIndicators compares both on every indicator of the shared
// feeds, and FuzzChecked on generated ones).
func (in *indicator) checked(raw json.RawMessage, ts *parsedTimes) (stix.Object, bool) {
	if len(in.KillChainPhases) > 0 || in.Type != "indicator" || in.SpecVersion != "2.1" ||
		!strings.HasPrefix(in.ID, "indicator--") || !stix.ValidID(in.ID) ||
		in.PatternType != "stix" || in.PatternVersion != "2.1" || strings.TrimSpace(in.Pattern) == "" {
		return stix.Object{}, false
	}
	if in.Confidence != nil && (*in.Confidence < 0 || *in.Confidence > 100) {
		return stix.Object{}, false
	}
	if in.CreatedByRef != "" && !refOf(in.CreatedByRef, "identity") {
		return stix.Object{}, false
	}
	for _, m := range in.MarkingRefs {
		if !refOf(m, "marking-definition") {
			return stix.Object{}, false
		}
	}
	// Timestamps: created and modified precise to the millisecond,
	// modified not before created, valid_until after valid_from.
	created, ok1 := ts.parse(in.Created)
	modified, ok2 := ts.parse(in.Modified)
	validFrom, ok3 := ts.parse(in.ValidFrom)
	if !ok1 || !ok2 || !ok3 || !stix.MillisecondPrecise(in.Created) || !stix.MillisecondPrecise(in.Modified) || modified.Before(created) {
		return stix.Object{}, false
	}
	o := stix.Object{Type: in.Type, ID: in.ID, SpecVersion: in.SpecVersion, Created: created, Modified: modified,
		Revoked: in.Revoked, CreatedByRef: in.CreatedByRef, Raw: raw}
	if in.ValidUntil != "" {
		vu, ok := ts.parse(in.ValidUntil)
		if !ok || !vu.After(validFrom) {
			return stix.Object{}, false
		}
		o.ValidUntil = vu
	}
	if !simplePattern(in.Pattern) {
		if _, err := pattern.ParseVersion(in.Pattern, pattern.Version21); err != nil {
			return stix.Object{}, false
		}
	}
	if len(in.MarkingRefs) > 0 {
		o.MarkingRefs = make([]string, len(in.MarkingRefs))
		copy(o.MarkingRefs, in.MarkingRefs)
	}
	return o, true
}

// refOf reports whether ref is an identifier of an object of type typ
// with nothing for stix.CanonicalRef to change.
func refOf(ref, typ string) bool {
	return strings.HasPrefix(ref, typ+"--") && strings.LastIndex(ref, "--") == len(typ) &&
		stix.ValidID(ref) && stix.CanonicalRef(ref) == ref
}

// parsedTimes remembers the last few timestamps parsed: the indicators
// of one input mostly share theirs.
type parsedTimes struct {
	s [8]string
	t [8]time.Time
	n int
}

// parse parses a STIX timestamp as stix.Decode and stix.Validate do.
func (c *parsedTimes) parse(s string) (time.Time, bool) {
	for i := range c.s {
		if c.s[i] == s && s != "" {
			return c.t[i], true
		}
	}
	t, err := stix.ParseTimestamp(s)
	if err != nil {
		return time.Time{}, false
	}
	c.s[c.n], c.t[c.n] = s, t
	c.n = (c.n + 1) % len(c.s)
	return t, true
}

// patternPrefixes are the beginnings of the patterns [Pattern] writes,
// each followed by a quoted string and "]", with the hex length of the
// hash it compares (0: any string).
var patternPrefixes = [...]struct {
	prefix string
	hex    int
}{
	{"[ipv4-addr:value = '", 0},
	{"[domain-name:value = '", 0},
	{"[url:value = '", 0},
	{"[ipv6-addr:value = '", 0},
	{"[network-traffic:extensions.'http-request-ext'.request_value = '", 0},
	{"[email-addr:value = '", 0},
	{"[file:hashes.MD5 = '", 32},
	{"[file:hashes.'SHA-1' = '", 40},
	{"[file:hashes.'SHA-256' = '", 64},
	{"[file:hashes.'SHA-512' = '", 128},
}

// simplePattern reports whether p is one of the patterns [Pattern]
// writes, a comparison of one of its paths with a string literal (quoted
// as quote does: only \' and \\ escaped) and, for a hash, of the
// hexadecimal digits the hash needs: the STIX pattern parser accepts any
// such pattern (it checks of a string literal only its escapes, and of a
// hash its digits), without the cost of parsing it. False says nothing:
// parse the pattern (FuzzSimplePattern compares the two).
func simplePattern(p string) bool {
	for _, pp := range patternPrefixes {
		if !strings.HasPrefix(p, pp.prefix) {
			continue
		}
		lit, ok := strings.CutSuffix(p[len(pp.prefix):], "']")
		if !ok {
			return false
		}
		if pp.hex > 0 {
			return len(lit) == pp.hex && stix.AllHex(lit)
		}
		for i := 0; i < len(lit); i++ {
			switch lit[i] {
			case '\\':
				if i+1 == len(lit) || (lit[i+1] != '\\' && lit[i+1] != '\'') {
					return false
				}
				i++
			case '\'':
				return false
			}
		}
		return true
	}
	return false
}

// scoTypes are the cyber-observable types [SCO] writes, each with what
// stix.Validate checks of its value: an IP address or CIDR block of a
// family, or, for a file, its one hash.
var scoTypes = map[string]byte{"ipv4-addr": '4', "ipv6-addr": '6', "domain-name": 'd', "url": 'u', "email-addr": 'e', "file": 'h'}

// scoTypeNames maps scoTypes' values back to the type names (a name
// that is not a view of the JSON read).
var scoTypeNames = func() map[byte]string {
	m := make(map[byte]string, len(scoTypes))
	for name, kind := range scoTypes {
		m[kind] = name
	}
	return m
}()

// checkedSCO returns the envelope stix.Decode reads from raw, and true, when raw is
// an observable exactly as SCO writes one whose value needs no escaping
// in JSON (`{"type":T,"spec_version":"2.1","id":I,"value":V}`, or
// `"hashes":{A:V}` for a file) and stix.Validate is sure to accept it,
// else nil (decode and validate it). It reads the shape, not how raw
// came to be (false: decode and validate it): whatever matches it, Validate checks only the type, the
// identifier, and the value (of an IP, its address or block and family;
// of a file, its hash), all checked here (FuzzCheckedSCO compares the
// two).
func checkedSCO(raw json.RawMessage) (stix.Object, bool) {
	// A view of raw, not a copy: nothing of it outlives the call (the
	// id is cloned, the type is the map's key).
	s := unsafe.String(unsafe.SliceData(raw), len(raw))
	rest, ok := strings.CutPrefix(s, `{"type":"`)
	if !ok {
		return stix.Object{}, false
	}
	i := strings.IndexByte(rest, '"')
	if i < 0 {
		return stix.Object{}, false
	}
	typ := rest[:i]
	kind, ok := scoTypes[typ]
	if !ok {
		return stix.Object{}, false
	}
	if rest, ok = strings.CutPrefix(rest[i:], `","spec_version":"2.1","id":"`); !ok {
		return stix.Object{}, false
	}
	if i = strings.IndexByte(rest, '"'); i < 0 {
		return stix.Object{}, false
	}
	id := rest[:i]
	if !strings.HasPrefix(id, typ) || !strings.HasPrefix(id[len(typ):], "--") || !stix.ValidID(id) {
		return stix.Object{}, false
	}
	rest = rest[i:]
	var v string
	if kind == 'h' {
		if rest, ok = strings.CutPrefix(rest, `","hashes":{"`); !ok {
			return stix.Object{}, false
		}
		alg, val, ok := strings.Cut(rest, `":"`)
		if !ok {
			return stix.Object{}, false
		}
		if v, ok = strings.CutSuffix(val, `"}}`); !ok || !stix.HashValue(alg, v) {
			return stix.Object{}, false
		}
	} else {
		if rest, ok = strings.CutPrefix(rest, `","value":"`); !ok {
			return stix.Object{}, false
		}
		if v, ok = strings.CutSuffix(rest, `"}`); !ok {
			return stix.Object{}, false
		}
		if !plainString(v) || ((kind == '4' || kind == '6') && !stix.IPValueOfFamily(v, kind == '4')) {
			return stix.Object{}, false
		}
	}
	return stix.Object{Type: scoTypeNames[kind], ID: strings.Clone(id), SpecVersion: "2.1", Raw: raw}, true
}

// plainString reports whether s is printable ASCII with no '"' or '\':
// between quotes, a JSON string without escapes.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// TakeSettledChecked is [Importer.TakeSettled] with, for each observable
// written as [checkedSCO] reads it, its envelope (see [Object]).
func (im *Importer) TakeSettledChecked() []Object {
	raws := im.TakeSettled()
	if len(raws) == 0 {
		return nil
	}
	out := make([]Object, len(raws))
	envs := make([]stix.Object, len(raws)) // one allocation, not one an object
	for i, raw := range raws {
		out[i].Raw = raw
		if env, ok := checkedSCO(raw); ok {
			envs[i] = env
			out[i].Checked = &envs[i]
		}
	}
	return out
}
