// Command devicegen generates the device watch's benchmark workload and
// runs it beside the log matcher.
//
// Generate: a day of a network of N devices as one Zeek conn.log, whose
// connections replay the real ones of ../shared/data/logs (the Slips
// captures) as templates, with planted beacons and decoys; truth.tsv
// lists the planted streams, devices.toml the constituency, and
// indicators.txt real blocklist addresses (ipsum, FireHOL) and some
// planted destinations, for `entente match` on the same log.
//
//	go run ./tools/devicegen -out DIR -devices 10000 -lines 50000000
//
// Bench: match the log (indicators.txt), then watch it (profiles and
// detections, with sweeps), each timed in wall and CPU seconds, with the
// heap the profiles take, per device–destination pair, and the recall of
// the planted beacons.
//
//	go run ./tools/devicegen -bench DIR
package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/entente-cti/entente/internal/devices"
	"github.com/entente-cti/entente/internal/devicesim"
	"github.com/entente-cti/entente/internal/devicewatch"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/sensor"
)

func main() {
	var (
		out      = flag.String("out", "", "directory to write the workload to")
		bench    = flag.String("bench", "", "directory of a generated workload to benchmark")
		nDev     = flag.Int("devices", 10_000, "devices")
		lines    = flag.Int("lines", 50_000_000, "connections over the day (about)")
		dests    = flag.Int("destinations", 120, "background destinations per device")
		beacons  = flag.Int("beacons", 2000, "planted beacons")
		decoys   = flag.Int("decoys", 2000, "planted decoys (random times, constant size)")
		seed     = flag.Uint64("seed", 1, "random seed")
		data     = flag.String("data", "../shared/data", "the shared real data directory")
		workers  = flag.Int("workers", 0, "workers for -bench (default every core)")
		noMatch  = flag.Bool("no-match", false, "for -bench: do not run the matcher")
		cpuprof  = flag.String("cpuprofile", "", "for -bench: write a CPU profile of the watch to this file")
		topK     = flag.Int("top", 0, "for -bench: top destinations per device (default the watch's)")
		sweepHrs = flag.Float64("sweep-hours", 6, "for -bench: log hours between sweeps")
		noGeo    = flag.Bool("no-geo", false, "for -bench: watch without geolocation data")
		digest   = flag.Bool("digest", false, "for -bench: print SHA-256 digests of the saved profiles and of the findings (to compare builds)")
	)
	flag.Parse()
	var err error
	switch {
	case *out != "":
		err = generate(*out, *data, *nDev, *lines, *dests, *beacons, *decoys, *seed)
	case *bench != "":
		var loc geo.Locator
		if !*noGeo {
			g := filepath.Join(*data, "geo")
			if loc, err = geo.LoadFiles(filepath.Join(g, "geo-whois-asn-country-ipv4.csv.gz"), filepath.Join(g, "geo-whois-asn-country-ipv6.csv.gz")); err != nil {
				break
			}
		}
		err = runBench(*bench, *workers, !*noMatch, *cpuprof, *topK, time.Duration(*sweepHrs*float64(time.Hour)), loc, *digest)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devicegen:", err)
		os.Exit(1)
	}
}

var network = netip.MustParsePrefix("10.64.0.0/14")

func generate(dir, data string, nDev, lines, dests, nBeacons, nDecoys int, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logs := filepath.Join(data, "logs")
	tp, err := devicesim.LoadTemplates(filepath.Join(logs, "zeek", "slips-test10-mixed", "conn.log"),
		filepath.Join(logs, "zeek", "slips-test9-mixed", "conn.log"), filepath.Join(logs, "suricata", "slips-test6-malicious", "eve.json.gz"))
	if err != nil {
		return err
	}
	tp = slices.DeleteFunc(tp, func(t devicesim.Template) bool { return network.Contains(t.Dst) })
	r := rand.New(rand.NewPCG(seed, 99))
	var bs []devicesim.Beacon
	for i := 0; i < nBeacons; i++ {
		periods := []time.Duration{30 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour}
		bs = append(bs, devicesim.Beacon{Period: periods[r.IntN(len(periods))], Jitter: []float64{0, 0.1, 0.2}[r.IntN(3)],
			Missed: []float64{0, 0.1}[r.IntN(2)], SrcBytes: uint64(100 + r.IntN(2000)), SizeNoise: 0.02 * float64(r.IntN(3))})
	}
	// Planted connections come on top of the background: leave room.
	planted := 0
	for _, b := range bs {
		planted += int(24 * time.Hour / b.Period)
	}
	planted += nDecoys * 24 * 60 / 15
	perDev := max((lines-planted)/nDev, 10)
	cfg := devicesim.Config{Seed: seed, Devices: nDev, Network: network, Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Span: 24 * time.Hour, FlowsPerDevice: perDev, DestinationsPerDevice: dests, Beacons: bs, Decoys: nDecoys}
	f, err := os.Create(filepath.Join(dir, "conn.log"))
	if err != nil {
		return err
	}
	t0 := time.Now()
	truths, st, err := devicesim.Generate(cfg, tp, f)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "conn.log: %d lines (%d background, %d planted) in %v\n", st.Lines, st.Background, st.Planted, time.Since(t0).Round(time.Second))
	tw, err := os.Create(filepath.Join(dir, "truth.tsv"))
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(tw)
	for _, t := range truths {
		fmt.Fprintf(bw, "%s\t%s\t%d\t%d\t%s\t%s\t%.2f\t%.2f\t%d\n", t.Device, t.Dst, t.Port, t.Proto, t.Kind, t.Beacon.Period, t.Beacon.Jitter, t.Beacon.Missed, t.Connections)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	tw.Close()
	if err := os.WriteFile(filepath.Join(dir, "devices.toml"), []byte(fmt.Sprintf("constituency = [%q]\n", network)), 0o644); err != nil {
		return err
	}
	return writeIndicators(dir, data, truths)
}

// writeIndicators writes real blocklist addresses and one planted
// destination in ten, so that the matcher has hits on the log.
func writeIndicators(dir, data string, truths []devicesim.Truth) error {
	f, err := os.Create(filepath.Join(dir, "indicators.txt"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	n := 0
	for _, name := range []string{"ipsum/ipsum.txt.gz", "firehol-2021-01-18/firehol_level2.netset", "firehol-2021-01-18/blocklist_de.ipset"} {
		rf, err := os.Open(filepath.Join(data, "blocklists", name))
		if err != nil {
			return err
		}
		var r io.Reader = rf
		if strings.HasSuffix(name, ".gz") {
			if r, err = gzip.NewReader(rf); err != nil {
				return err
			}
		}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if l == "" || l[0] == '#' {
				continue
			}
			v := strings.Fields(l)[0]
			if _, err := netip.ParseAddr(v); err == nil {
				w.WriteString(v + "\n")
				n++
			} else if _, err := netip.ParsePrefix(v); err == nil {
				w.WriteString(v + "\n")
				n++
			}
		}
		rf.Close()
	}
	for i, t := range truths {
		if i%10 == 0 {
			w.WriteString(t.Dst.String() + "\n")
			n++
		}
	}
	fmt.Fprintf(os.Stderr, "indicators.txt: %d values\n", n)
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// idleSeconds is the runtime's estimate of the time its Ps were idle.
func idleSeconds() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/idle:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return s[0].Value.Float64()
}

func warm(path string) {
	if f, err := os.Open(path); err == nil {
		io.Copy(io.Discard, f)
		f.Close()
	}
}

func runBench(dir string, workers int, withMatch bool, cpuprof string, topK int, sweep time.Duration, loc geo.Locator, digest bool) error {
	path := filepath.Join(dir, "conn.log")
	input := []sensor.Input{{Name: path, Open: func() (io.ReadCloser, error) { return os.Open(path) }}}
	if withMatch {
		warm(path)
		b := match.NewBuilder()
		f, err := os.Open(filepath.Join(dir, "indicators.txt"))
		if err != nil {
			return err
		}
		if _, err := match.LoadFile(b, "indicators.txt", f, time.Now()); err != nil {
			return err
		}
		f.Close()
		snap := b.Snapshot()
		c0, t0 := cpuSeconds(), time.Now()
		res, err := match.Run(context.Background(), match.Options{Snapshot: snap, Logs: input, Scan: sensor.Options{Workers: workers}})
		if err != nil {
			return err
		}
		el, cpu := time.Since(t0), cpuSeconds()-c0
		fmt.Printf("match: %d lines in %.2f s = %.0f lines/s (%.2f CPU s, %.0f lines per CPU s), %d hits, %d indicators\n",
			res.Stats.Lines, el.Seconds(), float64(res.Stats.Lines)/el.Seconds(), cpu, float64(res.Stats.Lines)/cpu, res.Hits, snap.Len())
		snap = nil
	}
	cfgData, err := os.ReadFile(filepath.Join(dir, "devices.toml"))
	if err != nil {
		return err
	}
	cfg, err := devices.ParseConfig(cfgData, "devices.toml")
	if err != nil {
		return err
	}
	if topK > 0 {
		cfg.TopDestinations = topK
	}
	runtime.GC()
	debug.FreeOSMemory()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	w, err := devices.New(*cfg, loc, []byte("devicegen benchmark key 32 bytes"))
	if err != nil {
		return err
	}
	warm(path)
	if cpuprof != "" {
		pf, err := os.Create(cpuprof)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(pf)
		defer pprof.StopCPUProfile()
	}
	i0 := idleSeconds()
	c0, t0 := cpuSeconds(), time.Now()
	st, err := devicewatch.Run(context.Background(), devicewatch.Options{Watcher: w, Logs: input, Scan: sensor.Options{Workers: workers}, SweepEvery: sweep})
	if err != nil {
		return err
	}
	el, cpu := time.Since(t0), cpuSeconds()-c0
	idle := idleSeconds() - i0
	findings := w.Findings()
	ws := w.Stats()
	runtime.GC()
	runtime.GC() // the pools' victim caches go at the second
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	heap := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	fmt.Printf("watch: %d lines in %.2f s = %.0f lines/s (%.2f CPU s, %.0f lines per CPU s), GOMAXPROCS %d\n",
		st.Lines, el.Seconds(), float64(st.Lines)/el.Seconds(), cpu, float64(st.Lines)/cpu, runtime.GOMAXPROCS(0))
	// The time the Go scheduler had a P with nothing to run: the stages
	// waiting on each other, whatever else the machine runs (a thread the
	// kernel puts off still counts as busy here).
	fmt.Printf("watch: scheduler idle %.2f of %.2f P-seconds (%.1f %%)\n", idle, el.Seconds()*float64(runtime.GOMAXPROCS(0)),
		100*idle/(el.Seconds()*float64(runtime.GOMAXPROCS(0))))
	fmt.Printf("watch: %d devices, %d device–destination pairs, heap %.0f MiB = %.0f bytes per pair (estimate %.0f), %d evictions\n",
		ws.Devices, ws.Destinations, float64(heap)/(1<<20), float64(heap)/float64(ws.Destinations),
		float64(w.MemoryBytes())/float64(ws.Destinations), ws.Evictions)
	saved := w.Save()
	fmt.Printf("watch: profile file %.1f MiB (%.0f bytes per pair)\n", float64(len(saved))/(1<<20), float64(len(saved))/float64(ws.Destinations))
	if digest {
		// Digests of the profiles and the findings, to compare builds: a
		// change for speed must leave both byte for byte as they were.
		fj, err := json.Marshal(findings)
		if err != nil {
			return fmt.Errorf("findings: %w", err)
		}
		fmt.Printf("watch: digest profiles %x findings %x\n", sha256.Sum256(saved), sha256.Sum256(fj))
	}
	kinds := map[devices.Kind]int{}
	found := map[string]bool{}
	for _, f := range findings {
		kinds[f.Kind]++
		if f.Kind == devices.KindBeacon {
			a, _ := f.Device.Addr()
			found[a.String()+"\t"+f.Dest.String()+"\t"+strconv.Itoa(int(f.Port))] = true
		}
	}
	fmt.Printf("watch: findings %v (suppressed %d)\n", kinds, ws.Suppressed)
	truth, err := os.ReadFile(filepath.Join(dir, "truth.tsv"))
	if err != nil {
		return err
	}
	var planted, hit, decoys, decoyHit int
	for _, l := range strings.Split(strings.TrimSpace(string(truth)), "\n") {
		f := strings.Split(l, "\t")
		if len(f) < 5 {
			continue
		}
		k := f[0] + "\t" + f[1] + "\t" + f[2]
		switch f[4] {
		case "beacon":
			planted++
			if found[k] {
				hit++
			}
		case "decoy":
			decoys++
			if found[k] {
				decoyHit++
			}
		}
	}
	fmt.Printf("watch: planted beacons found %d of %d (%.3f); decoys reported %d of %d; beacon findings in all %d\n",
		hit, planted, float64(hit)/float64(max(planted, 1)), decoyHit, decoys, kinds[devices.KindBeacon])
	return nil
}
