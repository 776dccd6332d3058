package sensor

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// obsURI is the request target of a URL, joined with the line's host into
// an ObsURL after the line is parsed; obsTime is a timestamp field.
const (
	obsURI  ObsKind = 100
	obsTime ObsKind = 101
)

// maxJSONDepth bounds the nesting of the JSON a line may hold.
const maxJSONDepth = 64

// specNode is one level of a tree of member names: the members whose
// values the scanner extracts, and the kind each value is.
type specNode struct {
	name     []byte
	kind     ObsKind
	children []*specNode
}

func (n *specNode) child(name []byte) *specNode {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if bytes.Equal(c.name, name) {
			return c
		}
	}
	return nil
}

// add adds the member path (names separated by dots when nested is true;
// one literal name otherwise) with kind k.
func (n *specNode) add(path string, k ObsKind, nested bool) {
	parts := []string{path}
	if nested {
		parts = strings.Split(path, ".")
	}
	for _, p := range parts {
		c := n.child([]byte(p))
		if c == nil {
			c = &specNode{name: []byte(p)}
			n.children = append(n.children, c)
		}
		n = c
	}
	n.kind = k
}

// jsonScanner extracts the values named by a spec tree from one JSON
// object per line. Arrays are transparent: a spec path that reaches an
// array applies to each element.
type jsonScanner struct {
	root    *specNode
	scratch []byte // unescaped strings
	obs     []Obs
}

type jsonError struct {
	pos int
	msg string
}

func (e *jsonError) Error() string { return fmt.Sprintf("invalid JSON at byte %d: %s", e.pos, e.msg) }

// scan parses line as one JSON object and appends the spec'd values.
func (s *jsonScanner) scan(line []byte, root *specNode, obs []Obs) ([]Obs, error) {
	s.scratch = s.scratch[:0]
	s.obs = obs
	i := skipWS(line, 0)
	if i >= len(line) {
		return obs, nil // blank line
	}
	if line[i] != '{' {
		return obs, &jsonError{i, "line is not a JSON object"}
	}
	i, err := s.object(line, i, root, 0)
	if err != nil {
		return obs, err
	}
	if i = skipWS(line, i); i != len(line) {
		return obs, &jsonError{i, "data after the JSON object"}
	}
	return s.obs, nil
}

// skipWS returns the index of the first byte from i that is not JSON
// white space. Every white space byte is at most ' ': one comparison
// passes over the others, which are nearly all a log line holds.
func skipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

func (s *jsonScanner) object(b []byte, i int, node *specNode, depth int) (int, error) {
	if depth > maxJSONDepth {
		return i, &jsonError{i, "nested too deeply"}
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, &jsonError{i, "expected a member name"}
		}
		start := i + 1
		end, esc, err := scanString(b, i)
		if err != nil {
			return i, err
		}
		var child *specNode
		if !esc && node != nil {
			child = node.child(b[start : end-1])
		}
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return i, &jsonError{i, "expected ':'"}
		}
		i = skipWS(b, i+1)
		if child == nil {
			i, err = skipValue(b, i, depth+1)
		} else {
			i, err = s.value(b, i, child, depth+1)
		}
		if err != nil {
			return i, err
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return i, &jsonError{i, "unterminated object"}
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, &jsonError{i, "expected ',' or '}'"}
		}
	}
}

func (s *jsonScanner) value(b []byte, i int, node *specNode, depth int) (int, error) {
	if i >= len(b) {
		return i, &jsonError{i, "expected a value"}
	}
	switch b[i] {
	case '"':
		end, esc, err := scanString(b, i)
		if err != nil {
			return i, err
		}
		if node.kind != 0 {
			v := b[i+1 : end-1]
			if esc {
				v, err = s.unescape(v)
				if err != nil {
					return i, &jsonError{i, err.Error()}
				}
			}
			if len(v) > 0 {
				s.obs = append(s.obs, Obs{Kind: node.kind, Value: v})
			}
		}
		return end, nil
	case '{':
		return s.object(b, i, node, depth)
	case '[':
		if depth > maxJSONDepth {
			return i, &jsonError{i, "nested too deeply"}
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			i, err = s.value(b, i, node, depth+1)
			if err != nil {
				return i, err
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return i, &jsonError{i, "unterminated array"}
			}
			switch b[i] {
			case ',':
				i = skipWS(b, i+1)
			case ']':
				return i + 1, nil
			default:
				return i, &jsonError{i, "expected ',' or ']'"}
			}
		}
	default:
		end, err := skipScalar(b, i)
		if err != nil {
			return i, err
		}
		if node.kind == obsTime {
			s.obs = append(s.obs, Obs{Kind: obsTime, Value: b[i:end]})
		}
		return end, nil
	}
}

// scanString returns the index after the closing quote of the string
// starting at b[i] == '"', and whether it holds escapes. It looks for a
// quote or a backslash eight bytes at a time: the strings of a log line
// are short, and two calls of bytes.IndexByte a string cost more.
func scanString(b []byte, i int) (int, bool, error) {
	const quotes, backslashes = 0x0101010101010101 * '"', 0x0101010101010101 * '\\'
	n := len(b)
	esc := false
	for j := i + 1; ; {
		k := j
		for ; k+8 <= n; k += 8 {
			x := word8(b, k)
			if m := firstZeros(x^quotes) | firstZeros(x^backslashes); m != 0 {
				k += bits.TrailingZeros64(m) >> 3
				break
			}
		}
		for k < n && b[k] != '"' && b[k] != '\\' {
			k++
		}
		if k >= n {
			return i, false, &jsonError{i, "unterminated string"}
		}
		if b[k] == '"' {
			return k + 1, esc, nil
		}
		// A backslash: the byte after it is escaped, whatever it is.
		esc = true
		j = k + 2
		if j >= n {
			return i, false, &jsonError{i, "unterminated string"}
		}
	}
}

func skipScalar(b []byte, i int) (int, error) {
	switch b[i] {
	case 't':
		if bytes.HasPrefix(b[i:], []byte("true")) {
			return i + 4, nil
		}
	case 'f':
		if bytes.HasPrefix(b[i:], []byte("false")) {
			return i + 5, nil
		}
	case 'n':
		if bytes.HasPrefix(b[i:], []byte("null")) {
			return i + 4, nil
		}
	default:
		j := i
		for j < len(b) && numberByte[b[j]] {
			j++
		}
		if j > i && (b[i] == '-' || b[i] >= '0' && b[i] <= '9') {
			return j, nil
		}
	}
	return i, &jsonError{i, "invalid value"}
}

// numberByte tells the bytes skipScalar takes as part of a number: one
// load a byte, where the comparisons cost up to six.
var numberByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-+.eE" {
		t[c] = true
	}
	return t
}()

// skipValue skips any JSON value, checking its structure.
func skipValue(b []byte, i int, depth int) (int, error) {
	if i >= len(b) {
		return i, &jsonError{i, "expected a value"}
	}
	if depth > maxJSONDepth {
		return i, &jsonError{i, "nested too deeply"}
	}
	switch b[i] {
	case '"':
		end, _, err := scanString(b, i)
		return end, err
	case '{':
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return i, &jsonError{i, "expected a member name"}
			}
			end, _, err := scanString(b, i)
			if err != nil {
				return i, err
			}
			i = skipWS(b, end)
			if i >= len(b) || b[i] != ':' {
				return i, &jsonError{i, "expected ':'"}
			}
			i, err = skipValue(b, skipWS(b, i+1), depth+1)
			if err != nil {
				return i, err
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return i, &jsonError{i, "unterminated object"}
			}
			if b[i] == '}' {
				return i + 1, nil
			}
			if b[i] != ',' {
				return i, &jsonError{i, "expected ',' or '}'"}
			}
			i = skipWS(b, i+1)
		}
	case '[':
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			i, err = skipValue(b, i, depth+1)
			if err != nil {
				return i, err
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return i, &jsonError{i, "unterminated array"}
			}
			if b[i] == ']' {
				return i + 1, nil
			}
			if b[i] != ',' {
				return i, &jsonError{i, "expected ',' or ']'"}
			}
			i = skipWS(b, i+1)
		}
	}
	return skipScalar(b, i)
}

// unescape decodes the JSON escapes of v into the scanner's scratch space.
// Slices returned earlier stay valid: the scratch space is never moved,
// only replaced.
func (s *jsonScanner) unescape(v []byte) ([]byte, error) {
	if cap(s.scratch)-len(s.scratch) < len(v) {
		s.scratch = make([]byte, 0, max(2*cap(s.scratch), len(v)+256))
	}
	start := len(s.scratch)
	out := s.scratch
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(v) {
			return nil, errors.New("bad escape")
		}
		switch v[i] {
		case '"', '\\', '/':
			out = append(out, v[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n, ok := hexRune(v[i:])
			if !ok {
				return nil, errors.New("bad \\u escape")
			}
			i += n - 1
			if utf16.IsSurrogate(r) && i+1 < len(v) && v[i+1] == '\\' {
				if r2, n2, ok := hexRune(v[i+2:]); ok {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 1 + n2
					}
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, fmt.Errorf("bad escape \\%c", v[i])
		}
	}
	s.scratch = out
	return out[start:len(out):len(out)], nil
}

// hexRune decodes the 4 hex digits after "u" at b[0] == 'u'; it returns
// the rune and the number of bytes consumed (5).
func hexRune(b []byte) (rune, int, bool) {
	if len(b) < 5 || b[0] != 'u' {
		return 0, 0, false
	}
	var r rune
	for _, c := range b[1:5] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, 0, false
		}
	}
	return r, 5, true
}

// joinURL turns the line's first host and request target into one ObsURL
// and drops the targets.
func joinURL(obs []Obs, from int) []Obs {
	var host, uri []byte
	out := obs[:from]
	for _, o := range obs[from:] {
		switch o.Kind {
		case obsURI:
			if uri == nil {
				uri = o.Value
			}
			continue
		case ObsHost:
			if host == nil {
				host = o.Value
			}
		}
		out = append(out, o)
	}
	if uri != nil && (host != nil || bytes.Contains(uri, []byte("://"))) {
		out = append(out, Obs{Kind: ObsURL, Value: host, Aux: uri})
	}
	return out
}
