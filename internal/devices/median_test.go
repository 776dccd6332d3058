package devices

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMedianBySelection: the selection gives the median and order
// statistics a sort gives, on sizes around the window's and values with
// many ties (as the intervals of a beacon have).
func TestMedianBySelection(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name   string
		values func(n int) []float64
	}{
		{"distinct", func(n int) []float64 {
			v := make([]float64, n)
			for i := range v {
				v[i] = r.Float64() * 1e6
			}
			return v
		}},
		{"ties", func(n int) []float64 {
			v := make([]float64, n)
			for i := range v {
				v[i] = float64(r.IntN(4)) * 60000
			}
			return v
		}},
		{"sorted", func(n int) []float64 {
			v := make([]float64, n)
			for i := range v {
				v[i] = float64(i)
			}
			return v
		}},
		{"reversed", func(n int) []float64 {
			v := make([]float64, n)
			for i := range v {
				v[i] = float64(n - i)
			}
			return v
		}},
	} {
		for n := 1; n <= 70; n++ {
			for range 20 {
				v := tc.values(n)
				s := slices.Clone(v)
				slices.Sort(s)
				want := s[n/2]
				if n%2 == 0 {
					want = (s[n/2-1] + s[n/2]) / 2
				}
				if got := median(slices.Clone(v)); got != want {
					t.Fatalf("%s, %d values: median %v, want %v", tc.name, n, got, want)
				}
				k := r.IntN(n)
				w := slices.Clone(v)
				if got := nth(w, k); got != s[k] {
					t.Fatalf("%s, %d values: value %d is %v, want %v", tc.name, n, k, got, s[k])
				}
				if slices.Max(w[:k+1]) != s[k] || slices.Min(w[k:]) != s[k] {
					t.Fatalf("%s, %d values: not partitioned around %d: %v", tc.name, n, k, w)
				}
			}
		}
	}
}
