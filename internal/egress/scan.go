package egress

import "bytes"

// gateMeta is what the gate reads from an object's JSON: its marking
// references and creator, in their canonical spelling, and whether it
// carries granular markings (which the gate then reads in full).
type gateMeta struct {
	markingRefs  []string
	createdByRef string
	granular     bool
}

// scanGateMeta reads the top-level object_marking_refs and created_by_ref
// of a stored object in one pass that jumps over strings, without
// decoding the rest. It handles only the common form: no backslash
// anywhere (so no string holds a quote and no member name is escaped),
// each of the two members at most once, the refs an array of strings.
// ok is false for anything else, and the caller decodes the object
// fully: a reference the scan could miss must never be missed.
func scanGateMeta(raw []byte) (m gateMeta, ok bool) { return (*refCache)(nil).scan(raw) }

// refCache keeps the marking arrays and creators that scanGateMeta has
// read, so that the objects of a page, which mostly share them, share
// one copy instead of each allocating its own. The slices it returns are
// shared: nobody may change them. A nil refCache keeps nothing. It is not
// safe for concurrent use.
type refCache struct {
	arrays  map[string][]string
	strings map[string]string
}

// str returns b as a string, the cached one when there is one.
func (c *refCache) str(b []byte) string {
	if c == nil {
		return string(b)
	}
	if s, ok := c.strings[string(b)]; ok {
		return s
	}
	if c.strings == nil {
		c.strings = map[string]string{}
	}
	s := string(b)
	c.strings[s] = s
	return s
}

// scan is scanGateMeta with c's strings.
func (c *refCache) scan(raw []byte) (m gateMeta, ok bool) {
	if bytes.IndexByte(raw, '\\') >= 0 {
		return m, false
	}
	var seenRefs, seenBy bool
	depth := 0
	expectKey := false
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '{':
			depth++
			expectKey = depth == 1
		case '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		case '"':
			end := bytes.IndexByte(raw[i+1:], '"')
			if end < 0 {
				return m, false
			}
			s := raw[i+1 : i+1+end]
			i += end + 1
			if !expectKey {
				continue
			}
			expectKey = false
			switch string(s) {
			case "granular_markings":
				m.granular = true
			case "object_marking_refs":
				if seenRefs {
					return m, false
				}
				seenRefs = true
				refs, n, ok := c.scanStringArray(raw[i+1:])
				if !ok {
					return m, false
				}
				m.markingRefs, i = refs, i+1+n
			case "created_by_ref":
				if seenBy {
					return m, false
				}
				seenBy = true
				j := skipColon(raw, i+1)
				if j < 0 || j >= len(raw) || raw[j] != '"' {
					return m, false
				}
				end := bytes.IndexByte(raw[j+1:], '"')
				if end < 0 {
					return m, false
				}
				if hasUpper(raw[j+1 : j+1+end]) {
					return m, false // the decoder reads it in its canonical spelling
				}
				m.createdByRef = c.str(raw[j+1 : j+1+end])
				i = j + 1 + end
			}
		}
	}
	return m, depth == 0
}

// skipColon returns the index after the colon that follows a member name
// ending before i (and the white space after it), or -1.
func skipColon(raw []byte, i int) int {
	for i < len(raw) && isSpace(raw[i]) {
		i++
	}
	if i >= len(raw) || raw[i] != ':' {
		return -1
	}
	i++
	for i < len(raw) && isSpace(raw[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// scanStringArray reads `: ["a", "b"]` at the start of b (no escapes) and
// returns the strings and the index of the closing bracket.
func (c *refCache) scanStringArray(b []byte) ([]string, int, bool) {
	i := skipColon(b, 0)
	if i < 0 || i >= len(b) || b[i] != '[' {
		return nil, 0, false
	}
	start, n := i, 0
	for i++; i < len(b); i++ {
		switch ch := b[i]; {
		case isSpace(ch) || ch == ',':
		case ch == ']':
			if hasUpper(b[start : i+1]) {
				return nil, 0, false // the decoder reads them in their canonical spelling
			}
			return c.array(b[start:i+1], n), i, true
		case ch == '"':
			end := bytes.IndexByte(b[i+1:], '"')
			if end < 0 {
				return nil, 0, false
			}
			n++
			i += end + 1
		default:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// array returns the n strings of text, a JSON array of strings without
// escapes that scanStringArray has checked, the cached slice when there
// is one.
func (c *refCache) array(text []byte, n int) []string {
	if c != nil {
		if a, ok := c.arrays[string(text)]; ok {
			return a
		}
	}
	out := make([]string, 0, n)
	for i := 0; i < len(text); i++ {
		if text[i] == '"' {
			end := bytes.IndexByte(text[i+1:], '"')
			out = append(out, c.str(text[i+1:i+1+end]))
			i += end + 1
		}
	}
	if c != nil {
		if c.arrays == nil {
			c.arrays = map[string][]string{}
		}
		c.arrays[string(text)] = out
	}
	return out
}

// hasUpper reports whether b holds an upper-case ASCII letter: a STIX
// identifier spelled with upper-case hex digits, which the scan leaves
// to the decoder to canonicalise.
func hasUpper(b []byte) bool {
	for _, c := range b {
		if c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}
