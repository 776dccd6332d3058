package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Alpha is the significance level of comparisons.
const Alpha = 0.05

// minTentative is the smallest change of the median a comparison with too
// few samples for the test reports (as "better?" or "WORSE?").
const minTentative = 0.05

// Verdicts of a comparison.
const (
	VerdictBetter    = "better"
	VerdictWorse     = "WORSE"
	VerdictChanged   = "changed" // significant, but the figure has no direction
	VerdictSame      = "~"       // no significant difference
	VerdictBetterQ   = "better?" // too few samples for the test; ranges apart
	VerdictWorseQ    = "WORSE?"
	VerdictUntested  = "~?" // too few samples for the test; ranges overlap
	VerdictNew       = "new"
	VerdictGone      = "gone"
	VerdictUnitClash = "unit?" // the two files give the figure different units
)

// Comparison is one figure in two results files.
type Comparison struct {
	Name   string
	Unit   string
	Better Direction
	Goal   *Goal
	Old    Sample
	New    Sample
	// Delta is the change of the median, as a fraction of the old one
	// (NaN when there is no old median, or it is 0).
	Delta float64
	// P is the Mann-Whitney p-value (NaN when not computed).
	P       float64
	Verdict string
}

type series struct {
	name   string
	unit   string
	better Direction
	goal   *Goal
	values []float64
}

// group gathers the values of each figure, in the order figures first
// appear.
func group(recs []Record) (order []string, by map[string]*series) {
	by = map[string]*series{}
	for _, r := range recs {
		s, ok := by[r.Name]
		if !ok {
			s = &series{name: r.Name, unit: r.Unit, better: r.Better, goal: r.Goal}
			by[r.Name] = s
			order = append(order, r.Name)
		}
		s.values = append(s.values, r.Value)
	}
	return order, by
}

// Compare compares the figures of two results files, old (before a change)
// and new (after it), figure by figure, in the order they appear (old's
// figures first).
func Compare(old, new []Record) []Comparison {
	oldOrder, oldBy := group(old)
	newOrder, newBy := group(new)
	names := oldOrder
	for _, n := range newOrder {
		if _, ok := oldBy[n]; !ok {
			names = append(names, n)
		}
	}
	out := make([]Comparison, 0, len(names))
	for _, n := range names {
		o, n2 := oldBy[n], newBy[n]
		c := Comparison{Name: n, Delta: math.NaN(), P: math.NaN()}
		switch {
		case n2 == nil:
			c.Unit, c.Better, c.Goal, c.Old, c.Verdict = o.unit, o.better, o.goal, Summarise(o.values), VerdictGone
		case o == nil:
			c.Unit, c.Better, c.Goal, c.New, c.Verdict = n2.unit, n2.better, n2.goal, Summarise(n2.values), VerdictNew
		default:
			c.Unit, c.Better, c.Goal = n2.unit, n2.better, n2.goal
			c.Old, c.New = Summarise(o.values), Summarise(n2.values)
			if o.unit != n2.unit {
				c.Unit = o.unit + " → " + n2.unit
				c.Verdict = VerdictUnitClash
				break
			}
			if c.Old.Median != 0 {
				c.Delta = (c.New.Median - c.Old.Median) / math.Abs(c.Old.Median)
			}
			c.Verdict = verdict(&c, o.values, n2.values)
		}
		out = append(out, c)
	}
	return out
}

// verdict decides whether the change is significant and which way it
// goes, setting c.P when the test can be significant at all.
func verdict(c *Comparison, old, new []float64) string {
	up := c.New.Median > c.Old.Median
	dir := func(better, worse string) string {
		switch {
		case c.New.Median == c.Old.Median:
			return VerdictSame
		case c.Better == Info:
			return VerdictChanged
		case (c.Better == Higher) == up:
			return better
		}
		return worse
	}
	if minPValue(len(old), len(new)) < Alpha {
		c.P = MannWhitney(old, new)
		if c.P >= Alpha {
			return VerdictSame
		}
		return dir(VerdictBetter, VerdictWorse)
	}
	// Too few samples for the test to say anything at this level: tell
	// only whether the two ranges are apart by more than the noise a
	// single run shows on a quiet machine (minTentative).
	apart := c.New.Min > c.Old.Max || c.New.Max < c.Old.Min
	if apart && !math.IsNaN(c.Delta) && math.Abs(c.Delta) >= minTentative {
		v := dir(VerdictBetterQ, VerdictWorseQ)
		if v == VerdictChanged {
			return VerdictChanged + "?"
		}
		return v
	}
	return VerdictUntested
}

// WriteComparison writes comparisons as a table, then a line naming the
// figures that got worse.
func WriteComparison(w io.Writer, oldName, newName string, old, new []Record, cs []Comparison) error {
	bw := &errWriter{w: w}
	describe := func(label, name string, recs []Record) {
		if len(recs) == 0 {
			fmt.Fprintf(bw, "%s: %s (no records)\n", label, name)
			return
		}
		r := recs[0]
		fmt.Fprintf(bw, "%s: %s — commit %s, %s mode, %s, %d cores\n", label, name, orDash(r.Commit), orDash(r.Mode), orDash(r.Machine.CPU), r.Machine.Cores)
	}
	describe("old", oldName, old)
	describe("new", newName, new)
	fmt.Fprintln(bw)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tunit\told (n)\tnew (n)\tdelta\tp\tverdict\tgoal (new)")
	var worse, maybe []string
	for _, c := range cs {
		p := ""
		if !math.IsNaN(c.P) {
			p = fmt.Sprintf("%.3f", c.P)
		}
		delta := ""
		if !math.IsNaN(c.Delta) {
			delta = fmt.Sprintf("%+.1f%%", 100*c.Delta)
		}
		goal := ""
		if c.Goal != nil && c.New.N > 0 {
			goal = goalText(*c.Goal, c.New.Median)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Unit, sampleText(c.Old), sampleText(c.New), delta, p, c.Verdict, goal)
		switch c.Verdict {
		case VerdictWorse:
			worse = append(worse, c.Name)
		case VerdictWorseQ:
			maybe = append(maybe, c.Name)
		}
	}
	tw.Flush()
	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "old and new: median ± largest distance from it (n samples); p: two-sided Mann-Whitney U test, shown when the samples are enough for p < %.2f; '?': too few samples for the test, said only when the ranges do not overlap and the medians differ by %.0f%% or more.\n", Alpha, 100*minTentative)
	switch {
	case len(worse) == 0 && len(maybe) == 0:
		fmt.Fprintln(bw, "No figure got worse.")
	case len(worse) > 0:
		fmt.Fprintf(bw, "Worse: %s\n", strings.Join(worse, ", "))
	}
	if len(maybe) > 0 {
		fmt.Fprintf(bw, "Perhaps worse (too few samples to tell; run with more): %s\n", strings.Join(maybe, ", "))
	}
	return bw.err
}

func sampleText(s Sample) string {
	if s.N == 0 {
		return "—"
	}
	if s.N == 1 {
		return fmt.Sprintf("%s (1)", FormatValue(s.Median))
	}
	return fmt.Sprintf("%s ±%.0f%% (%d)", FormatValue(s.Median), 100*s.Spread, s.N)
}

func goalText(g Goal, v float64) string {
	mark := "met"
	if !g.Met(v) {
		mark = "MISSED"
	}
	return fmt.Sprintf("%s %s %s", opText(g.Op), FormatValue(g.Value), mark)
}

func opText(op string) string {
	switch op {
	case ">=":
		return "≥"
	case "<=":
		return "≤"
	}
	return op
}

// FormatValue writes v with three significant digits and a k, M or G
// suffix for large values.
func FormatValue(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trimFloat(v/1e9) + "G"
	case a >= 1e6:
		return trimFloat(v/1e6) + "M"
	case a >= 1e4:
		return trimFloat(v/1e3) + "k"
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return trimFloat(v)
}

// trimFloat writes v with three significant digits (at least the units).
func trimFloat(v float64) string {
	a := math.Abs(v)
	var s string
	switch {
	case a >= 100:
		s = fmt.Sprintf("%.0f", v)
	case a >= 10:
		s = fmt.Sprintf("%.1f", v)
	case a >= 1:
		s = fmt.Sprintf("%.2f", v)
	default:
		s = fmt.Sprintf("%.3g", v)
	}
	if strings.Contains(s, ".") && !strings.ContainsAny(s, "e") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
