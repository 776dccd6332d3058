package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestSummarize runs the summary over real "go test -json" streams (made
// from a module of passing, failing, skipped and unbuildable tests) and
// compares it with golden files.
func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"mixed", false},
		{"skips", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := os.ReadFile("testdata/" + tc.name + ".jsonl")
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if ok := summarize(bytes.NewReader(in), &out); ok != tc.ok {
				t.Errorf("summarize = %v, want %v", ok, tc.ok)
			}
			golden := "testdata/" + tc.name + ".golden"
			if *update {
				os.WriteFile(golden, out.Bytes(), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Errorf("summary:\n%s\nwant:\n%s", out.String(), want)
			}
		})
	}
}

func TestSummarizeNoEvents(t *testing.T) {
	var out bytes.Buffer
	if summarize(strings.NewReader("# go vet said something\n"), &out) {
		t.Fatal("no events must fail")
	}
	if !strings.Contains(out.String(), "# go vet said something") || !strings.Contains(out.String(), "no test events") {
		t.Fatalf("output: %q", out.String())
	}
}

func FuzzSummarize(f *testing.F) {
	if b, err := os.ReadFile("testdata/mixed.jsonl"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"Action":"skip","Package":"p","Test":"T"}` + "\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		summarize(bytes.NewReader(in), &bytes.Buffer{})
	})
}
