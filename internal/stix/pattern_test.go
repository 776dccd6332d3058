package stix

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
)

// indicatorWith returns baseIndicator with the given pattern properties
// (a nil value deletes the property).
func indicatorWith(t *testing.T, pattern, patternType, patternVersion any) []byte {
	t.Helper()
	return mutate(t, baseIndicator, map[string]any{"pattern": pattern, "pattern_type": patternType, "pattern_version": patternVersion})
}

// patternProblem validates raw and returns the message of its problem on
// "pattern", or "" when there is none.
func patternProblem(t *testing.T, raw []byte) string {
	t.Helper()
	err := Validate(&Object{Raw: raw})
	if err == nil {
		return ""
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate: %v is not a *ValidationError", err)
	}
	for _, p := range ve.Problems {
		if p.Property == "pattern" {
			return p.Message
		}
	}
	t.Fatalf("rejected for another reason than the pattern: %v", err)
	return ""
}

// TestValidatePattern checks that indicators whose STIX pattern the
// node's parser rejects are invalid, with the parser's position and
// message, and that patterns of other types are not parsed.
func TestValidatePattern(t *testing.T) {
	tests := []struct {
		name                  string
		pattern, typ, version any
		want                  string // exact problem message; "" for valid
	}{
		// The two patterns TAXII POST stored as successes (issue 16, D2).
		{"prose", "this is not a pattern", "stix", nil,
			"column 0: input is missing square brackets: a comparison must be written inside [ ], e.g. [file:size = 1280]"},
		{"unclosed bracket", "[ipv4-addr:value = '1.2.3.4'", "stix", nil,
			"column 28: expected AND, OR or ']' but found end of input"},
		{"bad hash", "[file:hashes.'SHA-256' = 'f00']", "stix", nil,
			`column 25: 'f00' is not a valid SHA-256 hash (expected 64 hexadecimal digits)`},
		{"negative WITHIN", "[ipv4-addr:value = '1.2.3.4'] WITHIN -5 SECONDS", "stix", nil,
			"column 37: expected a positive number of seconds after WITHIN but found '-5'"},
		{"second line", "[ipv4-addr:value = '1.2.3.4']\nAND [x:y = ]", "stix", nil,
			"line 2, column 11: expected a literal after '=' but found ']'"},
		{"2.0 START string under 2.1", "[ipv4-addr:value = '1.2.3.4'] START '2016-06-01T00:00:00Z' STOP '2016-07-01T00:00:00Z'", "stix", "2.1",
			"column 36: expected a timestamp literal t'...' after START but found '2016-06-01T00:00:00Z'"},

		{"valid", "[ipv4-addr:value = '198.51.100.1']", "stix", nil, ""},
		{"valid 2.1", "[ipv4-addr:value = '198.51.100.1'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'", "stix", "2.1", ""},
		{"2.0 START string under 2.0", "[ipv4-addr:value = '1.2.3.4'] START '2016-06-01T00:00:00Z' STOP '2016-07-01T00:00:00Z'", "stix", "2.0", ""},
		{"2.0 START string, no version", "[ipv4-addr:value = '1.2.3.4'] START '2016-06-01T00:00:00Z' STOP '2016-07-01T00:00:00Z'", "stix", nil, ""},
		{"unknown version parsed as any", "[ipv4-addr:value = '1.2.3.4'", "stix", "3.0", "column 28: expected AND, OR or ']' but found end of input"},
		{"sigma is not parsed", "title: x\ndetection: {}", "sigma", nil, ""},
		{"snort is not parsed", `alert tcp any any -> any 80 (msg:"x"; sid:1;)`, "snort", nil, ""},
		{"yara is not parsed", "rule x { condition: true }", "yara", nil, ""},
		{"suricata is not parsed", `alert http any any -> any any (msg:"x"; sid:2;)`, "suricata", nil, ""},
		{"pcre is not parsed", `/(a|b)+\1/`, "pcre", nil, ""},
		{"custom type is not parsed", "[[[", "x-acme", nil, ""},
		{"pattern_type STIX in capitals is another type", "[[[", "STIX", nil, ""},
		{"empty", "  ", "stix", nil, "must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := indicatorWith(t, tt.pattern, tt.typ, tt.version)
			got := patternProblem(t, raw)
			if got != tt.want {
				t.Errorf("problem on pattern = %q, want %q", got, tt.want)
			}
			if tt.want == "" {
				return
			}
			err := validateRaw(raw)
			if want := `property "pattern": ` + tt.want; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not contain %q", err, want)
			}
		})
	}
}

// TestValidatePatternTypeProblems checks that a pattern or pattern_type
// of the wrong JSON type is reported once, as a type error, and not
// parsed.
func TestValidatePatternTypeProblems(t *testing.T) {
	if got := patternProblem(t, indicatorWith(t, 5, "stix", nil)); got != "must be a string, not a number" {
		t.Errorf("numeric pattern: %q", got)
	}
	err := validateRaw(indicatorWith(t, "[[[", 5, nil))
	if err == nil || strings.Contains(err.Error(), `"pattern": column`) || !strings.Contains(err.Error(), `property "pattern_type": must be a string`) {
		t.Errorf("numeric pattern_type: %v", err)
	}
}

// readPatternLines returns the non-empty lines of a shared pattern file.
func readPatternLines(t *testing.T, name string) []string {
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

// TestValidateOASISPatterns wraps every pattern of the OASIS pattern
// validator's test lists in an indicator: the valid ones must still be
// accepted (under their own pattern_version and with none), the invalid
// ones rejected on "pattern" at the column the reference validator
// reports, where it reports one.
func TestValidateOASISPatterns(t *testing.T) {
	for file, version := range map[string]string{"stix21-valid-patterns.txt": "2.1", "stix20-valid-patterns.txt": "2.0"} {
		lines := readPatternLines(t, file)
		if len(lines) < 30 {
			t.Fatalf("%s: only %d patterns", file, len(lines))
		}
		for i, p := range lines {
			for _, v := range []any{version, nil} {
				if got := patternProblem(t, indicatorWith(t, p, "stix", v)); got != "" {
					t.Errorf("%s:%d (pattern_version %v): %q rejected: %s", file, i+1, v, p, got)
				}
			}
		}
	}
	refColumn := regexp.MustCompile(`^FAIL: Error found at line 1:(\d+)\.`)
	for file, version := range map[string]string{"stix21-invalid-patterns.json": "2.1", "stix20-invalid-patterns.json": "2.0"} {
		data, err := os.ReadFile(testutil.SharedData(t, "patterns", file))
		if err != nil {
			t.Fatal(err)
		}
		var cases []struct {
			Pattern string `json:"pattern"`
			Prefix  string `json:"expected_error_prefix"`
		}
		if err := json.Unmarshal(data, &cases); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(cases) < 15 {
			t.Fatalf("%s: only %d cases", file, len(cases))
		}
		for _, c := range cases {
			got := patternProblem(t, indicatorWith(t, c.Pattern, "stix", version))
			if got == "" {
				t.Errorf("%s: %q accepted; the reference says %q", file, c.Pattern, c.Prefix)
				continue
			}
			if !strings.HasPrefix(got, "column ") {
				t.Errorf("%s: %q: problem %q does not give the column", file, c.Pattern, got)
			}
			if m := refColumn.FindStringSubmatch(c.Prefix); m != nil && !strings.HasPrefix(got, fmt.Sprintf("column %s: ", m[1])) {
				t.Errorf("%s: %q: problem %q, reference column %s", file, c.Pattern, got, m[1])
			}
		}
	}
}
