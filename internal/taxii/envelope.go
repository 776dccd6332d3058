package taxii

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/entente-cti/entente"
)

// DefaultMaxDepth is the deepest JSON nesting [SplitEnvelope] accepts when
// given no limit. The envelope is depth 1, its objects list depth 2, each
// object depth 3.
const DefaultMaxDepth = 64

// SplitEnvelope reads a TAXII envelope (section 3.7) posted by a client
// and returns the JSON of each element of its objects list, in order, as
// sub-slices of body (nothing is copied or re-encoded). It checks in one
// pass that body is one well-formed JSON object in UTF-8 whose nesting is
// at most maxDepth deep (DefaultMaxDepth when maxDepth <= 0), that
// "objects", when present, is a list and appears once. Other members
// ("more", "next", anything else) are checked for syntax and ignored.
// Elements are not checked beyond JSON syntax: whether each is a valid
// STIX object is for the caller to decide, object by object.
//
// Errors are *entente.Error with code EINVALID naming the byte offset at
// fault.
func SplitEnvelope(body []byte, maxDepth int) ([]json.RawMessage, error) {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	s := scanner{b: body, maxDepth: maxDepth}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, s.fail("the request body is not a JSON object (a TAXII envelope)")
	}
	var objects []json.RawMessage
	seen := false
	s.i++
	s.ws()
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			s.ws()
			start := s.i
			if err := s.str(); err != nil {
				return nil, err
			}
			name := s.b[start:s.i]
			s.ws()
			if s.peek() != ':' {
				return nil, s.fail("expected ':' after an object member name")
			}
			s.i++
			s.ws()
			if isObjects(name) {
				if seen {
					return nil, s.fail(`the envelope has "objects" more than once`)
				}
				seen = true
				if s.peek() != '[' {
					return nil, s.fail(`the envelope's "objects" is not a list`)
				}
				var err error
				if objects, err = s.list(); err != nil {
					return nil, err
				}
			} else if err := s.value(2); err != nil {
				return nil, err
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
				continue
			case '}':
				s.i++
			default:
				return nil, s.fail("expected ',' or '}' in the envelope")
			}
			break
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return nil, s.fail("unexpected data after the envelope")
	}
	return objects, nil
}

// isObjects reports whether the raw JSON string name (with its quotes)
// is "objects", however it is escaped.
func isObjects(name []byte) bool {
	if string(name) == `"objects"` {
		return true
	}
	for _, c := range name {
		if c == '\\' {
			var s string
			return json.Unmarshal(name, &s) == nil && s == "objects"
		}
	}
	return false
}

// scanner checks JSON syntax over b from position i.
type scanner struct {
	b        []byte
	i        int
	maxDepth int
}

func (s *scanner) fail(msg string) error {
	return entente.Errorf(entente.EINVALID, "malformed JSON at byte %d: %s", s.i, msg)
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// list scans the envelope's objects list (depth 2) and returns the span
// of each element.
func (s *scanner) list() ([]json.RawMessage, error) {
	if 2 > s.maxDepth {
		return nil, s.deep()
	}
	s.i++ // '['
	s.ws()
	if s.peek() == ']' {
		s.i++
		return nil, nil
	}
	var out []json.RawMessage
	for {
		s.ws()
		start := s.i
		if err := s.value(3); err != nil {
			return nil, err
		}
		out = append(out, json.RawMessage(s.b[start:s.i:s.i]))
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return out, nil
		default:
			return nil, s.fail("expected ',' or ']' in the objects list")
		}
	}
}

func (s *scanner) deep() error {
	return entente.Errorf(entente.EINVALID, "JSON at byte %d is nested deeper than %d levels", s.i, s.maxDepth)
}

// value scans one JSON value that sits at nesting depth depth (if it is
// an object or a list).
func (s *scanner) value(depth int) error {
	switch c := s.peek(); c {
	case '{':
		if depth > s.maxDepth {
			return s.deep()
		}
		s.i++
		s.ws()
		if s.peek() == '}' {
			s.i++
			return nil
		}
		for {
			s.ws()
			if err := s.str(); err != nil {
				return err
			}
			s.ws()
			if s.peek() != ':' {
				return s.fail("expected ':' after an object member name")
			}
			s.i++
			s.ws()
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
			case '}':
				s.i++
				return nil
			default:
				return s.fail("expected ',' or '}' in an object")
			}
		}
	case '[':
		if depth > s.maxDepth {
			return s.deep()
		}
		s.i++
		s.ws()
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for {
			s.ws()
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return s.fail("expected ',' or ']' in a list")
			}
		}
	case '"':
		return s.str()
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	case 0:
		if s.i >= len(s.b) {
			return s.fail("unexpected end of input")
		}
		return s.fail("unexpected byte 0x00")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return s.num()
		}
		return s.fail("unexpected character " + strconv.QuoteRune(rune(c)))
	}
}

func (s *scanner) lit(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return s.fail("invalid literal")
	}
	s.i += len(word)
	return nil
}

// num scans a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) num() error {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return s.fail("invalid number")
	}
	if s.peek() == '.' {
		s.i++
		if !s.digits() {
			return s.fail("invalid number: no digit after the decimal point")
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return s.fail("invalid number: no digit in the exponent")
		}
	}
	return nil
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// str scans a string, checking escapes, control characters and UTF-8.
func (s *scanner) str() error {
	if s.peek() != '"' {
		return s.fail("expected a string")
	}
	s.i++
	for s.i < len(s.b) {
		// Fast path: a run of plain ASCII characters.
		i, b := s.i, s.b
		for i < len(b) && plain[b[i]] {
			i++
		}
		s.i = i
		if i == len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			s.i++
			return nil
		case c == '\\':
			s.i++
			switch s.peek() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				if len(s.b)-s.i < 4 {
					return s.fail("truncated \\u escape")
				}
				for _, h := range s.b[s.i : s.i+4] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return s.fail("invalid \\u escape")
					}
				}
				s.i += 4
			default:
				return s.fail("invalid escape in a string")
			}
		case c < 0x20:
			return s.fail("control character in a string")
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n <= 1 {
				return s.fail("invalid UTF-8 in a string")
			}
			s.i += n
		}
	}
	return s.fail("unterminated string")
}

// AppendEnvelope appends to dst the envelope (section 3.7) holding
// objects, each written verbatim, with its more and next members: next
// is written only when more is true and next is not empty, objects only
// when there are some.
func AppendEnvelope(dst []byte, more bool, next string, objects []json.RawMessage) []byte {
	dst = append(dst, `{"more":`...)
	dst = strconv.AppendBool(dst, more)
	if more && next != "" {
		dst = append(dst, `,"next":`...)
		q, _ := json.Marshal(next) // a string always marshals
		dst = append(dst, q...)
	}
	if len(objects) > 0 {
		dst = append(dst, `,"objects":[`...)
		for i, o := range objects {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, o...)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// CheckJSON checks that b is one well-formed JSON value in UTF-8, nested
// at most maxDepth deep (DefaultMaxDepth when maxDepth <= 0). Errors are
// *entente.Error with code EINVALID naming the byte offset at fault.
func CheckJSON(b []byte, maxDepth int) error {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	s := scanner{b: b, maxDepth: maxDepth}
	s.ws()
	if err := s.value(1); err != nil {
		return err
	}
	s.ws()
	if s.i != len(s.b) {
		return s.fail("unexpected data after the JSON value")
	}
	return nil
}

// plain marks the bytes that stand for themselves in a JSON string:
// printable ASCII other than '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
