package bench

import (
	"bytes"
	"math"
	"testing"
)

// The seed corpora are small excerpts of real files, under
// testdata/fuzz/<FuzzName>; the whole files are read by the unit tests
// (large seeds slow coverage-guided fuzzing down to a few executions).

// FuzzReadRecords: any input is read or refused without panic, and what is
// read writes back to records that read the same.
func FuzzReadRecords(f *testing.F) {
	f.Add([]byte(`{"name":"a","value":1e308,"unit":"","peers":[{"name":"p","value":-0}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ReadRecords("fuzz", bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteRecords(&buf, recs); err != nil {
			t.Fatalf("records read could not be written: %v", err)
		}
		again, err := ReadRecords("again", &buf)
		if err != nil || len(again) != len(recs) {
			t.Fatalf("records written did not read back: %d of %d, %v", len(again), len(recs), err)
		}
		for i := range recs {
			if again[i].Name != recs[i].Name || again[i].Value != recs[i].Value {
				t.Fatalf("record %d changed: %+v -> %+v", i, recs[i], again[i])
			}
		}
		// A comparison of what was read never panics either.
		_ = Compare(recs, again)
	})
}

// FuzzParseBaselines: any Markdown is parsed without panic; every table has
// a header; a lookup of each row by its first cell finds a row.
func FuzzParseBaselines(f *testing.F) {
	f.Add([]byte("|a|\n|-|\n|`|`|\n|\\|\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBaselines("fuzz", data)
		if err != nil {
			return
		}
		for _, tb := range b.Tables {
			if len(tb.Header) == 0 {
				t.Fatalf("table at line %d without header", tb.Line)
			}
			for _, r := range tb.Rows {
				if len(r) == 0 || len(tb.Header) < 1 {
					continue
				}
				if _, _, ok := b.Cell(map[string]string{tb.Header[0]: r[0]}, tb.Header[0]); !ok {
					t.Fatalf("row %v of table at line %d not found by its first cell", r, tb.Line)
				}
			}
		}
		for _, v := range Numbers(string(data)) {
			if v < 0 || math.IsNaN(v) {
				t.Fatalf("Numbers gave %v", v)
			}
		}
	})
}

// FuzzParseGoBench: any output is parsed without panic into results with
// positive iterations and finite metrics.
func FuzzParseGoBench(f *testing.F) {
	f.Add([]byte("BenchmarkX-2 1 1 ns/op\nBenchmarkY 3 Inf x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ParseGoBench(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, r := range res {
			if r.Iterations <= 0 {
				t.Fatalf("result %s with %d iterations", r.Name, r.Iterations)
			}
			for u, v := range r.Metrics {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("result %s: %s = %v", r.Name, u, v)
				}
			}
		}
	})
}

// FuzzParseMatchgen: any output is parsed or refused without panic.
func FuzzParseMatchgen(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := ParseMatchgen(bytes.NewReader(data))
		if err != nil {
			return
		}
		if rep.Values < 0 || rep.BuildSeconds < 0 {
			t.Fatalf("negative figures: %+v", rep)
		}
	})
}

// FuzzParseStraceSummary: any text is parsed or refused without panic.
func FuzzParseStraceSummary(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseStraceSummary(data)
		if err != nil {
			return
		}
		for sc, n := range c {
			if n < 0 {
				t.Fatalf("%s: %d calls", sc, n)
			}
		}
	})
}

// FuzzParseDevicegen: any text is parsed or refused without panic, and
// what is parsed has its watch lines.
func FuzzParseDevicegen(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := ParseDevicegen(bytes.NewReader(data))
		if err != nil {
			return
		}
		if rep.Lines < 0 || rep.Devices < 0 || rep.Pairs < 0 {
			t.Fatalf("negative counts: %+v", rep)
		}
	})
}
