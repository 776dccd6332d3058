// Package drill runs a coordinated-alert drill: a federation of real
// Entente nodes on one machine (each a node.Service with its own SQLite
// store, serving TAXII 2.1 on loopback, with real keys, partners,
// agreements and the policy gate), an outbreak replayed through their
// sensors, and the measure of how fast each tier's alert reaches every
// node that should have it, with a check of every node's egress audit
// against the agreements.
//
// The sharing topology is the one national CERTs use: every organisation
// reports its sightings (TLP:GREEN) to its national CERT; the national
// CERTs share those sightings with each other, reduced to the victim's
// country by the gate (the sighting's created_by_ref, an identity id the
// receiver cannot resolve, stays as the organisation's pseudonym, so
// distinct organisations are still counted); each CERT correlates what it
// receives (alert ids converge, so every CERT raises the same alerts)
// and pushes its alerts to its constituents at once.
//
// It is a harness, like cmd/entente: it wires the adapters together and
// reads the stores directly only to check them.
package drill

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

// Config sets up a drill. Zero fields take the defaults documented.
type Config struct {
	// Nodes is the number of organisations, each running a node
	// (default 259); Countries the number of countries they are in
	// (default 78), one national CERT each.
	Nodes, Countries int
	// Seed makes the federation and the outbreak reproducible.
	Seed uint64
	// Span is the outbreak's length in sighting time (default 6 h);
	// Duration the wall-clock time it is replayed in (default 5 minutes).
	Span, Duration time.Duration
	// Faults is the number of nodes closed (server and store) at 40% of
	// the replay and reopened from their data directories at 70%.
	Faults int
	// SyncInterval is the periodic peer sync, which retries what an
	// immediate push could not deliver (default 1 minute).
	SyncInterval time.Duration
	// Settle bounds the wait, after the replay, for every node to hold
	// every alert (default 2 minutes).
	Settle time.Duration
	// Dir is where the nodes' data directories are made (a new
	// temporary directory, removed at the end, when empty).
	Dir string
	// Parallel is how many nodes are set up at once (default 8).
	Parallel int
	// Progress, when set, receives one line per phase.
	Progress io.Writer
	// OnProgress, when set, is told how far each phase is, for a progress
	// bar. It is called from the drill's goroutines, never two at once.
	OnProgress func(Progress)
	// Logger receives the nodes' logs (default: warnings and errors are
	// discarded).
	Logger *slog.Logger

	// Processes runs every node as its own 'entente serve' process of
	// Binary (default: this executable), each in its own data directory,
	// serving TLS with its own key; peers pin each other's keys and reach
	// each other through the WAN proxy (package wan), whose links have
	// the round-trip times of RTT, jitter, Loss and bandwidth caps. The
	// faults are then: Faults nodes killed with SIGKILL at 40% of the
	// replay (the first a national CERT in the middle of a push) and
	// restarted from disk at 70%; one region cut off for Partition from
	// 30%; one CERT's uplink flapping (2 s down, 3 s up) from 15% to 45%;
	// one node's disk full from 25% to 55% (a tmpfs; needs root); clock
	// skew of ±5 minutes on one node in ten. Calm leaves the faults out
	// (the WAN alone).
	Processes bool
	Binary    string
	Calm      bool
	// Loss is each link's segment loss in processes mode (default 0.01;
	// negative: none).
	Loss float64
	// Partition is how long a region is cut off (default 60 s, at most
	// a fifth of Duration; negative: none).
	Partition time.Duration
	// Adversaries is the number of organisations that misbehave (in
	// different countries, not national CERTs, not victims of the
	// outbreak): each publishes junk indicators (10.0.0.0/8, 224.0.0.0/3,
	// 0.0.0.0/0, other organisations' networks) and benign targets (a
	// public resolver, a CDN range, a top-list domain), and fabricates
	// sightings of them under many pseudonyms in many countries, many
	// more than its quota. At half the replay the first is quarantined
	// by its CERT, and the first CERT marks an indicator it published a
	// false positive. In-process mode only; needs Warninglists.
	Adversaries int
	// Warninglists is a checkout of the MISP warninglists repository
	// (its lists directory inside): every node loads TargetWarninglists
	// from it besides the shipped lists, parsed once and shared.
	Warninglists string
	// Quota is the sightings per correlation window a CERT lets each
	// constituent add (default DefaultQuota; negative: none).
	Quota int
	// ProxyProcesses is how many processes the WAN proxy of processes
	// mode runs as. 0: in the drill's process when its open-file limit
	// holds the proxy's links and connections besides what the drill
	// holds per node, else as few processes of their own (the drill's
	// binary re-executed as 'entente drill-proxy') as keep each under the
	// hard limit. 1: in the drill's process always; more: that many.
	ProxyProcesses int
	// NodeBudgetMiB is the memory one node process is allowed for when
	// bounding the number of processes by the machine's memory (default
	// 80 MiB, above the peak resident set a drill node reached).
	NodeBudgetMiB int
}

func (c *Config) defaults() {
	if c.Nodes == 0 {
		c.Nodes = 259
	}
	if c.Countries == 0 {
		c.Countries = 78
	}
	if c.Span == 0 {
		c.Span = 6 * time.Hour
	}
	if c.Duration == 0 {
		c.Duration = 5 * time.Minute
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = time.Minute
	}
	if c.Settle == 0 {
		c.Settle = 2 * time.Minute
	}
	if c.Parallel == 0 {
		c.Parallel = 8
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Quota == 0 {
		c.Quota = DefaultQuota
	}
	c.Quota = max(c.Quota, 0)
	if c.Processes {
		if c.Loss == 0 {
			c.Loss = 0.01
		}
		c.Partition = min(c.Partition, c.Duration/5)
		if c.Partition == 0 {
			c.Partition = min(time.Minute, c.Duration/5)
		}
		if c.NodeBudgetMiB == 0 {
			c.NodeBudgetMiB = 80
		}
		if c.Calm {
			c.Faults, c.Partition = 0, -1
		}
	}
	c.Loss = max(c.Loss, 0)
}

// Progress is how far a drill is in one of its phases.
type Progress struct {
	// Phase is PhaseSetup, PhaseSyncs, PhaseReplay or PhaseSettle.
	Phase string
	// Done is how many of the phase's Total steps are done: node set-up
	// steps (three per node), nodes whose peers synced once, sightings
	// reported, (node, alert) pairs delivered.
	Done, Total int
}

// The phases of a drill, in order.
const (
	PhaseSetup  = "setting up nodes"
	PhaseStart  = "starting node processes"
	PhaseSyncs  = "first peer syncs"
	PhaseReplay = "replaying sightings"
	PhaseSettle = "delivering alerts"
)

// progress reports a drill's progress to Config.OnProgress.
type progress struct {
	mu sync.Mutex
	fn func(Progress)
	p  Progress
}

// start begins a phase of total steps.
func (r *progress) start(phase string, total int) {
	if r == nil || r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.p = Progress{Phase: phase, Total: total}
	r.fn(r.p)
}

// add counts n more steps done.
func (r *progress) add(n int) {
	if r == nil || r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.p.Done += n
	r.fn(r.p)
}

// set says done steps are done, when it is more than before.
func (r *progress) set(done int) {
	if r == nil || r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if done > r.p.Done {
		r.p.Done = done
		r.fn(r.p)
	}
}

// Result is what a drill measured. Latencies are from the sighting that
// made an alert reach a tier (reported by an organisation's sensor) to
// the moment the alert, at that tier or higher, is durable at each node
// that should have it: one sample per alert and node.
type Result struct {
	Nodes     int      `json:"nodes"`
	Countries int      `json:"countries"`
	Seed      uint64   `json:"seed"`
	Topology  string   `json:"topology"`
	Threats   []string `json:"threats"`
	// Sightings is how many sightings the sensors reported.
	Sightings int           `json:"sightings"`
	Duration  time.Duration `json:"-"`
	// ReplaySeconds is the wall-clock length of the replay.
	ReplaySeconds float64      `json:"replay_seconds"`
	Tiers         []TierResult `json:"tiers"`
	// PolicyViolations counts egress the audits show that the receiver's
	// agreement did not allow, and objects received with no egress
	// record at their sender; Violations describes the first ones.
	PolicyViolations int      `json:"policy_violations"`
	Violations       []string `json:"violations,omitempty"`
	// EgressChecked is the number of audit records checked.
	EgressChecked int `json:"egress_checked"`
	// Faults lists the nodes closed and reopened, with their catch-up.
	Faults    []Fault `json:"faults,omitempty"`
	Converged bool    `json:"converged"`
	// Timeline is the propagation of each alert and tier, for the chart.
	Timeline []Series `json:"timeline,omitempty"`
	// Start is when the replay started.
	Start time.Time `json:"start"`
	// PeakRSSMiB is the process's peak resident memory (Linux; 0
	// elsewhere), every node included.
	PeakRSSMiB float64 `json:"peak_rss_mib"`

	// Mode is "in-process" or "processes".
	Mode string `json:"mode"`
	// ProcessBound says how many node processes the machine's memory
	// holds and why (processes mode); NodePeakRSSMiB is the largest
	// peak resident memory of a node process.
	ProcessBound   string  `json:"process_bound,omitempty"`
	NodePeakRSSMiB float64 `json:"node_peak_rss_mib,omitempty"`
	// AckedObjects counts the sightings the nodes acknowledged (stored
	// durably); LostObjects those a node did not hold after the drill;
	// Duplicates the object versions a collection held twice (processes
	// mode checks every store after the drill).
	AckedObjects int `json:"acked_objects"`
	LostObjects  int `json:"lost_objects"`
	Duplicates   int `json:"duplicates"`
	// The faults of processes mode.
	Partition *PartitionResult `json:"partition,omitempty"`
	Flap      *FlapResult      `json:"flap,omitempty"`
	DiskFull  *DiskFullResult  `json:"disk_full,omitempty"`
	Skewed    []string         `json:"skewed,omitempty"`
	// LostSegments counts the segments the WAN made retransmit.
	LostSegments int64 `json:"lost_segments,omitempty"`
	// ProxyProcesses is how many processes the WAN proxy ran as (1: in
	// the drill's process); ProxyOpenFiles the peak open descriptors of
	// each (none when in the drill's); DrillOpenFiles the peak of the
	// drill's process (sampled at the set-up, every observer poll and
	// the checks), and OpenFilesLimit the hard limit.
	ProxyProcesses int    `json:"proxy_processes,omitempty"`
	ProxyOpenFiles []int  `json:"proxy_open_files,omitempty"`
	DrillOpenFiles int64  `json:"drill_open_files,omitempty"`
	OpenFilesLimit uint64 `json:"open_files_limit,omitempty"`
	// Adversaries is what the adversaries did and what came of it.
	Adversaries *AdversaryResult `json:"adversaries,omitempty"`
}

// TierResult is one tier's figures.
type TierResult struct {
	Tier string `json:"tier"`
	// ExpectedAlerts is how many alerts one engine fed every sighting
	// raises to this tier or higher, each country counted as one
	// independent source (a lower bound: a CERT counts its own
	// constituents one by one); ProducedAlerts how many distinct
	// alerts the nodes held at this tier or higher; DeliveredAlerts how
	// many of the expected ones were at every node.
	ExpectedAlerts  int `json:"expected_alerts"`
	ProducedAlerts  int `json:"produced_alerts"`
	DeliveredAlerts int `json:"delivered_alerts"`
	// Recall is DeliveredAlerts over ExpectedAlerts (1 when none are
	// expected); FalseAlerts the distinct alerts any node held at this
	// tier or higher on something other than the outbreak's threats
	// (a benign target, junk).
	Recall      float64 `json:"recall"`
	FalseAlerts int     `json:"false_alerts"`
	Samples     int     `json:"samples"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	// AboveFloor*Ms are the same figures less each sample's round-trip
	// floor (the sum of the round trips of the path the alert took:
	// sighting to its CERT, CERT to CERT, CERT to constituent; 0 on
	// loopback); FloorMaxMs is the slowest path's floor.
	AboveFloorP50Ms float64 `json:"above_floor_p50_ms"`
	AboveFloorP99Ms float64 `json:"above_floor_p99_ms"`
	AboveFloorMaxMs float64 `json:"above_floor_max_ms"`
	FloorMaxMs      float64 `json:"floor_max_ms"`
	// Hops splits the samples' latency along the path an alert takes
	// (each node's store says when it held each sighting: in process as
	// it stores it, in processes mode by its date_added): see Hop.
	Hops []Hop `json:"hops,omitempty"`
}

// Hop is one leg of the path from the threshold sighting to an alert at
// a node, over the samples of a tier: the sighting reported, then held
// by its reporter's CERT ("report"), by the CERT of the sample's node
// ("cert-to-cert"; 0 at home), then the alert at the tier held by that
// CERT, which raised it ("correlation": from the sighting's arrival,
// including any wait for the other sightings the CERT needed), then by
// the node ("alert-push"; 0 at the CERT itself). P50Ms, P99Ms and MaxMs
// are over every sample; TailMs is the hop's mean over the slowest 1 %
// of the samples (end to end), which says which hop makes the p99.
type Hop struct {
	Hop     string  `json:"hop"`
	Samples int     `json:"samples"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	TailMs  float64 `json:"tail_mean_ms"`
}

// Fault is one node closed and reopened mid-drill.
type Fault struct {
	Node int    `json:"node"`
	Name string `json:"name"`
	// Kind is "closed" (in-process: server and store closed), "kill -9"
	// or "kill -9 mid-push" (processes mode; MidPush when the node was
	// seen sending on a link as it was killed).
	Kind      string  `json:"kind"`
	MidPush   bool    `json:"mid_push,omitempty"`
	ClosedAt  float64 `json:"closed_at_s"`
	ReopenAt  float64 `json:"reopened_at_s"`
	Converged bool    `json:"converged"`
	// CatchUpMs is how long after reopening the node held every alert it
	// should (0 when it already held them); for an alert that reached its
	// final tier after the reopening, from its threshold sighting.
	CatchUpMs float64 `json:"catch_up_ms"`
}

// Series is the number of nodes holding one alert at one tier over time.
type Series struct {
	Alert     string    `json:"alert"`
	Threat    string    `json:"threat"`
	Tier      string    `json:"tier"`
	Threshold float64   `json:"threshold_s"` // when the threshold sighting was reported, from the start
	At        []float64 `json:"at_s"`        // when each node got it, sorted
}

// Topology describes the sharing topology, for the output.
const Topology = "organisations -> national CERT (sightings, TLP:GREEN); national CERTs <-> national CERTs " +
	"(sightings redacted to the victim's country, re-shared GREEN); national CERT -> its organisations (alerts, pushed at once, and pulled)"

// Run runs a drill and returns its figures. The federation is closed and
// its data removed (unless cfg.Dir was given) before it returns.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	say := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}
	if cfg.Faults < 0 || cfg.Faults > cfg.Nodes {
		return nil, fmt.Errorf("faults: %d is not between 0 and the %d nodes", cfg.Faults, cfg.Nodes)
	}
	alerts := correlate.Config{Window: 24 * time.Hour, Slots: 8, Tiers: correlate.DefaultTiers(), MaxSkew: 5 * time.Minute,
		MaxAge: 24 * time.Hour, FederationCountries: cfg.Countries}
	if err := alerts.Validate(); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	window := alerts.Window // an epoch's length
	w, err := newWorld(cfg.Nodes, cfg.Countries, cfg.Seed, cfg.Span, cfg.Duration, now, window)
	if err != nil {
		return nil, err
	}
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "entente-drill-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	tiers := []string{}
	for _, t := range correlate.DefaultTiers() {
		tiers = append(tiers, t.Name)
	}
	tr := &http.Transport{MaxIdleConns: 4 * cfg.Nodes, MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	if cfg.Adversaries < 0 || cfg.Adversaries >= cfg.Nodes {
		return nil, fmt.Errorf("adversaries: %d is not between 0 and the %d nodes", cfg.Adversaries, cfg.Nodes)
	}
	if cfg.Adversaries > 0 && cfg.Processes {
		return nil, fmt.Errorf("adversaries: in-process mode only")
	}
	if cfg.Adversaries > 0 && cfg.Warninglists == "" {
		return nil, fmt.Errorf("adversaries aim at benign targets the warninglists protect: give the warninglists' directory")
	}
	// Every node protects what a node started with the default
	// configuration protects, its constituency, and the warninglists of
	// cfg.Warninglists (loaded once, shared).
	net, err := loadNet(cfg.Warninglists)
	if err != nil {
		return nil, fmt.Errorf("drill: safety net: %w", err)
	}
	if err := w.placeNetworks(net); err != nil {
		return nil, err
	}
	f := &federation{w: w, rec: newRecorder(cfg.Nodes, tiers), alerts: alerts, log: cfg.Logger, safety: net,
		http: &http.Client{Transport: tr}, syncInt: cfg.SyncInterval, progress: &progress{fn: cfg.OnProgress},
		limits: taxiiclient.Limits{MaxRetries: 1, BackoffBase: 100 * time.Millisecond, MaxBackoff: time.Second, HeaderTimeout: 30 * time.Second},
		procs:  cfg.Processes, loss: cfg.Loss, quota: cfg.Quota}
	res := &Result{Nodes: cfg.Nodes, Countries: cfg.Countries, Seed: cfg.Seed, Topology: Topology, Sightings: len(w.sightings), Mode: "in-process"}
	if cfg.Adversaries > 0 {
		if f.adv, err = planAdversaries(w, cfg.Adversaries, cfg.Seed, cfg.Duration, cfg.Span, cfg.Quota); err != nil {
			return nil, err
		}
		ar := &AdversaryResult{K: cfg.Adversaries, Quota: cfg.Quota}
		for _, ad := range f.adv.list {
			o := w.orgs[ad.Org]
			ar.Nodes = append(ar.Nodes, o.Name+" ("+o.Country+")")
			var ts []string
			for _, t := range ad.Targets {
				ts = append(ts, t.Kind+" "+t.Value)
			}
			ar.Targets = append(ar.Targets, ts)
			ar.Sightings += ad.sightings
		}
		res.Adversaries = ar
	}
	if f.procs {
		res.Mode = "processes"
		if res.ProcessBound, err = processBound(cfg); err != nil {
			return nil, err
		}
		if f.bin = cfg.Binary; f.bin == "" {
			if f.bin, err = os.Executable(); err != nil {
				return nil, fmt.Errorf("processes mode: find the entente binary: %w", err)
			}
		}
		f.logDir = filepath.Join(dir, "logs")
		if err := os.MkdirAll(f.logDir, 0o700); err != nil {
			return nil, err
		}
		if f.proxy, res.ProxyProcesses, err = f.startProxy(cfg); err != nil {
			return nil, err
		}
		defer f.proxy.close()
		res.OpenFilesLimit = hardOpenFiles()
	}
	say("drill: %d organisations in %d countries (%d national CERTs), seed %d, %s; data in %s", cfg.Nodes, cfg.Countries, len(w.certs), cfg.Seed, res.Mode, dir)
	t0 := time.Now()
	defer func() {
		for i := range f.nodes {
			if f.nodes[i] == nil {
				continue
			}
			if f.procs {
				f.stopProc(i, false)
			} else if f.nodes[i].up {
				f.close(i)
			}
		}
	}()
	if err := f.setup(ctx, dir, cfg.Parallel); err != nil {
		return nil, fmt.Errorf("set up the federation: %w", err)
	}
	if f.procs {
		f.sampleFiles() // every store open
		err := f.startAll(ctx, cfg, res)
		defer func() {
			if f.plan != nil && f.plan.disk != nil {
				f.unmountFullDisk(f.plan.disk)
			}
		}()
		if err != nil {
			return nil, err
		}
		say("drill: %d processes up in %.1f s (%s); waiting for the first round of peer syncs", len(f.nodes), time.Since(t0).Seconds(), res.ProcessBound)
		if err := f.firstSyncsProcs(ctx); err != nil {
			return nil, err
		}
	} else {
		for i := range f.nodes {
			f.start(i)
		}
		say("drill: federation up in %.1f s; waiting for the first round of peer syncs", time.Since(t0).Seconds())
		// Each node syncs every peer when it starts: let that round end
		// before the outbreak, so that it measures propagation, not
		// start-up.
		if err := f.firstSyncs(ctx); err != nil {
			return nil, err
		}
	}
	say("drill: first peer syncs done at %.1f s", time.Since(t0).Seconds())

	for _, th := range w.threats {
		res.Threats = append(res.Threats, th.Name+" ("+th.AttackID+")")
	}
	say("drill: replaying %d sightings of %d threats over %s", len(w.sightings), len(w.threats), cfg.Duration)
	octx, stopObserving := context.WithCancel(ctx)
	observed := make(chan struct{})
	if f.procs {
		// The arrival times are the nodes' date_added, whatever the
		// polling interval: it only bounds the drill's own load (two TLS
		// reads per node and interval) and how soon the drill sees that
		// every node holds every alert. The nodes answer the polls on
		// the same two cores: 10 ms a node (2.6 s at 259 nodes, 0.26
		// requests a second per node) rather than 5 (1.3 s), which the
		// polls' share of the nodes' CPU (4 % at 130 nodes, 0.65 s)
		// showed too eager.
		every := max(250*time.Millisecond, time.Duration(len(f.nodes))*10*time.Millisecond)
		go func() { defer close(observed); f.observe(octx, every) }()
	} else {
		close(observed)
	}
	// Each node's store says when it holds each sighting (in process as
	// it stores it, in processes mode by its date_added, read after the
	// drill): the latency's split along the path (Hop).
	for _, s := range w.sightings {
		f.rec.watchObject(s.ID)
	}
	defer func() { stopObserving(); <-observed }()
	emitted, faults, err := f.replay(ctx, cfg, res)
	if err != nil {
		return nil, err
	}
	order := make([]int, len(w.sightings))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return emitted[order[a]].Before(emitted[order[b]]) })
	truth, err := groundTruth(alerts, w, order, time.Now())
	if err != nil {
		return nil, err
	}
	say("drill: replay done; waiting for every node to hold every alert (at most %s)", cfg.Settle)
	res.Converged = f.settle(ctx, truth, cfg.Settle)
	stopObserving()
	<-observed
	if !f.procs {
		measure(res, f, truth, order, emitted, faults)
	}
	if ar := res.Adversaries; ar != nil {
		say("drill: waiting for the quarantine and the retraction to reach every node (at most %s)", cfg.Settle)
		deadline := time.Now().Add(cfg.Settle)
		for !f.withdrawals(ar, f.quarantinedAt, f.markedAt) && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		f.falseAlerts(res, ar)
		say("drill: rendering and checking %d nodes' exports", len(f.nodes))
		if err := f.checkExports(ctx, ar); err != nil {
			return nil, err
		}
	}
	if f.procs {
		if err := f.stopAll(ctx, res); err != nil {
			return nil, err
		}
		res.DrillOpenFiles = f.peakFiles.Load()
		defer func() {
			for i := range f.nodes {
				f.closeStore(i)
			}
		}()
	}
	say("drill: checking %d nodes' egress audits against the agreements", len(f.nodes))
	if err := f.checkAudits(ctx, res); err != nil {
		return nil, err
	}
	if f.procs {
		say("drill: checking %d stores for lost and duplicated objects", len(f.nodes))
		if err := f.checkStores(ctx, res, f.acked); err != nil {
			return nil, err
		}
		// After the stores were read: they say when each CERT held each
		// sighting (Hop).
		measure(res, f, truth, order, emitted, faults)
	}
	res.Duration = time.Since(t0)
	res.PeakRSSMiB = peakRSS()
	return res, nil
}

// peakRSS reads the process's peak resident set size (VmHWM) in MiB.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

// firstSyncs waits until every peer of every node has been synced once.
func (f *federation) firstSyncs(ctx context.Context) error {
	f.progress.start(PhaseSyncs, len(f.nodes))
	for i, n := range f.nodes {
		f.progress.set(i)
		for {
			peers, err := n.svc.Peers(ctx, node.LocalAdmin(n.org.ID))
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(peers, func(p node.Peer) bool { return p.LastSync.IsZero() }) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	f.progress.set(len(f.nodes))
	return nil
}

// replay has the sensors report the planned sightings on time. A node
// that is down (fault mode) has its sightings retried until it is back.
// It returns when each sighting was reported (the start of the report
// that succeeded).
func (f *federation) replay(ctx context.Context, cfg Config, res *Result) ([]time.Time, []Fault, error) {
	w := f.w
	emitted := make([]time.Time, len(w.sightings))
	mu := &f.mu
	var wg sync.WaitGroup
	var faults []Fault
	var faulty []int
	if cfg.Faults > 0 && !f.procs {
		rng := rand.New(rand.NewPCG(cfg.Seed+1, 7))
		faulty = rng.Perm(len(f.nodes))[:cfg.Faults]
	}
	start := time.Now()
	res.Start = start
	var advDone chan error
	if f.adv != nil {
		advDone = f.startAdversaries(ctx, start, cfg.Duration, res.Adversaries)
	}
	f.progress.start(PhaseReplay, len(w.sightings))
	killAt, reopenAt := time.Duration(0.4*float64(cfg.Duration)), time.Duration(0.7*float64(cfg.Duration))
	faultDone := make(chan error, 1)
	if len(faulty) > 0 {
		go func() {
			time.Sleep(time.Until(start.Add(killAt)))
			for _, i := range faulty {
				mu.Lock()
				err := f.close(i)
				mu.Unlock()
				if err != nil {
					faultDone <- fmt.Errorf("close node %d: %w", i, err)
					return
				}
				faults = append(faults, Fault{Node: i, Name: w.orgs[i].Name, Kind: "closed", ClosedAt: time.Since(start).Seconds()})
			}
			time.Sleep(time.Until(start.Add(reopenAt)))
			for k, i := range faulty {
				mu.Lock()
				err := f.open(context.Background(), i)
				if err == nil {
					f.start(i)
				}
				mu.Unlock()
				if err != nil {
					faultDone <- fmt.Errorf("reopen node %d: %w", i, err)
					return
				}
				faults[k].ReopenAt = time.Since(start).Seconds()
			}
			faultDone <- nil
		}()
	} else if f.procs {
		go func() { faultDone <- f.runFaults(ctx, cfg, f.plan, start, mu, res) }()
	} else {
		faultDone <- nil
	}
	for k, s := range w.sightings {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil, nil, ctx.Err()
		case <-time.After(time.Until(start.Add(s.At))):
		}
		wg.Go(func() {
			obj := w.sightingObject(s)
			for {
				mu.Lock()
				n := f.nodes[s.Org]
				up, url := n.up, n.url
				mu.Unlock()
				if up {
					at := time.Now()
					if err := f.report(ctx, n, url, obj); err == nil {
						emitted[k] = at
						f.progress.add(1)
						mu.Lock()
						f.acked = append(f.acked, ackedSighting{node: s.Org, id: s.ID})
						mu.Unlock()
						return
					} else if ctx.Err() != nil {
						return
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if advDone != nil {
		if err := <-advDone; err != nil {
			return nil, nil, fmt.Errorf("adversaries: %w", err)
		}
	}
	res.ReplaySeconds = time.Since(start).Seconds()
	if err := <-faultDone; err != nil {
		return nil, nil, err
	}
	if f.procs {
		faults = res.Faults
		res.Faults = nil
	}
	return emitted, faults, ctx.Err()
}

// report sends one sighting as the organisation's sensor: a constituent's
// to its node's sightings endpoint, a CERT's into its reports collection
// over TAXII.
func (f *federation) report(ctx context.Context, n *fedNode, url string, obj json.RawMessage) error {
	hc := f.http
	if n.hc != nil {
		hc = n.hc
	}
	if n.org.CERT {
		c := &taxiiclient.Client{APIRoot: url + "/taxii2/api1/", HTTP: hc, Auth: taxiiclient.Auth{Token: n.sensorKey},
			Limits: taxiiclient.Limits{MaxRetries: -1}}
		res, err := c.Push(ctx, n.colls[collReports], []json.RawMessage{obj})
		if err == nil && res.Failure > 0 {
			err = fmt.Errorf("sighting refused: %+v", res.Failures)
		}
		return err
	}
	body := []byte(`{"objects":[` + string(obj) + `]}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+match.SightingsPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+n.sensorKey)
	req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST sightings: %s: %s", resp.Status, b)
	}
	var st struct {
		FailureCount int `json:"failure_count"`
	}
	if json.Unmarshal(b, &st) == nil && st.FailureCount > 0 {
		return fmt.Errorf("sighting refused: %s", b)
	}
	return nil
}

// settle waits until every node holds every expected alert at its final
// tier, or until the deadline; it reports whether they all do.
func (f *federation) settle(ctx context.Context, t *truth, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	pairs := len(f.nodes) * len(t.final)
	f.progress.start(PhaseSettle, pairs)
	for {
		missing := f.missing(t)
		f.progress.set(pairs - missing)
		if missing == 0 {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// missing counts the (node, alert) pairs where the node does not hold the
// alert at its final tier.
func (f *federation) missing(t *truth) int {
	n := 0
	for i := range f.nodes {
		for a, rank := range t.final {
			if f.rec.held(i, a, rank).IsZero() {
				n++
			}
		}
	}
	return n
}

// measure fills the tiers, timeline and faults of res.
func measure(res *Result, f *federation, t *truth, order []int, emitted []time.Time, faults []Fault) {
	closed := map[int]Fault{}
	for _, fl := range faults {
		closed[fl.Node] = fl
	}
	alerts := slices.Sorted(mapKeys(t.final))
	real := map[string]bool{}
	for _, th := range f.w.threats {
		real[th.Malware], real[th.Indicator] = true, true
	}
	for r, tier := range t.tiers {
		rank := r + 1
		tr := TierResult{Tier: tier}
		var lat, above []float64
		var hops []hopSample
		produced := map[string]bool{}
		for i := range f.nodes {
			f.rec.mu.Lock()
			for a, at := range f.rec.at[i] {
				if !real[f.rec.threat[a]] {
					continue // a false alert (see AdversaryResult)
				}
				if len(at) >= rank && !at[rank-1].IsZero() {
					produced[a] = true
				}
			}
			f.rec.mu.Unlock()
		}
		tr.ProducedAlerts = len(produced)
		for _, a := range alerts {
			if t.final[a] < rank {
				continue
			}
			tr.ExpectedAlerts++
			thrSighting := order[t.reached[a][r]]
			thr := emitted[thrSighting]
			s := Series{Alert: a, Threat: f.w.threats[t.threat[a]].Name, Tier: tier, Threshold: thr.Sub(res.Start).Seconds()}
			all := true
			for i := range f.nodes {
				at := f.rec.held(i, a, rank)
				if at.IsZero() {
					all = false
					continue
				}
				s.At = append(s.At, at.Sub(res.Start).Seconds())
				if fl, ok := closed[i]; ok && at.Sub(res.Start).Seconds() >= fl.ClosedAt {
					continue // caught up after a restart: see Faults
				}
				ms := float64(max(0, at.Sub(thr))) / float64(time.Millisecond)
				fl := float64(f.floor(f.w.sightings[thrSighting].Org, i)) / float64(time.Millisecond)
				lat = append(lat, ms)
				above = append(above, ms-fl)
				if h, ok := f.hops(f.w.sightings[thrSighting], thr, i, a, rank, at); ok {
					hops = append(hops, hopSample{total: ms, legs: h})
				}
				tr.FloorMaxMs = math.Max(tr.FloorMaxMs, fl)
			}
			if all {
				tr.DeliveredAlerts++
			}
			sort.Float64s(s.At)
			res.Timeline = append(res.Timeline, s)
		}
		tr.Recall = 1
		if tr.ExpectedAlerts > 0 {
			tr.Recall = float64(tr.DeliveredAlerts) / float64(tr.ExpectedAlerts)
		}
		sort.Float64s(lat)
		tr.Samples = len(lat)
		if len(lat) > 0 {
			tr.P50Ms, tr.P99Ms, tr.MaxMs = pct(lat, 0.50), pct(lat, 0.99), lat[len(lat)-1]
			sort.Float64s(above)
			tr.AboveFloorP50Ms, tr.AboveFloorP99Ms, tr.AboveFloorMaxMs = pct(above, 0.50), pct(above, 0.99), above[len(above)-1]
		}
		tr.Hops = hopFigures(hops)
		res.Tiers = append(res.Tiers, tr)
	}
	if p := res.Partition; p != nil && f.plan != nil {
		end := res.Start.Add(time.Duration(p.To * float64(time.Second)))
		for _, i := range f.plan.regionOf {
			if _, killed := closed[i]; killed {
				continue // its catch-up after the restart is the fault's
			}
			for a, rank := range t.final {
				if at := f.rec.held(i, a, rank); at.After(end) {
					// From the end, or from the threshold sighting when
					// it came later.
					from := end
					if thr := emitted[order[t.reached[a][rank-1]]]; thr.After(from) {
						from = thr
					}
					p.ConvergedMs = math.Max(p.ConvergedMs, float64(at.Sub(from))/float64(time.Millisecond))
				}
			}
		}
	}
	for _, fl := range faults {
		fl.Converged = true
		reopen := res.Start.Add(time.Duration(fl.ReopenAt * float64(time.Second)))
		for a, rank := range t.final {
			at := f.rec.held(fl.Node, a, rank)
			if at.IsZero() {
				fl.Converged = false
				continue
			}
			// From the reopening, or from the alert's threshold sighting
			// when it came later.
			from := reopen
			if thr := emitted[order[t.reached[a][rank-1]]]; thr.After(from) {
				from = thr
			}
			fl.CatchUpMs = math.Max(fl.CatchUpMs, float64(max(0, at.Sub(from)))/float64(time.Millisecond))
		}
		res.Faults = append(res.Faults, fl)
	}
}

// hopNames name the legs of Hop, in path order.
var hopNames = [...]string{"report", "cert-to-cert", "correlation", "alert-push"}

// hopSample is one sample's latency (ms) and its legs.
type hopSample struct {
	total float64
	legs  [len(hopNames)]float64
}

// hops splits the latency of alert at rank reaching node i (at) after
// the threshold sighting s was reported (thr) along the legs of Hop. It
// reports false when a time is missing (a sighting a CERT never held).
func (f *federation) hops(s plannedSighting, thr time.Time, i int, alert string, rank int, at time.Time) ([len(hopNames)]float64, bool) {
	var legs [len(hopNames)]float64
	from, to := f.w.orgs[s.Org].Parent, f.w.orgs[i].Parent
	t := [...]time.Time{thr, f.rec.seenAt(from, s.ID), f.rec.seenAt(to, s.ID), f.rec.held(to, alert, rank), at}
	for k := range t {
		if t[k].IsZero() {
			return legs, false
		}
	}
	for k := range legs {
		legs[k] = float64(max(0, t[k+1].Sub(t[k]))) / float64(time.Millisecond)
	}
	return legs, true
}

// hopFigures sums up the legs of samples (see Hop).
func hopFigures(samples []hopSample) []Hop {
	if len(samples) == 0 {
		return nil
	}
	slices.SortFunc(samples, func(a, b hopSample) int { return cmp.Compare(b.total, a.total) })
	tail := samples[:max(1, len(samples)/100)]
	out := make([]Hop, len(hopNames))
	for k, name := range hopNames {
		v := make([]float64, len(samples))
		for j, s := range samples {
			v[j] = s.legs[k]
		}
		sort.Float64s(v)
		h := Hop{Hop: name, Samples: len(v), P50Ms: pct(v, 0.50), P99Ms: pct(v, 0.99), MaxMs: v[len(v)-1]}
		for _, s := range tail {
			h.TailMs += s.legs[k] / float64(len(tail))
		}
		out[k] = h
	}
	return out
}

// pct is the nearest-rank percentile of sorted values.
func pct(sorted []float64, p float64) float64 {
	k := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// WriteJSON writes res as indented JSON.
func WriteJSON(wr io.Writer, res *Result) error {
	enc := json.NewEncoder(wr)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// Summary writes the figures for people.
func Summary(wr io.Writer, res *Result) {
	fmt.Fprintf(wr, "Drill: %d organisations in %d countries, seed %d\n", res.Nodes, res.Countries, res.Seed)
	fmt.Fprintf(wr, "Topology: %s\n", res.Topology)
	fmt.Fprintf(wr, "Outbreak: %d sightings of %v replayed in %.1f s\n\n", res.Sightings, res.Threats, res.ReplaySeconds)
	fmt.Fprintf(wr, "%-9s %8s %8s %9s %8s %9s %9s %9s %11s %11s %11s %10s\n", "tier", "expected", "produced", "delivered", "samples", "p50 ms", "p99 ms", "max ms",
		"p50-floor", "p99-floor", "max-floor", "floor max")
	for _, t := range res.Tiers {
		fmt.Fprintf(wr, "%-9s %8d %8d %9d %8d %9.0f %9.0f %9.0f %11.0f %11.0f %11.0f %10.0f\n", t.Tier, t.ExpectedAlerts, t.ProducedAlerts, t.DeliveredAlerts, t.Samples,
			t.P50Ms, t.P99Ms, t.MaxMs, t.AboveFloorP50Ms, t.AboveFloorP99Ms, t.AboveFloorMaxMs, t.FloorMaxMs)
	}
	if slices.ContainsFunc(res.Tiers, func(t TierResult) bool { return len(t.Hops) > 0 }) {
		fmt.Fprintf(wr, "\nWhere the time goes (ms; the tail is the slowest 1%% of samples, each hop's mean there):\n")
		fmt.Fprintf(wr, "%-9s %-13s %9s %9s %9s %9s\n", "tier", "hop", "p50", "p99", "max", "tail")
		for _, t := range res.Tiers {
			for _, h := range t.Hops {
				fmt.Fprintf(wr, "%-9s %-13s %9.0f %9.0f %9.0f %9.0f\n", t.Tier, h.Hop, h.P50Ms, h.P99Ms, h.MaxMs, h.TailMs)
			}
		}
	}
	if ar := res.Adversaries; ar != nil {
		adversarySummary(wr, res)
	}
	fmt.Fprintf(wr, "\nPolicy violations in the audits: %d (%d egress records checked)\n", res.PolicyViolations, res.EgressChecked)
	for _, v := range res.Violations {
		fmt.Fprintf(wr, "  %s\n", v)
	}
	for _, fl := range res.Faults {
		fmt.Fprintf(wr, "Fault: %s %s at %.1f s, back at %.1f s: converged %t, caught up in %.0f ms\n", fl.Name, fl.Kind, fl.ClosedAt, fl.ReopenAt, fl.Converged, fl.CatchUpMs)
	}
	if res.Mode == "processes" {
		fmt.Fprintf(wr, "Processes: %s; largest node peak RSS %.0f MiB\n", res.ProcessBound, res.NodePeakRSSMiB)
		fmt.Fprintf(wr, "WAN: %d segments lost and retransmitted\n", res.LostSegments)
		where := "in the drill's process"
		if res.ProxyProcesses > 1 {
			where = fmt.Sprintf("in %d processes, peak open files %v", res.ProxyProcesses, res.ProxyOpenFiles)
		}
		fmt.Fprintf(wr, "Open files: drill peak %d, proxy %s (hard limit %d)\n", res.DrillOpenFiles, where, res.OpenFilesLimit)
		if p := res.Partition; p != nil {
			fmt.Fprintf(wr, "Partition: region %s (%d nodes) cut off from %.1f s to %.1f s; every alert at each of its nodes %.0f ms after the end at the latest\n", p.Region, p.Nodes, p.From, p.To, p.ConvergedMs)
		}
		if fl := res.Flap; fl != nil {
			fmt.Fprintf(wr, "Flapping uplink: %s, %d cycles from %.1f s to %.1f s\n", fl.CERT, fl.Cycles, fl.From, fl.To)
		}
		if d := res.DiskFull; d != nil {
			if d.Skipped != "" {
				fmt.Fprintf(wr, "Full disk: skipped: %s\n", d.Skipped)
			} else {
				fmt.Fprintf(wr, "Full disk: %s full from %.1f s to %.1f s: write answered %q; reads served %t; recovered %t\n", d.Node, d.FullAt, d.FreedAt, d.WriteRefused, d.ReadsServed, d.Recovered)
				if d.AcceptedWhileFull > 0 {
					fmt.Fprintf(wr, "  %d sightings stored while full before a write was refused (space the store had allocated)\n", d.AcceptedWhileFull)
				}
			}
		}
		if len(res.Skewed) > 0 {
			fmt.Fprintf(wr, "Clock skew: %s\n", strings.Join(res.Skewed, ", "))
		}
		fmt.Fprintf(wr, "Acknowledged sightings: %d, lost %d; object versions stored twice: %d\n", res.AckedObjects, res.LostObjects, res.Duplicates)
	}
	fmt.Fprintf(wr, "Every node holds every alert: %t\n", res.Converged)
	if res.PeakRSSMiB > 0 {
		fmt.Fprintf(wr, "Peak memory (all nodes, one process): %.0f MiB\n", res.PeakRSSMiB)
	}
}
