package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// GoBench is a workload measured by a Go benchmark of the repository:
// `go test -run '^$' -bench Pattern -benchtime T -count C Pkg`, with the
// metrics it reports turned into figures, one sample per -count.
type GoBench struct {
	// Pkg is the package, relative to the repository ("./internal/httpapi").
	Pkg string
	// Pattern is the -bench pattern.
	Pattern string
	// Benchtime and Count are the -benchtime and -count of quick and of
	// full runs; Env the extra environment of each ("{work}" in a value
	// stands for the work directory).
	QuickBenchtime, FullBenchtime string
	QuickCount, FullCount         int
	QuickEnv, FullEnv             []string
	// Timeout is go test's -timeout (default 30 minutes).
	Timeout time.Duration
	// Metrics are the figures taken from the results.
	Metrics []BenchMetric
	// FullMetrics are taken only in full runs (benchmarks the quick
	// pattern leaves out, or sizes only full runs reach).
	FullMetrics []BenchMetric
	// FullPattern, when set, is the -bench pattern of full runs.
	FullPattern string
}

// BenchMetric turns one reported metric of one benchmark into a figure.
type BenchMetric struct {
	// Bench is the result's name without the -GOMAXPROCS suffix
	// ("BenchmarkTAXIIRead10k/gc=400"); Unit the reported unit
	// ("gate-%", "ns/op").
	Bench, Unit string
	// Figure, FigureUnit, Scale (a factor, 1 when 0), Better and Goal
	// describe the figure.
	Figure     string
	FigureUnit string
	Scale      float64
	Better     Direction
	Goal       *Goal
	Note       string
	// Peer, when set, is another metric of the same run shown beside
	// the figure (e.g. the ungated read beside the gated one).
	Peer *BenchPeer
	// Recorded, when set, is a peer's figure from users' reports or
	// BASELINES.md.
	Recorded *Peer
}

// BenchPeer is a metric of the same benchmark run used as a peer.
type BenchPeer struct {
	Name, Bench, Unit string
	Scale             float64
}

// Workload returns the benchmark as a workload.
func (g GoBench) Workload(name, about string, quick, full time.Duration, fullOnly bool) Workload {
	return Workload{Name: name, About: about, Quick: quick, Full: full, FullOnly: fullOnly, Run: g.run}
}

func (g GoBench) run(ctx context.Context, e *Env) error {
	pattern, bt, count, env, metrics := g.Pattern, g.QuickBenchtime, g.QuickCount, slices.Clone(g.QuickEnv), g.Metrics
	if !e.Quick() {
		bt, count, env = g.FullBenchtime, g.FullCount, slices.Clone(g.FullEnv)
		metrics = append(append([]BenchMetric(nil), g.Metrics...), g.FullMetrics...)
		if g.FullPattern != "" {
			pattern = g.FullPattern
		}
	}
	timeout := g.Timeout
	if timeout == 0 {
		timeout = 30 * time.Minute
	}
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	// "{work}" in a variable's value is the work directory.
	for i, v := range env {
		env[i] = strings.ReplaceAll(v, "{work}", e.Work)
	}
	res, err := e.GoBench(ctx, g.Pkg, pattern, bt, count, timeout, env...)
	if err != nil {
		return err
	}
	for _, m := range metrics {
		vals, err := metricOf(res, m.Bench, m.Unit)
		if err != nil {
			return err
		}
		var peerVals []float64
		if m.Peer != nil {
			if peerVals, err = metricOf(res, m.Peer.Bench, m.Peer.Unit); err != nil {
				return err
			}
			if len(peerVals) != len(vals) {
				return fmt.Errorf("%s: %d results of %s but %d of its peer %s", m.Figure, len(vals), m.Bench, len(peerVals), m.Peer.Bench)
			}
		}
		for i, v := range vals {
			f := Figure{Name: m.Figure, Value: v * scale(m.Scale), Unit: m.FigureUnit, Better: m.Better, Goal: m.Goal, Note: m.Note}
			if m.Peer != nil {
				f.Peers = append(f.Peers, Peer{Name: m.Peer.Name, Value: peerVals[i] * scale(m.Peer.Scale)})
			}
			if m.Recorded != nil {
				f.Peers = append(f.Peers, *m.Recorded)
			}
			e.Emit(f)
		}
	}
	return nil
}

func scale(s float64) float64 {
	if s == 0 {
		return 1
	}
	return s
}
