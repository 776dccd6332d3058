package pattern

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"
)

// Version selects the dialect Parse accepts.
type Version string

// The dialects. VersionAny accepts both, which is what Parse does.
const (
	VersionAny Version = ""
	Version20  Version = "2.0"
	Version21  Version = "2.1"
)

// maxDepth bounds the nesting of parentheses so that hostile input cannot
// exhaust the stack.
const maxDepth = 200

// Parse parses a STIX 2.1 pattern, also accepting STIX 2.0 syntax (string
// timestamps after START and STOP). The error, if any, is a *SyntaxError.
func Parse(s string) (*Pattern, error) {
	return ParseVersion(s, VersionAny)
}

// ParseVersion is Parse restricted to one dialect: with Version21 the
// START and STOP qualifiers take only t'...' timestamps; with Version20
// they also take '...' strings, as STIX 2.0 wrote them.
func ParseVersion(s string, v Version) (*Pattern, error) {
	p := &parser{lex: lexer{src: s}, version: v}
	root, err := p.parse()
	if err != nil {
		return nil, err
	}
	return &Pattern{Root: root, src: s}, nil
}

// parser is a recursive-descent parser over the lexer's tokens.
type parser struct {
	lex     lexer
	tok     token
	version Version
	depth   int
	// lenientQualifiers accepts a qualifier repeated on one expression, as
	// the reference matcher (but not the reference validator) does.
	lenientQualifiers bool
}

// bail carries a *SyntaxError up through panics inside the parser; it is
// recovered in parse, so no panic escapes the package.
type bail struct{ err *SyntaxError }

func (p *parser) fail(pos int, kind ErrorKind, format string, args ...any) {
	panic(bail{newError(p.lex.src, pos, kind, format, args...)})
}

func (p *parser) advance() {
	t, err := p.lex.next()
	if err != nil {
		panic(bail{err})
	}
	p.tok = t
}

func (p *parser) parse() (root ObservationExpr, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bail)
			if !ok {
				panic(r)
			}
			root, err = nil, b.err
		}
	}()
	p.advance()
	if p.tok.kind != tLBrack && p.tok.kind != tLParen {
		if p.tok.kind == tIdent || p.tok.kind == tExists {
			p.fail(p.tok.pos, KindMissingBrackets, "input is missing square brackets: a comparison must be written inside [ ], e.g. [file:size = 1280]")
		}
		p.fail(p.tok.pos, KindSyntax, "expected '[' or '(' to start an observation expression but found %s", p.tok.describe())
	}
	root = p.followedBy()
	if p.tok.kind != tEOF {
		p.fail(p.tok.pos, KindSyntax, "unexpected %s after the end of the pattern", p.tok.describe())
	}
	return root, nil
}

func (p *parser) enter(pos int) {
	p.depth++
	if p.depth > maxDepth {
		p.fail(pos, KindSyntax, "expression nested more than %d levels deep", maxDepth)
	}
}

func (p *parser) followedBy() ObservationExpr {
	left := p.obsOr()
	for p.tok.kind == tFollowedBy {
		p.advance()
		left = &ObservationOp{Op: FollowedBy, Left: left, Right: p.obsOr()}
	}
	return left
}

func (p *parser) obsOr() ObservationExpr {
	left := p.obsAnd()
	for p.tok.kind == tOr {
		p.advance()
		left = &ObservationOp{Op: ObsOr, Left: left, Right: p.obsAnd()}
	}
	return left
}

func (p *parser) obsAnd() ObservationExpr {
	left := p.qualified()
	for p.tok.kind == tAnd {
		p.advance()
		left = &ObservationOp{Op: ObsAnd, Left: left, Right: p.qualified()}
	}
	return left
}

// qualified reads an observation expression and the qualifiers applied
// to it. A kind of qualifier may be applied once to a bracketed
// observation expression ("[a] WITHIN 5 SECONDS WITHIN 6 SECONDS" is an
// error), but any number of times to a parenthesised one: the grammar
// allows both, and the OASIS validator checks duplicates only on the
// qualifiers of a simple observation expression (its ValidationListener
// stops checking on leaving a compound one). So "([a]) WITHIN 5 SECONDS
// WITHIN 6 SECONDS" is valid, and means what "(([a]) WITHIN 5 SECONDS)
// WITHIN 6 SECONDS" does.
func (p *parser) qualified() ObservationExpr {
	compound := p.tok.kind == tLParen
	e := p.obsPrimary()
	var seen [3]bool // WITHIN, REPEATS, START/STOP already applied
	for {
		var q *Qualified
		pos := p.tok.pos
		switch p.tok.kind {
		case tWithin:
			q = p.within(e)
		case tRepeats:
			q = p.repeats(e)
		case tStart:
			q = p.startStop(e)
		default:
			return e
		}
		k := qualifierSlot(q.Kind)
		if seen[k] && !p.lenientQualifiers && !compound {
			p.fail(pos, KindDuplicateQualifier, "duplicate qualifier type encountered: %s is already applied to this observation expression (use parentheses to nest qualifiers)", q.Kind)
		}
		seen[k] = true
		e = q
	}
}

func qualifierSlot(k QualifierKind) int {
	switch k {
	case Within:
		return 0
	case Repeats:
		return 1
	}
	return 2
}

func (p *parser) within(e ObservationExpr) *Qualified {
	p.advance()
	t := p.tok
	if t.kind != tInt && t.kind != tFloat || strings.HasPrefix(t.text, "-") {
		p.fail(t.pos, KindSyntax, "expected a positive number of seconds after WITHIN but found %s", t.describe())
	}
	f, err := strconv.ParseFloat(t.text, 64)
	if err != nil || math.IsInf(f, 0) {
		p.fail(t.pos, KindQualifier, "WITHIN duration %s is out of range", t.text)
	}
	if f <= 0 {
		p.fail(t.pos, KindQualifier, "WITHIN duration must be positive, not %s", t.text)
	}
	p.advance()
	if p.tok.kind != tSeconds {
		p.fail(p.tok.pos, KindSyntax, "expected SECONDS after the WITHIN duration but found %s", p.tok.describe())
	}
	p.advance()
	return &Qualified{Expr: e, Kind: Within, Seconds: f}
}

func (p *parser) repeats(e ObservationExpr) *Qualified {
	p.advance()
	t := p.tok
	if t.kind != tInt || strings.HasPrefix(t.text, "-") {
		p.fail(t.pos, KindSyntax, "expected a positive integer after REPEATS but found %s", t.describe())
	}
	n, err := strconv.Atoi(strings.TrimPrefix(t.text, "+"))
	if err != nil || n > math.MaxInt32 {
		p.fail(t.pos, KindQualifier, "REPEATS count %s is out of range", t.text)
	}
	if n < 1 {
		p.fail(t.pos, KindQualifier, "REPEATS count must be positive, not %s", t.text)
	}
	p.advance()
	if p.tok.kind != tTimes {
		p.fail(p.tok.pos, KindSyntax, "expected TIMES after the REPEATS count but found %s", p.tok.describe())
	}
	p.advance()
	return &Qualified{Expr: e, Kind: Repeats, Count: n}
}

func (p *parser) startStop(e ObservationExpr) *Qualified {
	startPos := p.tok.pos
	p.advance()
	start, startText := p.qualifierTime("START")
	if p.tok.kind != tStop {
		p.fail(p.tok.pos, KindSyntax, "expected STOP after the START timestamp but found %s", p.tok.describe())
	}
	p.advance()
	stop, stopText := p.qualifierTime("STOP")
	if !stop.After(start) {
		p.fail(startPos, KindQualifier, "STOP (%s) must be later than START (%s)", stopText, startText)
	}
	return &Qualified{Expr: e, Kind: StartStop, Start: start, Stop: stop, startText: startText, stopText: stopText}
}

// qualifierTime reads the timestamp after START or STOP: t'...' in 2.1,
// '...' in 2.0.
func (p *parser) qualifierTime(after string) (time.Time, string) {
	t := p.tok
	switch {
	case t.kind == tTimestamp:
	case t.kind == tString && p.version != Version21:
		if msg := checkTimestamp(t.str); msg != "" {
			p.fail(t.pos, KindLiteral, "invalid timestamp %s after %s: %s", t.text, after, msg)
		}
	default:
		want := "a timestamp literal t'...'"
		if p.version != Version21 {
			want += " or string '...'"
		}
		p.fail(t.pos, KindSyntax, "expected %s after %s but found %s", want, after, t.describe())
	}
	p.advance()
	return timestampValue(t.str), t.str
}

// timestampValue converts a checked timestamp to a time (days past the
// end of the month roll over, as time.Date does).
func timestampValue(s string) time.Time {
	n := func(a, b int) int { v, _ := strconv.Atoi(s[a:b]); return v }
	ns := 0
	if len(s) > 20 {
		frac := s[20 : len(s)-1]
		if len(frac) > 9 {
			frac = frac[:9]
		}
		frac += strings.Repeat("0", 9-len(frac))
		ns, _ = strconv.Atoi(frac)
	}
	return time.Date(n(0, 4), time.Month(n(5, 7)), n(8, 10), n(11, 13), n(14, 16), n(17, 19), ns, time.UTC)
}

func (p *parser) obsPrimary() ObservationExpr {
	switch p.tok.kind {
	case tLBrack:
		pos := p.tok.pos
		p.advance()
		e := p.cmpOr()
		if p.tok.kind != tRBrack {
			p.fail(p.tok.pos, KindSyntax, "expected AND, OR or ']' but found %s", p.tok.describe())
		}
		p.advance()
		return &SimpleObservation{Expr: e, Pos: pos}
	case tLParen:
		pos := p.tok.pos
		p.enter(pos)
		p.advance()
		e := p.followedBy()
		if p.tok.kind != tRParen {
			p.fail(p.tok.pos, KindSyntax, "expected AND, OR, FOLLOWEDBY, a qualifier or ')' but found %s", p.tok.describe())
		}
		p.advance()
		p.depth--
		return e
	}
	p.fail(p.tok.pos, KindSyntax, "expected '[' or '(' but found %s", p.tok.describe())
	return nil
}

func (p *parser) cmpOr() ComparisonExpr {
	left := p.cmpAnd()
	for p.tok.kind == tOr {
		p.advance()
		left = &ComparisonOp{Op: ObsOr, Left: left, Right: p.cmpAnd()}
	}
	return left
}

func (p *parser) cmpAnd() ComparisonExpr {
	left := p.cmpPrimary()
	for p.tok.kind == tAnd {
		p.advance()
		left = &ComparisonOp{Op: ObsAnd, Left: left, Right: p.cmpPrimary()}
	}
	return left
}

func (p *parser) cmpPrimary() ComparisonExpr {
	switch p.tok.kind {
	case tLParen:
		pos := p.tok.pos
		p.enter(pos)
		p.advance()
		e := p.cmpOr()
		if p.tok.kind != tRParen {
			p.fail(p.tok.pos, KindSyntax, "expected AND, OR or ')' but found %s", p.tok.describe())
		}
		p.advance()
		p.depth--
		return e
	case tExists:
		pos := p.tok.pos
		p.advance()
		return &Test{Path: p.path(), Op: OpExists, Pos: pos}
	}
	return p.test()
}

// path reads objectType ':' firstComponent steps.
func (p *parser) path() Path {
	t := p.tok
	if t.kind != tIdent {
		p.fail(t.pos, KindSyntax, "expected an object path such as file:name but found %s", t.describe())
	}
	path := Path{ObjectType: t.str}
	p.advance()
	if p.tok.kind != tColon {
		p.fail(p.tok.pos, KindSyntax, "expected ':' after the object type %q but found %s", t.str, p.tok.describe())
	}
	p.advance()
	path.Steps = append(path.Steps, Step{Key: p.key("a property name after ':'")})
	for {
		switch p.tok.kind {
		case tDot:
			p.advance()
			path.Steps = append(path.Steps, Step{Key: p.key("a property name after '.'")})
		case tLBrack:
			p.advance()
			st := Step{IsIndex: true}
			switch p.tok.kind {
			case tStar:
				st.Star = true
			case tInt:
				n, err := strconv.Atoi(p.tok.text)
				if err != nil {
					p.fail(p.tok.pos, KindSyntax, "list index %s is out of range", p.tok.text)
				}
				st.Index = n
			default:
				p.fail(p.tok.pos, KindSyntax, "expected a list index or '*' after '[' but found %s", p.tok.describe())
			}
			p.advance()
			if p.tok.kind != tRBrack {
				p.fail(p.tok.pos, KindSyntax, "expected ']' after the list index but found %s", p.tok.describe())
			}
			p.advance()
			path.Steps = append(path.Steps, st)
		default:
			return path
		}
	}
}

// key reads a property name: an identifier without hyphens, or a string.
func (p *parser) key(what string) string {
	t := p.tok
	switch {
	case t.kind == tString:
		p.advance()
		return t.str
	case t.kind == tIdent && t.hyphen:
		p.fail(t.pos, KindSyntax, "property name %s contains '-' and must be quoted: %s", t.describe(), quote(t.str))
	case t.kind == tIdent:
		p.advance()
		return t.str
	}
	p.fail(t.pos, KindSyntax, "expected %s but found %s", what, t.describe())
	return ""
}

var opTokens = map[tokenKind]Operator{
	tEQ: OpEQ, tNEQ: OpNEQ, tLT: OpLT, tLE: OpLE, tGT: OpGT, tGE: OpGE, tIn: OpIn,
	tLike: OpLike, tMatches: OpMatches, tIsSubset: OpIsSubset, tIsSuperset: OpIsSuperset,
}

func (p *parser) test() *Test {
	pos := p.tok.pos
	t := &Test{Path: p.path(), Pos: pos}
	if p.tok.kind == tNot {
		t.Negated = true
		p.advance()
	}
	op, ok := opTokens[p.tok.kind]
	if !ok {
		p.fail(p.tok.pos, KindSyntax, "expected a comparison operator (=, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET) but found %s", p.tok.describe())
	}
	t.Op = op
	opText := p.tok.text
	p.advance()
	switch op {
	case OpEQ, OpNEQ:
		t.Value = p.literal(opText, true)
	case OpLT, OpLE, OpGT, OpGE:
		t.Value = p.literal(opText, false)
	case OpIn:
		t.Set = p.set()
	default:
		if p.tok.kind != tString {
			p.fail(p.tok.pos, KindSyntax, "expected a string literal after %s but found %s", op, p.tok.describe())
		}
		t.Value = p.literal(opText, false)
	}
	p.check(t)
	return t
}

// literal reads a literal; bool literals only when allowBool.
func (p *parser) literal(after string, allowBool bool) Literal {
	t := p.tok
	l := Literal{Pos: t.pos, Str: t.text}
	switch t.kind {
	case tString:
		l.Kind, l.Str = LitString, t.str
	case tInt:
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			p.fail(t.pos, KindLiteral, "integer %s is out of range", t.text)
		}
		l.Kind, l.Int, l.Float = LitInt, n, float64(n)
	case tFloat:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			p.fail(t.pos, KindLiteral, "number %s is out of range", t.text)
		}
		l.Kind, l.Float = LitFloat, f
	case tBool:
		if !allowBool {
			p.fail(t.pos, KindSyntax, "a boolean cannot be compared with %s", after)
		}
		l.Kind, l.Bool = LitBool, t.text == "true"
	case tHex:
		l.Kind, l.Bytes = LitHex, t.bytes
	case tBinary:
		l.Kind, l.Bytes = LitBinary, t.bytes
	case tTimestamp:
		l.Kind, l.Str, l.Time = LitTimestamp, t.str, timestampValue(t.str)
	case tIdent:
		p.fail(t.pos, KindSyntax, "expected a literal after '%s' but found %s (string literals must be quoted: %s)", after, t.describe(), quote(t.str))
	default:
		p.fail(t.pos, KindSyntax, "expected a literal after '%s' but found %s", after, t.describe())
	}
	p.advance()
	return l
}

func (p *parser) set() []Literal {
	if p.tok.kind != tLParen {
		p.fail(p.tok.pos, KindSyntax, "expected '(' to start the set after IN but found %s", p.tok.describe())
	}
	p.advance()
	var set []Literal
	if p.tok.kind == tRParen {
		p.advance()
		return set
	}
	for {
		set = append(set, p.literal("IN (", true))
		switch p.tok.kind {
		case tComma:
			p.advance()
			continue
		case tRParen:
			p.advance()
			return set
		}
		p.fail(p.tok.pos, KindSyntax, "expected ',' or ')' in the set but found %s", p.tok.describe())
	}
}

// kindGroup puts literal kinds that compare with one another together.
func kindGroup(k LiteralKind) int {
	switch k {
	case LitInt, LitFloat:
		return 1
	case LitHex, LitBinary:
		return 2
	}
	return 3 + int(k)
}

var kindNames = map[LiteralKind]string{
	LitString: "string", LitInt: "integer", LitFloat: "float", LitBool: "boolean",
	LitHex: "hex", LitBinary: "binary", LitTimestamp: "timestamp",
}

// hashLengths gives the hex length of the hash algorithms whose values
// Parse checks (by their STIX vocabulary names).
var hashLengths = map[string]int{
	"MD5": 32, "SHA-1": 40, "SHA-256": 64, "SHA-512": 128, "SHA3-256": 64, "SHA3-512": 128,
}

// check applies the semantic rules the grammar cannot express.
func (p *parser) check(t *Test) {
	switch t.Op {
	case OpIn:
		for _, l := range t.Set[min(1, len(t.Set)):] {
			if kindGroup(l.Kind) != kindGroup(t.Set[0].Kind) {
				p.fail(l.Pos, KindSet, "set mixes %s and %s values", kindNames[t.Set[0].Kind], kindNames[l.Kind])
			}
		}
	case OpMatches:
		if _, err := syntax.Parse(t.Value.Str, syntax.Perl); err != nil {
			if what := pcreOnly(t.Value.Str); what != "" {
				p.fail(t.Value.Pos, KindRegex, "MATCHES expression %s uses %s, a PCRE feature the RE2 engine does not support", quote(t.Value.Str), what)
			}
			p.fail(t.Value.Pos, KindRegex, "MATCHES expression %s does not compile (Go RE2 syntax; backreferences and lookaround are not supported): %v", quote(t.Value.Str), err)
		}
	}
	n := len(t.Path.Steps)
	if n >= 2 && !t.Path.Steps[n-2].IsIndex && t.Path.Steps[n-2].Key == "hashes" && !t.Path.Steps[n-1].IsIndex {
		algo := strings.ToUpper(t.Path.Steps[n-1].Key)
		want, known := hashLengths[algo]
		if !known {
			return
		}
		vals := t.Set
		if t.Op == OpEQ || t.Op == OpNEQ {
			vals = []Literal{t.Value}
		}
		for _, v := range vals {
			if v.Kind != LitString {
				continue
			}
			if _, err := hex.DecodeString(v.Str); err != nil || len(v.Str) != want {
				p.fail(v.Pos, KindHash, "%s is not a valid %s hash (expected %d hexadecimal digits)", quote(v.Str), algo, want)
			}
		}
	}
}

// pcreOnly names the first PCRE-only construct in a regular expression
// that RE2 rejected, or returns "".
func pcreOnly(re string) string {
	for _, c := range []struct{ text, name string }{
		{"(?<=", "a lookbehind (?<=...)"}, {"(?<!", "a negative lookbehind (?<!...)"},
		{"(?=", "a lookahead (?=...)"}, {"(?!", "a negative lookahead (?!...)"},
		{"(?>", "an atomic group (?>...)"}, {"*+", "a possessive quantifier *+"},
		{"++", "a possessive quantifier ++"}, {"?+", "a possessive quantifier ?+"},
	} {
		if strings.Contains(re, c.text) {
			return c.name
		}
	}
	for i := 0; i+1 < len(re); i++ {
		if re[i] == '\\' {
			if re[i+1] >= '1' && re[i+1] <= '9' {
				return "a backreference \\" + string(re[i+1])
			}
			i++ // skip the escaped character
		}
	}
	return ""
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
