package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/drill"
)

// TestDrillCommand runs a tiny drill through the command line and reads
// back its summary, JSON and SVG; bad flags are usage errors.
func TestDrillCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("a drill runs a federation for several seconds")
	}
	dir := t.TempDir()
	js, svg := filepath.Join(dir, "drill.json"), filepath.Join(dir, "drill.svg")
	code, out, errs := run(t, nil, nil, "drill", "--nodes", "6", "--countries", "3", "--seed", "3", "--duration", "2s",
		"--sync-interval", "2s", "--json", js, "--svg", svg)
	if code != 0 {
		t.Fatalf("drill: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{"6 organisations in 3 countries", "global", "Policy violations in the audits: 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Nodes, Countries int
		Tiers            []struct {
			Tier           string  `json:"tier"`
			ExpectedAlerts int     `json:"expected_alerts"`
			ProducedAlerts int     `json:"produced_alerts"`
			P99Ms          float64 `json:"p99_ms"`
		}
		PolicyViolations *int `json:"policy_violations"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("--json: %v", err)
	}
	if res.Nodes != 6 || res.Countries != 3 || len(res.Tiers) != 3 || res.PolicyViolations == nil || *res.PolicyViolations != 0 {
		t.Errorf("--json: %s", b)
	}
	f, err := os.Open(svg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var root struct{ XMLName xml.Name }
	if err := xml.NewDecoder(f).Decode(&root); err != nil || root.XMLName.Local != "svg" {
		t.Errorf("--svg: not an SVG document: %v %v", root.XMLName, err)
	}

	for _, args := range [][]string{
		{"drill", "--nodes", "3", "--countries", "5"},
		{"drill", "--countries", "500"},
		{"drill", "--faults", "-1"},
		{"drill", "--proxy-processes", "-1"},
		{"drill", "--proxy-processes", "65"},
		{"drill", "--adversaries", "-1"},
		{"drill", "--nodes", "4", "--countries", "2", "--adversaries", "4", "--warninglists", "x"},
		{"drill", "--adversaries", "1"},
		{"drill", "--adversaries", "1", "--processes", "--warninglists", "x"},
	} {
		if code, _, errs := run(t, nil, nil, args...); code != 2 {
			t.Errorf("entente %s: exit %d (%s), want 2", strings.Join(args, " "), code, errs)
		}
	}
}

// TestPhaseBars: the drill's bars show each phase's count, and a line of
// the drill starts on a line of its own after the bar before it.
func TestPhaseBars(t *testing.T) {
	var out syncBuffer
	b := &phaseBars{w: &out}
	b.update(drill.Progress{Phase: drill.PhaseSetup, Total: 6})
	for i := 1; i <= 6; i++ {
		b.update(drill.Progress{Phase: drill.PhaseSetup, Done: i, Total: 6})
	}
	fmt.Fprintln(b, "drill: federation up")
	b.update(drill.Progress{Phase: drill.PhaseSettle, Done: 3, Total: 10}) // cut short
	b.finish()
	s := out.String()
	for _, want := range []string{drill.PhaseSetup, "(6/6)", "\ndrill: federation up\n", drill.PhaseSettle, "(3/10)"} {
		if !strings.Contains(s, want) {
			t.Errorf("bars lack %q:\n%q", want, s)
		}
	}
	if strings.Contains(s, "(10/10)") {
		t.Errorf("a phase cut short was drawn complete:\n%q", s)
	}
}

// TestDrillCommandAdversaries runs a small drill with one adversary
// through the command line: the summary and the JSON carry the
// adversaries' figures, and the defences hold (exit 0).
func TestDrillCommandAdversaries(t *testing.T) {
	if testing.Short() {
		t.Skip("a drill runs a federation for several seconds")
	}
	js := filepath.Join(t.TempDir(), "drill.json")
	code, out, errs := run(t, nil, nil, "drill", "--nodes", "8", "--countries", "3", "--seed", "3", "--duration", "4s",
		"--sync-interval", "2s", "--adversaries", "1", "--warninglists", "../../../shared/data/warninglists", "--json", js)
	if code != 0 {
		t.Fatalf("drill: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{"Adversaries: 1", "Protected entries in honest nodes' exports: 0", "quarantine of", "false positive"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Tiers []struct {
			Recall      *float64 `json:"recall"`
			FalseAlerts *int     `json:"false_alerts"`
		}
		Adversaries *struct {
			K                  int  `json:"k"`
			ProtectedInExports *int `json:"protected_in_exports"`
			Quarantine         *struct {
				Pairs   int     `json:"pairs"`
				Reached int     `json:"reached"`
				P99Ms   float64 `json:"p99_ms"`
			}
			Retraction *struct {
				Pairs   int `json:"pairs"`
				Reached int `json:"reached"`
			}
		}
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("--json: %v", err)
	}
	a := res.Adversaries
	if a == nil || a.K != 1 || a.ProtectedInExports == nil || a.Quarantine == nil || a.Retraction == nil || len(res.Tiers) != 3 ||
		res.Tiers[0].Recall == nil || res.Tiers[0].FalseAlerts == nil {
		t.Fatalf("--json lacks the adversaries' figures: %s", b)
	}
	if a.Quarantine.Pairs == 0 || a.Quarantine.Reached != a.Quarantine.Pairs || a.Retraction.Reached != a.Retraction.Pairs {
		t.Errorf("withdrawals: %+v %+v", a.Quarantine, a.Retraction)
	}
}

// TestDrillProxyCommand: 'entente drill-proxy' serves the WAN proxy's
// control protocol on its standard input and output (a link opened, its
// stats read, a shutdown) and stays out of the help.
func TestDrillProxyCommand(t *testing.T) {
	in := strings.Join([]string{
		`{"op":"listen","links":[{"name":"0->1","target":"1","cond":{"RTT":1000000}}]}`,
		`{"op":"stats"}`,
		`{"op":"shutdown"}`,
	}, "\n") + "\n"
	code, out, errs := run(t, nil, strings.NewReader(in), "drill-proxy", "--seed", "7")
	if code != 0 {
		t.Fatalf("drill-proxy: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("drill-proxy answered %d lines, want 3:\n%s", len(lines), out)
	}
	var listen struct{ Addrs []string }
	var stats struct{ Stats map[string]json.RawMessage }
	if json.Unmarshal([]byte(lines[0]), &listen) != nil || len(listen.Addrs) != 1 || !strings.HasPrefix(listen.Addrs[0], "127.0.0.1:") {
		t.Errorf("listen: %s", lines[0])
	}
	if json.Unmarshal([]byte(lines[1]), &stats) != nil || stats.Stats["0->1"] == nil {
		t.Errorf("stats: %s", lines[1])
	}
	if _, _, errs := run(t, nil, nil, "help"); strings.Contains(errs, "drill-proxy") {
		t.Errorf("help shows the internal command:\n%s", errs)
	}
	if code, _, _ := run(t, nil, nil, "drill-proxy", "--bogus"); code != 2 {
		t.Errorf("drill-proxy --bogus: exit %d, want 2", code)
	}
}
