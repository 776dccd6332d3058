package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseGoBench reads real `go test -bench` output (BenchmarkTAXIIRead10k
// with -count 2): every result line, sub-benchmark names without the
// GOMAXPROCS suffix, custom metrics.
func TestParseGoBench(t *testing.T) {
	res, err := ParseGoBench(bytes.NewReader(readTestdata(t, "parse/gotest-gate.txt")))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("%d results, want 4: %+v", len(res), res)
	}
	if res[0].Name != "BenchmarkTAXIIRead10k/gc=400" || res[0].Iterations != 2 || res[0].Metrics["gate-%"] != 3.876 || res[0].Metrics["ns/op"] != 215324874 {
		t.Errorf("first result %+v", res[0])
	}
	vals, err := metricOf(res, "BenchmarkTAXIIRead10k/gc=100", "ungated-ms")
	if err != nil || len(vals) != 2 || vals[0] != 111.2 || vals[1] != 96.97 {
		t.Errorf("ungated-ms of gc=100: %v, %v", vals, err)
	}
	if _, err := metricOf(res, "BenchmarkTAXIIRead10k/gc=400", "objects/s"); err == nil || !strings.Contains(err.Error(), "reported no \"objects/s\"") {
		t.Errorf("missing unit: %v", err)
	}
	if _, err := metricOf(res, "BenchmarkPeerPull", "objects/s"); err == nil || !strings.Contains(err.Error(), "no result for benchmark BenchmarkPeerPull") {
		t.Errorf("missing benchmark: %v", err)
	}
}

func TestParseGoBenchErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"BenchmarkX-2 10 abc ns/op\n", `line 1: "abc" is not a number`},
		{"ok\nBenchmarkX-2 10 5 ns/op 7\n", "line 2"},
		{"BenchmarkX-2 10 NaN ns/op\n", "is not a number"},
	} {
		if _, err := ParseGoBench(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
	// Lines that only start like results are not results.
	res, err := ParseGoBench(strings.NewReader("BenchmarkX\nBenchmarkY-2 starting\nBenchmarkZ-2 0 1 ns/op\n--- FAIL: BenchmarkW\n"))
	if err != nil || len(res) != 0 {
		t.Errorf("got %v, %v; want no results", res, err)
	}
}

// TestParseMatchgen reads real `matchgen -bench` output.
func TestParseMatchgen(t *testing.T) {
	rep, err := ParseMatchgen(bytes.NewReader(readTestdata(t, "parse/matchgen.txt")))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Values != 1_000_000 || rep.BuildSeconds != 1.61 || rep.RSSMiB != 64 {
		t.Errorf("snapshot: %+v", rep)
	}
	conn := rep.Logs["conn.log"]
	if conn == nil || conn.Lines != 2000009 || conn.LinesPerSecond != 1195438 || conn.LinesPerCPUSecond != 2327275 || conn.Hits != 2169 || conn.Expected != 2169 || conn.Missed != 0 || conn.False != 0 {
		t.Errorf("conn.log: %+v", conn)
	}
	eve := rep.Logs["eve.json"]
	if eve == nil || eve.Lines != 1000000 || eve.LinesPerSecond != 702446 || eve.Expected != 1087 {
		t.Errorf("eve.json: %+v", eve)
	}
	if len(rep.Logs) != 3 {
		t.Errorf("%d logs, want 3", len(rep.Logs))
	}
}

func TestParseMatchgenErrors(t *testing.T) {
	snap := "snapshot: 10 values, built in 0.1 s, heap in use 1 MiB, process RSS 2 MiB (before loading 1 MiB)\n"
	for _, tc := range []struct{ in, want string }{
		{"conn.log: 1.0 CPU seconds = 5 lines per CPU second\n", "no snapshot line"},
		{snap + "  exactness: 1 expected (line, indicator) pairs, 1 reported, 0 missed, 0 false positives\n", "line 2: exactness line before"},
		{snap + "conn.log: 1.0 CPU seconds = 5 lines per CPU second\n", "no rate line for conn.log"},
	} {
		if _, err := ParseMatchgen(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestParseStraceSummary reads a real `strace -c -f` table of the ATT&CK
// ingest (rows with and without an errors column).
func TestParseStraceSummary(t *testing.T) {
	c, err := ParseStraceSummary(readTestdata(t, "parse/strace.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for sc, want := range map[string]int64{"pwrite64": 53002, "pread64": 18301, "madvise": 2528, "fsync": 9, "futex": 3385, "nanosleep": 5482} {
		if c[sc] != want {
			t.Errorf("%s: %d calls, want %d", sc, c[sc], want)
		}
	}
	if _, ok := c["total"]; ok {
		t.Error("the total row was taken as a system call")
	}
	if _, err := ParseStraceSummary([]byte("stored 10 objects\n")); err == nil {
		t.Error("a file without the table was accepted")
	}
}

// TestBaselinesShared reads the real ../shared/bench/BASELINES.md and finds
// the figures the workloads quote.
func TestBaselinesShared(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "bench", "BASELINES.md")
	if d := os.Getenv("ENTENTE_SHARED_DATA"); d != "" {
		path = filepath.Join(filepath.Dir(filepath.Clean(d)), "bench", "BASELINES.md")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("shared baselines not available (%v): check out shared/ beside the repository or set ENTENTE_SHARED_DATA", err)
	}
	b, err := ParseBaselines("BASELINES.md", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ref  BaselineRef
		want float64
	}{
		{"medallion POST", medallion("POST, objects/s (until status complete)", 0, 1), 612},
		{"medallion first page", medallion("full paged read, objects/s", 1, 1000), 495_000},
		{"medallion object p99", medallion("object GET, 8 clients: p50 / p99", 1, 1), 7262},
		{"grep -F -w conn", BaselineRef{Where: map[string]string{"tool": "`grep -F -w -f`", "log": "conn"}, Col: "lines/s"}, 80077},
		{"Python conn", BaselineRef{Where: map[string]string{"tool": "Python set of values, fields split by tab", "log": "conn"}, Col: "lines/s"}, 866551},
		{"rg conn", BaselineRef{Where: map[string]string{"tool": "`rg -F -f`", "log": "conn"}, Col: "lines/s"}, 82974},
	} {
		p, ok := b.Peer(tc.name, tc.ref)
		if !ok || p.Value != tc.want || !p.Recorded || !strings.HasPrefix(p.Source, "BASELINES.md:") {
			t.Errorf("%s: %+v, %v; want %v", tc.name, p, ok, tc.want)
		}
	}
	// "gave no answer" holds no number.
	if p, ok := b.Peer("rg -w", BaselineRef{Where: map[string]string{"tool": "`rg -F -w -f`", "log": "conn"}, Col: "lines/s"}); ok {
		t.Errorf("a cell without a number gave %+v", p)
	}
}

// TestParseBaselines covers the table shapes: sections, escaped and
// backquoted pipes, a table without separator (not a table), rows shorter
// than the header, and a cell with several numbers.
func TestParseBaselines(t *testing.T) {
	b, err := ParseBaselines("t.md", readTestdata(t, "parse/baselines.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Tables) != 2 {
		t.Fatalf("%d tables, want 2: %+v", len(b.Tables), b.Tables)
	}
	if b.Tables[0].Section != "First" || b.Tables[1].Section != "Second section" || b.Tables[0].Line != 5 {
		t.Errorf("sections and lines: %+v", b.Tables)
	}
	cell, _, ok := b.Cell(map[string]string{"tool": "`a | b`", "log": "conn"}, "rate")
	if !ok || cell != "1,234.5 lines/s" {
		t.Errorf("backquoted pipe: %q %v", cell, ok)
	}
	cell, _, ok = b.Cell(map[string]string{"tool": "x|y"}, "rate")
	if !ok || cell != "7" {
		t.Errorf("escaped pipe: %q %v", cell, ok)
	}
	if _, _, ok := b.Cell(map[string]string{"tool": "short"}, "rate"); ok {
		t.Error("a short row gave a cell it does not have")
	}
	if got := Numbers("2,254 / 3,363 ms (first 4.3 s)"); len(got) != 3 || got[0] != 2254 || got[1] != 3363 || got[2] != 4.3 {
		t.Errorf("Numbers: %v", got)
	}
	p, ok := b.Peer("x", BaselineRef{Where: map[string]string{"measure": "latency p50 / p99"}, Col: "value", Index: 1, Scale: 2})
	if !ok || p.Value != 22 {
		t.Errorf("second number scaled: %+v %v", p, ok)
	}
	if _, ok := b.Peer("x", BaselineRef{Where: map[string]string{"measure": "latency p50 / p99"}, Col: "value", Index: 2}); ok {
		t.Error("a number past the cell's last was found")
	}
	if _, ok := (*Baselines)(nil).Peer("x", BaselineRef{}); ok {
		t.Error("no baselines gave a peer")
	}
}

func TestStatCPU(t *testing.T) {
	line := []byte("4242 (entente serve) S 1 4242 4242 0 -1 4194560 30000 0 0 0 1234 567 0 0 20 0 9 0 100 1000000 5000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n")
	d, err := statCPU(line)
	if err != nil || d != (1234+567)*10*time.Millisecond {
		t.Errorf("statCPU = %v, %v", d, err)
	}
	for _, bad := range []string{"", "4242 (x", "4242 (x) S 1 2", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 a b"} {
		if _, err := statCPU([]byte(bad)); err == nil {
			t.Errorf("statCPU(%q) accepted", bad)
		}
	}
}

func TestMachineParsing(t *testing.T) {
	if got := cpuModel([]byte("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n")); got != "Intel(R) Xeon(R) Processor" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := cpuModel([]byte("processor : 0\n")); got != "unknown" {
		t.Errorf("cpuModel without model = %q", got)
	}
	if got := memTotalGiB([]byte("MemTotal:       25165824 kB\nMemFree: 1 kB\n")); got != 24 {
		t.Errorf("memTotalGiB = %v", got)
	}
}

func TestSelect(t *testing.T) {
	ws := []Workload{{Name: "a"}, {Name: "slow", FullOnly: true}, {Name: "b"}}
	for _, tc := range []struct {
		only, skip []string
		mode       Mode
		want       string
	}{
		{nil, nil, Quick, "a, b"},
		{nil, nil, Full, "a, slow, b"},
		{[]string{"slow"}, nil, Quick, "slow"},
		{nil, []string{"a"}, Full, "slow, b"},
		{[]string{"a", "b"}, []string{"b"}, Quick, "a"},
	} {
		got, err := Select(ws, tc.only, tc.skip, tc.mode)
		if err != nil || names(got) != tc.want {
			t.Errorf("Select(%v, %v, %v) = %q, %v; want %q", tc.only, tc.skip, tc.mode, names(got), err, tc.want)
		}
	}
	if _, err := Select(ws, []string{"c"}, nil, Quick); err == nil || !strings.Contains(err.Error(), `unknown workload "c" (known: a, slow, b)`) {
		t.Errorf("unknown workload: %v", err)
	}
}

// TestRun runs fake workloads: figures are printed and written as JSON
// lines, samples numbered, a failing workload does not stop the run but
// fails it, and a workload past its bound is stopped and reported.
func TestRun(t *testing.T) {
	ws := []Workload{
		{Name: "one", About: "two samples", Quick: time.Minute, Run: func(ctx context.Context, e *Env) error {
			e.Emit(Figure{Name: "one.rate", Value: 60000, Unit: "objects/s", Better: Higher, Goal: AtLeast(50000), Peers: []Peer{{Name: "peer", Value: 600}}})
			e.Emit(Figure{Name: "one.rate", Value: 40000, Unit: "objects/s", Better: Higher, Goal: AtLeast(50000), Peers: []Peer{{Name: "peer", Value: 600}}})
			e.Emit(Figure{Name: "one.nan", Value: nan, Unit: "s"})
			return nil
		}},
		{Name: "broken", About: "fails", Quick: time.Minute, Run: func(ctx context.Context, e *Env) error {
			e.Emit(Figure{Name: "broken.partial", Value: 1, Unit: "s", Better: Lower})
			return errors.New("peer crashed")
		}},
		{Name: "stuck", About: "never ends by itself", Quick: 50 * time.Millisecond, Run: func(ctx context.Context, e *Env) error {
			<-ctx.Done()
			return ctx.Err()
		}},
	}
	var out, log, js bytes.Buffer
	err := Run(context.Background(), Options{Mode: Quick, Work: t.TempDir(), Repo: t.TempDir(), Out: &out, Log: &log, JSON: &js}, ws)
	if err == nil || err.Error() != "workloads failed: broken, stuck" {
		t.Fatalf("Run error %v", err)
	}
	recs, rerr := ReadRecords("json", &js)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3 (the NaN left out): %+v", len(recs), recs)
	}
	if recs[0].Sample != 1 || recs[1].Sample != 2 || recs[0].Workload != "one" || recs[0].Mode != "quick" || recs[0].Machine.Cores < 1 || recs[2].Name != "broken.partial" {
		t.Errorf("records: %+v", recs)
	}
	o := out.String()
	for _, want := range []string{
		"one.rate", "50k objects/s (median of 2, 40k–60k)", "≥ 50k met", "peer 600", "83.3×",
		"FAILED: peer crashed", "FAILED: did not finish within 50ms",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("table lacks %q:\n%s", want, o)
		}
	}
	if !strings.Contains(log.String(), "figure one.nan: not a finite number") {
		t.Errorf("log lacks the NaN figure:\n%s", log.String())
	}
}

// TestCommandLineRedactsKeys: a failed command's line, which goes into
// error messages, never carries the API key.
func TestCommandLineRedactsKeys(t *testing.T) {
	got := commandLine([]string{"taxiiload", "-url", "http://127.0.0.1:1", "-pass", "s3cret", "--token=s3cret", "-seed", "1", "post"})
	if strings.Contains(got, "s3cret") || got != "taxiiload -url http://127.0.0.1:1 -pass REDACTED --token=REDACTED -seed 1 post" {
		t.Errorf("commandLine = %q", got)
	}
}

// TestParseDevicegen reads a real `devicegen -bench` output (a tiny
// workload: 50 devices, 100,000 lines).
func TestParseDevicegen(t *testing.T) {
	rep, err := ParseDevicegen(bytes.NewReader(readTestdata(t, "parse/devicegen.txt")))
	if err != nil {
		t.Fatal(err)
	}
	want := DevicegenReport{MatchLines: 98201, MatchRate: 3143211, Lines: 98201, Seconds: 0.31, Rate: 312626, RatePerCPU: 264681, Procs: 2,
		Devices: 50, Pairs: 1600, HeapMiB: 16, HeapPerPair: 10791, EstimatePerPair: 373, BeaconsFound: 5, BeaconsPlanted: 5, Decoys: 5,
		ProfileFileMiB: 0.2, ProfileBytesPerPair: 161}
	if *rep != want {
		t.Errorf("got %+v\nwant %+v", *rep, want)
	}
	if _, err := ParseDevicegen(bytes.NewReader([]byte("match: 1 lines in 1 s = 1 lines/s\n"))); err == nil || !strings.Contains(err.Error(), "no watch rate") {
		t.Errorf("output without the watch's lines: %v", err)
	}
}
