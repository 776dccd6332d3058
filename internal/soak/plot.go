package soak

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// Sample is one reading of the node under load.
type Sample struct {
	At         time.Duration // since the load started
	RSSMiB     float64
	WALMiB     float64
	DBMiB      float64 // entente.db + audit.db: what the load stored
	Goroutines float64
	OpenFiles  float64
}

// series is one panel of the plot.
type series struct {
	name, unit string
	get        func(Sample) float64
}

var panels = []series{
	{"Resident memory", "MiB", func(s Sample) float64 { return s.RSSMiB }},
	{"WAL (entente.db-wal + audit.db-wal)", "MiB", func(s Sample) float64 { return s.WALMiB }},
	{"Database files (entente.db + audit.db: what the load stored)", "MiB", func(s Sample) float64 { return s.DBMiB }},
	{"Goroutines", "", func(s Sample) float64 { return s.Goroutines }},
	{"Open files", "", func(s Sample) float64 { return s.OpenFiles }},
}

// WriteSVG plots samples in four panels against time, with the end of
// the warm-up marked.
func WriteSVG(w io.Writer, title string, samples []Sample, warmup time.Duration) error {
	const width, panelH, left, right, top, gap = 900.0, 150.0, 80.0, 30.0, 50.0, 45.0
	height := top + float64(len(panels))*(panelH+gap) + 20
	pw := width - left - right
	end := time.Minute
	if len(samples) > 0 {
		end = max(end, samples[len(samples)-1].At)
	}
	x := func(d time.Duration) float64 { return left + pw*float64(d)/float64(end) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="26" font-size="15">%s</text>`+"\n", left, html.EscapeString(title))
	for k, p := range panels {
		y0 := top + float64(k)*(panelH+gap)
		hi := 0.0
		for _, s := range samples {
			hi = math.Max(hi, p.get(s))
		}
		hi = niceCeil(math.Max(hi*1.1, 1))
		y := func(v float64) float64 { return y0 + panelH - panelH*v/hi }
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-weight="bold">%s</text>`+"\n", left, y0-6, html.EscapeString(p.name))
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", left, y0, pw, panelH)
		for _, v := range []float64{0, hi / 2, hi} {
			label := fmt.Sprintf("%g", v)
			if p.unit != "" {
				label += " " + p.unit
			}
			fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, label)
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#d62728" stroke-dasharray="4 4"/>`+"\n", x(warmup), y0, x(warmup), y0+panelH)
		var pts []string
		for _, s := range samples {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.At), y(p.get(s))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="#2b8cbe" stroke-width="1.5" points="%s"/>`+"\n", strings.Join(pts, " "))
		if k == len(panels)-1 {
			for i := 0; i <= 4; i++ {
				d := end * time.Duration(i) / 4
				fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x(d), y0+panelH+16, d.Round(time.Second))
			}
		}
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#d62728">dashed: end of warm-up</text>`+"\n", width-right-160, top-30)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
