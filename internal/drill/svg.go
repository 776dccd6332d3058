package drill

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// tierColours colours the series of each tier, lowest first.
var tierColours = []string{"#2b8cbe", "#e6550d", "#31a354", "#756bb1"}

// WriteSVG draws the propagation: for each alert and tier, the number of
// nodes holding it against the time since the sighting that made it reach
// the tier (a step line from 0), with the 2 s goal marked. Nodes that
// caught up after a restart (fault mode) are drawn too.
func WriteSVG(w io.Writer, res *Result) error {
	const (
		width, height          = 960.0, 540.0
		left, right, top, foot = 70.0, 250.0, 50.0, 60.0
	)
	pw, ph := width-left-right, height-top-foot
	maxT := 2.0 // the goal
	for _, s := range res.Timeline {
		for _, t := range s.At {
			maxT = math.Max(maxT, t-s.Threshold)
		}
	}
	maxT = niceCeil(maxT)
	x := func(t float64) float64 { return left + pw*t/maxT }
	y := func(n int) float64 { return top + ph - ph*float64(n)/float64(max(res.Nodes, 1)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="24" font-size="15">%s</text>`+"\n", left, html.EscapeString(fmt.Sprintf(
		"Coordinated alert propagation: %d nodes in %d countries, seed %d", res.Nodes, res.Countries, res.Seed)))
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#d62728" stroke-dasharray="4 4"/>`+"\n", x(2), top, x(2), top+ph)
	// Labelled inside the plot, at the foot of the line, clear of the legend.
	fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" fill="#d62728" text-anchor="end">2 s goal</text>`+"\n", x(2)-4, top+ph-6)
	// Axes and grid.
	fmt.Fprintf(&b, `<g stroke="#ccc">`+"\n")
	for k := 0; k <= 10; k++ {
		t := maxT * float64(k) / 10
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f"/>`+"\n", x(t), top, x(t), top+ph)
	}
	for k := 0; k <= 4; k++ {
		n := res.Nodes * k / 4
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f"/>`+"\n", left, y(n), left+pw, y(n))
	}
	fmt.Fprintf(&b, "</g>\n")
	for k := 0; k <= 10; k++ {
		t := maxT * float64(k) / 10
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x(t), top+ph+16, trimFloat(t))
	}
	for k := 0; k <= 4; k++ {
		n := res.Nodes * k / 4
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%d</text>`+"\n", left-6, y(n)+4, n)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">seconds after the sighting that crossed the tier's threshold</text>`+"\n", left+pw/2, height-18)
	fmt.Fprintf(&b, `<text transform="translate(18 %.0f) rotate(-90)" text-anchor="middle">nodes holding the alert</text>`+"\n", top+ph/2)
	// Series.
	tierIndex := map[string]int{}
	for i, t := range res.Tiers {
		tierIndex[t.Tier] = i
	}
	for k, s := range res.Timeline {
		col := tierColours[tierIndex[s.Tier]%len(tierColours)]
		dash := []string{"", "6 3", "2 2"}[threatIndex(res, s.Threat)%3]
		var pts strings.Builder
		fmt.Fprintf(&pts, "%.1f,%.1f", x(0), y(0))
		for i, t := range s.At {
			d := math.Max(0, t-s.Threshold)
			fmt.Fprintf(&pts, " %.1f,%.1f %.1f,%.1f", x(d), y(i), x(d), y(i+1))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="%s" points="%s"/>`+"\n", col, dash, pts.String())
		ly := top + 14 + 16*float64(k)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n",
			left+pw+12, ly-4, left+pw+34, ly-4, col, dash)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", left+pw+40, ly, html.EscapeString(fmt.Sprintf("%s %s (%d nodes)", s.Threat, s.Tier, len(s.At))))
	}
	var summary []string
	for _, t := range res.Tiers {
		summary = append(summary, fmt.Sprintf("%s p99 %.0f ms", t.Tier, t.P99Ms))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="40" fill="#555">%s</text>`+"\n", left, html.EscapeString(strings.Join(summary, " · ")+
		fmt.Sprintf(" · policy violations %d", res.PolicyViolations)))
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func threatIndex(res *Result, name string) int {
	for i, t := range res.Threats {
		if strings.HasPrefix(t, name+" ") {
			return i
		}
	}
	return 0
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(s, ".0")
}
