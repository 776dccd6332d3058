package pattern

import (
	"strconv"
	"strings"
	"time"
)

// Pattern is a parsed STIX pattern.
type Pattern struct {
	// Root is the top observation expression.
	Root ObservationExpr
	src  string
}

// Source returns the text the pattern was parsed from.
func (p *Pattern) Source() string { return p.src }

// ObservationExpr is a node of the observation level of a pattern: a
// *SimpleObservation ([...]), a *ObservationOp (AND, OR, FOLLOWEDBY) or a
// *Qualified expression (WITHIN, REPEATS, START/STOP).
type ObservationExpr interface {
	observationExpr()
}

// ObsOperator is an operator joining observation expressions.
type ObsOperator string

// The observation operators, in increasing order of precedence.
const (
	FollowedBy ObsOperator = "FOLLOWEDBY"
	ObsOr      ObsOperator = "OR"
	ObsAnd     ObsOperator = "AND"
)

// ObservationOp joins two observation expressions.
type ObservationOp struct {
	Op          ObsOperator
	Left, Right ObservationExpr
}

// SimpleObservation is a bracketed comparison expression: [ ... ].
type SimpleObservation struct {
	Expr ComparisonExpr
	Pos  int // byte offset of '['
}

// QualifierKind names a qualifier.
type QualifierKind string

// The qualifiers.
const (
	Within    QualifierKind = "WITHIN"
	Repeats   QualifierKind = "REPEATS"
	StartStop QualifierKind = "START"
)

// Qualified is an observation expression constrained by a qualifier.
type Qualified struct {
	Expr ObservationExpr
	Kind QualifierKind
	// Seconds is the WITHIN duration.
	Seconds float64
	// Count is the REPEATS count.
	Count int
	// Start and Stop bound a START/STOP qualifier.
	Start, Stop time.Time
	// startText and stopText keep the timestamps as written.
	startText, stopText string
}

func (*ObservationOp) observationExpr()     {}
func (*SimpleObservation) observationExpr() {}
func (*Qualified) observationExpr()         {}

// ComparisonExpr is a node inside an observation: a *ComparisonOp (AND,
// OR) or a *Test.
type ComparisonExpr interface {
	comparisonExpr()
}

// ComparisonOp joins two comparison expressions with AND or OR.
type ComparisonOp struct {
	Op          ObsOperator // ObsAnd or ObsOr
	Left, Right ComparisonExpr
}

// Operator is a comparison operator.
type Operator string

// The comparison operators.
const (
	OpEQ         Operator = "="
	OpNEQ        Operator = "!="
	OpLT         Operator = "<"
	OpLE         Operator = "<="
	OpGT         Operator = ">"
	OpGE         Operator = ">="
	OpIn         Operator = "IN"
	OpLike       Operator = "LIKE"
	OpMatches    Operator = "MATCHES"
	OpIsSubset   Operator = "ISSUBSET"
	OpIsSuperset Operator = "ISSUPERSET"
	OpExists     Operator = "EXISTS"
)

// Test compares the values an object path selects with a literal (or a
// set of literals for IN).
type Test struct {
	Path    Path
	Negated bool // NOT before the operator
	Op      Operator
	Value   Literal   // the right-hand side, except for IN and EXISTS
	Set     []Literal // the right-hand side of IN
	Pos     int       // byte offset of the object path
}

func (*ComparisonOp) comparisonExpr() {}
func (*Test) comparisonExpr()         {}

// Path is an object path: an object type and the steps into the object.
type Path struct {
	ObjectType string
	Steps      []Step
}

// Step is one step of an object path: a property key, a list index, or
// the any-element index [*].
type Step struct {
	Key     string // property name, when IsIndex is false
	IsIndex bool
	Index   int  // list index, when IsIndex and not Star
	Star    bool // [*]
}

// LiteralKind is the type of a literal.
type LiteralKind int

// The literal kinds.
const (
	LitString LiteralKind = iota
	LitInt
	LitFloat
	LitBool
	LitHex
	LitBinary
	LitTimestamp
)

// Literal is a constant in a pattern.
type Literal struct {
	Kind  LiteralKind
	Str   string    // LitString value, or the source text of other kinds
	Int   int64     // LitInt
	Float float64   // LitFloat (also set for LitInt)
	Bool  bool      // LitBool
	Bytes []byte    // LitHex and LitBinary
	Time  time.Time // LitTimestamp
	Pos   int       // byte offset in the source
}

// String renders the pattern canonically: single spaces, keywords in
// upper case, quoted property names only where needed, parentheses only
// where precedence requires them. Parsing the result yields an equal
// pattern.
func (p *Pattern) String() string {
	var b strings.Builder
	writeObs(&b, p.Root, 0)
	return b.String()
}

func obsPrec(e ObservationExpr) int {
	switch e := e.(type) {
	case *ObservationOp:
		switch e.Op {
		case FollowedBy:
			return 1
		case ObsOr:
			return 2
		default:
			return 3
		}
	}
	return 4
}

func writeObs(b *strings.Builder, e ObservationExpr, minPrec int) {
	paren := obsPrec(e) < minPrec
	if paren {
		b.WriteByte('(')
	}
	switch e := e.(type) {
	case *ObservationOp:
		pr := obsPrec(e)
		writeObs(b, e.Left, pr)
		b.WriteString(" " + string(e.Op) + " ")
		writeObs(b, e.Right, pr+1)
	case *SimpleObservation:
		b.WriteByte('[')
		writeCmp(b, e.Expr, 0)
		b.WriteByte(']')
	case *Qualified:
		// A qualifier applies to the atom before it; compound operands
		// need parentheses, and so does a chain already qualified by the
		// same kind (a kind may appear only once per chain).
		if hasQualifier(e.Expr, e.Kind) {
			b.WriteByte('(')
			writeObs(b, e.Expr, 0)
			b.WriteByte(')')
		} else {
			writeObs(b, e.Expr, 4)
		}
		b.WriteByte(' ')
		b.WriteString(e.qualifierString())
	}
	if paren {
		b.WriteByte(')')
	}
}

// hasQualifier reports whether the chain of qualifiers directly on e
// includes kind.
func hasQualifier(e ObservationExpr, kind QualifierKind) bool {
	for {
		q, ok := e.(*Qualified)
		if !ok {
			return false
		}
		if q.Kind == kind {
			return true
		}
		e = q.Expr
	}
}

// qualifierString renders the qualifier alone, e.g. "WITHIN 5 SECONDS".
func (q *Qualified) qualifierString() string {
	switch q.Kind {
	case Within:
		return "WITHIN " + strconv.FormatFloat(q.Seconds, 'f', -1, 64) + " SECONDS"
	case Repeats:
		return "REPEATS " + strconv.Itoa(q.Count) + " TIMES"
	default:
		return "START t'" + q.startText + "' STOP t'" + q.stopText + "'"
	}
}

func cmpPrec(e ComparisonExpr) int {
	if op, ok := e.(*ComparisonOp); ok {
		if op.Op == ObsOr {
			return 1
		}
		return 2
	}
	return 3
}

func writeCmp(b *strings.Builder, e ComparisonExpr, minPrec int) {
	paren := cmpPrec(e) < minPrec
	if paren {
		b.WriteByte('(')
	}
	switch e := e.(type) {
	case *ComparisonOp:
		pr := cmpPrec(e)
		writeCmp(b, e.Left, pr)
		b.WriteString(" " + string(e.Op) + " ")
		writeCmp(b, e.Right, pr+1)
	case *Test:
		b.WriteString(e.String())
	}
	if paren {
		b.WriteByte(')')
	}
}

// String renders the comparison, e.g. "file:size NOT IN (1, 2)".
func (t *Test) String() string {
	var b strings.Builder
	if t.Op == OpExists {
		return "EXISTS " + t.Path.String()
	}
	b.WriteString(t.Path.String())
	if t.Negated {
		b.WriteString(" NOT")
	}
	b.WriteString(" " + string(t.Op) + " ")
	if t.Op == OpIn {
		b.WriteByte('(')
		for i, l := range t.Set {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(l.String())
		}
		b.WriteByte(')')
	} else {
		b.WriteString(t.Value.String())
	}
	return b.String()
}

// String renders the path, quoting property names that are not plain
// identifiers: file:hashes.'SHA-256'.
func (p Path) String() string {
	var b strings.Builder
	b.WriteString(p.ObjectType)
	b.WriteByte(':')
	for i, s := range p.Steps {
		switch {
		case s.IsIndex && s.Star:
			b.WriteString("[*]")
		case s.IsIndex:
			b.WriteString("[" + strconv.Itoa(s.Index) + "]")
		default:
			if i > 0 {
				b.WriteByte('.')
			}
			if plainIdent(s.Key) {
				b.WriteString(s.Key)
			} else {
				b.WriteString(quote(s.Key))
			}
		}
	}
	return b.String()
}

// plainIdent reports whether s can be written unquoted as a property name.
func plainIdent(s string) bool {
	if s == "" || !isIdentStartByte(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentPartByte(s[i]) || s[i] == '-' {
			return false
		}
	}
	if _, kw := keywords[s]; kw || s == "true" || s == "false" {
		return false
	}
	return true
}

// quote renders s as a pattern string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// String renders the literal canonically.
func (l Literal) String() string {
	switch l.Kind {
	case LitString:
		return quote(l.Str)
	case LitInt:
		return strconv.FormatInt(l.Int, 10)
	case LitFloat:
		s := strconv.FormatFloat(l.Float, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	case LitBool:
		return strconv.FormatBool(l.Bool)
	case LitHex:
		return "h'" + hexString(l.Bytes) + "'"
	case LitBinary:
		return "b'" + base64Std(l.Bytes) + "'"
	case LitTimestamp:
		return "t'" + l.Str + "'"
	}
	return "?"
}
