package pattern

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Source is a pattern to validate and where it came from.
type Source struct {
	// Name locates the pattern for messages ("patterns.txt:3"); it may be
	// empty for patterns given directly.
	Name string
	// Text is the pattern.
	Text string
}

// WriteValidation parses each pattern with ParseVersion and writes one
// report per pattern to w: "ok: PATTERN" when it is valid (followed by
// any Warnings, indented), otherwise the
// line of the pattern at fault, a caret under the error's column and the
// error. It returns how many patterns were invalid.
func WriteValidation(w io.Writer, sources []Source, v Version) (invalid int, err error) {
	for _, s := range sources {
		p, perr := ParseVersion(s.Text, v)
		if perr == nil {
			var b strings.Builder
			fmt.Fprintf(&b, "ok: %s\n", s.Text)
			for _, warn := range p.Warnings() {
				fmt.Fprintf(&b, "  warning: %s\n", warn)
			}
			if _, err := io.WriteString(w, b.String()); err != nil {
				return invalid, err
			}
			continue
		}
		invalid++
		msg := FormatError(s.Text, perr)
		if s.Name != "" {
			// Name the origin on the message line (the last one).
			i := strings.LastIndex(strings.TrimSuffix(msg, "\n"), "\n") + 1
			msg = msg[:i] + s.Name + ": " + msg[i:]
		}
		if _, err := io.WriteString(w, msg); err != nil {
			return invalid, err
		}
	}
	return invalid, nil
}

// FormatError renders a parse error of pattern src for people: the line
// of src holding the error, a line with a caret under the error column,
// and the error message, each ending in a newline. Errors other than a
// *SyntaxError are rendered as their message alone.
func FormatError(src string, err error) string {
	var se *SyntaxError
	if !errors.As(err, &se) {
		return err.Error() + "\n"
	}
	lines := strings.Split(src, "\n")
	line := ""
	if se.Line >= 1 && se.Line <= len(lines) {
		line = strings.TrimRight(lines[se.Line-1], "\r")
	}
	var caret strings.Builder
	for i, r := range []rune(line) {
		if i >= se.Column {
			break
		}
		if r == '\t' {
			caret.WriteRune('\t')
		} else {
			caret.WriteRune(' ')
		}
	}
	caret.WriteRune('^')
	return line + "\n" + caret.String() + "\n" + se.Error() + "\n"
}

// WriteMatch writes the outcome of Match for people: "no match", or
// "match" followed by one line per binding naming the observation
// expression and the observed-data bound to it.
func WriteMatch(w io.Writer, res Result) error {
	if !res.Matched {
		_, err := io.WriteString(w, "no match\n")
		return err
	}
	var b strings.Builder
	b.WriteString("match\n")
	for _, bind := range res.Bindings {
		names := make([]string, len(bind.Observations))
		for i, idx := range bind.Observations {
			if id := bind.ObservedData[i]; id != "" {
				names[i] = id
			} else {
				names[i] = fmt.Sprintf("observation #%d", idx+1)
			}
		}
		fmt.Fprintf(&b, "  %s <- %s\n", bind.Expression, strings.Join(names, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
