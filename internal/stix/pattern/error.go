package pattern

import "fmt"

// ErrorKind classifies a SyntaxError, so that callers and tests can tell
// the kinds of mistakes apart without matching message text.
type ErrorKind string

// The kinds of SyntaxError.
const (
	KindSyntax             ErrorKind = "syntax"              // the grammar is not followed
	KindMissingBrackets    ErrorKind = "missing-brackets"    // a comparison not enclosed in [ ]
	KindLiteral            ErrorKind = "literal"             // a malformed literal (string, binary, hex, timestamp)
	KindDuplicateQualifier ErrorKind = "duplicate-qualifier" // e.g. WITHIN twice on one observation expression
	KindQualifier          ErrorKind = "qualifier"           // a qualifier value out of range
	KindHash               ErrorKind = "hash"                // a hash value that does not fit its algorithm
	KindRegex              ErrorKind = "regex"               // a MATCHES expression that does not compile
	KindSet                ErrorKind = "set"                 // a set literal mixing types
)

// SyntaxError reports why a pattern is invalid and where.
type SyntaxError struct {
	Pos    int       // 0-based rune offset of the fault from the start of the pattern
	Msg    string    // what is wrong, in lower case
	Kind   ErrorKind // the class of fault
	Line   int       // 1-based line of Pos
	Column int       // 0-based rune column of Pos within its line
}

// Error renders the error as "line 1, column 13: message".
func (e *SyntaxError) Error() string {
	line := e.Line
	if line == 0 {
		line = 1
	}
	return fmt.Sprintf("line %d, column %d: %s", line, e.Column, e.Msg)
}

// newError builds a SyntaxError at byte offset off of src, converting it
// to the rune offset, line and column the error reports.
func newError(src string, off int, kind ErrorKind, format string, args ...any) *SyntaxError {
	off = max(0, min(off, len(src)))
	pos, line, col := 0, 1, 0
	for _, r := range src[:off] {
		pos++
		if r == '\n' {
			line++
			col = 0
			continue
		}
		col++
	}
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...), Kind: kind, Line: line, Column: col}
}
