package devices

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// benchFlows is a day of a network: devices each talking to a Zipf-
// weighted pool of destinations (many more than the top-K), a beacon in
// ten devices.
func benchFlows(devices, perDevice, pool int) []Flow {
	r := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(r, 1.2, 1, uint64(pool-1))
	flows := make([]Flow, 0, devices*perDevice)
	day := int64(24 * time.Hour)
	for i := 0; i < devices*perDevice; i++ {
		dev := r.IntN(devices)
		src := netip.AddrFrom4([4]byte{10, byte(64 + dev>>16), byte(dev >> 8), byte(dev)})
		d := int(zipf.Uint64())
		// Each device's pool: destinations spread over the Internet.
		h := hash64(uint64(dev)<<20 | uint64(d))
		dst := netip.AddrFrom4([4]byte{byte(1 + h%223), byte(h >> 8), byte(h >> 16), byte(1 + (h>>24)%254)})
		flows = append(flows, Flow{Time: t0 + int64(i)*(day/int64(devices*perDevice)), Src: src, Dst: dst, DstPort: 443, Proto: 6,
			SrcBytes: uint64(200 + r.IntN(2000)), DstBytes: uint64(r.IntN(100000)), Duration: int64(r.IntN(10e9))})
	}
	return flows
}

// BenchmarkWatcherFlow measures profiling and detection alone (no log
// parsing): connections per second on one goroutine, and the memory of
// the profiles per device–destination pair.
func BenchmarkWatcherFlow(b *testing.B) {
	flows := benchFlows(10_000, 200, 120)
	cfg := Config{Constituency: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/14")}}
	var w *Watcher
	for b.Loop() {
		w, _ = New(cfg, testGeo, testKey)
		for i := 0; i < len(flows); i += 500_000 {
			w.Flows(flows[i:min(i+500_000, len(flows))])
			w.Sweep()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(flows)), "ns/flow")
	st := w.Stats()
	b.ReportMetric(float64(w.MemoryBytes())/float64(st.Destinations), "bytes/pair")
	b.ReportMetric(float64(st.Evictions)/float64(len(flows)), "evictions/flow")
}

// BenchmarkMemory100k keeps the profiles of 100,000 devices, each with
// more destinations than its top-K, and reports the heap they take per
// device–destination pair (after collection) and in all: memory is
// bounded by MaxDevices × TopDestinations.
func BenchmarkMemory100k(b *testing.B) {
	flows := benchFlows(100_000, 60, 60)
	cfg := Config{Constituency: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/14")}}
	for b.Loop() {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		w, _ := New(cfg, testGeo, testKey)
		w.Flows(flows)
		w.Sweep()
		runtime.GC()
		runtime.ReadMemStats(&m1)
		st := w.Stats()
		heap := float64(m1.HeapAlloc) - float64(m0.HeapAlloc)
		b.ReportMetric(heap/float64(st.Destinations), "heap-bytes/pair")
		b.ReportMetric(heap/(1<<20), "heap-MiB")
		b.ReportMetric(float64(st.Destinations), "pairs")
		b.ReportMetric(float64(st.Devices), "devices")
		runtime.KeepAlive(w)
		runtime.KeepAlive(flows)
	}
}

// BenchmarkWatcherFlowSmall is BenchmarkWatcherFlow with 1,000 devices:
// profiles that fit the caches, for comparison.
func BenchmarkWatcherFlowSmall(b *testing.B) {
	flows := benchFlows(1_000, 2000, 120)
	cfg := Config{Constituency: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/14")}}
	for b.Loop() {
		w, _ := New(cfg, testGeo, testKey)
		for i := 0; i < len(flows); i += 500_000 {
			w.Flows(flows[i:min(i+500_000, len(flows))])
			w.Sweep()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(flows)), "ns/flow")
}

// TestMemoryPerPair: profiles take less than 1 KiB per device–destination
// pair on average (the structures' own estimate and the heap, after
// collection), and the number of devices and pairs is bounded by
// MaxDevices × TopDestinations whatever the number of devices seen.
func TestMemoryPerPair(t *testing.T) {
	if testing.Short() {
		t.Skip("a population of devices")
	}
	flows := benchFlows(5_000, 200, 120)
	cfg := Config{Constituency: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/14")}}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	w, err := New(cfg, testGeo, testKey)
	if err != nil {
		t.Fatal(err)
	}
	w.Flows(flows)
	w.Sweep()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	st := w.Stats()
	est := float64(w.MemoryBytes()) / float64(st.Destinations)
	heap := (float64(m1.HeapAlloc) - float64(m0.HeapAlloc)) / float64(st.Destinations)
	t.Logf("%d devices, %d pairs: %.0f bytes per pair (estimate), %.0f (heap)", st.Devices, st.Destinations, est, heap)
	if st.Destinations < 5_000*25 || est >= 1024 || heap >= 1024 {
		t.Errorf("%d pairs, %.0f bytes per pair (estimate), %.0f (heap): want most tables full, under 1024 bytes", st.Destinations, est, heap)
	}
	runtime.KeepAlive(w)
	bounded, _ := New(Config{Constituency: cfg.Constituency, MaxDevices: 1_000}, testGeo, testKey)
	bounded.Flows(flows)
	if st := bounded.Stats(); st.Devices > 1_000 || st.Forgotten == 0 || st.Destinations > 1_000*32 {
		t.Errorf("with at most 1000 devices: %d devices (%d forgotten), %d pairs", st.Devices, st.Forgotten, st.Destinations)
	}
	runtime.KeepAlive(flows)
}
