package drill_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/drill"
)

// runDrill runs a small drill and checks what every drill must show:
// each tier's expected alerts were produced and delivered to every node,
// no policy violation, and well-formed JSON and SVG.
func runDrill(t *testing.T, cfg drill.Config) *drill.Result {
	t.Helper()
	if testing.Short() {
		t.Skip("a drill runs a federation for several seconds")
	}
	var progress bytes.Buffer
	cfg.Progress = &progress
	// The progress of each phase, last report first seen.
	var phases []string
	last := map[string]drill.Progress{}
	cfg.OnProgress = func(p drill.Progress) {
		if _, ok := last[p.Phase]; !ok {
			phases = append(phases, p.Phase)
		} else if p.Done < last[p.Phase].Done || p.Total != last[p.Phase].Total {
			t.Errorf("progress went back: %+v after %+v", p, last[p.Phase])
		}
		last[p.Phase] = p
	}
	res, err := drill.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, progress.String())
	}
	want := []string{drill.PhaseSetup, drill.PhaseSyncs, drill.PhaseReplay, drill.PhaseSettle}
	if cfg.Processes {
		want = slices.Insert(want, 1, drill.PhaseStart)
	}
	if !slices.Equal(phases, want) {
		t.Errorf("phases %q, want %q", phases, want)
	}
	for _, ph := range phases {
		if p := last[ph]; p.Done != p.Total || p.Total == 0 {
			t.Errorf("phase %s ended at %d of %d", ph, p.Done, p.Total)
		}
	}
	if p := last[drill.PhaseSetup]; p.Total != 3*res.Nodes {
		t.Errorf("set-up of %d steps for %d nodes", p.Total, res.Nodes)
	}
	if p := last[drill.PhaseReplay]; p.Total != res.Sightings {
		t.Errorf("replay of %d steps for %d sightings", p.Total, res.Sightings)
	}
	var sum bytes.Buffer
	drill.Summary(&sum, res)
	t.Logf("\n%s", sum.String())
	if !res.Converged {
		t.Errorf("not every node holds every alert")
	}
	if len(res.Tiers) != 3 {
		t.Fatalf("%d tiers, want national, regional and global", len(res.Tiers))
	}
	for _, tr := range res.Tiers {
		if tr.ExpectedAlerts == 0 {
			t.Errorf("tier %s: the outbreak raises no alert: the drill measures nothing", tr.Tier)
		}
		// Expected is a lower bound (each country one source): a CERT that
		// counts its own constituents one by one may raise an alert
		// higher than that, and push it to its constituents.
		if tr.ProducedAlerts < tr.ExpectedAlerts || tr.DeliveredAlerts != tr.ExpectedAlerts {
			t.Errorf("tier %s: expected %d alerts, produced %d, delivered to every node %d", tr.Tier, tr.ExpectedAlerts, tr.ProducedAlerts, tr.DeliveredAlerts)
		}
		if tr.Samples == 0 || tr.MaxMs < tr.P99Ms || tr.P99Ms < tr.P50Ms || tr.P50Ms < 0 {
			t.Errorf("tier %s: figures out of order: %+v", tr.Tier, tr)
		}
		// Every store says when it holds each sighting (in processes
		// mode, by its date_added): the latency splits along the path,
		// no leg longer than the whole.
		if len(tr.Hops) != 4 {
			t.Errorf("tier %s: %d hops, want report, cert-to-cert, correlation, alert-push", tr.Tier, len(tr.Hops))
			continue
		}
		// With faults a leg may outlast the whole: a CERT closed when a
		// sighting was pushed to it holds it only once back, after the
		// alert reached the node by another CERT.
		longest := tr.MaxMs + 1
		if cfg.Faults > 0 {
			longest = math.Inf(1)
		}
		for _, h := range tr.Hops {
			if h.Samples == 0 || h.Samples > tr.Samples || h.MaxMs > longest || h.MaxMs < h.P99Ms || h.P99Ms < h.P50Ms || h.P50Ms < 0 || h.TailMs > longest {
				t.Errorf("tier %s: hop %s out of order against the tier (%d samples, max %.0f ms): %+v", tr.Tier, h.Hop, tr.Samples, tr.MaxMs, h)
			}
		}
	}
	if res.PolicyViolations != 0 || res.EgressChecked == 0 {
		t.Errorf("%d policy violations in %d egress records: %v", res.PolicyViolations, res.EgressChecked, res.Violations)
	}

	var js bytes.Buffer
	if err := drill.WriteJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	for _, k := range []string{"nodes", "countries", "tiers", "policy_violations"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	for _, tier := range back["tiers"].([]any) {
		for _, k := range []string{"tier", "expected_alerts", "produced_alerts", "p50_ms", "p99_ms", "max_ms"} {
			if _, ok := tier.(map[string]any)[k]; !ok {
				t.Errorf("JSON tier lacks %q", k)
			}
		}
	}
	var svg bytes.Buffer
	if err := drill.WriteSVG(&svg, res); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&svg)
	lines := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if want := len(res.Timeline); lines != want || want == 0 {
		t.Errorf("SVG draws %d series, want %d", lines, want)
	}
	return res
}

// TestDrillSmall runs 12 organisations in 5 countries.
func TestDrillSmall(t *testing.T) {
	res := runDrill(t, drill.Config{Nodes: 12, Countries: 5, Seed: 1, Duration: 4 * time.Second, SyncInterval: 2 * time.Second, Settle: 30 * time.Second})
	if res.Nodes != 12 || res.Countries != 5 {
		t.Errorf("result names %d nodes in %d countries", res.Nodes, res.Countries)
	}
}

// TestDrillFaults closes three nodes mid-drill and reopens them from
// their data directories: they catch up and hold every alert.
func TestDrillFaults(t *testing.T) {
	res := runDrill(t, drill.Config{Nodes: 12, Countries: 5, Seed: 2, Faults: 3, Duration: 6 * time.Second, SyncInterval: 2 * time.Second, Settle: 30 * time.Second})
	if len(res.Faults) != 3 {
		t.Fatalf("%d faults, want 3", len(res.Faults))
	}
	for _, f := range res.Faults {
		if !f.Converged || f.ReopenAt <= f.ClosedAt {
			t.Errorf("fault %+v: not converged after reopening", f)
		}
	}
}

// TestDrillProcesses runs 12 organisations as 12 'entente serve'
// processes over TLS with pinned keys, through the WAN proxy split into
// two processes of its own (as when one process's open-file limit
// cannot hold it: the partition and the flap cut links in both), with every
// fault: two nodes killed with SIGKILL (a CERT first) and restarted from
// disk, a region cut off, a flapping uplink, a full disk when a tmpfs can
// be mounted, clock skew. Every alert reaches every node, no
// acknowledged sighting is lost, nothing is stored twice, the audits
// show no violation, and the full disk refused writes clearly while
// serving reads.
func TestDrillProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("the processes drill builds entente and runs 12 processes for a minute")
	}
	bin := filepath.Join(t.TempDir(), "entente")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/entente")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build entente: %v\n%s", err, out)
	}
	res := runDrill(t, drill.Config{Nodes: 12, Countries: 5, Seed: 1, Faults: 2, Processes: true, Binary: bin, ProxyProcesses: 2,
		Duration: 30 * time.Second, SyncInterval: 10 * time.Second, Settle: time.Minute})
	if res.Mode != "processes" || res.ProcessBound == "" {
		t.Errorf("mode %q, bound %q", res.Mode, res.ProcessBound)
	}
	// Each proxy process held some of the links (a listener each, and
	// the connections they carried), and the drill no proxy at all.
	if res.ProxyProcesses != 2 || len(res.ProxyOpenFiles) != 2 || res.ProxyOpenFiles[0] < 10 || res.ProxyOpenFiles[1] < 10 {
		t.Errorf("proxy in %d processes, peak open files %v", res.ProxyProcesses, res.ProxyOpenFiles)
	}
	if res.LostSegments == 0 {
		t.Error("no segment lost at 1% over the drill: the proxy processes' stats were not read")
	}
	if res.DrillOpenFiles == 0 || res.OpenFilesLimit == 0 {
		t.Errorf("drill's open files %d, limit %d", res.DrillOpenFiles, res.OpenFilesLimit)
	}
	if res.AckedObjects != res.Sightings || res.LostObjects != 0 || res.Duplicates != 0 {
		t.Errorf("%d of %d sightings acknowledged, %d lost, %d stored twice", res.AckedObjects, res.Sightings, res.LostObjects, res.Duplicates)
	}
	if len(res.Faults) != 2 || res.Faults[0].Name[:5] != "CERT-" {
		t.Errorf("faults %+v, want 2 kills, a CERT first", res.Faults)
	}
	for _, f := range res.Faults {
		if !f.Converged || f.ReopenAt <= f.ClosedAt {
			t.Errorf("fault %+v: not converged after the restart", f)
		}
	}
	if res.Partition == nil || res.Partition.Nodes == 0 || res.Partition.To <= res.Partition.From {
		t.Errorf("partition %+v", res.Partition)
	}
	if res.Flap == nil || res.Flap.Cycles == 0 {
		t.Errorf("flap %+v", res.Flap)
	}
	if len(res.Skewed) == 0 {
		t.Error("no node's clock was skewed")
	}
	for _, tr := range res.Tiers {
		if tr.FloorMaxMs <= 0 || tr.AboveFloorMaxMs > tr.MaxMs {
			t.Errorf("tier %s: floor %.0f ms, above floor max %.0f of %.0f", tr.Tier, tr.FloorMaxMs, tr.AboveFloorMaxMs, tr.MaxMs)
		}
	}
	d := res.DiskFull
	if d == nil {
		t.Fatal("no full disk in the result")
	}
	if d.Skipped != "" {
		t.Logf("full disk skipped: %s", d.Skipped)
		return
	}
	if !strings.HasPrefix(d.WriteRefused, "503 ") || !strings.Contains(d.WriteRefused, "storage is full") || !d.ReadsServed || !d.Recovered {
		t.Errorf("full disk: %+v; want writes refused with 503 and the reason, reads served, writes again once freed", d)
	}
}

// BenchmarkDrill runs the full drill once per iteration: 259
// organisations in 78 countries, the outbreak replayed in 5 minutes. It
// reports each tier's p99 latency (ms) to every node.
//
//	go test ./internal/drill/ -run '^$' -bench BenchmarkDrill -benchtime=1x
func BenchmarkDrill(b *testing.B) {
	for b.Loop() {
		res, err := drill.Run(context.Background(), drill.Config{Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range res.Tiers {
			b.ReportMetric(t.P99Ms, t.Tier+"-p99-ms")
		}
		b.ReportMetric(float64(res.PolicyViolations), "violations")
	}
}

// TestDrillAdversaries runs 12 organisations in 4 countries with one and
// with two adversaries: the defences hold (no false alert above the
// national tier, nothing protected in any honest node's exports, every
// true alert raised at every node), the quarantine of the first
// adversary withdraws the alerts it alone supported at every node that
// held them, and the false positive's retraction reaches every node
// that received the indicator.
func TestDrillAdversaries(t *testing.T) {
	for _, k := range []int{1, 2} {
		t.Run(fmt.Sprintf("K=%d", k), func(t *testing.T) {
			res := runDrill(t, drill.Config{Nodes: 12, Countries: 4, Seed: 3, Adversaries: k, Warninglists: "../../../shared/data/warninglists",
				Duration: 6 * time.Second, SyncInterval: 2 * time.Second, Settle: 30 * time.Second})
			ar := res.Adversaries
			if ar == nil || ar.K != k || len(ar.Nodes) != k {
				t.Fatalf("adversaries: %+v", ar)
			}
			if ar.Sightings < 10*ar.Quota*k {
				t.Errorf("%d fabricated sightings by %d adversaries: they do not flood a quota of %d", ar.Sightings, k, ar.Quota)
			}
			// The attack is real: the federation carries the adversaries'
			// indicators, and one adversary alone raises a national alert
			// at home on a benign address no list protects.
			if ar.Delivered == 0 || res.Tiers[0].FalseAlerts == 0 {
				t.Errorf("the attack reached nothing: %d indicators delivered, %d national false alerts", ar.Delivered, res.Tiers[0].FalseAlerts)
			}
			for _, tr := range res.Tiers {
				if tr.Tier != "national" && tr.FalseAlerts > 0 {
					t.Errorf("tier %s: %d false alerts: %+v", tr.Tier, tr.FalseAlerts, ar.FalseAlerts)
				}
				if tr.Recall != 1 {
					t.Errorf("tier %s: recall %.2f", tr.Tier, tr.Recall)
				}
			}
			if ar.ExportsChecked == 0 || ar.ProtectedInExports != 0 {
				t.Errorf("%d protected entries in %d exports: %q", ar.ProtectedInExports, ar.ExportsChecked, ar.Protected)
			}
			for _, wd := range []*drill.Withdrawal{ar.Quarantine, ar.Retraction} {
				if wd == nil || wd.Pairs == 0 || wd.Reached != wd.Pairs || wd.MaxMs < wd.P99Ms || wd.P99Ms < wd.P50Ms {
					t.Errorf("withdrawal %+v: did not reach every node", wd)
				}
			}
			// The quarantine's pairs are split along the withdrawal's path.
			if q := ar.Quarantine; q != nil {
				if len(q.Hops) != 4 || q.Hops[0].Hop != "retraction" || q.Hops[3].Hop != "alert-push" {
					t.Errorf("quarantine hops %+v, want retraction, cert-to-cert, withdrawal, alert-push", q.Hops)
				}
				for _, h := range q.Hops {
					if h.Samples == 0 || h.Samples > q.Reached || h.P99Ms > h.MaxMs {
						t.Errorf("quarantine hop %+v: %d pairs reached", h, q.Reached)
					}
				}
			}
		})
	}
}
