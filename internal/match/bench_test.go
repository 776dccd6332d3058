package match

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/testutil"
)

func randIP(r *rand.Rand) string {
	x := r.Uint32()
	return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}).String()
}

// benchSnapshot builds n values: 80% IPv4, 15% domains, 5% SHA-256.
func benchSnapshot(b *testing.B, n int) (*Snapshot, []string, []string) {
	r := rand.New(rand.NewPCG(1, 2))
	bl := NewBuilder()
	var ips, doms []string
	for i := 0; i < n; i++ {
		switch {
		case i%20 < 16:
			ip := randIP(r)
			ips = append(ips, ip)
			bl.Add(observable.IPv4, ip, DerivedRef)
		case i%20 < 19:
			d := fmt.Sprintf("d%x.example%d.com", r.Uint64(), i%7)
			doms = append(doms, d)
			bl.Add(observable.Domain, d, DerivedRef)
		default:
			var h [32]byte
			binary.LittleEndian.PutUint64(h[:], r.Uint64())
			bl.Add(observable.SHA256, hex.EncodeToString(h[:]), DerivedRef)
		}
	}
	return bl.Snapshot(), ips, doms
}

// templateLog builds n lines from the data lines of a real log, replacing
// the values in columns (Zeek TSV) by random ones, one in a thousand by an
// indicator value.
func zeekLog(b *testing.B, path string, n int, cols []string, values []string, random func(*rand.Rand) string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var header []string
	var rows [][]string
	idx := map[int]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if t := strings.TrimLeft(l, " \t"); strings.HasPrefix(t, "#") {
			if strings.HasPrefix(t, "#fields\t") {
				for i, f := range strings.Split(t, "\t")[1:] {
					for _, c := range cols {
						if f == c {
							idx[i] = true
						}
					}
				}
			}
			if len(rows) == 0 && !strings.HasPrefix(t, "#close") {
				header = append(header, t)
			}
			continue
		}
		if l != "" {
			rows = append(rows, strings.Split(l, "\t"))
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	var buf bytes.Buffer
	for _, h := range header {
		buf.WriteString(h + "\n")
	}
	for i := 0; i < n; i++ {
		row := append([]string(nil), rows[r.IntN(len(rows))]...)
		for c := range idx {
			row[c] = random(r)
			if r.IntN(1000) == 0 {
				row[c] = values[r.IntN(len(values))]
			}
		}
		buf.WriteString(strings.Join(row, "\t") + "\n")
	}
	return buf.Bytes()
}

func runBench(b *testing.B, s *Snapshot, name string, log []byte) {
	lines := bytes.Count(log, []byte{'\n'})
	b.SetBytes(int64(len(log)))
	b.ResetTimer()
	for b.Loop() {
		res, err := Run(context.Background(), Options{Snapshot: s, Hits: io.Discard,
			Logs: []sensor.Input{{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(log)), nil }}}})
		if err != nil || res.Stats.Bad != 0 || res.Hits == 0 {
			b.Fatalf("run: %v, bad %d, hits %d", err, res.Stats.Bad, res.Hits)
		}
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkZeekConn matches a 1,000,000-line Zeek conn.log (real lines,
// random addresses) against 1,000,000 indicators on every core.
func BenchmarkZeekConn(b *testing.B) {
	s, ips, _ := benchSnapshot(b, 1_000_000)
	dir := testutil.SharedData(b, "logs", "zeek")
	log := zeekLog(b, filepath.Join(dir, "slips-test10-mixed", "conn.log"), 1_000_000, []string{"id.orig_h", "id.resp_h"}, ips, randIP)
	runBench(b, s, "conn.log", log)
}

// BenchmarkEVE matches a 500,000-line Suricata EVE log (the real lines of
// the shared capture, repeated with random addresses) on every core.
func BenchmarkEVE(b *testing.B) {
	s, ips, _ := benchSnapshot(b, 1_000_000)
	dir := testutil.SharedData(b, "logs", "suricata")
	f, err := os.Open(filepath.Join(dir, "slips-test6-malicious", "eve.json.gz"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var raw bytes.Buffer
	if _, err := sensorGunzip(&raw, f); err != nil {
		b.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(raw.String()), "\n")
	r := rand.New(rand.NewPCG(5, 6))
	var buf bytes.Buffer
	for i := 0; i < 500_000; i++ {
		row := rows[r.IntN(len(rows))]
		ip := randIP(r)
		if r.IntN(1000) == 0 {
			ip = ips[r.IntN(len(ips))]
		}
		// Replace the source address, keeping the line valid.
		if j := strings.Index(row, `"src_ip":"`); j >= 0 {
			k := strings.IndexByte(row[j+10:], '"')
			row = row[:j+10] + ip + row[j+10+k:]
		}
		buf.WriteString(row + "\n")
	}
	runBench(b, s, "eve.json", buf.Bytes())
}

// BenchmarkBuild1M builds a snapshot of 1,000,000 values.
func BenchmarkBuild1M(b *testing.B) {
	for b.Loop() {
		benchSnapshot(b, 1_000_000)
	}
	b.ReportMetric(1e6*float64(b.N)/b.Elapsed().Seconds(), "values/s")
}

func sensorGunzip(w io.Writer, r io.Reader) (int64, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return 0, err
	}
	return io.Copy(w, zr)
}

// benchPatterns returns n patterns the snapshot cannot hold, each
// anchored on one of ips (an address and a port range), and, when open
// is set, one more without an anchor (a port and a protocol), which is
// evaluated on every record.
func benchPatterns(b *testing.B, ips []string, n int, open bool) *PatternSet {
	var pats []string
	for i := 0; i < n; i++ {
		pats = append(pats, fmt.Sprintf("[network-traffic:dst_ref.value = '%s' AND network-traffic:dst_port < 65536]", ips[i*7%len(ips)]))
	}
	if open {
		pats = append(pats, "[network-traffic:dst_port = 4444 AND network-traffic:protocols[*] = 'tcp']")
	}
	bl := NewBuilder()
	ps := NewPatternSet()
	bl.CollectPatterns(ps)
	if st, err := LoadFile(bl, "patterns.json", bytes.NewReader(indicatorBundle(pats)), time.Now()); err != nil || st.Evaluated != len(pats) {
		b.Fatalf("load patterns: %v, %+v", err, st)
	}
	return ps
}

// BenchmarkZeekConnPatterns is BenchmarkZeekConn with 1,000 anchored
// patterns for the evaluator besides the snapshot.
func BenchmarkZeekConnPatterns(b *testing.B) {
	s, ips, _ := benchSnapshot(b, 1_000_000)
	ps := benchPatterns(b, ips, 1000, false)
	dir := testutil.SharedData(b, "logs", "zeek")
	log := zeekLog(b, filepath.Join(dir, "slips-test10-mixed", "conn.log"), 1_000_000, []string{"id.orig_h", "id.resp_h"}, ips, randIP)
	runBenchPatterns(b, s, ps, "conn.log", log)
}

// BenchmarkEvaluateOpen measures a pattern without an anchor: every
// record of a 100,000-line conn.log is decoded and evaluated.
func BenchmarkEvaluateOpen(b *testing.B) {
	s, ips, _ := benchSnapshot(b, 100_000)
	ps := benchPatterns(b, ips, 0, true)
	dir := testutil.SharedData(b, "logs", "zeek")
	log := zeekLog(b, filepath.Join(dir, "slips-test10-mixed", "conn.log"), 100_000, []string{"id.orig_h", "id.resp_h"}, ips, randIP)
	runBenchPatterns(b, s, ps, "conn.log", log)
}

func runBenchPatterns(b *testing.B, s *Snapshot, ps *PatternSet, name string, log []byte) {
	lines := bytes.Count(log, []byte{'\n'})
	b.SetBytes(int64(len(log)))
	b.ResetTimer()
	for b.Loop() {
		res, err := Run(context.Background(), Options{Snapshot: s, Patterns: ps, Hits: io.Discard,
			Logs: []sensor.Input{{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(log)), nil }}}})
		if err != nil || res.Stats.Bad != 0 || res.Hits == 0 || res.EvalErrors != 0 {
			b.Fatalf("run: %v, bad %d, hits %d, evaluation errors %d", err, res.Stats.Bad, res.Hits, res.EvalErrors)
		}
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
