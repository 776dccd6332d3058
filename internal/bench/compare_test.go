package bench

import (
	"bytes"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of this package's tests")

// golden compares got with the file testdata/name, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func readFile(t *testing.T, path string) []Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := ReadRecords(path, f)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestCompareGolden compares two results files covering every verdict: a
// significant regression, a significant improvement, too few samples
// with ranges apart, overlapping samples, a single sample each, a figure
// without direction, a unit that changed, a figure gone and a new one.
func TestCompareGolden(t *testing.T) {
	old := readFile(t, "testdata/compare/old.jsonl")
	new := readFile(t, "testdata/compare/new.jsonl")
	cs := Compare(old, new)
	verdicts := map[string]string{}
	for _, c := range cs {
		verdicts[c.Name] = c.Verdict
	}
	for name, want := range map[string]string{
		"taxii.post.complete":       VerdictWorse,
		"ingest.attack.wall":        VerdictBetter,
		"ingest.attack.page-faults": VerdictBetterQ,
		"gate.read10k.cost":         VerdictSame,
		"drill.global.p99":          VerdictWorseQ,
		"wal.load.server-cpu":       VerdictChanged,
		"match.snapshot.rss":        VerdictUnitClash,
		"export.node.first-1m":      VerdictGone,
		"wal.max":                   VerdictNew,
		"wal.load.posted":           VerdictUntested, // one sample each, 2% apart
	} {
		if verdicts[name] != want {
			t.Errorf("%s: verdict %q, want %q", name, verdicts[name], want)
		}
	}
	var out bytes.Buffer
	if err := WriteComparison(&out, "old.jsonl", "new.jsonl", old, new, cs); err != nil {
		t.Fatal(err)
	}
	golden(t, "compare/want.txt", out.Bytes())
}

// TestReadRecordsRoundTrip writes records and reads them back.
func TestReadRecordsRoundTrip(t *testing.T) {
	recs := readFile(t, "testdata/compare/old.jsonl")
	var buf bytes.Buffer
	if err := WriteRecords(&buf, recs); err != nil {
		t.Fatal(err)
	}
	again, err := ReadRecords("buf", &buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(recs) {
		t.Fatalf("read %d records back, wrote %d", len(again), len(recs))
	}
	for i := range recs {
		a, b := recs[i], again[i]
		if a.Name != b.Name || a.Value != b.Value || a.Unit != b.Unit || a.Better != b.Better || a.Sample != b.Sample || a.Machine != b.Machine || !a.Time.Equal(b.Time) {
			t.Errorf("record %d: %+v read back as %+v", i, a, b)
		}
	}
}

// TestReadRecordsErrors: each malformed file is refused with the file and
// line at fault.
func TestReadRecordsErrors(t *testing.T) {
	ok := `{"name":"a","value":1,"unit":"s","better":"lower","workload":"w","sample":1,"mode":"quick","commit":"c","time":"2026-11-24T02:00:00Z","machine":{"cpu":"x","cores":2,"load_before":0,"load_after":0}}`
	for _, tc := range []struct {
		name, data, want string
	}{
		{"not json", ok + "\n\nnot json\n", "f.jsonl:3: not a bench record"},
		{"no name", strings.Replace(ok, `"name":"a"`, `"name":" "`, 1), "f.jsonl:1: record has no name"},
		{"bad direction", strings.Replace(ok, `"better":"lower"`, `"better":"sideways"`, 1), `f.jsonl:1: figure a: better is "sideways"`},
		{"bad goal", strings.Replace(ok, `"better"`, `"goal":{"op":"~","value":1},"better"`, 1), `f.jsonl:1: figure a: goal "~"`},
		{"unknown field", strings.Replace(ok, `"name"`, `"nmae":"x","name"`, 1), `f.jsonl:1: not a bench record: json: unknown field "nmae"`},
		{"two values", ok + " {}", "f.jsonl:1: more than one JSON value"},
		{"string value", strings.Replace(ok, `"value":1`, `"value":"1"`, 1), "f.jsonl:1: not a bench record"},
		{"long line", strings.Repeat(" ", maxRecordLine+1), "f.jsonl:1: line longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadRecords("f.jsonl", strings.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestSummarise(t *testing.T) {
	for _, tc := range []struct {
		in                  []float64
		med, spread, lo, hi float64
	}{
		{[]float64{5}, 5, 0, 5, 5},
		{[]float64{3, 1, 2}, 2, 0.5, 1, 3},
		{[]float64{4, 1, 2, 3}, 2.5, 0.6, 1, 4},
		{[]float64{0, 0}, 0, 0, 0, 0},
	} {
		s := Summarise(tc.in)
		if s.Median != tc.med || math.Abs(s.Spread-tc.spread) > 1e-12 || s.Min != tc.lo || s.Max != tc.hi || s.N != len(tc.in) {
			t.Errorf("Summarise(%v) = %+v, want median %v spread %v range %v-%v", tc.in, s, tc.med, tc.spread, tc.lo, tc.hi)
		}
	}
	if s := Summarise(nil); s.N != 0 {
		t.Errorf("Summarise(nil) = %+v", s)
	}
}

// TestMannWhitneyKnown checks p-values worked out by hand: all of one
// sample below all of the other, exactly (2 / C(10,5) and 2 / C(6,3));
// and a tied case by the normal approximation: ranks 1, 3, 3, 5.5 for a
// give U = 2.5 against a mean of 8, variance 16/12 × (9 − 30/56), so
// z = (5.5 − 0.5) / 3.3594 and p = erfc(z/√2) = 0.1367.
func TestMannWhitneyKnown(t *testing.T) {
	for _, tc := range []struct {
		a, b []float64
		p    float64
	}{
		{[]float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}, 2.0 / 252},
		{[]float64{6, 7, 8, 9, 10}, []float64{1, 2, 3, 4, 5}, 2.0 / 252},
		{[]float64{1, 2, 3}, []float64{4, 5, 6}, 0.1},
		{[]float64{1, 2, 2, 3}, []float64{2, 3, 4, 5}, 0.1367},
		{[]float64{1}, []float64{2}, 1},
		{[]float64{1, 1, 1}, []float64{1, 1, 1}, 1},
		{nil, []float64{1}, 1},
	} {
		if got := MannWhitney(tc.a, tc.b); math.Abs(got-tc.p) > 5e-4 {
			t.Errorf("MannWhitney(%v, %v) = %.5f, want %.5f", tc.a, tc.b, got, tc.p)
		}
	}
}

// TestMannWhitneyExactByEnumeration compares the exact p-value with one
// found by enumerating every split of the pooled values, on random
// samples without ties.
func TestMannWhitneyExactByEnumeration(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 40 {
		n1, n2 := 1+r.IntN(6), 1+r.IntN(6)
		a, b := make([]float64, n1), make([]float64, n2)
		for i := range a {
			a[i] = r.Float64()
		}
		for i := range b {
			b[i] = r.Float64()
		}
		want := enumeratedP(a, b)
		if got := MannWhitney(a, b); math.Abs(got-want) > 1e-9 {
			t.Errorf("MannWhitney(%v, %v) = %v, enumeration gives %v", a, b, got, want)
		}
	}
}

// enumeratedP is the two-sided exact p-value by brute force: the share of
// the ways to choose which pooled values form a whose U is at least as far
// from the mean as the observed one, doubled from the smaller tail.
func enumeratedP(a, b []float64) float64 {
	pool := append(append([]float64{}, a...), b...)
	uOf := func(mask int) float64 {
		var u float64
		for i := range pool {
			if mask&(1<<i) == 0 {
				continue
			}
			for j := range pool {
				if mask&(1<<j) == 0 && pool[i] > pool[j] {
					u++
				}
			}
		}
		return u
	}
	obs := uOf(1<<len(a) - 1)
	var low, high, total float64
	for mask := 0; mask < 1<<len(pool); mask++ {
		if popcount(mask) != len(a) {
			continue
		}
		u := uOf(mask)
		total++
		if u <= obs {
			low++
		}
		if u >= obs {
			high++
		}
	}
	return math.Min(1, 2*math.Min(low, high)/total)
}

func popcount(x int) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// TestMannWhitneyNormalCloseToExact: for samples of 30 without ties, the
// normal approximation used past 50 values or with ties stays close to
// the exact value.
func TestMannWhitneyNormalCloseToExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		n1, n2 := 20+r.IntN(11), 20+r.IntN(11)
		u := float64(r.IntN(n1*n2 + 1))
		exact, approx := exactU(u, n1, n2), normalU(u, n1, n2, 0)
		if math.Abs(exact-approx) > 0.01 {
			t.Errorf("U = %v of %d and %d values: exact %v, approximation %v", u, n1, n2, exact, approx)
		}
	}
}

func TestMinPValue(t *testing.T) {
	for _, tc := range []struct {
		n1, n2 int
		want   float64
	}{{1, 1, 1}, {3, 3, 0.1}, {4, 4, 2.0 / 70}, {5, 5, 2.0 / 252}, {0, 3, 1}} {
		if got := minPValue(tc.n1, tc.n2); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("minPValue(%d, %d) = %v, want %v", tc.n1, tc.n2, got, tc.want)
		}
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 0.4872: "0.487", 1.234: "1.23", 12.34: "12.3", 612: "612", 9999: "9999", 61630: "61.6k",
		5_420_000: "5.42M", 2.5e9: "2.5G", -0.25: "-0.25", 100_000: "100k",
	} {
		if got := FormatValue(v); got != want {
			t.Errorf("FormatValue(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestRatio(t *testing.T) {
	p := Peer{Value: 100}
	for _, tc := range []struct {
		f    Figure
		want float64
	}{
		{Figure{Value: 500, Better: Higher}, 5},
		{Figure{Value: 20, Better: Lower}, 5},
		{Figure{Value: 20, Better: Info}, 0},
		{Figure{Value: 0, Better: Higher}, 0},
	} {
		if got := Ratio(tc.f, p); got != tc.want {
			t.Errorf("Ratio(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestGoalMet(t *testing.T) {
	for _, tc := range []struct {
		g    *Goal
		v    float64
		want bool
	}{
		{AtLeast(5), 5, true}, {AtLeast(5), 4.9, false},
		{AtMost(5), 5, true}, {AtMost(5), 5.1, false},
		{Below(5), 5, false}, {Below(5), 4.9, true},
		{&Goal{Op: ">", Value: 1}, 1, false}, {&Goal{Op: "?", Value: 1}, 1, false},
	} {
		if got := tc.g.Met(tc.v); got != tc.want {
			t.Errorf("%v %v met by %v: %v, want %v", tc.g.Op, tc.g.Value, tc.v, got, tc.want)
		}
	}
}
