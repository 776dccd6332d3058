package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// DrillReport is the part of `entente drill --json` the bench reads.
type DrillReport struct {
	Nodes     int `json:"nodes"`
	Countries int `json:"countries"`
	Tiers     []struct {
		Tier            string  `json:"tier"`
		ExpectedAlerts  int     `json:"expected_alerts"`
		ProducedAlerts  int     `json:"produced_alerts"`
		DeliveredAlerts int     `json:"delivered_alerts"`
		Samples         int     `json:"samples"`
		P50Ms           float64 `json:"p50_ms"`
		P99Ms           float64 `json:"p99_ms"`
		MaxMs           float64 `json:"max_ms"`
	} `json:"tiers"`
	PolicyViolations int     `json:"policy_violations"`
	EgressChecked    int     `json:"egress_checked"`
	Converged        bool    `json:"converged"`
	PeakRSSMiB       float64 `json:"peak_rss_mib"`
}

// drillWorkload runs a small `entente drill` (a federation of real nodes
// in one process, an outbreak replayed, alert propagation per tier, the
// egress audits checked) and reports its latencies against the 2 s goal.
func drillWorkload(ctx context.Context, e *Env) error {
	bin, err := e.Tool(ctx, "entente")
	if err != nil {
		return err
	}
	dir, err := e.TempDir("drill-")
	if err != nil {
		return err
	}
	nodes, countries := Pick(e, 12, 40), Pick(e, 4, 12)
	duration := Pick(e, "30s", "60s")
	out := filepath.Join(dir, "drill.json")
	cmd := exec.CommandContext(ctx, bin, "drill", "--nodes", fmt.Sprint(nodes), "--countries", fmt.Sprint(countries), "--seed", "1",
		"--duration", duration, "--settle", "90s", "--dir", filepath.Join(dir, "nodes"), "--json", out)
	cmd.Stdout = prefixWriter(e.opts.Log, "   drill: ")
	u, err := e.Exec(cmd)
	b, rerr := os.ReadFile(out)
	if rerr != nil {
		if err != nil {
			return err
		}
		return fmt.Errorf("drill results: %w", rerr)
	}
	var r DrillReport
	if jerr := json.Unmarshal(b, &r); jerr != nil {
		return fmt.Errorf("drill results %s: %w", out, jerr)
	}
	note := fmt.Sprintf("%d nodes in %d countries, replay %s", r.Nodes, r.Countries, duration)
	missing := 0
	for _, t := range r.Tiers {
		var goal *Goal
		if t.Tier == "global" {
			goal = AtMost(2000)
		}
		e.Emit(Figure{Name: "drill." + t.Tier + ".p50", Value: t.P50Ms, Unit: "ms", Better: Lower, Note: note})
		e.Emit(Figure{Name: "drill." + t.Tier + ".p99", Value: t.P99Ms, Unit: "ms", Better: Lower, Goal: goal})
		e.Emit(Figure{Name: "drill." + t.Tier + ".max", Value: t.MaxMs, Unit: "ms", Better: Lower})
		missing += t.ExpectedAlerts - t.DeliveredAlerts
	}
	e.Emit(Figure{Name: "drill.alerts-missing", Value: float64(missing), Unit: "alerts", Better: Lower, Goal: AtMost(0)})
	e.Emit(Figure{Name: "drill.policy-violations", Value: float64(r.PolicyViolations), Unit: "violations", Better: Lower, Goal: AtMost(0),
		Note: fmt.Sprintf("%d egress records checked", r.EgressChecked)})
	e.Emit(Figure{Name: "drill.cpu", Value: (u.User + u.Sys).Seconds(), Unit: "CPU-s", Better: Lower})
	e.Emit(Figure{Name: "drill.max-rss", Value: float64(u.MaxRSS) / (1 << 20), Unit: "MiB", Better: Lower})
	return err
}
