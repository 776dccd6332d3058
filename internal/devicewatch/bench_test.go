package devicewatch

import (
	"context"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/devices"
	"github.com/entente-cti/entente/internal/devicesim"
	"github.com/entente-cti/entente/internal/sensor"
)

// BenchmarkRunGenerated runs the watch (parsing, profiling, detection,
// sweeps) on a generated day of 10,000 devices, about 1,000,000 conn
// lines replaying the real captures, as tools/devicegen makes the
// benchmark's day (at a fifth of its lines per device): lines per
// second at GOMAXPROCS, and CPU ns per line. The profiles do not fit the
// caches, as in the full benchmark.
func BenchmarkRunGenerated(b *testing.B) {
	network := netip.MustParsePrefix("10.64.0.0/14")
	cfg := devicesim.Config{Seed: 1, Devices: 10_000, Network: network, Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Span: 24 * time.Hour, FlowsPerDevice: 100, DestinationsPerDevice: 120, Decoys: 100}
	for i := range 100 {
		cfg.Beacons = append(cfg.Beacons, devicesim.Beacon{Period: time.Duration(60+i) * time.Second, SrcBytes: uint64(300 + i)})
	}
	path := filepath.Join(b.TempDir(), "conn.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	_, gst, err := devicesim.Generate(cfg, realTemplates(b), f)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	in := []sensor.Input{{Name: path, Open: func() (io.ReadCloser, error) { return os.Open(path) }}}
	var cpu time.Duration
	for b.Loop() {
		w, err := devices.New(devices.Config{Constituency: []netip.Prefix{network}}, nil, make([]byte, 32))
		if err != nil {
			b.Fatal(err)
		}
		c0 := cpuTime()
		if _, err := Run(context.Background(), Options{Watcher: w, Logs: in}); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		runtime.KeepAlive(w)
	}
	lines := float64(b.N) * float64(gst.Lines)
	b.ReportMetric(lines/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/lines, "cpu-ns/line")
}
