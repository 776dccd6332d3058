package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// Mode is how long a run takes.
type Mode string

// Modes of a run.
const (
	Quick Mode = "quick" // about five minutes: smaller workloads, fewer samples
	Full  Mode = "full"  // the sizes the goals are stated for, several samples
)

// Workload is one headline measure: a named piece of work that emits its
// figures.
type Workload struct {
	Name  string
	About string
	// Quick and Full bound the workload's run in each mode; past the
	// bound its context ends.
	Quick, Full time.Duration
	// Bound, when set, replaces Quick and Full (for workloads whose
	// length is an option).
	Bound func(opts *Options) time.Duration
	// Slow workloads run only when named (--only) or in full mode.
	FullOnly bool
	Run      func(ctx context.Context, e *Env) error
}

// Options configure a run.
type Options struct {
	Mode Mode
	// Only names the workloads to run (all when empty); Skip those not to.
	Only, Skip []string
	// Repo is the module's root; Shared the folder holding data/ and
	// bench/ (../shared beside the repository); Work a scratch folder
	// for binaries, generated workloads and nodes' data.
	Repo, Shared, Work string
	// Out receives the table, Log the progress; JSON, when not nil, one
	// JSON line per figure and sample.
	Out, Log, JSON io.Writer
	// Strace adds syscall counts (strace -c) to the figures of the
	// ingest, in one more run under strace.
	Strace bool
	// Ripgrep runs ripgrep among the matching peers when it is installed
	// (it needs 6 to 9 GB for a million patterns).
	Ripgrep bool
	// WALDuration and WALClients set the mixed load of the wal workload
	// (defaults: 30 s quick, 60 s full; 16 clients).
	WALDuration time.Duration
	WALClients  int
	// MatchIndicators, MatchConnLines, MatchDNSLines and MatchEVELines
	// size the match workload (0: the mode's default).
	MatchIndicators, MatchConnLines, MatchDNSLines, MatchEVELines int
	// Keep keeps the nodes' data directories after the run.
	Keep bool
	// Entente, when set, is an entente binary to measure instead of one
	// built from the repository (to measure an older build beside a newer
	// one, A/B). The Go benchmarks still run on the repository.
	Entente string
}

// Run runs the selected workloads one after the other, printing each one's
// figures as it ends and writing them as JSON lines. A workload that fails
// is reported and the run goes on; the error names every failed workload.
func Run(ctx context.Context, opts Options, workloads []Workload) error {
	if opts.Mode == "" {
		opts.Mode = Quick
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	sel, err := Select(workloads, opts.Only, opts.Skip, opts.Mode)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(opts.Work, 0o755); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	machine := ReadMachine()
	machine.Go = goVersion(ctx)
	commit := gitCommit(ctx, opts.Repo)
	base := &shared{opts: &opts, built: map[string]string{}}
	fmt.Fprintf(opts.Out, "entente bench (%s mode) — commit %s\n", opts.Mode, commit)
	fmt.Fprintf(opts.Out, "machine: %s, %d cores, %.0f GiB, Linux %s, %s\n", machine.CPU, machine.Cores, machine.MemGiB, orDash(machine.Kernel), orDash(machine.Go))
	fmt.Fprintf(opts.Out, "workloads: %s\n", names(sel))
	var failed []string
	start := time.Now()
	for _, w := range sel {
		budget := w.Quick
		if opts.Mode == Full {
			budget = w.Full
		}
		if w.Bound != nil {
			budget = w.Bound(&opts)
		}
		wctx, cancel := context.WithTimeout(ctx, budget)
		e := &Env{Mode: opts.Mode, Repo: opts.Repo, Shared: opts.Shared, Work: opts.Work, shared: base, workload: w.Name}
		m := machine
		m.LoadBefore = LoadAverage()
		t0 := time.Now()
		fmt.Fprintf(opts.Log, "== %s: %s (bound %v)\n", w.Name, w.About, budget)
		err := w.Run(wctx, e)
		if errors.Is(wctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("did not finish within %v (%v)", budget, err)
		}
		e.cleanup()
		cancel()
		m.LoadAfter = LoadAverage()
		recs := stamp(e.figures, w.Name, opts.Mode, commit, m, time.Now())
		printWorkload(opts.Out, w, recs, m, time.Since(t0), err)
		if opts.JSON != nil {
			if werr := WriteRecords(opts.JSON, recs); werr != nil {
				return werr
			}
		}
		if err != nil {
			failed = append(failed, w.Name)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fmt.Fprintf(opts.Out, "\nran in %v\n", time.Since(start).Round(time.Second))
	if len(failed) > 0 {
		return fmt.Errorf("workloads failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// Select returns the workloads to run: those named in only (every one
// when only is empty, but full-only ones only in full mode), less those
// in skip. An unknown name is an error listing the known ones.
func Select(all []Workload, only, skip []string, mode Mode) ([]Workload, error) {
	known := map[string]bool{}
	for _, w := range all {
		known[w.Name] = true
	}
	for _, n := range append(slices.Clone(only), skip...) {
		if !known[n] {
			return nil, fmt.Errorf("unknown workload %q (known: %s)", n, names(all))
		}
	}
	var out []Workload
	for _, w := range all {
		switch {
		case slices.Contains(skip, w.Name):
		case len(only) > 0:
			if slices.Contains(only, w.Name) {
				out = append(out, w)
			}
		case w.FullOnly && mode != Full:
		default:
			out = append(out, w)
		}
	}
	return out, nil
}

func names(ws []Workload) string {
	n := make([]string, len(ws))
	for i, w := range ws {
		n[i] = w.Name
	}
	return strings.Join(n, ", ")
}

// stamp turns a workload's figures into records, numbering the samples of
// each figure.
func stamp(figs []Figure, workload string, mode Mode, commit string, m Machine, at time.Time) []Record {
	seen := map[string]int{}
	out := make([]Record, len(figs))
	for i, f := range figs {
		seen[f.Name]++
		out[i] = Record{Figure: f, Workload: workload, Sample: seen[f.Name], Mode: string(mode), Commit: commit, Time: at.UTC().Round(time.Second), Machine: m}
	}
	return out
}

// printWorkload writes a workload's block of the table: one row per
// figure (the median of its samples), its goal, and one row per peer.
func printWorkload(w io.Writer, wl Workload, recs []Record, m Machine, took time.Duration, err error) {
	fmt.Fprintf(w, "\n%s — %s\n", wl.Name, wl.About)
	fmt.Fprintf(w, "  load %.2f → %.2f, %v\n", m.LoadBefore, m.LoadAfter, took.Round(100*time.Millisecond))
	if len(recs) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  figure\tvalue\tgoal\tpeer (same run, or recorded)\tratio")
		order, by := group(recs)
		first := map[string]Record{}
		for _, r := range recs {
			if _, ok := first[r.Name]; !ok {
				first[r.Name] = r
			}
		}
		var notes []string
		for _, name := range order {
			s := Summarise(by[name].values)
			r := first[name]
			val := FormatValue(s.Median) + " " + r.Unit
			if s.N > 1 {
				val += fmt.Sprintf(" (median of %d, %s–%s)", s.N, FormatValue(s.Min), FormatValue(s.Max))
			}
			goal := ""
			if r.Goal != nil {
				goal = goalText(*r.Goal, s.Median)
			}
			peer, ratio := "", ""
			if len(r.Peers) > 0 {
				peer, ratio = peerText(r.Peers[0]), ratioText(Figure{Value: s.Median, Better: r.Better}, r.Peers[0])
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", name, val, goal, peer, ratio)
			for _, p := range r.Peers[min(1, len(r.Peers)):] {
				fmt.Fprintf(tw, "  \t\t\t%s\t%s\n", peerText(p), ratioText(Figure{Value: s.Median, Better: r.Better}, p))
			}
			if r.Note != "" {
				notes = append(notes, fmt.Sprintf("  %s: %s", name, r.Note))
			}
			for _, p := range r.Peers {
				if p.Recorded && p.Source != "" {
					notes = append(notes, fmt.Sprintf("  %s, %s recorded: %s", name, p.Name, p.Source))
				}
			}
		}
		tw.Flush()
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	if err != nil {
		fmt.Fprintf(w, "  FAILED: %v\n", err)
	}
}

func peerText(p Peer) string {
	s := fmt.Sprintf("%s %s", p.Name, FormatValue(p.Value))
	if p.Recorded {
		s += " (recorded)"
	}
	if p.Note != "" {
		s += " " + p.Note
	}
	return s
}

func ratioText(f Figure, p Peer) string {
	r := Ratio(f, p)
	if r == 0 {
		return ""
	}
	return trimFloat(r) + "×"
}

// shared is what the workloads of one run share: the options and the
// binaries built so far.
type shared struct {
	opts  *Options
	mu    sync.Mutex
	built map[string]string
	base  *Baselines
	bErr  error
	bOnce sync.Once
}

// Env is what a workload measures with.
type Env struct {
	Mode               Mode
	Repo, Shared, Work string
	*shared
	workload string
	figures  []Figure
	cleanups []func()
}

// Quick reports whether the run is in quick mode.
func (e *Env) Quick() bool { return e.Mode != Full }

// Pick returns quick in quick mode and full in full mode.
func Pick[T any](e *Env, quick, full T) T {
	if e.Quick() {
		return quick
	}
	return full
}

// Emit records one figure (one sample of it).
func (e *Env) Emit(f Figure) {
	if math.IsNaN(f.Value) || math.IsInf(f.Value, 0) {
		e.Logf("figure %s: not a finite number (%v); left out", f.Name, f.Value)
		return
	}
	e.figures = append(e.figures, f)
}

// Logf writes a line of progress.
func (e *Env) Logf(format string, args ...any) {
	fmt.Fprintf(e.opts.Log, "   %s: %s\n", e.workload, fmt.Sprintf(format, args...))
}

// Defer registers f to run when the workload ends.
func (e *Env) Defer(f func()) { e.cleanups = append(e.cleanups, f) }

func (e *Env) cleanup() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cleanups = nil
}

// TempDir returns a new directory under the work directory, removed when
// the workload ends (unless the run keeps them).
func (e *Env) TempDir(prefix string) (string, error) {
	base := filepath.Join(e.Work, "run")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("temporary directory: %w", err)
	}
	d, err := os.MkdirTemp(base, prefix)
	if err != nil {
		return "", fmt.Errorf("temporary directory: %w", err)
	}
	if !e.opts.Keep {
		e.Defer(func() { os.RemoveAll(d) })
	}
	return d, nil
}

// Data returns the path of a file under the shared real data.
func (e *Env) Data(elem ...string) string {
	return filepath.Join(append([]string{e.Shared, "data"}, elem...)...)
}

// Recorded returns the recorded figure ref locates in
// ../shared/bench/BASELINES.md, as a peer named name.
func (e *Env) Recorded(name string, ref BaselineRef) (Peer, bool) {
	e.bOnce.Do(func() {
		path := filepath.Join(e.Shared, "bench", "BASELINES.md")
		b, err := os.ReadFile(path)
		if err != nil {
			e.bErr = err
			return
		}
		e.base, e.bErr = ParseBaselines("BASELINES.md", b)
	})
	if e.bErr != nil {
		e.Logf("recorded baselines not available: %v", e.bErr)
		return Peer{}, false
	}
	p, ok := e.base.Peer(name, ref)
	if !ok {
		e.Logf("BASELINES.md has no figure for %s in column %q where %v", name, ref.Col, ref.Where)
	}
	return p, ok
}

// toolSource says how each binary is built: the folder to build in and
// the package.
func (e *Env) toolSource(name string) (dir, pkg string, err error) {
	switch name {
	case "entente":
		return e.Repo, "./cmd/entente", nil
	case "matchgen":
		return e.Repo, "./tools/matchgen", nil
	case "devicegen":
		return e.Repo, "./tools/devicegen", nil
	case "taxiiload":
		return filepath.Join(e.Shared, "bench", "taxii-load"), ".", nil
	}
	return "", "", fmt.Errorf("no build recipe for tool %q", name)
}

// Tool returns the path of a binary built for this run: entente and
// matchgen from the repository, taxiiload from ../shared/bench. Each is
// built once per run (go build caches what did not change).
func (e *Env) Tool(ctx context.Context, name string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.built[name]; ok {
		return p, nil
	}
	if name == "entente" && e.opts.Entente != "" {
		e.built[name] = e.opts.Entente
		return e.opts.Entente, nil
	}
	dir, pkg, err := e.toolSource(name)
	if err != nil {
		return "", err
	}
	out := filepath.Join(e.Work, "bin", name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	// The shared tools are modules of their own.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	e.Logf("building %s (%s in %s)", name, pkg, dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s in %s: %w\n%s", name, dir, err, tail(b, 2000))
	}
	e.built[name] = out
	return out, nil
}

// Usage is what a finished process used.
type Usage struct {
	Wall, User, Sys time.Duration
	// MaxRSS is the peak resident set size in bytes.
	MaxRSS int64
	// MinorFaults and MajorFaults are page faults; Voluntary and
	// Involuntary context switches.
	MinorFaults, MajorFaults int64
	Voluntary, Involuntary   int64
}

// Exec runs cmd to its end and returns what it used (Linux rusage) along
// with its error; its stderr, when not redirected, goes to the log only on
// failure.
func (e *Env) Exec(cmd *exec.Cmd) (Usage, error) {
	var stderr bytes.Buffer
	if cmd.Stderr == nil {
		cmd.Stderr = &stderr
	}
	t0 := time.Now()
	err := cmd.Run()
	u := Usage{Wall: time.Since(t0)}
	if ps := cmd.ProcessState; ps != nil {
		u.User, u.Sys = ps.UserTime(), ps.SystemTime()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			u.MaxRSS = ru.Maxrss * 1024
			u.MinorFaults, u.MajorFaults = ru.Minflt, ru.Majflt
			u.Voluntary, u.Involuntary = ru.Nvcsw, ru.Nivcsw
		}
	}
	if err != nil {
		return u, fmt.Errorf("%s: %w\n%s", commandLine(cmd.Args), err, tail(stderr.Bytes(), 2000))
	}
	return u, nil
}

// secretFlags are the flags whose value is a secret (an API key).
var secretFlags = map[string]bool{"-pass": true, "--pass": true, "-token": true, "--token": true}

// commandLine writes a command for a message, with secrets replaced.
func commandLine(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		switch {
		case i > 0 && secretFlags[args[i-1]]:
			out[i] = "REDACTED"
		default:
			if k, _, ok := strings.Cut(a, "="); ok && secretFlags[k] {
				a = k + "=REDACTED"
			}
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}

// GoBench runs `go test -run '^$' -bench pattern` on pkg (a path relative
// to the repository) with the given -benchtime and -count and extra
// environment, and returns its result lines. Its output goes to the log.
func (e *Env) GoBench(ctx context.Context, pkg, pattern, benchtime string, count int, timeout time.Duration, env ...string) ([]BenchResult, error) {
	args := []string{"test", "-run", "^$", "-bench", pattern, "-benchtime", benchtime, "-count", fmt.Sprint(max(1, count)), "-timeout", timeout.String(), pkg}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = e.Repo
	// The tests find the shared data where the run found it.
	cmd.Env = append(append(os.Environ(), "ENTENTE_SHARED_DATA="+filepath.Join(e.Shared, "data")), env...)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, prefixWriter(e.opts.Log, "   "+e.workload+": "))
	cmd.Stderr = cmd.Stdout
	e.Logf("go %s", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go test -bench %s %s: %w", pattern, pkg, err)
	}
	res, err := ParseGoBench(bytes.NewReader(out.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("go test -bench %s %s: %w", pattern, pkg, err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("go test -bench %s %s ran no benchmark: was it renamed or moved? (update internal/bench/workloads.go)", pattern, pkg)
	}
	return res, nil
}

// tail returns the last n bytes of b, as text.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// prefixWriter writes each line with a prefix.
func prefixWriter(w io.Writer, prefix string) io.Writer {
	return &linePrefixer{w: w, prefix: prefix, bol: true}
}

type linePrefixer struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	bol    bool
}

func (l *linePrefixer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range bytes.SplitAfter(p, []byte("\n")) {
		if len(c) == 0 {
			continue
		}
		if l.bol {
			if _, err := io.WriteString(l.w, l.prefix); err != nil {
				return 0, err
			}
		}
		if _, err := l.w.Write(c); err != nil {
			return 0, err
		}
		l.bol = c[len(c)-1] == '\n'
	}
	return len(p), nil
}

// goVersion returns `go version` of the toolchain the run builds with.
func goVersion(ctx context.Context) string {
	b, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// gitCommit returns the repository's commit, with "+dirty" when the work
// tree has changes, or "unknown".
func gitCommit(ctx context.Context, repo string) string {
	b, err := exec.CommandContext(ctx, "git", "-C", repo, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(b))
	if st, err := exec.CommandContext(ctx, "git", "-C", repo, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "+dirty"
	}
	return c
}

// metricOf returns the values of the named metric in every result whose
// name is name (one per -count), or an error saying which is missing.
func metricOf(res []BenchResult, name, unit string) ([]float64, error) {
	var vals []float64
	for _, r := range res {
		if r.Name != name {
			continue
		}
		v, ok := r.Metrics[unit]
		if !ok {
			return nil, fmt.Errorf("benchmark %s reported no %q (it reported %s)", name, unit, strings.Join(keys(r.Metrics), ", "))
		}
		vals = append(vals, v)
	}
	if len(vals) == 0 {
		var got []string
		for _, r := range res {
			got = append(got, r.Name)
		}
		return nil, fmt.Errorf("no result for benchmark %s (got %s)", name, strings.Join(got, ", "))
	}
	return vals, nil
}

func keys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// errNotInstalled says a peer tool is not on this machine.
var errNotInstalled = errors.New("not installed")

// lookTool returns the path of an installed program, or errNotInstalled.
func lookTool(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, errNotInstalled)
	}
	return p, nil
}
