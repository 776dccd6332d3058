package main

import (
	"math"
	"testing"
)

// TestWarmHeapSize checks how much heap serve faults in before its first
// request: the collector's smallest goal at the configured percent,
// bounded by warmHeapMax and a quarter of a memory limit, and nothing
// with the collector off.
func TestWarmHeapSize(t *testing.T) {
	for _, tc := range []struct {
		name      string
		gcPercent int
		memLimit  int64
		want      int
	}{
		{"serve's default", 400, math.MaxInt64, 16 << 20},
		{"Go's default", 100, math.MaxInt64, 4 << 20},
		{"large percent, bounded", 5000, math.MaxInt64, warmHeapMax},
		{"memory limit", 400, 32 << 20, 8 << 20},
		{"collector off", -1, math.MaxInt64, 0},
		{"zero", 0, math.MaxInt64, 0},
	} {
		if got := warmHeapSize(tc.gcPercent, tc.memLimit); got != tc.want {
			t.Errorf("%s: warmHeapSize(%d, %d) = %d, want %d", tc.name, tc.gcPercent, tc.memLimit, got, tc.want)
		}
	}
}
