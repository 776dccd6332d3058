package stix

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// kind is the JSON type of a parsed value.
type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kArray
	kObject
)

// String names the kind as the STIX specification names data types.
func (k kind) String() string {
	switch k {
	case kNull:
		return "null"
	case kBool:
		return "boolean"
	case kNumber:
		return "number"
	case kString:
		return "string"
	case kArray:
		return "list"
	default:
		return "object"
	}
}

// value is one parsed JSON value. The tree keeps the members of objects
// in document order, so that duplicate names can be reported and the
// object can be walked without a map. A list keeps its elements in obj
// too, as members without names: one slice instead of two keeps values
// small (48 bytes), and a tree is mostly values.
type value struct {
	kind kind
	b    bool
	dup  int32  // for an object, 1 + the index in obj of the first member whose name was seen before; 0 if none
	str  string // string value, or the literal text of a number
	obj  []member
}

// member is one name/value pair of a JSON object, or one element of a
// list (with no name).
type member struct {
	name string
	val  value
}

// dupName returns the first duplicated member name of an object value,
// or "".
func (v *value) dupName() string {
	if v.dup == 0 {
		return ""
	}
	return v.obj[v.dup-1].name
}

// get returns the member named name of an object value.
func (v *value) get(name string) (*value, bool) {
	if v.kind != kObject {
		return nil, false
	}
	for i := range v.obj {
		if v.obj[i].name == name {
			return &v.obj[i].val, true
		}
	}
	return nil, false
}

// has reports whether the object value has a member named name.
func (v *value) has(name string) bool {
	_, ok := v.get(name)
	return ok
}

// maxDepth bounds the nesting of JSON values the parser accepts, so that
// hostile input cannot exhaust the stack.
const maxDepth = 200

// syntaxError is a JSON syntax error at a byte offset.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte offset %d: %s", e.off, e.msg)
}

// parser is a small JSON parser producing a value tree. It is strict
// (RFC 8259): no trailing commas, no comments, control characters in
// strings rejected.
type parser struct {
	b     []byte
	i     int
	err   *syntaxError
	alias bool     // strings share b's memory (see parseJSONAlias)
	sc    *scratch // lists and members are carved from its slabs
}

// scratch holds the memory of parsed trees for reuse: the members and
// elements of each object and list are gathered on a stack while they
// are parsed, then copied in one piece to a slab. Validating an object
// with a pooled scratch allocates no tree memory once its slabs have
// grown to the size of the objects seen, so that validating a large
// envelope leaves almost no garbage behind (a tree is several times the
// size of its JSON).
type scratch struct {
	stack []member
	ms    slab[member]
	exact bool // slabs of exactly the size asked for (a tree's own scratch, not pooled)
	// buf holds the unescaped text of strings with escapes, when not
	// exact: strings made from it are valid until reset, so anything
	// that outlives the validation (a Problem) is copied.
	buf  []byte
	chk  checker // reused by validateTree
	root value   // the tree chk checks
}

// textChunk is the least size of the buffers unescaped strings are
// written to; maxText bounds the one a pooled scratch keeps.
const (
	textChunk = 16 << 10
	maxText   = 1 << 20
)

// text returns the unescaped raw as a string in s's buffer.
func (s *scratch) text(raw []byte) string {
	if cap(s.buf)-len(s.buf) < 3*len(raw) {
		// A new buffer; strings in the old one keep it alive until reset.
		s.buf = make([]byte, 0, max(3*len(raw), textChunk, min(2*cap(s.buf), maxText)))
	}
	n := len(s.buf)
	s.buf = appendUnescaped(s.buf, raw)
	if len(s.buf) == n {
		return ""
	}
	return unsafe.String(&s.buf[n], len(s.buf)-n)
}

// slabChunk is the size, in members (64 bytes each), of
// the chunks slabs are made of; keptChunks is how many a pooled scratch
// keeps for reuse.
const (
	slabChunk  = 1024
	keptChunks = 16
)

// slab hands out slices of chunks of memory. Chunks have a fixed size,
// so that a very large object costs what its tree needs and not twice as
// much, as doubling would.
type slab[T any] struct {
	chunks [][]T // each carved up to its length
	cur    int   // the chunk carved now
}

// carve returns a copy of xs in the slab's memory; with exact, a chunk
// made for it has exactly its size.
func (s *slab[T]) carve(xs []T, exact bool) []T {
	for ; s.cur < len(s.chunks); s.cur++ {
		c := s.chunks[s.cur]
		if len(c)+len(xs) <= cap(c) {
			n := len(c)
			c = append(c, xs...)
			s.chunks[s.cur] = c
			return c[n:len(c):len(c)]
		}
	}
	size := len(xs)
	if !exact {
		size = max(size, slabChunk)
	}
	c := append(make([]T, 0, size), xs...)
	s.chunks = append(s.chunks, c)
	s.cur = len(s.chunks) - 1
	return c[:len(xs):len(xs)]
}

// reset makes the slab's memory reusable, keeping at most keptChunks
// chunks of the standard size.
func (s *slab[T]) reset() {
	kept := s.chunks[:0]
	for _, c := range s.chunks {
		clear(c)
		if cap(c) == slabChunk && len(kept) < keptChunks {
			kept = append(kept, c[:0])
		}
	}
	clear(s.chunks[len(kept):])
	s.chunks, s.cur = kept, 0
}

// maxStack bounds the stacks a pooled scratch keeps.
const maxStack = 1 << 16

// scratchPool recycles scratches between validations.
var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// reset forgets every tree carved from s, so that its memory can be
// reused: nothing may refer to those trees any more.
func (s *scratch) reset() {
	s.ms.reset()
	if cap(s.stack) > maxStack {
		s.stack = nil
	}
	s.stack = s.stack[:0]
	if cap(s.buf) > maxText {
		s.buf = nil
	}
	s.buf = s.buf[:0]
	s.chk = checker{stack: s.chk.stack[:0]}
	s.root = value{}
}

// members returns a copy of ms in memory owned by p's scratch.
func (p *parser) members(ms []member) []member { return p.sc.ms.carve(ms, p.sc.exact) }

// parseJSON parses exactly one JSON value from b (surrounding white space
// allowed).
func parseJSON(b []byte) (value, error) {
	return parse(parser{b: b})
}

// parseJSONAlias is parseJSON with strings that share b's memory instead
// of copies: the tree must not outlive the call that parsed it, nor b be
// modified while it is in use.
func parseJSONAlias(b []byte) (value, error) {
	return parse(parser{b: b, alias: true})
}

// parseJSONScratch is parseJSONAlias with the tree's lists and members
// carved from sc: the tree is valid until sc is reset.
func parseJSONScratch(b []byte, sc *scratch) (value, error) {
	return parse(parser{b: b, alias: true, sc: sc})
}

func parse(p parser) (value, error) {
	if p.sc == nil {
		// A scratch of the tree's own, never reset: the tree keeps its
		// slabs alive.
		p.sc = &scratch{exact: true}
	}
	b := p.b
	p.ws()
	v := p.value(0)
	if p.err != nil {
		return value{}, p.err
	}
	p.ws()
	if p.i != len(b) {
		return value{}, &syntaxError{p.i, "unexpected data after the JSON value"}
	}
	return v, nil
}

// str returns b as a string, sharing memory when the parser aliases.
func (p *parser) str(b []byte) string {
	if p.alias && len(b) > 0 {
		return unsafe.String(&b[0], len(b))
	}
	return string(b)
}

func (p *parser) fail(msg string) {
	if p.err == nil {
		if p.i >= len(p.b) {
			msg = "unexpected end of input (truncated?)"
		}
		p.err = &syntaxError{p.i, msg}
	}
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) value {
	if depth > maxDepth {
		p.fail("nested too deeply")
		return value{}
	}
	if p.i >= len(p.b) {
		p.fail("")
		return value{}
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s := p.string()
		return value{kind: kString, str: s}
	case c == 't':
		p.literal("true")
		return value{kind: kBool, b: true}
	case c == 'f':
		p.literal("false")
		return value{kind: kBool}
	case c == 'n':
		p.literal("null")
		return value{kind: kNull}
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		p.number()
		return value{kind: kNumber, str: p.str(p.b[start:p.i])}
	default:
		p.fail(fmt.Sprintf("unexpected character %q", c))
		return value{}
	}
}

func (p *parser) literal(lit string) {
	if len(p.b)-p.i < len(lit) || string(p.b[p.i:p.i+len(lit)]) != lit {
		if len(p.b)-p.i < len(lit) && string(p.b[p.i:]) == lit[:len(p.b)-p.i] {
			p.i = len(p.b)
			p.fail("")
			return
		}
		p.fail("invalid literal")
		return
	}
	p.i += len(lit)
}

func (p *parser) number() {
	if p.err == nil {
		if end, msg := scanNumber(p.b, p.i); msg != "" {
			p.i = end
			p.fail(msg)
		} else {
			p.i = end
		}
	}
}

// scanNumber checks the JSON number starting at b[i] and returns the
// offset just after it, or a message saying what is wrong.
func scanNumber(b []byte, i int) (int, string) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return i, "truncated number"
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return i, "invalid number"
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return i, "invalid number: no digits after the decimal point"
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return i, "invalid number: no digits in the exponent"
		}
	}
	return i, ""
}

// scanString checks the JSON string whose opening quote is at b[i] and
// returns the offset after its closing quote and whether it holds escape
// sequences, or a message saying what is wrong.
func scanString(b []byte, i int) (end int, escaped bool, msg string) {
	i++
	for i < len(b) {
		// Skip eight plain bytes at a time (no quote, backslash or
		// control character).
		for i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			if hasLess(w, 0x20)|hasZero(w^(swarLo*'"'))|hasZero(w^(swarLo*'\\')) != 0 {
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, escaped, ""
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return len(b), escaped, "truncated string"
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return len(b), escaped, "truncated string"
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return i, escaped, "invalid \\u escape in string"
					}
				}
				i += 6
			default:
				return i, escaped, "invalid escape in string"
			}
		case c < 0x20:
			return i, escaped, "control character in string"
		default:
			i++
		}
	}
	return len(b), escaped, "truncated string"
}

const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// hasZero reports (non-zero) whether any byte of w is zero.
func hasZero(w uint64) uint64 { return (w - swarLo) & ^w & swarHi }

// hasLess reports (non-zero) whether any byte of w is less than n (n <= 128).
func hasLess(w uint64, n uint64) uint64 { return (w - swarLo*n) & ^w & swarHi }

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (p *parser) string() string {
	start := p.i
	end, escaped, msg := scanString(p.b, p.i)
	if msg != "" {
		p.i = end
		p.fail(msg)
		return ""
	}
	p.i = end
	raw := p.b[start+1 : end-1]
	if !escaped {
		if !utf8.Valid(raw) {
			return string([]rune(string(raw))) // replace invalid bytes, as encoding/json does
		}
		return p.str(raw)
	}
	if p.sc.exact {
		return unescape(raw)
	}
	return p.sc.text(raw)
}

// unescape decodes the escapes of a JSON string body already checked by
// scanString.
func unescape(raw []byte) string {
	return string(appendUnescaped(make([]byte, 0, len(raw)), raw))
}

// appendUnescaped appends raw, a JSON string body already checked by
// scanString, with its escapes decoded, to out. It appends at most
// 3*len(raw) bytes (an invalid byte becomes U+FFFD).
func appendUnescaped(out, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			r, size := utf8.DecodeRune(raw[i:])
			out = utf8.AppendRune(out, r)
			i += size
			continue
		}
		switch raw[i+1] {
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
			r := hex4(raw[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 := hex4(raw[i+2 : i+6])
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						out = utf8.AppendRune(out, d)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, raw[i+1])
		}
		i += 2
	}
	return out
}

func hex4(b []byte) rune {
	n, _ := strconv.ParseUint(string(b), 16, 32)
	return rune(n)
}

func (p *parser) object(depth int) value {
	p.i++ // '{'
	v := value{kind: kObject}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return v
	}
	stack := &p.sc.stack
	base := len(*stack)
	for p.err == nil {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			p.fail("expected a string (member name)")
			break
		}
		name := p.string()
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			p.fail("expected ':' after member name")
			break
		}
		p.i++
		p.ws()
		val := p.value(depth + 1)
		if v.dup == 0 {
			for _, m := range (*stack)[base:] {
				if m.name == name {
					v.dup = int32(len(*stack) - base + 1)
					break
				}
			}
		}
		*stack = append(*stack, member{name, val})
		p.ws()
		if p.i >= len(p.b) {
			p.fail("")
			break
		}
		if p.b[p.i] == '}' {
			p.i++
			break
		}
		if p.b[p.i] != ',' {
			p.fail("expected ',' or '}' in object")
			break
		}
		p.i++
	}
	v.obj = p.members((*stack)[base:])
	clear((*stack)[base:])
	*stack = (*stack)[:base]
	return v
}

func (p *parser) array(depth int) value {
	p.i++ // '['
	v := value{kind: kArray}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return v
	}
	stack := &p.sc.stack
	base := len(*stack)
	for p.err == nil {
		p.ws()
		val := p.value(depth + 1)
		*stack = append(*stack, member{val: val})
		p.ws()
		if p.i >= len(p.b) {
			p.fail("")
			break
		}
		if p.b[p.i] == ']' {
			p.i++
			break
		}
		if p.b[p.i] != ',' {
			p.fail("expected ',' or ']' in list")
			break
		}
		p.i++
	}
	v.obj = p.members((*stack)[base:])
	clear((*stack)[base:])
	*stack = (*stack)[:base]
	return v
}

// skipValue checks the JSON value starting at b[i] (after white space)
// without building a tree and returns the offset just after it.
func skipValue(b []byte, i int) (int, *syntaxError) {
	var stack []byte // expected closers
	i = skipWS(b, i)
	for {
		// Expect a value at i.
		if i >= len(b) {
			return i, &syntaxError{i, "unexpected end of input (truncated?)"}
		}
		switch c := b[i]; {
		case c == '{':
			if len(stack) >= maxDepth {
				return i, &syntaxError{i, "nested too deeply"}
			}
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			stack = append(stack, '}')
			var msg string
			if i, msg = skipMemberName(b, i); msg != "" {
				return i, &syntaxError{i, msg}
			}
			continue
		case c == '[':
			if len(stack) >= maxDepth {
				return i, &syntaxError{i, "nested too deeply"}
			}
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == ']' {
				i++
				break
			}
			stack = append(stack, ']')
			continue
		case c == '"':
			end, _, msg := scanString(b, i)
			if msg != "" {
				return end, &syntaxError{end, msg}
			}
			i = end
		case c == 't' || c == 'f' || c == 'n':
			lit := "null"
			if c == 't' {
				lit = "true"
			} else if c == 'f' {
				lit = "false"
			}
			if len(b)-i < len(lit) {
				return len(b), &syntaxError{len(b), "unexpected end of input (truncated?)"}
			}
			if string(b[i:i+len(lit)]) != lit {
				return i, &syntaxError{i, "invalid literal"}
			}
			i += len(lit)
		case c == '-' || (c >= '0' && c <= '9'):
			end, msg := scanNumber(b, i)
			if msg != "" {
				return end, &syntaxError{end, msg}
			}
			i = end
		default:
			return i, &syntaxError{i, fmt.Sprintf("unexpected character %q", c)}
		}
		// After a value: close containers or find the next element.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return i, &syntaxError{i, "unexpected end of input (truncated?)"}
			}
			top := stack[len(stack)-1]
			if b[i] == top {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return i, &syntaxError{i, fmt.Sprintf("expected ',' or '%c'", top)}
			}
			i = skipWS(b, i+1)
			if top == '}' {
				var msg string
				if i, msg = skipMemberName(b, i); msg != "" {
					return i, &syntaxError{i, msg}
				}
			}
			break
		}
	}
}

// skipMemberName checks `"name" :` at b[i] and returns the offset of the
// member's value.
func skipMemberName(b []byte, i int) (int, string) {
	if i >= len(b) {
		return i, "unexpected end of input (truncated?)"
	}
	if b[i] != '"' {
		return i, "expected a string (member name)"
	}
	end, _, msg := scanString(b, i)
	if msg != "" {
		return end, msg
	}
	i = skipWS(b, end)
	if i >= len(b) {
		return i, "unexpected end of input (truncated?)"
	}
	if b[i] != ':' {
		return i, "expected ':' after member name"
	}
	return skipWS(b, i+1), ""
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
