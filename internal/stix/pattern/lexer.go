package pattern

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokenKind is the lexical class of a token.
type tokenKind int

const (
	tEOF tokenKind = iota
	tLBrack
	tRBrack
	tLParen
	tRParen
	tColon
	tDot
	tComma
	tStar
	tEQ
	tNEQ
	tLT
	tLE
	tGT
	tGE
	tIdent // identifier; hyphen records whether it contains '-'
	tString
	tInt
	tFloat
	tBool
	tHex
	tBinary
	tTimestamp
	// keywords
	tAnd
	tOr
	tNot
	tFollowedBy
	tLike
	tMatches
	tIsSuperset
	tIsSubset
	tExists
	tIn
	tStart
	tStop
	tSeconds
	tWithin
	tRepeats
	tTimes
	tLast
	tIllegal // a character no token starts with; the parser reports it
)

var keywords = map[string]tokenKind{
	"AND": tAnd, "OR": tOr, "NOT": tNot, "FOLLOWEDBY": tFollowedBy, "LIKE": tLike,
	"MATCHES": tMatches, "ISSUPERSET": tIsSuperset, "ISSUBSET": tIsSubset, "EXISTS": tExists,
	"IN": tIn, "START": tStart, "STOP": tStop, "SECONDS": tSeconds, "WITHIN": tWithin,
	"REPEATS": tRepeats, "TIMES": tTimes, "LAST": tLast,
}

// token is one lexeme: its kind, its source text and, for literals, the
// decoded value.
type token struct {
	kind   tokenKind
	pos    int    // byte offset of the first byte
	text   string // source text
	str    string // decoded string literal, or identifier
	bytes  []byte // decoded hex or binary literal
	hyphen bool   // identifier contains '-'
}

// describe names a token for error messages.
func (t token) describe() string {
	if t.kind == tEOF {
		return "end of input"
	}
	text := t.text
	if utf8.RuneCountInString(text) > 40 {
		text = string([]rune(text)[:37]) + "..."
	}
	switch t.kind {
	case tString, tHex, tBinary, tTimestamp:
		return text // already quoted
	}
	return "'" + text + "'"
}

// lexer splits a pattern into tokens on demand. Offsets are in bytes.
type lexer struct {
	src string
	pos int
}

// peek returns the byte off bytes ahead, or 0 past the end.
func (l *lexer) peek(off int) byte {
	if l.pos+off < len(l.src) {
		return l.src[l.pos+off]
	}
	return 0
}

func isDigitByte(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStartByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPartByte(c byte) bool {
	return isIdentStartByte(c) || isDigitByte(c) || c == '-'
}

// skip passes over white space and comments.
func (l *lexer) skip() *SyntaxError {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			l.pos++
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(l.src[l.pos:])
			if !unicode.IsSpace(r) {
				return nil
			}
			l.pos += n
		case c == '/' && l.peek(1) == '*':
			start := l.pos
			l.pos += 2
			for {
				if l.pos+1 >= len(l.src) {
					return newError(l.src, start, KindSyntax, "unterminated comment")
				}
				if l.src[l.pos] == '*' && l.src[l.pos+1] == '/' {
					l.pos += 2
					break
				}
				l.pos++
			}
		case c == '/' && l.peek(1) == '/':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' && l.src[l.pos] != '\r' {
				l.pos++
			}
		default:
			return nil
		}
	}
	return nil
}

// next returns the next token.
func (l *lexer) next() (token, *SyntaxError) {
	if err := l.skip(); err != nil {
		return token{}, err
	}
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tEOF, pos: start}, nil
	}
	r := l.src[l.pos]
	simple := func(k tokenKind, n int) (token, *SyntaxError) {
		l.pos += n
		return token{kind: k, pos: start, text: l.src[start:l.pos]}, nil
	}
	switch r {
	case '[':
		return simple(tLBrack, 1)
	case ']':
		return simple(tRBrack, 1)
	case '(':
		return simple(tLParen, 1)
	case ')':
		return simple(tRParen, 1)
	case ':':
		return simple(tColon, 1)
	case ',':
		return simple(tComma, 1)
	case '*':
		return simple(tStar, 1)
	case '=':
		if l.peek(1) == '=' {
			return simple(tEQ, 2)
		}
		return simple(tEQ, 1)
	case '!':
		if l.peek(1) == '=' {
			return simple(tNEQ, 2)
		}
		return simple(tIllegal, 1)
	case '<':
		switch l.peek(1) {
		case '=':
			return simple(tLE, 2)
		case '>':
			return simple(tNEQ, 2)
		}
		return simple(tLT, 1)
	case '>':
		if l.peek(1) == '=' {
			return simple(tGE, 2)
		}
		return simple(tGT, 1)
	case '\'':
		return l.lexString(start)
	case '.':
		if isDigitByte(l.peek(1)) {
			return l.lexNumber(start)
		}
		return simple(tDot, 1)
	case '+', '-':
		if isDigitByte(l.peek(1)) || (l.peek(1) == '.' && isDigitByte(l.peek(2))) {
			return l.lexNumber(start)
		}
		return simple(tIllegal, 1)
	}
	if isDigitByte(r) {
		return l.lexNumber(start)
	}
	if isIdentStartByte(r) {
		if (r == 't' || r == 'h' || r == 'b') && l.peek(1) == '\'' {
			return l.lexPrefixed(start, r)
		}
		hyphen := false
		for l.pos < len(l.src) && isIdentPartByte(l.src[l.pos]) {
			if l.src[l.pos] == '-' {
				hyphen = true
			}
			l.pos++
		}
		text := l.src[start:l.pos]
		if k, ok := keywords[text]; ok {
			return token{kind: k, pos: start, text: text}, nil
		}
		if text == "true" || text == "false" {
			return token{kind: tBool, pos: start, text: text}, nil
		}
		return token{kind: tIdent, pos: start, text: text, str: text, hyphen: hyphen}, nil
	}
	_, n := utf8.DecodeRuneInString(l.src[l.pos:])
	return simple(tIllegal, n)
}

// lexNumber reads [+-]? ('0' | [1-9][0-9]*) or [+-]? [0-9]* '.' [0-9]+.
func (l *lexer) lexNumber(start int) (token, *SyntaxError) {
	if r := l.src[l.pos]; r == '+' || r == '-' {
		l.pos++
	}
	digits := l.pos
	for l.pos < len(l.src) && isDigitByte(l.src[l.pos]) {
		l.pos++
	}
	kind := tInt
	if l.pos < len(l.src) && l.src[l.pos] == '.' {
		if !isDigitByte(l.peek(1)) {
			return token{}, newError(l.src, start, KindLiteral, "malformed number %q: a decimal point must be followed by digits", l.src[start:l.pos+1])
		}
		l.pos++
		for l.pos < len(l.src) && isDigitByte(l.src[l.pos]) {
			l.pos++
		}
		kind = tFloat
	} else if l.pos-digits > 1 && l.src[digits] == '0' {
		return token{}, newError(l.src, start, KindLiteral, "malformed integer %q: leading zeros are not allowed", l.src[start:l.pos])
	}
	return token{kind: kind, pos: start, text: l.src[start:l.pos]}, nil
}

// lexString reads a quoted string in which only \' and \\ are escapes.
func (l *lexer) lexString(start int) (token, *SyntaxError) {
	s, err := l.quoted(start, l.pos)
	if err != nil {
		return token{}, err
	}
	return token{kind: tString, pos: start, text: l.src[start:l.pos], str: s}, nil
}

// quoted reads a '...' string whose opening quote is at q, leaving l.pos
// after the closing quote.
func (l *lexer) quoted(start, q int) (string, *SyntaxError) {
	i := q + 1
	j := strings.IndexAny(l.src[i:], `'\`)
	if j >= 0 && l.src[i+j] == '\'' {
		// The common case: no escapes, so the value is a substring.
		l.pos = i + j + 1
		return l.src[i : i+j], nil
	}
	var b strings.Builder
	for {
		if i >= len(l.src) {
			return "", newError(l.src, start, KindLiteral, "unterminated string literal")
		}
		c := l.src[i]
		switch c {
		case '\'':
			l.pos = i + 1
			return b.String(), nil
		case '\\':
			if i+1 < len(l.src) && (l.src[i+1] == '\'' || l.src[i+1] == '\\') {
				b.WriteByte(l.src[i+1])
				i += 2
				continue
			}
			return "", newError(l.src, i, KindLiteral, "invalid escape in string literal: only \\' and \\\\ may follow a backslash")
		}
		b.WriteByte(c)
		i++
	}
}

// lexPrefixed reads t'...', h'...' and b'...' literals.
func (l *lexer) lexPrefixed(start int, prefix byte) (token, *SyntaxError) {
	s, err := l.quoted(start, l.pos+1)
	if err != nil {
		return token{}, err
	}
	tok := token{pos: start, text: l.src[start:l.pos], str: s}
	switch prefix {
	case 't':
		tok.kind = tTimestamp
		if msg := checkTimestamp(s); msg != "" {
			return token{}, newError(l.src, start, KindLiteral, "invalid timestamp literal %s: %s", tok.text, msg)
		}
	case 'h':
		tok.kind = tHex
		b, err := hex.DecodeString(s)
		if err != nil || strings.ContainsAny(s, " ") {
			return token{}, newError(l.src, start, KindLiteral, "invalid hex literal %s: expected an even number of hexadecimal digits", tok.text)
		}
		tok.bytes = b
	case 'b':
		tok.kind = tBinary
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			return token{}, newError(l.src, start, KindLiteral, "invalid binary literal %s: expected padded base64", tok.text)
		}
		tok.bytes = b
	}
	return tok, nil
}

// checkTimestamp checks s against the grammar's timestamp form
// YYYY-MM-DDTHH:MM:SS[.fraction]Z, with month 01-12, day 01-31, hour
// 00-23, minute 00-59 and second 00-60 (a leap second). Like the reference
// grammar it does not check the day against the month's length. It
// returns "" when s is well formed.
func checkTimestamp(s string) string {
	const form = "expected YYYY-MM-DDTHH:MM:SS[.fraction]Z"
	if len(s) < 20 {
		return form
	}
	for i, c := range []byte(s[:19]) {
		switch i {
		case 4, 7:
			if c != '-' {
				return form
			}
		case 10:
			if c != 'T' {
				return form + " (with an upper-case T)"
			}
		case 13, 16:
			if c != ':' {
				return form
			}
		default:
			if c < '0' || c > '9' {
				return form
			}
		}
	}
	rest := s[19:]
	if rest[len(rest)-1] != 'Z' {
		return form + " (with an upper-case Z)"
	}
	rest = rest[:len(rest)-1]
	if rest != "" {
		if rest[0] != '.' || len(rest) == 1 {
			return form
		}
		for _, c := range []byte(rest[1:]) {
			if c < '0' || c > '9' {
				return form
			}
		}
	}
	num := func(a, b int) int { return int(s[a]-'0')*10 + int(s[b]-'0') }
	if m := num(5, 6); m < 1 || m > 12 {
		return "month must be 01-12"
	}
	if d := num(8, 9); d < 1 || d > 31 {
		return "day must be 01-31"
	}
	if h := num(11, 12); h > 23 {
		return "hour must be 00-23"
	}
	if m := num(14, 15); m > 59 {
		return "minute must be 00-59"
	}
	if sec := num(17, 18); sec > 60 {
		return "second must be 00-60"
	}
	return ""
}
