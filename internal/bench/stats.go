package bench

import (
	"math"
	"slices"
)

// Sample summarises the values of one figure in one results file.
type Sample struct {
	N      int
	Median float64
	Min    float64
	Max    float64
	// Spread is the largest distance of a value from the median, as a
	// fraction of the median (0 with one value, or a zero median).
	Spread float64
}

// Summarise returns the summary of values; the zero Sample for none.
func Summarise(values []float64) Sample {
	if len(values) == 0 {
		return Sample{}
	}
	v := slices.Clone(values)
	slices.Sort(v)
	s := Sample{N: len(v), Min: v[0], Max: v[len(v)-1], Median: median(v)}
	if s.Median != 0 {
		s.Spread = math.Max(s.Median-s.Min, s.Max-s.Median) / math.Abs(s.Median)
	}
	return s
}

// median of sorted values.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// maxExact bounds the sample sizes for which the U test is exact.
const maxExact = 50

// MannWhitney returns the two-sided p-value of the Mann-Whitney U test that
// a and b come from the same distribution: exact when neither sample is
// larger than 50 and no value is tied, otherwise from the normal
// approximation with the tie correction. It returns 1 when either sample
// is empty.
func MannWhitney(a, b []float64) float64 {
	n1, n2 := len(a), len(b)
	if n1 == 0 || n2 == 0 {
		return 1
	}
	// Ranks of the pooled values, ties given their mean rank.
	type obs struct {
		v     float64
		fromA bool
	}
	all := make([]obs, 0, n1+n2)
	for _, v := range a {
		all = append(all, obs{v, true})
	}
	for _, v := range b {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(x, y obs) int {
		switch {
		case x.v < y.v:
			return -1
		case x.v > y.v:
			return 1
		}
		return 0
	})
	var rankA, tieTerm float64
	ties := false
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // mean of ranks i+1 .. j
		for k := i; k < j; k++ {
			if all[k].fromA {
				rankA += rank
			}
		}
		if t := float64(j - i); t > 1 {
			ties = true
			tieTerm += t*t*t - t
		}
		i = j
	}
	u := rankA - float64(n1*(n1+1))/2 // U of sample a
	if !ties && n1 <= maxExact && n2 <= maxExact {
		return exactU(u, n1, n2)
	}
	return normalU(u, n1, n2, tieTerm)
}

// normalU returns the two-sided p-value of U = u for samples of n1 and n2
// values from the normal approximation, with the tie correction (tieTerm
// is the sum of t³ − t over groups of t tied values) and the continuity
// correction.
func normalU(u float64, n1, n2 int, tieTerm float64) float64 {
	n := float64(n1 + n2)
	mean := float64(n1*n2) / 2
	variance := float64(n1*n2) / 12 * ((n + 1) - tieTerm/(n*(n-1)))
	if variance <= 0 {
		return 1
	}
	d := math.Abs(u-mean) - 0.5
	if d < 0 {
		d = 0
	}
	z := d / math.Sqrt(variance)
	return math.Min(1, math.Erfc(z/math.Sqrt2))
}

// exactU returns the two-sided p-value of U = u for samples of n1 and n2
// values without ties, from the exact distribution of U.
func exactU(u float64, n1, n2 int) float64 {
	// counts[k] is the number of arrangements with U = k, built by the
	// recurrence over the largest value (from a or from b).
	maxU := n1 * n2
	// f[i][j] is the distribution for i values of a and j of b; only the
	// previous rows are needed, but sizes are small.
	f := make([][][]float64, n1+1)
	for i := range f {
		f[i] = make([][]float64, n2+1)
	}
	for i := 0; i <= n1; i++ {
		for j := 0; j <= n2; j++ {
			d := make([]float64, i*j+1)
			switch {
			case i == 0 || j == 0:
				d[0] = 1
			default:
				// The largest value is from a: it exceeds all j of b.
				for k, c := range f[i-1][j] {
					d[k+j] += c
				}
				// The largest value is from b: it adds nothing to U.
				for k, c := range f[i][j-1] {
					d[k] += c
				}
			}
			f[i][j] = d
		}
	}
	counts := f[n1][n2]
	var total, low, high float64
	k := int(math.Round(u))
	for x := 0; x <= maxU; x++ {
		total += counts[x]
		if x <= k {
			low += counts[x]
		}
		if x >= k {
			high += counts[x]
		}
	}
	return math.Min(1, 2*math.Min(low, high)/total)
}

// minPValue returns the smallest p-value the exact test can give for
// samples of n1 and n2 values: 2 / C(n1+n2, n1).
func minPValue(n1, n2 int) float64 {
	if n1 == 0 || n2 == 0 {
		return 1
	}
	c := 1.0
	for i := 1; i <= n1; i++ {
		c = c * float64(n2+i) / float64(i)
	}
	return math.Min(1, 2/c)
}
