package pattern

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
)

// seedPatterns returns every pattern in the shared data files.
func seedPatterns(tb testing.TB) []string {
	var out []string
	for _, f := range []string{"stix21-valid-patterns.txt", "stix20-valid-patterns.txt", "stix21-invalid-patterns.txt", "stix20-invalid-patterns.txt"} {
		out = append(out, readLines(tb, f)...)
	}
	data, err := os.ReadFile(testutil.SharedData(tb, "patterns", "stix21-inspector-cases.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var insp []struct{ Pattern string }
	if err := json.Unmarshal(data, &insp); err != nil {
		tb.Fatal(err)
	}
	for _, c := range insp {
		out = append(out, c.Pattern)
	}
	f, err := os.Open(testutil.SharedData(tb, "patterns", "stix21-matcher-cases.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		var c struct{ Pattern string }
		if err := json.Unmarshal(sc.Bytes(), &c); err == nil {
			out = append(out, c.Pattern)
		}
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, s := range seedPatterns(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T is not a *SyntaxError", s, err)
			}
			if se.Pos < 0 || se.Pos > len([]rune(s)) || se.Msg == "" || se.Kind == "" {
				t.Fatalf("Parse(%q): bad error %+v", s, se)
			}
			return
		}
		// The canonical form parses, to itself.
		canon := p.String()
		p2, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its canonical form %q fails: %v", s, canon, err)
		}
		if again := p2.String(); again != canon {
			t.Fatalf("canonical form of %q not stable: %q then %q", s, canon, again)
		}
		if cs, ok := p.Disjunction(); ok && len(cs) == 0 {
			t.Fatalf("Disjunction(%q) ok with no comparisons", s)
		}
	})
}

// fuzzObservations is a small, varied set of observations for FuzzMatch.
const fuzzObservations = `{"type":"bundle","id":"bundle--f","objects":[
 {"type":"observed-data","id":"observed-data--1","first_observed":"2020-01-01T00:00:00Z","last_observed":"2020-01-01T00:00:05Z","number_observed":3,"object_refs":["ipv4-addr--1","network-traffic--1"]},
 {"type":"observed-data","id":"observed-data--2","first_observed":"2020-01-01T00:00:04Z","last_observed":"2020-01-01T00:00:04Z","number_observed":1,"object_refs":["file--1","person--1"]},
 {"type":"observed-data","id":"observed-data--3","first_observed":"2020-01-01T00:01:00Z","last_observed":"2020-01-01T00:02:00Z","number_observed":2,"object_refs":["person--2"]},
 {"type":"ipv4-addr","id":"ipv4-addr--1","value":"10.1.2.3"},
 {"type":"network-traffic","id":"network-traffic--1","dst_ref":"ipv4-addr--1","dst_port":443,"protocols":["tcp"],"payload_bin":"AQIDBA==","start":"2020-01-01T00:00:00Z"},
 {"type":"file","id":"file--1","name":"a.exe","size":1280,"hashes":{"MD5":"cead3f77f6cda6ec00f57d76c9a6879f"},"magic_number_hex":"ffd8","x":null},
 {"type":"person","id":"person--1","name":"alice","age":10,"knows_refs":["person--2"]},
 {"type":"person","id":"person--2","name":"bob","age":17.5,"ok":true}
]}`

func FuzzMatch(f *testing.F) {
	for _, s := range seedPatterns(f) {
		f.Add(s)
	}
	obs, err := ReadObservations([]byte(fuzzObservations))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		res, err := Match(p, obs)
		if err != nil {
			return
		}
		if res.Matched && len(res.Bindings) == 0 {
			t.Fatalf("Match(%q) matched without bindings", s)
		}
		for _, b := range res.Bindings {
			for _, i := range b.Observations {
				if i < 0 || i >= len(obs) {
					t.Fatalf("Match(%q): binding to observation %d of %d", s, i, len(obs))
				}
			}
		}
	})
}
