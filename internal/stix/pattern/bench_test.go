package pattern

import "testing"

// BenchmarkParse parses every valid pattern of the shared data per
// iteration and reports patterns per second.
func BenchmarkParse(b *testing.B) {
	pats := append(readLines(b, "stix21-valid-patterns.txt"), readLines(b, "stix20-valid-patterns.txt")...)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, s := range pats {
			if _, err := Parse(s); err != nil {
				b.Fatal(err)
			}
		}
		n += len(pats)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "patterns/s")
}

// BenchmarkMatch matches a pattern with REPEATS and WITHIN against the
// reference matcher's combinatorial case.
func BenchmarkMatch(b *testing.B) {
	var obsJSON []byte
	for _, c := range readMatcherCases(b) {
		if c.Pattern == "[person:age < 20] REPEATS 10 TIMES WITHIN 10 SECONDS" {
			obsJSON = c.Observations
		}
	}
	if obsJSON == nil {
		b.Fatal("case not found")
	}
	obs, err := ReadObservations(obsJSON)
	if err != nil {
		b.Fatal(err)
	}
	p := mustParse(b, "[person:age < 20] REPEATS 10 TIMES WITHIN 10 SECONDS")
	for b.Loop() {
		res, err := Match(p, obs)
		if err != nil || !res.Matched {
			b.Fatal(res, err)
		}
	}
}
