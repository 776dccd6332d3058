package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MatchgenLog is what `matchgen -bench` says of one log.
type MatchgenLog struct {
	Lines          int64
	Seconds        float64
	LinesPerSecond float64
	// LinesPerCPUSecond is lines over the CPU time of the matching.
	LinesPerCPUSecond float64
	Hits              int64
	// Expected, Missed and False are the exactness check's counts
	// (-1 when the check did not run).
	Expected, Missed, False int64
}

// MatchgenReport is the output of `matchgen -bench`.
type MatchgenReport struct {
	Values       int64
	BuildSeconds float64
	RSSMiB       float64
	Logs         map[string]*MatchgenLog
}

var (
	mgSnapshot = regexp.MustCompile(`^snapshot: (\d+) values, built in ([\d.]+) s, heap in use [\d.]+ MiB, process RSS ([\d.]+) MiB`)
	mgCPU      = regexp.MustCompile(`^(\S+): ([\d.]+) CPU seconds = (\d+) lines per CPU second`)
	mgRate     = regexp.MustCompile(`^(\S+): (\d+) lines \([\d.]+ MB\) in ([\d.]+) s = (\d+) lines/s \([\d.]+ MB/s\), (\d+) hits`)
	mgExact    = regexp.MustCompile(`^\s+exactness: (\d+) expected \(line, indicator\) pairs, (\d+) reported, (\d+) missed, (\d+) false positives`)
)

// ParseMatchgen reads the output of `matchgen -bench`. It needs the
// snapshot line and, for each log, the rate line; an exactness line
// belongs to the log whose rate line precedes it.
func ParseMatchgen(r io.Reader) (*MatchgenReport, error) {
	rep := &MatchgenReport{Logs: map[string]*MatchgenLog{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var last *MatchgenLog
	log := func(name string) *MatchgenLog {
		l, ok := rep.Logs[name]
		if !ok {
			l = &MatchgenLog{Expected: -1, Missed: -1, False: -1}
			rep.Logs[name] = l
		}
		return l
	}
	snapshot := false
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		switch {
		case mgSnapshot.MatchString(t):
			m := mgSnapshot.FindStringSubmatch(t)
			rep.Values, _ = strconv.ParseInt(m[1], 10, 64)
			rep.BuildSeconds, _ = strconv.ParseFloat(m[2], 64)
			rep.RSSMiB, _ = strconv.ParseFloat(m[3], 64)
			snapshot = true
		case mgCPU.MatchString(t):
			m := mgCPU.FindStringSubmatch(t)
			l := log(m[1])
			l.LinesPerCPUSecond, _ = strconv.ParseFloat(m[3], 64)
		case mgRate.MatchString(t):
			m := mgRate.FindStringSubmatch(t)
			l := log(m[1])
			l.Lines, _ = strconv.ParseInt(m[2], 10, 64)
			l.Seconds, _ = strconv.ParseFloat(m[3], 64)
			l.LinesPerSecond, _ = strconv.ParseFloat(m[4], 64)
			l.Hits, _ = strconv.ParseInt(m[5], 10, 64)
			last = l
		case mgExact.MatchString(t):
			if last == nil {
				return nil, fmt.Errorf("matchgen output line %d: exactness line before any log's figures", line)
			}
			m := mgExact.FindStringSubmatch(t)
			last.Expected, _ = strconv.ParseInt(m[1], 10, 64)
			last.Missed, _ = strconv.ParseInt(m[3], 10, 64)
			last.False, _ = strconv.ParseInt(m[4], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read matchgen output: %w", err)
	}
	if !snapshot {
		return nil, errors.New("matchgen output has no snapshot line")
	}
	for name, l := range rep.Logs {
		if l.Lines == 0 && l.LinesPerSecond == 0 {
			return nil, fmt.Errorf("matchgen output has no rate line for %s", name)
		}
	}
	return rep, nil
}

// matchWorkload generates (once, then reuses) a matchgen workload from the
// real logs and blocklists, measures `matchgen -bench` on Zeek conn.log and
// Suricata EVE (lines/s, lines per CPU second, exactness against the
// truth file), and runs the peers on the same files: the Python set
// matcher of ../shared/bench/match-workload on conn.log, and `grep -F -w
// -f` on a prefix of each log, its pattern loading timed apart.
func matchWorkload(ctx context.Context, e *Env) error {
	mg, err := e.Tool(ctx, "matchgen")
	if err != nil {
		return err
	}
	ind, conn, dns, eve := matchSizes(e.opts)
	dir := filepath.Join(e.Work, fmt.Sprintf("match-i%d-c%d-d%d-e%d-s7", ind, conn, dns, eve))
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		os.RemoveAll(dir)
		e.Logf("generating %d indicators, %d conn, %d dns and %d EVE lines into %s (kept for later runs)", ind, conn, dns, eve, dir)
		cmd := exec.CommandContext(ctx, mg, "-out", dir, "-indicators", fmt.Sprint(ind), "-conn-lines", fmt.Sprint(conn),
			"-dns-lines", fmt.Sprint(dns), "-eve-lines", fmt.Sprint(eve), "-seed", "7", "-data", filepath.Join(e.Shared, "data"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if _, err := e.Exec(cmd); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
			return err
		}
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, mg, "-bench", dir)
	cmd.Stdout = &out
	bu, err := e.Exec(cmd)
	if err != nil {
		return err
	}
	rep, err := ParseMatchgen(bytes.NewReader(out.Bytes()))
	if err != nil {
		return fmt.Errorf("%w:\n%s", err, tail(out.Bytes(), 2000))
	}
	// Peers, measured now on the same files.
	python := e.pythonPeer(ctx, dir, "conn.log", "id.orig_h,id.resp_h")
	grepConn := e.grepPeer(ctx, dir, "conn.log", Pick(e, 200_000, 1_000_000))
	grepEVE := e.grepPeer(ctx, dir, "eve.json", Pick(e, 200_000, 500_000))
	var pythonDNS, grepDNS []Peer
	if dns >= minDNSLines {
		pythonDNS = e.pythonPeer(ctx, dir, "dns.log", "query")
		grepDNS = e.grepPeer(ctx, dir, "dns.log", Pick(e, 200_000, 1_000_000))
	}
	var rgConn []Peer
	if e.opts.Ripgrep {
		rgConn = e.ripgrepPeer(ctx, dir, "conn.log", Pick(e, 200_000, 1_000_000))
	} else if p, ok := e.Recorded("rg -F -f", BaselineRef{Where: map[string]string{"tool": "`rg -F -f`", "log": "conn"}, Col: "lines/s"}); ok {
		p.Note = "(not run: --ripgrep runs it; 6-9 GB)"
		rgConn = []Peer{p}
	}
	errs := 0
	logs := []string{"conn.log", "eve.json"}
	if dns >= minDNSLines {
		logs = append(logs, "dns.log")
	}
	for _, name := range logs {
		l, ok := rep.Logs[name]
		if !ok {
			return fmt.Errorf("matchgen -bench measured no %s", name)
		}
		short := strings.TrimSuffix(strings.TrimSuffix(name, ".log"), ".json")
		var peers []Peer
		var goal *Goal
		switch short {
		case "conn":
			goal = AtLeast(5_000_000)
			peers = append(append(append(peers, python...), grepConn...), rgConn...)
		case "eve":
			goal = AtLeast(1_000_000)
			peers = append(peers, grepEVE...)
		case "dns":
			peers = append(append(peers, pythonDNS...), grepDNS...)
		}
		e.Emit(Figure{Name: "match." + short + ".rate", Value: l.LinesPerSecond, Unit: "lines/s", Better: Higher, Goal: goal, Peers: peers,
			Note: fmt.Sprintf("%d lines against %d indicators, snapshot built beforehand", l.Lines, rep.Values)})
		e.Emit(Figure{Name: "match." + short + ".rate-per-cpu", Value: l.LinesPerCPUSecond, Unit: "lines/CPU-s", Better: Higher})
		if l.Missed >= 0 {
			errs += int(l.Missed + l.False)
		}
	}
	e.Emit(Figure{Name: "match.exactness-errors", Value: float64(errs), Unit: "pairs", Better: Lower, Goal: AtMost(0),
		Note: "missed and false (line, indicator) pairs against the truth file"})
	e.Emit(Figure{Name: "match.snapshot.build", Value: rep.BuildSeconds, Unit: "s", Better: Lower})
	e.Emit(Figure{Name: "match.snapshot.rss", Value: rep.RSSMiB, Unit: "MiB", Better: Lower})
	e.Emit(Figure{Name: "match.bench.max-rss", Value: float64(bu.MaxRSS) / (1 << 20), Unit: "MiB", Better: Lower})
	return nil
}

// minDNSLines is the dns.log size from which the match workload reports
// it (the default full run's 1,000,000 lines; a quick run makes 1,000).
const minDNSLines = 100_000

// matchSizes returns the match workload's sizes: indicators, conn, dns and
// EVE lines, from the options or the mode's defaults.
func matchSizes(o *Options) (ind, conn, dns, eve int) {
	pick := func(v, quick, full int) int {
		switch {
		case v > 0:
			return v
		case o.Mode == Full:
			return full
		}
		return quick
	}
	return pick(o.MatchIndicators, 1_000_000, 2_000_000), pick(o.MatchConnLines, 2_000_000, 5_000_000),
		pick(o.MatchDNSLines, 1000, 1_000_000), pick(o.MatchEVELines, 1_000_000, 2_000_000)
}

// matchBudget bounds the match workload: its mode's bound, or more for
// larger workloads (generation and grep grow with them).
func matchBudget(o *Options) time.Duration {
	ind, conn, dns, eve := matchSizes(o)
	d := 5 * time.Minute
	if o.Mode == Full {
		d = 20 * time.Minute
	}
	// About a minute per million indicators or lines beyond the defaults.
	return max(d, time.Duration(ind+conn+dns+eve)/1_000_000*time.Minute+5*time.Minute)
}

// pythonPeer runs the Python set matcher on a Zeek log (its fields), or
// returns its recorded figure when python3 or the script is missing.
func (e *Env) pythonPeer(ctx context.Context, dir, log, fields string) []Peer {
	script := filepath.Join(e.Shared, "bench", "match-workload", "naive_match.py")
	py, err := lookTool("python3")
	if err == nil {
		_, err = os.Stat(script)
	}
	if err != nil {
		e.Logf("Python set matcher not run: %v", err)
		short := strings.TrimSuffix(log, ".log")
		if p, ok := e.Recorded("Python set", BaselineRef{Where: map[string]string{"tool": "Python set of values", "log": short}, Col: "lines/s"}); ok {
			return []Peer{p}
		}
		if p, ok := e.Recorded("Python set", BaselineRef{Where: map[string]string{"tool": "Python set of values, fields split by tab", "log": short}, Col: "lines/s"}); ok {
			return []Peer{p}
		}
		return nil
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, py, script, "--ips", filepath.Join(dir, "indicators_ipv4.txt"), "--domains", filepath.Join(dir, "indicators_domain.txt"),
		"--log", filepath.Join(dir, log), "--fields", fields)
	cmd.Stdout = &out
	if _, err := e.Exec(cmd); err != nil {
		e.Logf("Python set matcher failed: %v", err)
		return nil
	}
	var r struct {
		LinesPerS float64 `json:"lines_per_s"`
		HitLines  int64   `json:"hit_lines"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &r); err != nil {
		e.Logf("Python set matcher output %q: %v", tail(out.Bytes(), 200), err)
		return nil
	}
	return []Peer{{Name: "Python set", Value: r.LinesPerS, Note: fmt.Sprintf("(IPv4 and domains only, %d hit lines)", r.HitLines)}}
}

// grepPeer runs `grep -F -w -c -f indicators.txt` on the first lines of
// a log and on an empty file, and returns the matching rate with the
// pattern loading taken out; its recorded figure when grep is missing.
func (e *Env) grepPeer(ctx context.Context, dir, log string, lines int) []Peer {
	grep, err := lookTool("grep")
	if err != nil {
		e.Logf("grep not run: %v", err)
		if p, ok := e.Recorded("grep -F -w", BaselineRef{Where: map[string]string{"tool": "`grep -F -w -f`", "log": strings.TrimSuffix(log, ".log")}, Col: "lines/s"}); ok {
			return []Peer{p}
		}
		return nil
	}
	rate, err := e.patternTool(ctx, dir, log, lines, grep, "-F", "-w", "-c", "-f")
	if err != nil {
		e.Logf("grep failed: %v", err)
		return nil
	}
	return []Peer{{Name: "grep -F -w", Value: rate, Note: fmt.Sprintf("(first %d lines, pattern loading excluded)", lines)}}
}

// ripgrepPeer runs `rg -F -c -f` like grepPeer.
func (e *Env) ripgrepPeer(ctx context.Context, dir, log string, lines int) []Peer {
	rg, err := lookTool("rg")
	if err != nil {
		e.Logf("ripgrep not run: %v", err)
		if p, ok := e.Recorded("rg -F -f", BaselineRef{Where: map[string]string{"tool": "`rg -F -f`", "log": "conn"}, Col: "lines/s"}); ok {
			return []Peer{p}
		}
		return nil
	}
	rate, err := e.patternTool(ctx, dir, log, lines, rg, "-F", "-c", "-f")
	if err != nil {
		e.Logf("ripgrep failed: %v", err)
		return nil
	}
	return []Peer{{Name: "rg -F", Value: rate, Note: fmt.Sprintf("(first %d lines, pattern loading excluded)", lines)}}
}

// patternTool times `tool args... indicators.txt FILE` on the first lines
// of log and on an empty file, and returns the lines per second of the
// difference: the matching, without the loading of the patterns.
func (e *Env) patternTool(ctx context.Context, dir, log string, lines int, tool string, args ...string) (float64, error) {
	head, n, err := headFile(dir, log, lines)
	if err != nil {
		return 0, err
	}
	empty := filepath.Join(dir, "empty.log")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return 0, err
	}
	run := func(file string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, tool, append(append(args, filepath.Join(dir, "indicators.txt")), file)...)
		cmd.Stdout = io.Discard
		u, err := e.Exec(cmd)
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 { // no line matched
			err = nil
		}
		return u.Wall, err
	}
	t0, err := run(empty)
	if err != nil {
		return 0, err
	}
	t1, err := run(head)
	if err != nil {
		return 0, err
	}
	d := (t1 - t0).Seconds()
	if d <= 0 {
		return 0, fmt.Errorf("%s on %d lines took no longer than on none", filepath.Base(tool), n)
	}
	return float64(n) / d, nil
}

// headFile writes (once) the first lines of a log, comment lines kept
// but not counted, and returns its path and the number of records.
func headFile(dir, log string, lines int) (string, int, error) {
	path := filepath.Join(dir, fmt.Sprintf("%s.head%d", log, lines))
	src, err := os.Open(filepath.Join(dir, log))
	if err != nil {
		return "", 0, err
	}
	defer src.Close()
	var buf bytes.Buffer
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
	n := 0
	for n < lines && sc.Scan() {
		buf.Write(sc.Bytes())
		buf.WriteByte('\n')
		if !bytes.HasPrefix(sc.Bytes(), []byte("#")) {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return "", 0, fmt.Errorf("read %s: %w", log, err)
	}
	if _, err := os.Stat(path); err != nil {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return "", 0, err
		}
	}
	return path, n, nil
}
