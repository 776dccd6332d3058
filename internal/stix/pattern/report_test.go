package pattern

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

func TestWriteValidationGolden(t *testing.T) {
	sources := []Source{
		{Text: "[file:size = 1280]"},
		{Text: "[file:size = ]"},
		{Name: "list.txt:3", Text: "file:size = 1280"},
		{Name: "list.txt:4", Text: "[file:hashes.'SHA-256' = 'f00']"},
		{Name: "list.txt:5", Text: "[a:b = 1] WITHIN 5 SECONDS WITHIN 6 SECONDS"},
		{Name: "list.txt:6", Text: "[a:b = 1]\n\tAND [a:c = t'2024-13-01T00:00:00Z']"},
		{Text: "[a:b = 1] START '2020-01-01T00:00:00Z' STOP '2020-01-02T00:00:00Z'"},
		{Name: "list.txt:8", Text: "[network-traffic:src_port = 37020 AND user-account:user_id = 'root']"},
		{Name: "list.txt:9", Text: "[(a:b = 1 OR c:d = 2) AND a:e = 3] OR [x:y = 1 OR z:w = 2]"},
		{Name: "list.txt:10", Text: "[(a:b = 1 OR c:d = 2) AND e:f = 3]"},
	}
	var b strings.Builder
	invalid, err := WriteValidation(&b, sources, Version21)
	if err != nil {
		t.Fatal(err)
	}
	if invalid != 6 {
		t.Errorf("invalid = %d, want 6", invalid)
	}
	golden(t, "validate.golden", b.String())
}

func TestWriteMatchGolden(t *testing.T) {
	data := `[{"type":"observed-data","first_observed":"2004-10-11T21:44:58Z","last_observed":"2004-10-11T21:44:58Z","number_observed":1,
	   "objects":{"0":{"type":"person","name":"alice","age":10}}},
	  {"type":"observed-data","id":"observed-data--2","first_observed":"2004-10-11T21:45:00Z","last_observed":"2004-10-11T21:45:00Z","number_observed":2,
	   "objects":{"0":{"type":"person","name":"bob","age":17}}}]`
	obs, err := ReadObservations([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range []string{
		"[person:name = 'alice'] FOLLOWEDBY [person:age > 15] REPEATS 2 TIMES",
		"[person:name = 'carol'] OR [person:age < 11]",
		"[person:name = 'alice'] FOLLOWEDBY [person:age > 15] REPEATS 3 TIMES",
	} {
		res, err := Match(mustParse(t, s), obs)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("$ " + s + "\n")
		if err := WriteMatch(&b, res); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "match.golden", b.String())
}

func mustParse(t testing.TB, s string) *Pattern {
	t.Helper()
	p, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return p
}
