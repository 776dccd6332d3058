package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchCompare compares the bench package's golden results files
// through the command: the same table, a regression named.
func TestBenchCompare(t *testing.T) {
	dir := filepath.Join("..", "..", "internal", "bench", "testdata", "compare")
	code, out, errOut := run(t, nil, nil, "bench", "compare", filepath.Join(dir, "old.jsonl"), filepath.Join(dir, "new.jsonl"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want, err := os.ReadFile(filepath.Join(dir, "want.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// The golden file names the files by their base names.
	got := strings.ReplaceAll(out, filepath.Join(dir, "old.jsonl"), "old.jsonl")
	got = strings.ReplaceAll(got, filepath.Join(dir, "new.jsonl"), "new.jsonl")
	if got != string(want) {
		t.Errorf("compare output differs from %s:\n%s", filepath.Join(dir, "want.txt"), out)
	}
}

func TestBenchUsage(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	if err := os.WriteFile(empty, []byte("\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"name":"a","value":1}`+"\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bench", "compare", "one.jsonl"}, 2, "compare takes two results files"},
		{[]string{"bench", "compare", empty, empty}, 1, "holds no figures"},
		{[]string{"bench", "compare", bad, bad}, 1, "bad.jsonl:2: not a bench record"},
		{[]string{"bench", "--only", "nosuch"}, 2, `unknown workload "nosuch"`},
		{[]string{"bench", "--wal-clients", "0"}, 2, "--wal-clients 0"},
		{[]string{"bench", "--shared", t.TempDir()}, 2, "has no data/"},
	} {
		code, _, errOut := run(t, nil, nil, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	code, out, _ := run(t, nil, nil, "bench", "list")
	if code != 0 || !strings.Contains(out, "taxii ") || !strings.Contains(out, "export-node") || !strings.Contains(out, "(full mode, or --only)") {
		t.Errorf("bench list: exit %d:\n%s", code, out)
	}
}
