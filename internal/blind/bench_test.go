package blind

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/testutil"
)

// envInt reads a benchmark size from the environment.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkEvaluate measures the server's batched evaluation (decode,
// checks, budget, replay guard, scalar multiplication, encode) in batches
// of 256, 32 batches (8,192 elements) per operation, after one untimed
// operation: the bench tool runs it once (-benchtime 1x), and one batch
// alone measured the first, cold one. Run with -cpu 1 for the figure per
// core.
func BenchmarkEvaluate(b *testing.B) {
	s := newTestServer(b)
	const batch, batches = 256, 32
	var reqs []*EvalRequest
	now := time.Now()
	for range batches {
		reqs = append(reqs, &EvalRequest{Epoch: s.epochs.At(now), Elements: validElements(b, batch)})
	}
	budget := Budget{Limit: 1 << 40, Period: time.Hour}
	ctx := context.Background()
	// A batch may be evaluated once per partner: a new partner name for
	// every operation.
	op := func(partner string) {
		for _, r := range reqs {
			if _, err := s.Evaluate(ctx, partner, budget, r); err != nil {
				b.Fatal(err)
			}
		}
	}
	op("warm-up")
	i := 0
	for b.Loop() {
		op("p" + strconv.Itoa(i))
		i++
	}
	b.ReportMetric(float64(batch*batches*b.N)/b.Elapsed().Seconds(), "evals/s")
}

// benchIndicators returns n indicators: 80% IPv4 addresses, 14% domains,
// 5% SHA-256 hashes, 1% IPv4 networks from /16 to /24.
func benchIndicators(n int) []Indicator {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]Indicator, n)
	for i := range out {
		var it Indicator
		switch x := i % 100; {
		case x < 80:
			v := r.Uint32()
			it = Indicator{Kind: observable.IPv4, Value: netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()}
		case x < 94:
			it = Indicator{Kind: observable.Domain, Value: fmt.Sprintf("d%x.example%d.com", r.Uint64(), i%7)}
		case x < 99:
			var h [32]byte
			binary.LittleEndian.PutUint64(h[:], r.Uint64())
			binary.LittleEndian.PutUint64(h[8:], uint64(i))
			it = Indicator{Kind: observable.SHA256, Value: hex.EncodeToString(h[:])}
		default:
			v := r.Uint32()
			p, _ := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).Prefix(16 + r.IntN(9))
			it = Indicator{Kind: observable.CIDR4, Value: p.String()}
		}
		it.Ref = uint32(i)
		out[i] = it
	}
	return out
}

// BenchmarkBuild builds a partner's set of ENTENTE_BLIND_BENCH_INDICATORS
// indicators (default 100,000; the figure is for 1,000,000) on
// every core, and reports its size.
func BenchmarkBuild(b *testing.B) {
	n := envInt("ENTENTE_BLIND_BENCH_INDICATORS", 100_000)
	items := benchIndicators(n)
	var s *Set
	for b.Loop() {
		bl := testBuilder(b, "p", 1)
		if probs := bl.Add(items); len(probs) != 0 {
			b.Fatal(probs[0])
		}
		var err error
		if s, err = bl.Set(); err != nil {
			b.Fatal(err)
		}
	}
	data, _ := s.MarshalBinary()
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "indicators/s")
	b.ReportMetric(float64(s.Len()), "inputs")
	b.ReportMetric(float64(len(data))/(1<<20), "set-MiB")
}

// BenchmarkUpdate measures keeping a set of ENTENTE_BLIND_BENCH_INDICATORS
// up to date: 1,000 indicators added and 1,000 removed, then the set
// rebuilt (only the shards that changed).
func BenchmarkUpdate(b *testing.B) {
	n := envInt("ENTENTE_BLIND_BENCH_INDICATORS", 100_000)
	items := benchIndicators(n + 1000)
	bl := testBuilder(b, "p", 1)
	bl.Add(items[:n])
	bl.Set()
	in, out := items[n:], items[:1000]
	for b.Loop() {
		bl.Add(in)
		bl.Remove(out)
		if _, err := bl.Set(); err != nil {
			b.Fatal(err)
		}
		in, out = out, in
	}
}

// connLog returns the path, size and line count of the conn.log to
// match: $ENTENTE_BLIND_BENCH_CONN (a matchgen conn.log, e.g. of 10M
// lines), or a file of lines built from the real shared conn.log with
// random addresses (ENTENTE_BLIND_BENCH_LINES, default 1,000,000), one
// in a thousand an indicator address, written to a temporary directory.
func connLog(b *testing.B, ips []string) (string, int64, int) {
	if p := os.Getenv("ENTENTE_BLIND_BENCH_CONN"); p != "" {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		var size int64
		lines := 0
		buf := make([]byte, 1<<20)
		for {
			n, err := f.Read(buf)
			size += int64(n)
			lines += bytes.Count(buf[:n], []byte{'\n'})
			if err != nil {
				break
			}
		}
		return p, size, lines
	}
	n := envInt("ENTENTE_BLIND_BENCH_LINES", 1_000_000)
	data, err := os.ReadFile(filepath.Join(testutil.SharedData(b, "logs", "zeek", "slips-test10-mixed"), "conn.log"))
	if err != nil {
		b.Fatal(err)
	}
	var header []string
	var rows [][]string
	cols := map[int]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if t := strings.TrimLeft(l, " \t"); strings.HasPrefix(t, "#") {
			l = t
			if strings.HasPrefix(l, "#fields\t") {
				for i, f := range strings.Split(l, "\t")[1:] {
					if f == "id.orig_h" || f == "id.resp_h" {
						cols[i] = true
					}
				}
			}
			if len(rows) == 0 && !strings.HasPrefix(l, "#close") {
				header = append(header, l)
			}
			continue
		}
		if l != "" {
			rows = append(rows, strings.Split(l, "\t"))
		}
	}
	path := filepath.Join(b.TempDir(), "conn.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(3, 4))
	for _, h := range header {
		w.WriteString(h + "\n")
	}
	lines := len(header)
	for range n {
		row := append([]string(nil), rows[r.IntN(len(rows))]...)
		for c := range cols {
			v := r.Uint32()
			row[c] = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
			if r.IntN(1000) == 0 {
				row[c] = ips[r.IntN(len(ips))]
			}
		}
		w.WriteString(strings.Join(row, "\t") + "\n")
		lines++
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil || f.Close() != nil {
		b.Fatal(err)
	}
	return path, st.Size(), lines
}

// BenchmarkMatchTranslated compares matching a conn.log against 1,000,000
// indicators in the clear (plain) with matching it once translated
// (blind): against the snapshot of the hits the translation found. The
// translation of every distinct value of a large random log would take
// hours of scalar multiplications, so the benchmark sets the translated
// state directly from plain membership of the log's inputs in the
// indicators' inputs; TestZeekPlanted checks that a real translation finds
// exactly those hits. The collect sub-benchmark is the pass that finds the
// distinct inputs of a log.
func BenchmarkMatchTranslated(b *testing.B) {
	items := benchIndicators(envInt("ENTENTE_BLIND_BENCH_INDICATORS", 1_000_000))
	var ips []string
	plainB := match.NewBuilder()
	all := map[string]Ref{}
	p := DefaultParams()
	var buf []string
	for _, it := range items {
		r, _ := plainB.Indicator(fmt.Sprintf("indicator--%d", it.Ref))
		if err := plainB.Add(it.Kind, it.Value, r); err != nil {
			b.Fatal(err)
		}
		if it.Kind == observable.IPv4 {
			ips = append(ips, it.Value)
		}
		buf, _ = p.Expand(it.Kind, it.Value, buf[:0])
		for _, in := range buf {
			all[in] = Ref{Epoch: 1, Key: uint64(it.Ref)}
		}
	}
	plain := plainB.Snapshot()
	logPath, logSize, lines := connLog(b, ips)
	logs := []sensor.Input{{Name: "conn.log", Open: func() (io.ReadCloser, error) { return os.Open(logPath) }}}
	ctx := context.Background()
	inputs, _, err := Collect(ctx, p, logs, sensor.Options{})
	if err != nil {
		b.Fatal(err)
	}
	tr := &Translator{info: &EpochInfo{Epoch: 1, Params: p}, cache: map[string]uint64{}, hits: map[string]uint64{}}
	for _, in := range inputs {
		r, ok := all[in]
		tr.cache[in] = r.Key
		if ok {
			tr.hits[in] = r.Key
		}
	}
	snap, err := tr.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, s *match.Snapshot) {
		b.SetBytes(logSize)
		var hits int64
		for b.Loop() {
			res, err := match.Run(ctx, match.Options{Snapshot: s, Logs: logs, Hits: io.Discard})
			if err != nil || res.Hits == 0 {
				b.Fatalf("run: %v, %d hits", err, res.Hits)
			}
			hits = res.Hits
		}
		b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
		b.ReportMetric(float64(hits), "hits")
	}
	b.Run("plain", func(b *testing.B) { run(b, plain) })
	b.Run("blind", func(b *testing.B) { run(b, snap) })
	// ratio alternates the two, so that both see the same load, and
	// reports the blind rate in percent of the plain one (the goal: 50).
	b.Run("ratio", func(b *testing.B) {
		var tp, tb time.Duration
		for b.Loop() {
			for _, s := range []*match.Snapshot{plain, snap} {
				start := time.Now()
				if _, err := match.Run(ctx, match.Options{Snapshot: s, Logs: logs, Hits: io.Discard}); err != nil {
					b.Fatal(err)
				}
				if s == plain {
					tp += time.Since(start)
				} else {
					tb += time.Since(start)
				}
			}
		}
		b.ReportMetric(100*tp.Seconds()/tb.Seconds(), "blind-%-of-plain")
	})
	b.Run("collect", func(b *testing.B) {
		b.SetBytes(logSize)
		for b.Loop() {
			if _, _, err := Collect(ctx, p, logs, sensor.Options{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
	})
}
