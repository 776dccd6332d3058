package pattern

import (
	"errors"
	"testing"
)

// Degenerate inputs stop with ErrTooExpensive instead of running for
// hours or exhausting memory.
func TestMatchBudget(t *testing.T) {
	obs, err := ReadObservations([]byte(`[{"type":"observed-data","first_observed":"2020-01-01T00:00:00Z","last_observed":"2020-01-01T00:00:00Z","number_observed":1,"objects":{"0":{"type":"z","v":1}}},
	{"type":"observed-data","first_observed":"2020-01-02T00:00:00Z","last_observed":"2020-01-02T00:00:00Z","number_observed":5000,"objects":{"0":{"type":"x","v":1}}}]`))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"([x:v = 1] AND [x:v = 1]) FOLLOWEDBY [z:v = 1]",
		"([x:v = 1] REPEATS 100000000 TIMES) OR [z:v = 1]",
		"(([x:v = 1] REPEATS 1000 TIMES) REPEATS 1000 TIMES) REPEATS 1000 TIMES",
	} {
		_, err := Match(mustParse(t, s), obs)
		if !errors.Is(err, ErrTooExpensive) {
			t.Errorf("Match(%q) error = %v, want ErrTooExpensive", s, err)
		}
	}
	// A cheap match on the same data still works.
	res, err := Match(mustParse(t, "[z:v = 1] FOLLOWEDBY [x:v = 1] REPEATS 3 TIMES"), obs)
	if err != nil || !res.Matched {
		t.Errorf("Match = %+v, %v; want a match", res, err)
	}
}
