package pattern

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
)

// matcherCase is one line of stix21-matcher-cases.jsonl.
type matcherCase struct {
	Source       string          `json:"source_test"`
	Pattern      string          `json:"pattern"`
	StixVersion  string          `json:"stix_version"`
	Expected     string          `json:"expected"` // match, nomatch, parse_error, matcher_error
	Observations json.RawMessage `json:"observations"`
}

func readMatcherCases(t testing.TB) []matcherCase {
	t.Helper()
	f, err := os.Open(testutil.SharedData(t, "patterns", "stix21-matcher-cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []matcherCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		var c matcherCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("line %d: %v", len(cases)+1, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

// repeatedQualifierCases are matcher cases that chain the same qualifier
// twice without parentheses ("REPEATS 2 TIMES REPEATS 2 TIMES"). The
// reference matcher accepts them; the reference validator (and Parse)
// rejects them as "Duplicate qualifier type encountered". The test checks
// both: Parse reports the duplicate, and the lenient parse used by the
// matcher gives the expected result.
func isRepeatedQualifier(err error) bool {
	var se *SyntaxError
	return errors.As(err, &se) && se.Kind == KindDuplicateQualifier
}

func TestMatcherCases(t *testing.T) {
	cases := readMatcherCases(t)
	if len(cases) < 250 {
		t.Fatalf("only %d matcher cases", len(cases))
	}
	counts := map[string]int{}
	for i, c := range cases {
		name := c.Source + " " + c.Pattern
		p, err := Parse(c.Pattern)
		if err != nil && isRepeatedQualifier(err) && c.Expected == "match" {
			counts["duplicate-qualifier conflict"]++
			pp := &parser{lex: lexer{src: c.Pattern}, lenientQualifiers: true}
			root, perr := pp.parse()
			if perr != nil {
				t.Errorf("case %d %s: lenient parse: %v", i, name, perr)
				continue
			}
			p, err = &Pattern{Root: root, src: c.Pattern}, nil
		}
		if c.Expected == "parse_error" {
			if err == nil {
				t.Errorf("case %d %s: parsed as %s, want a parse error", i, name, p)
			}
			counts[c.Expected]++
			continue
		}
		if err != nil {
			if c.Expected == "matcher_error" {
				counts[c.Expected+" (rejected by Parse)"]++
				continue
			}
			t.Errorf("case %d %s: Parse: %v", i, name, err)
			continue
		}
		obs, err := ReadObservations(c.Observations)
		if err != nil {
			t.Errorf("case %d %s: ReadObservations: %v", i, name, err)
			continue
		}
		res, err := Match(p, obs)
		switch c.Expected {
		case "matcher_error":
			if err == nil {
				t.Errorf("case %d %s: Match = %+v, want an error", i, name, res)
			}
		case "match", "nomatch":
			if err != nil {
				t.Errorf("case %d %s: Match: %v", i, name, err)
				continue
			}
			if res.Matched != (c.Expected == "match") {
				t.Errorf("case %d %s: Matched = %v, want %s", i, name, res.Matched, c.Expected)
				continue
			}
			if res.Matched && len(res.Bindings) == 0 {
				t.Errorf("case %d %s: matched without bindings", i, name)
			}
		default:
			t.Fatalf("case %d: unknown expectation %q", i, c.Expected)
		}
		counts[c.Expected]++
	}
	t.Logf("matcher cases: %d total, by outcome %v", len(cases), counts)
}

func TestMatchBindings(t *testing.T) {
	bundle := `{"type":"bundle","id":"bundle--1","objects":[
	 {"type":"observed-data","id":"observed-data--a","first_observed":"2020-01-01T00:00:00Z","last_observed":"2020-01-01T00:00:00Z","number_observed":1,"object_refs":["ipv4-addr--1"]},
	 {"type":"observed-data","id":"observed-data--b","first_observed":"2020-01-01T00:00:03Z","last_observed":"2020-01-01T00:00:03Z","number_observed":1,"object_refs":["domain-name--1","ipv4-addr--1"]},
	 {"type":"observed-data","id":"observed-data--c","first_observed":"2020-01-01T00:00:09Z","last_observed":"2020-01-01T00:00:09Z","number_observed":2,"object_refs":["network-traffic--1","ipv4-addr--2"]},
	 {"type":"ipv4-addr","id":"ipv4-addr--1","value":"10.1.2.3"},
	 {"type":"ipv4-addr","id":"ipv4-addr--2","value":"192.0.2.7"},
	 {"type":"domain-name","id":"domain-name--1","value":"evil.example","resolves_to_refs":["ipv4-addr--1"]},
	 {"type":"network-traffic","id":"network-traffic--1","dst_ref":"ipv4-addr--2","dst_port":443,"protocols":["tcp","tls"],
	  "extensions":{"http-request-ext":{"request_method":"GET","request_header":{"User-Agent":"curl/8"}}}}
	]}`
	obs, err := ReadObservations([]byte(bundle))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pattern string
		want    string // rendered bindings, "" for no match
	}{
		{"[ipv4-addr:value ISSUBSET '10.0.0.0/8']", "[ipv4-addr:value ISSUBSET '10.0.0.0/8'] <- observed-data--a"},
		{"[ipv4-addr:value = '10.1.2.3'] FOLLOWEDBY [domain-name:value = 'evil.example']",
			"[ipv4-addr:value = '10.1.2.3'] <- observed-data--a; [domain-name:value = 'evil.example'] <- observed-data--b"},
		{"[domain-name:value = 'evil.example'] FOLLOWEDBY [ipv4-addr:value = '10.1.2.3']", ""},
		{"([ipv4-addr:value = '10.1.2.3'] AND [domain-name:value = 'evil.example']) WITHIN 3 SECONDS",
			"[ipv4-addr:value = '10.1.2.3'] <- observed-data--a; [domain-name:value = 'evil.example'] <- observed-data--b"},
		{"([ipv4-addr:value = '10.1.2.3'] AND [domain-name:value = 'evil.example']) WITHIN 2.5 SECONDS", ""},
		{"[domain-name:resolves_to_refs[*].value = '10.1.2.3']", "[domain-name:resolves_to_refs[*].value = '10.1.2.3'] <- observed-data--b"},
		{"[network-traffic:dst_ref.value = '192.0.2.7' AND network-traffic:protocols[1] = 'tls']",
			"[network-traffic:dst_ref.value = '192.0.2.7' AND network-traffic:protocols[1] = 'tls'] <- observed-data--c"},
		{"[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' LIKE 'curl/%']",
			"[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' LIKE 'curl/%'] <- observed-data--c"},
		{"[network-traffic:dst_port IN (80, 443)] REPEATS 2 TIMES", "[network-traffic:dst_port IN (80, 443)] <- observed-data--c"},
		{"[network-traffic:dst_port IN (80, 443)] REPEATS 3 TIMES", ""},
		{"[EXISTS network-traffic:extensions.'http-request-ext']", "[EXISTS network-traffic:extensions.'http-request-ext'] <- observed-data--c"},
		{"[network-traffic:dst_port NOT IN (80, 443)]", ""},
		// AND inside brackets needs one object satisfying both sides.
		{"[ipv4-addr:value = '10.1.2.3' AND ipv4-addr:value = '192.0.2.7']", ""},
		{"[ipv4-addr:value = '10.9.9.9'] OR [domain-name:value MATCHES '^evil\\\\.']", "[domain-name:value MATCHES '^evil\\\\.'] <- observed-data--b"},
		{"[ipv4-addr:value = '10.1.2.3'] START t'2020-01-01T00:00:00Z' STOP t'2020-01-01T00:00:01Z'", "[ipv4-addr:value = '10.1.2.3'] <- observed-data--a"},
		{"[ipv4-addr:value = '10.1.2.3'] START t'2019-12-31T00:00:00Z' STOP t'2020-01-01T00:00:00Z'", ""},
	}
	for _, tt := range tests {
		p, err := Parse(tt.pattern)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.pattern, err)
			continue
		}
		res, err := Match(p, obs)
		if err != nil {
			t.Errorf("Match(%q): %v", tt.pattern, err)
			continue
		}
		var parts []string
		for _, b := range res.Bindings {
			parts = append(parts, b.Expression+" <- "+strings.Join(b.ObservedData, ", "))
		}
		if got := strings.Join(parts, "; "); got != tt.want || res.Matched != (tt.want != "") {
			t.Errorf("Match(%q) = %v %q, want %q", tt.pattern, res.Matched, got, tt.want)
		}
	}
}

// STIX 2.0 observed-data embed their objects and refer to them by key.
func TestMatchSTIX20References(t *testing.T) {
	obs, err := ReadObservations([]byte(`{"type":"observed-data","id":"observed-data--20","first_observed":"2017-01-01T00:00:00Z","last_observed":"2017-01-01T00:00:00Z","number_observed":1,
	  "objects":{"0":{"type":"ipv4-addr","value":"198.51.100.3"},"1":{"type":"network-traffic","dst_ref":"0","src_ref":"9","protocols":["tcp"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for pattern, want := range map[string]bool{
		"[network-traffic:dst_ref.value = '198.51.100.3']":           true,
		"[network-traffic:dst_ref.value ISSUBSET '198.51.100.0/24']": true,
		"[network-traffic:src_ref.value = '198.51.100.3']":           false, // dangling reference
		"[network-traffic:dst_ref = '0']":                            true,  // the reference itself
		"[network-traffic:protocols[*] = 'tcp']":                     true,
		"[network-traffic:protocols[0] NOT = 'tcp']":                 false,
	} {
		res, err := Match(mustParse(t, pattern), obs)
		if err != nil || res.Matched != want {
			t.Errorf("Match(%q) = %v, %v; want %v", pattern, res.Matched, err, want)
		}
	}
}

func TestReadObservationsErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"type":"observed-data","id":"observed-data--x","last_observed":"2020-01-01T00:00:00Z","number_observed":1,"objects":{}}`,
			"observed-data observed-data--x: property first_observed is missing or not a string"},
		{`{"type":"observed-data","id":"observed-data--x","first_observed":"2020-01-01T00:00:00Z","last_observed":"2020-01-01T00:00:00Z","number_observed":0,"objects":{}}`,
			"observed-data observed-data--x: property number_observed must be an integer from 1 to 2147483647, not 0"},
		{`{"type":"observed-data","id":"observed-data--x","first_observed":"2020-01-01T00:00:00Z","last_observed":"2019-01-01T00:00:00Z","number_observed":1,"objects":{}}`,
			"observed-data observed-data--x: last_observed is before first_observed"},
		{`[1]`, "decode observations: input[0] is not a STIX object"},
		{`{`, "decode observations: unexpected EOF"},
	}
	for _, tt := range tests {
		_, err := ReadObservations([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("ReadObservations(%s) error = %v, want %q", tt.in, err, tt.want)
		}
	}
}
