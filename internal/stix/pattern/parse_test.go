package pattern

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
	"github.com/google/go-cmp/cmp"
)

// readLines returns the non-empty lines of a shared pattern file.
func readLines(t testing.TB, name string) []string {
	t.Helper()
	f, err := os.Open(testutil.SharedData(t, "patterns", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := sc.Text(); strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseValidPatterns(t *testing.T) {
	for file, v := range map[string]Version{"stix21-valid-patterns.txt": Version21, "stix20-valid-patterns.txt": Version20} {
		lines := readLines(t, file)
		if len(lines) < 30 {
			t.Fatalf("%s: only %d patterns", file, len(lines))
		}
		for i, s := range lines {
			p, err := ParseVersion(s, v)
			if err != nil {
				t.Errorf("%s:%d: ParseVersion(%q, %s): %v", file, i+1, s, v, err)
				continue
			}
			// The canonical rendering parses back to the same rendering.
			canon := p.String()
			p2, err := Parse(canon)
			if err != nil {
				t.Errorf("%s:%d: canonical form %q does not parse: %v", file, i+1, canon, err)
				continue
			}
			if got := p2.String(); got != canon {
				t.Errorf("%s:%d: rendering not stable:\n first %s\nsecond %s", file, i+1, canon, got)
			}
		}
	}
}

// invalidCase is one entry of the stix2*-invalid-patterns.json files.
type invalidCase struct {
	Pattern        string `json:"pattern"`
	ExpectedPrefix string `json:"expected_error_prefix"`
	Source         string `json:"source_test"`
}

var antlrPos = regexp.MustCompile(`^FAIL: Error found at line 1:(\d+)\. (.*)`)

// expectedKind maps the reference validator's message to the error kinds
// and position this parser must report. pos is -1 when the reference
// gives no column.
func expectedKind(prefix string) (kinds []ErrorKind, pos int) {
	pos = -1
	if m := antlrPos.FindStringSubmatch(prefix); m != nil {
		pos, _ = strconv.Atoi(m[1])
		if strings.Contains(m[2], "missing square brackets") {
			return []ErrorKind{KindMissingBrackets}, pos
		}
		return []ErrorKind{KindSyntax, KindLiteral}, pos
	}
	switch {
	case strings.HasPrefix(prefix, "FAIL: Error found at line 1:"):
		return []ErrorKind{KindSyntax, KindLiteral}, -1
	case strings.Contains(prefix, "is not a valid") && strings.Contains(prefix, "hash"):
		return []ErrorKind{KindHash}, -1
	case strings.Contains(prefix, "Duplicate qualifier"):
		return []ErrorKind{KindDuplicateQualifier}, -1
	}
	return nil, -1
}

func TestParseInvalidPatterns(t *testing.T) {
	for _, file := range []string{"stix21-invalid-patterns.json", "stix20-invalid-patterns.json"} {
		data, err := os.ReadFile(testutil.SharedData(t, "patterns", file))
		if err != nil {
			t.Fatal(err)
		}
		var cases []invalidCase
		if err := json.Unmarshal(data, &cases); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, c := range cases {
			kinds, pos := expectedKind(c.ExpectedPrefix)
			if kinds == nil {
				t.Errorf("%s: no mapping for expected error %q", file, c.ExpectedPrefix)
				continue
			}
			_, err := Parse(c.Pattern)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("%s: Parse(%q) = %v, want a *SyntaxError (%s)", file, c.Pattern, err, c.ExpectedPrefix)
				continue
			}
			if !containsKind(kinds, se.Kind) {
				t.Errorf("%s: Parse(%q): kind %s (%v), want one of %v for %q", file, c.Pattern, se.Kind, se, kinds, c.ExpectedPrefix)
			}
			if pos >= 0 && se.Pos != pos {
				t.Errorf("%s: Parse(%q): error at %d (%v), reference says %d", file, c.Pattern, se.Pos, se, pos)
			}
			if se.Pos < 0 || se.Pos > len([]rune(c.Pattern)) {
				t.Errorf("%s: Parse(%q): position %d outside the pattern", file, c.Pattern, se.Pos)
			}
		}
	}
}

func containsKind(ks []ErrorKind, k ErrorKind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// The plain-text invalid lists must all fail too.
func TestParseInvalidText(t *testing.T) {
	for _, file := range []string{"stix21-invalid-patterns.txt", "stix20-invalid-patterns.txt"} {
		for _, s := range readLines(t, file) {
			if p, err := Parse(s); err == nil {
				t.Errorf("%s: Parse(%q) succeeded as %s", file, s, p)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		kind ErrorKind
		pos  int
		msg  string
	}{
		{"", KindSyntax, 0, "expected '[' or '(' to start an observation expression but found end of input"},
		{"[a:b = 'x'", KindSyntax, 10, "expected AND, OR or ']' but found end of input"},
		{"[a:b = 'x]", KindLiteral, 7, "unterminated string literal"},
		{`[a:b = 'x\d']`, KindLiteral, 9, `invalid escape in string literal: only \' and \\ may follow a backslash`},
		{"[a:b-c = 1]", KindSyntax, 3, "property name 'b-c' contains '-' and must be quoted: 'b-c'"},
		{"[a:b = 1] WITHIN 0 SECONDS", KindQualifier, 17, "WITHIN duration must be positive, not 0"},
		{"[a:b = 1] REPEATS 0 TIMES", KindQualifier, 18, "REPEATS count must be positive, not 0"},
		{"[a:b = 1] REPEATS 2.5 TIMES", KindSyntax, 18, "expected a positive integer after REPEATS but found '2.5'"},
		{"[a:b = 1] WITHIN 1 second", KindSyntax, 19, "expected SECONDS after the WITHIN duration but found 'second'"},
		{"[a:b = 1] START t'2020-01-02T00:00:00Z' STOP t'2020-01-01T00:00:00Z'", KindQualifier, 10, "STOP (2020-01-01T00:00:00Z) must be later than START (2020-01-02T00:00:00Z)"},
		{"[a:b = 1] START t'2020-01-02T00:00:00Z'", KindSyntax, 39, "expected STOP after the START timestamp but found end of input"},
		{"[a:b MATCHES '(?<=x)y']", KindRegex, 13, "MATCHES expression '(?<=x)y' uses a lookbehind (?<=...), a PCRE feature the RE2 engine does not support"},
		{`[a:b MATCHES '(a)\\1']`, KindRegex, 13, `MATCHES expression '(a)\\1' uses a backreference \1, a PCRE feature the RE2 engine does not support`},
		{"[a:b MATCHES 'a(b']", KindRegex, 13, "MATCHES expression 'a(b' does not compile (Go RE2 syntax; backreferences and lookaround are not supported): error parsing regexp: missing closing ): `a(b`"},
		{"[a:b IN (1, true)]", KindSet, 12, "set mixes integer and boolean values"},
		{"[a:b < true]", KindSyntax, 7, "a boolean cannot be compared with <"},
		{"[a:b = h'abc']", KindLiteral, 7, "invalid hex literal h'abc': expected an even number of hexadecimal digits"},
		{"[a:b = 007]", KindLiteral, 7, `malformed integer "007": leading zeros are not allowed`},
		{"[a:b = 1] AND", KindSyntax, 13, "expected '[' or '(' but found end of input"},
		{"[a:b = 1]]", KindSyntax, 9, "unexpected ']' after the end of the pattern"},
		{"[a:b.c[x] = 1]", KindSyntax, 7, "expected a list index or '*' after '[' but found 'x'"},
		{"[a:b LIKE 5]", KindSyntax, 10, "expected a string literal after LIKE but found '5'"},
		{"[a:b ~ 5]", KindSyntax, 5, "expected a comparison operator (=, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET) but found '~'"},
		{"[a:b = 1 /* open", KindSyntax, 9, "unterminated comment"},
		{"[a:b = null]", KindSyntax, 7, "expected a literal after '=' but found 'null' (string literals must be quoted: 'null')"},
		{"[a:b = 'äö' AND ]", KindSyntax, 16, "expected an object path such as file:name but found ']'"},
		{"[a:b = 1]\nAND [c:d = ]", KindSyntax, 21, "expected a literal after '=' but found ']'"},
		{strings.Repeat("(", 300) + "[a:b = 1]" + strings.Repeat(")", 300), KindSyntax, 200, "expression nested more than 200 levels deep"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, want a *SyntaxError", tt.in, err)
			continue
		}
		got := struct {
			Kind ErrorKind
			Pos  int
			Msg  string
		}{se.Kind, se.Pos, se.Msg}
		want := struct {
			Kind ErrorKind
			Pos  int
			Msg  string
		}{tt.kind, tt.pos, tt.msg}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Parse(%q) error mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestSyntaxErrorLineColumn(t *testing.T) {
	_, err := Parse("[a:b = 1]\nAND [c:d = ]")
	if got, want := err.Error(), "line 2, column 11: expected a literal after '=' but found ']'"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestParseVersion(t *testing.T) {
	s20 := "[a:b = 1] START '2004-10-11T21:40:00Z' STOP '2004-10-11T21:50:00Z'"
	s21 := "[a:b = 1] START t'2004-10-11T21:40:00Z' STOP t'2004-10-11T21:50:00Z'"
	for _, tt := range []struct {
		in   string
		v    Version
		okay bool
	}{
		{s20, VersionAny, true}, {s21, VersionAny, true},
		{s20, Version20, true}, {s21, Version20, true},
		{s20, Version21, false}, {s21, Version21, true},
	} {
		_, err := ParseVersion(tt.in, tt.v)
		if (err == nil) != tt.okay {
			t.Errorf("ParseVersion(%q, %q) error = %v, want ok=%v", tt.in, tt.v, err, tt.okay)
		}
	}
	p, err := Parse(s20)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); got != s21 {
		t.Errorf("2.0 START/STOP renders as %q, want %q", got, s21)
	}
}

func TestString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"[foo:bar=1]", "[foo:bar = 1]"},
		{"[a:b == 1 AND (a:c <> 2 OR a:d NOT >= 3.50)]", "[a:b = 1 AND (a:c != 2 OR a:d NOT >= 3.5)]"},
		{"([a:b = 1] OR [a:c = 2]) AND [a:d = 3]", "([a:b = 1] OR [a:c = 2]) AND [a:d = 3]"},
		{"[a:b = 1] OR ([a:c = 2] AND [a:d = 3])", "[a:b = 1] OR [a:c = 2] AND [a:d = 3]"},
		{"[a:b = 1] FOLLOWEDBY ([a:c = 2] FOLLOWEDBY [a:d = 3])", "[a:b = 1] FOLLOWEDBY ([a:c = 2] FOLLOWEDBY [a:d = 3])"},
		{"([a:b = 1] AND [a:c = 2]) WITHIN .5 SECONDS", "([a:b = 1] AND [a:c = 2]) WITHIN 0.5 SECONDS"},
		{"([a:b = 1] REPEATS 2 TIMES) REPEATS 3 TIMES", "([a:b = 1] REPEATS 2 TIMES) REPEATS 3 TIMES"},
		{"[a:'b'.'c d'[*].e[-1] = 'it''s'", ""},
		{`[a:'b'.'c d'[*].e[-1] = 'it\'s \\']`, `[a:b.'c d'[*].e[-1] = 'it\'s \\']`},
		{"[a:b IN ( 'x' , 'y' )] // comment", "[a:b IN ('x', 'y')]"},
		{"[a:b = h'FFD8' OR a:c = b'AQIDBA==' OR a:d = t'2020-01-01T00:00:00.5Z' OR a:e = false]", "[a:b = h'ffd8' OR a:c = b'AQIDBA==' OR a:d = t'2020-01-01T00:00:00.5Z' OR a:e = false]"},
		{"[EXISTS a:b.'AND']", "[EXISTS a:b.'AND']"},
	}
	for _, tt := range tests {
		p, err := Parse(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Parse(%q) succeeded, want an error", tt.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := p.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDisjunction(t *testing.T) {
	tests := []struct {
		in   string
		want []Comparison
	}{
		{"[ipv4-addr:value = '1.2.3.4']", []Comparison{{"ipv4-addr", "value", []string{"1.2.3.4"}, "="}}},
		{"[ipv4-addr:value ISSUBSET '10.0.0.0/8']", []Comparison{{"ipv4-addr", "value", []string{"10.0.0.0/8"}, "ISSUBSET"}}},
		{"[domain-name:value = 'a' OR domain-name:value = 'b']", []Comparison{
			{"domain-name", "value", []string{"a"}, "="}, {"domain-name", "value", []string{"b"}, "="}}},
		{"[url:value = 'http://x.example/a'] OR [file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']", []Comparison{
			{"url", "value", []string{"http://x.example/a"}, "="},
			{"file", "hashes.SHA-256", []string{"aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f"}, "="}}},
		{"[file:hashes.MD5 = 'cead3f77f6cda6ec00f57d76c9a6879f']", []Comparison{{"file", "hashes.MD5", []string{"cead3f77f6cda6ec00f57d76c9a6879f"}, "="}}},
		{"[email-addr:value = 'a@b.example']", []Comparison{{"email-addr", "value", []string{"a@b.example"}, "="}}},
		{"[ipv4-addr:value IN ('1.2.3.4','5.6.7.8')]", []Comparison{{"ipv4-addr", "value", []string{"1.2.3.4", "5.6.7.8"}, "IN"}}},
		{"([a:b = 'x'] OR [a:c = 'y']) OR [a:d = 'z']", []Comparison{
			{"a", "b", []string{"x"}, "="}, {"a", "c", []string{"y"}, "="}, {"a", "d", []string{"z"}, "="}}},
		// Not simple disjunctions.
		{"[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS", nil},
		{"[ipv4-addr:value = '1.2.3.4' AND ipv4-addr:value = '1.2.3.5']", nil},
		{"[ipv4-addr:value = '1.2.3.4'] AND [ipv4-addr:value = '1.2.3.5']", nil},
		{"[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [ipv4-addr:value = '1.2.3.5']", nil},
		{"[ipv4-addr:value NOT = '1.2.3.4']", nil},
		{"[ipv4-addr:value != '1.2.3.4']", nil},
		{"[domain-name:value LIKE '%.example']", nil},
		{"[file:size = 1280]", nil},
		{"[file:hashes[*] = 'cead3f77f6cda6ec00f57d76c9a6879f']", nil},
		{"[ipv4-addr:value IN ()]", nil},
		{"[ipv4-addr:value = '1.2.3.4' OR file:size = 3]", nil},
	}
	for _, tt := range tests {
		p, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		got, ok := p.Disjunction()
		if ok != (tt.want != nil) {
			t.Errorf("Disjunction(%q) ok = %v, want %v", tt.in, ok, tt.want != nil)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Disjunction(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

// The reference validator's inspector cases: the qualifiers, observation
// operators and comparisons a pattern holds.
func TestInspectorCases(t *testing.T) {
	data, err := os.ReadFile(testutil.SharedData(t, "patterns", "stix21-inspector-cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Pattern     string                       `json:"pattern"`
		Qualifiers  []string                     `json:"expected_qualifiers"`
		ObsOps      []string                     `json:"expected_obs_ops"`
		Comparisons map[string][]json.RawMessage `json:"expected_comparisons"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		p, err := Parse(c.Pattern)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.Pattern, err)
			continue
		}
		var quals, ops []string
		comps := map[string][]string{}
		walkObs(p.Root, func(e ObservationExpr) {
			switch e := e.(type) {
			case *Qualified:
				quals = append(quals, e.qualifierString())
			case *ObservationOp:
				ops = append(ops, string(e.Op))
			case *SimpleObservation:
				walkCmp(e.Expr, func(t *Test) {
					op := string(t.Op)
					if t.Negated {
						op = "NOT " + op
					}
					keys := []string{}
					for _, s := range t.Path.Steps {
						keys = append(keys, s.Key)
					}
					val := t.Value.Str
					if t.Value.Kind == LitString {
						val = quote(t.Value.Str)
					}
					comps[t.Path.ObjectType] = append(comps[t.Path.ObjectType], strings.Join(keys, ".")+" "+op+" "+val)
				})
			}
		})
		if c.Qualifiers != nil {
			if diff := cmp.Diff(c.Qualifiers, quals, cmpEmpty); diff != "" {
				t.Errorf("%q qualifiers (-want +got):\n%s", c.Pattern, diff)
			}
		}
		if c.ObsOps != nil {
			if diff := cmp.Diff(setOf(c.ObsOps), setOf(ops)); diff != "" {
				t.Errorf("%q observation operators (-want +got):\n%s", c.Pattern, diff)
			}
		}
		if c.Comparisons != nil {
			want := map[string][]string{}
			for typ, list := range c.Comparisons {
				for _, raw := range list {
					var triple []json.RawMessage
					var path []string
					var op, val string
					if err := json.Unmarshal(raw, &triple); err != nil || len(triple) != 3 {
						t.Fatalf("bad comparison %s", raw)
					}
					_ = json.Unmarshal(triple[0], &path)
					_ = json.Unmarshal(triple[1], &op)
					_ = json.Unmarshal(triple[2], &val)
					if strings.HasPrefix(val, "'") {
						// The inspector reports source text; compare decoded values.
						l := lexer{src: val}
						tok, serr := l.next()
						if serr != nil {
							t.Fatal(serr)
						}
						val = quote(tok.str)
					}
					want[typ] = append(want[typ], strings.Join(path, ".")+" "+op+" "+val)
				}
			}
			if diff := cmp.Diff(want, comps); diff != "" {
				t.Errorf("%q comparisons (-want +got):\n%s", c.Pattern, diff)
			}
		}
	}
}

var cmpEmpty = cmp.Comparer(func(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") })

func setOf(s []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return m
}

func walkObs(e ObservationExpr, fn func(ObservationExpr)) {
	fn(e)
	switch e := e.(type) {
	case *ObservationOp:
		walkObs(e.Left, fn)
		walkObs(e.Right, fn)
	case *Qualified:
		walkObs(e.Expr, fn)
	}
}

func walkCmp(e ComparisonExpr, fn func(*Test)) {
	switch e := e.(type) {
	case *ComparisonOp:
		walkCmp(e.Left, fn)
		walkCmp(e.Right, fn)
	case *Test:
		fn(e)
	}
}

// TestRepeatedQualifiers follows the OASIS validator on qualifiers of
// one kind applied twice (testdata/qualifiers.txt).
func TestRepeatedQualifiers(t *testing.T) {
	data, err := os.ReadFile("testdata/qualifiers.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n++
		f := strings.Split(line, "\t")
		if len(f) < 2 {
			t.Fatalf("qualifiers.txt:%d: want valid|invalid, a tab and a pattern", i+1)
		}
		p, err := Parse(f[1])
		switch f[0] {
		case "invalid":
			var se *SyntaxError
			if !errors.As(err, &se) || se.Kind != KindDuplicateQualifier {
				t.Errorf("qualifiers.txt:%d: %s: got %v, want a duplicate-qualifier error", i+1, f[1], err)
			}
		case "valid":
			if err != nil {
				t.Errorf("qualifiers.txt:%d: %s: %v", i+1, f[1], err)
				continue
			}
			canon := p.String()
			p2, err := Parse(canon)
			if err != nil || p2.String() != canon {
				t.Errorf("qualifiers.txt:%d: canonical form %q does not parse back: %v", i+1, canon, err)
			}
			if len(f) > 2 {
				want, err := Parse(f[2])
				if err != nil || want.String() != canon {
					t.Errorf("qualifiers.txt:%d: %s means %s, want %s (%v)", i+1, f[1], canon, f[2], err)
				}
			}
		default:
			t.Fatalf("qualifiers.txt:%d: %q is not valid or invalid", i+1, f[0])
		}
	}
	if n < 10 {
		t.Fatalf("only %d cases", n)
	}
}
