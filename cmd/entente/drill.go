package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/entente-cti/entente/internal/drill"
	"github.com/entente-cti/entente/internal/drill/wan"
)

func cmdDrill(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "drill", "drill [--nodes N] [--countries N] [--seed N] [--faults K] [--processes [--calm]] [--adversaries K --warninglists DIR] [--json FILE] [--svg FILE]",
		"Run a coordinated-alert drill on this machine: a federation of N real nodes\n"+
			"(each its own store, serving TAXII 2.1 on 127.0.0.1 with keys, agreements\n"+
			"and the policy gate) in real countries, one national CERT each. An outbreak\n"+
			"of three threats spreads to organisations over a realistic timeline and\n"+
			"their sensors report sightings. For each alert tier the drill measures the\n"+
			"time from the sighting that crosses the tier's threshold to the alert being\n"+
			"held by every node, and checks every node's egress audit against the\n"+
			"agreements. The summary goes to stdout; --json and --svg write the figures\n"+
			"and a chart of the propagation. Exit 1 if an alert is missing somewhere or\n"+
			"a policy violation is found.\n\n"+
			"How long it takes: the federation is set up first (each node with its store,\n"+
			"keys, agreements and peers), then the outbreak is replayed in 5 minutes of\n"+
			"wall-clock time (--duration), then the drill waits up to 2 minutes (--settle)\n"+
			"for the last alerts to reach every node. A progress bar shows each phase on a\n"+
			"terminal; --duration 30s gives a quick run.\n\n"+
			"--processes runs every node as its own 'entente serve' process, serving TLS\n"+
			"with its own key, which its peers pin; nodes reach each other through a WAN\n"+
			"proxy with real inter-region round-trip times, jitter, 1% loss and bandwidth\n"+
			"caps, and the drill injects faults: --faults nodes killed with SIGKILL (a\n"+
			"national CERT mid-push first) and restarted from disk, a region cut off for\n"+
			"--partition, a CERT's uplink flapping, a full disk (a tmpfs: needs root) and\n"+
			"clock skew of +-5 minutes. Latencies are also given above each path's\n"+
			"round-trip floor. --calm keeps the WAN but injects no fault. The number of\n"+
			"processes is bounded by the machine's memory (80 MiB each, 3 GiB kept).\n"+
			"The proxy holds a listener per link and two descriptors per connection:\n"+
			"when the open-file limit cannot hold it in the drill's process, it runs as\n"+
			"several processes of its own (this binary, re-executed), each under the\n"+
			"limit (--proxy-processes).\n\n"+
			"--adversaries K makes K organisations misbehave (in-process mode; each in\n"+
			"its own country, none a national CERT): each publishes junk indicators\n"+
			"(10.0.0.0/8, 224.0.0.0/3, 0.0.0.0/0, other organisations' networks) and\n"+
			"benign targets (a public resolver, a CDN range, a top-list domain, an\n"+
			"unlisted web host) and fabricates sightings of them under many pseudonyms in\n"+
			"many countries, ten times its quota (--quota). Every node runs the safety net\n"+
			"of a default configuration with its constituency and the warninglists of\n"+
			"--warninglists (a MISP checkout) that hold the benign targets; partners\n"+
			"declare their constituencies. At half the replay the first adversary is\n"+
			"quarantined by its CERT and a CERT marks an indicator it published a false\n"+
			"positive. The summary adds, per tier, true alerts (recall) and false\n"+
			"alerts, the protected entries found in any honest node's exports (plain,\n"+
			"nftables, ipset, suricata, zeek, rpz, hosts, csv), and how long the\n"+
			"quarantine and the retraction took to reach every node. Exit 1 also if a\n"+
			"false alert is above national or a protected entry is exported.")
	var cfg drill.Config
	fs.IntVar(&cfg.Nodes, "nodes", 259, "organisations, each running a node")
	fs.IntVar(&cfg.Countries, "countries", 78, fmt.Sprintf("countries they are in (at most %d), one national CERT each", drill.MaxCountries))
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the federation and the outbreak")
	fs.IntVar(&cfg.Faults, "faults", 0, "nodes to close (--processes: kill -9) at 40% of the replay and reopen at 70%")
	fs.BoolVar(&cfg.Processes, "processes", false, "run every node as its own 'entente serve' process, over TLS and the WAN proxy, with faults")
	fs.BoolVar(&cfg.Calm, "calm", false, "with --processes: the WAN without faults")
	fs.Float64Var(&cfg.Loss, "loss", 0.01, "with --processes: the share of TCP segments each link loses (and retransmits)")
	fs.DurationVar(&cfg.Partition, "partition", time.Minute, "with --processes: how long a region is cut off (at most a fifth of --duration)")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Minute, "wall-clock time the outbreak is replayed in")
	fs.DurationVar(&cfg.Span, "span", 6*time.Hour, "the outbreak's length in sighting time")
	fs.DurationVar(&cfg.SyncInterval, "sync-interval", time.Minute, "periodic peer sync, which retries failed pushes")
	fs.DurationVar(&cfg.Settle, "settle", 2*time.Minute, "longest wait after the replay for every node to hold every alert")
	fs.StringVar(&cfg.Dir, "dir", "", "where to keep the nodes' data (default: a temporary directory, removed)")
	fs.IntVar(&cfg.Adversaries, "adversaries", 0, "organisations that misbehave (junk indicators, fabricated sightings under pseudonyms, a flooded quota)")
	fs.StringVar(&cfg.Warninglists, "warninglists", "", "a MISP warninglists checkout every node loads the drill's lists from (needed by --adversaries)")
	fs.IntVar(&cfg.ProxyProcesses, "proxy-processes", 0, "with --processes: processes the WAN proxy runs as (0: in the drill's process if the open-file limit holds it, else as few as each fit under it)")
	fs.IntVar(&cfg.Quota, "quota", drill.DefaultQuota, "sightings per correlation window a CERT lets each constituent add (negative: none)")
	jsonOut := fs.String("json", "", "write the figures as JSON to FILE")
	svgOut := fs.String("svg", "", "write a chart of the propagation (SVG) to FILE")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the drill (every node, in-process mode) to FILE")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if cfg.Nodes < 1 || cfg.Nodes > drill.MaxNodes || cfg.Countries < 1 || cfg.Countries > drill.MaxCountries || cfg.Nodes < cfg.Countries {
		return usagef("--nodes %d --countries %d: need 1 <= countries <= %d and countries <= nodes <= %d", cfg.Nodes, cfg.Countries, drill.MaxCountries, drill.MaxNodes)
	}
	if cfg.ProxyProcesses < 0 || cfg.ProxyProcesses > 64 {
		return usagef("--proxy-processes %d: between 0 and 64", cfg.ProxyProcesses)
	}
	if cfg.Faults < 0 || cfg.Faults > cfg.Nodes {
		return usagef("--faults %d: between 0 and --nodes", cfg.Faults)
	}
	if cfg.Adversaries < 0 || cfg.Adversaries >= cfg.Nodes {
		return usagef("--adversaries %d: between 0 and --nodes less one", cfg.Adversaries)
	}
	if cfg.Adversaries > 0 && (cfg.Processes || cfg.Warninglists == "") {
		return usagef("--adversaries runs in-process (not with --processes) and needs --warninglists DIR (a MISP warninglists checkout)")
	}
	if cfg.Duration <= 0 || cfg.Span <= 0 || cfg.Span > 12*time.Hour || cfg.SyncInterval <= 0 || cfg.Settle <= 0 {
		return usagef("--duration, --sync-interval and --settle must be positive, --span between 0 and 12h")
	}
	cfg.Progress = env.Stderr
	cfg.Logger = quietLogger(env)
	if isTerminal(env.Stderr) {
		bars := &phaseBars{w: env.Stderr}
		cfg.Progress = bars
		cfg.OnProgress = bars.update
		defer bars.finish()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := drill.Run(ctx, cfg)
	if err != nil {
		return err
	}
	drill.Summary(env.Stdout, res)
	if *jsonOut != "" {
		if err := writeFileWith(*jsonOut, func(f *os.File) error { return drill.WriteJSON(f, res) }); err != nil {
			return err
		}
	}
	if *svgOut != "" {
		if err := writeFileWith(*svgOut, func(f *os.File) error { return drill.WriteSVG(f, res) }); err != nil {
			return err
		}
	}
	if res.LostObjects > 0 || res.Duplicates > 0 {
		return fmt.Errorf("%d acknowledged objects lost, %d object versions stored twice", res.LostObjects, res.Duplicates)
	}
	for _, t := range res.Tiers {
		if t.DeliveredAlerts != t.ExpectedAlerts || t.ProducedAlerts < t.ExpectedAlerts {
			return fmt.Errorf("tier %s: %d alerts expected, %d produced, %d at every node", t.Tier, t.ExpectedAlerts, t.ProducedAlerts, t.DeliveredAlerts)
		}
		if t.FalseAlerts > 0 && t.Tier != res.Tiers[0].Tier {
			return fmt.Errorf("tier %s: %d false alerts", t.Tier, t.FalseAlerts)
		}
	}
	if ar := res.Adversaries; ar != nil {
		if ar.ProtectedInExports > 0 {
			return fmt.Errorf("%d protected entries in honest nodes' exports", ar.ProtectedInExports)
		}
		for _, wd := range []*drill.Withdrawal{ar.Quarantine, ar.Retraction} {
			if wd != nil && wd.Reached != wd.Pairs {
				return fmt.Errorf("%s reached %d of %d (node, object) pairs", wd.What, wd.Reached, wd.Pairs)
			}
		}
	}
	if res.PolicyViolations > 0 {
		return fmt.Errorf("%d policy violations in the audits", res.PolicyViolations)
	}
	return nil
}

// phaseBars shows a progress bar per phase of a drill, between the
// drill's lines: a line written to it ends the bar of the phase before.
type phaseBars struct {
	mu    sync.Mutex
	w     io.Writer
	bar   *progressbar.ProgressBar
	phase string
	last  drill.Progress
}

func (b *phaseBars) update(p drill.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.Phase != b.phase || b.bar == nil {
		b.end()
		b.phase = p.Phase
		b.bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(b.w), progressbar.OptionSetDescription(p.Phase),
			progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond))
	}
	b.last = p
	b.bar.Set(p.Done)
}

// Write writes a line of the drill after ending the current bar.
func (b *phaseBars) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.end()
	return b.w.Write(p)
}

func (b *phaseBars) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.end()
}

// end ends the current bar, leaving it drawn on its own line.
func (b *phaseBars) end() {
	if b.bar == nil {
		return
	}
	if b.last.Done >= b.last.Total {
		b.bar.Finish()
	} else {
		b.bar.Exit() // a phase cut short (a settle that timed out) stays as it was
	}
	fmt.Fprintln(b.w)
	b.bar = nil
}

// writeFileWith creates path and writes it with write, reporting the
// first error of writing or closing.
func writeFileWith(path string, write func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// cmdDrillProxy runs one process of the drill's WAN proxy (internal: the
// drill starts it): wan's control protocol on standard input and output,
// until the input ends (the drill closed it, or died) or it is told to
// shut down.
func cmdDrillProxy(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, drill.ProxyCommand, drill.ProxyCommand+" --seed N", "One process of the drill's WAN proxy, started by 'entente drill --processes'.")
	seed := fs.Uint64("seed", 1, "seed of the links' random choices")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return wan.Serve(env.Stdin, env.Stdout, *seed)
}
