package devices

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// event is one input of a watcher, for replaying a stream in parts.
type event struct {
	flow  *Flow
	lease *Lease
	sweep bool
}

// stream is a day of a small network: an IoT camera with a lease and a
// beacon, a PC with many destinations, a phone known by its address,
// sweeps every few hours.
func stream() []event {
	r := rand.New(rand.NewPCG(11, 12))
	var evs []event
	cam := MAC{0xbc, 0xad, 0x28, 0, 0, 1}
	evs = append(evs, event{lease: &Lease{Time: t0, MAC: cam, Addr: netip.MustParseAddr("192.168.1.20"), Hostname: "cam-door", Fingerprint: "1,3,6,15"}})
	for i := range 24 * 12 {
		at := time.Duration(i) * 5 * time.Minute
		f := flow("192.168.1.20", "122.248.252.67", at+time.Duration(r.IntN(3000))*time.Millisecond, 8760)
		f.Proto, f.SrcBytes = 17, 256
		evs = append(evs, event{flow: f})
		for range r.IntN(4) {
			pc := flow("192.168.1.30", fmt.Sprintf("%d.%d.%d.%d", []int{5, 8, 31, 203}[r.IntN(4)], r.IntN(4), r.IntN(20), 1+r.IntN(30)), at+time.Duration(r.IntN(300))*time.Second, 443)
			pc.SrcMAC = MAC{0x00, 0x11, 0x22, 0, 0, 9}
			pc.Duration = int64(time.Duration(r.IntN(7200)) * time.Second)
			pc.SrcBytes = uint64(r.IntN(200_000_000))
			evs = append(evs, event{flow: pc})
		}
		if i%7 == 0 {
			evs = append(evs, event{flow: flow("2001:db8:1::77", "2a00:1450::1", at, 443)})
		}
		if i%36 == 35 {
			evs = append(evs, event{sweep: true})
		}
	}
	return append(evs, event{sweep: true})
}

func replay(w *Watcher, evs []event) {
	for _, e := range evs {
		switch {
		case e.flow != nil:
			f := *e.flow
			w.Flow(&f)
		case e.lease != nil:
			w.Lease(e.lease)
		case e.sweep:
			w.Sweep()
		}
	}
}

func streamConfig() Config {
	return Config{Constituency: []netip.Prefix{lan, netip.MustParsePrefix("2001:db8:1::/48")}, Learn: time.Hour, TopDestinations: 12,
		MaxNetworks: 40, Classes: []Class{{Name: "cameras", Hostnames: []string{"cam-*"}, Countries: []string{"DE"}}}}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	w := mustWatcher(t, streamConfig())
	replay(w, stream())
	saved := w.Save()
	w2 := mustWatcher(t, streamConfig())
	if err := w2.Load(saved); err != nil {
		t.Fatal(err)
	}
	if again := w2.Save(); !bytes.Equal(saved, again) {
		t.Fatalf("save, load, save differs (%d and %d bytes)", len(saved), len(again))
	}
	if !reflect.DeepEqual(w.Devices(), w2.Devices()) {
		t.Errorf("summaries differ after loading:\n%+v\n%+v", w.Devices(), w2.Devices())
	}
	if n := len(w.Devices()); n != 3 {
		t.Errorf("%d devices, want 3", n)
	}
	if err := w2.Load(saved); err == nil {
		t.Error("loading into a watcher that holds devices succeeded")
	}
}

// TestContinueAfterLoad: a run in two halves, the profiles saved and
// loaded between them, ends with the same profiles and findings as one
// run.
func TestContinueAfterLoad(t *testing.T) {
	evs := stream()
	whole := mustWatcher(t, streamConfig())
	replay(whole, evs)
	mid := len(evs) / 2
	first := mustWatcher(t, streamConfig())
	replay(first, evs[:mid])
	second := mustWatcher(t, streamConfig())
	if err := second.Load(first.Save()); err != nil {
		t.Fatal(err)
	}
	replay(second, evs[mid:])
	if !bytes.Equal(whole.Save(), second.Save()) {
		t.Error("profiles differ from a run in one piece")
	}
	want := kinds(whole.Findings())
	got := append(kinds(first.Findings()), kinds(second.Findings())...)
	if strings.Join(want, "\n") != strings.Join(got, "\n") || len(want) < 10 {
		t.Errorf("findings differ:\none run: %q\ntwo runs: %q", want, got)
	}
}

// TestShardsDoNotChangeResults: the same events give the same profiles
// and findings on one shard or several, fed one connection at a time, in
// batches, or in batches the shards take on their own goroutines
// (FlowsAsync, in runs of a few connections, so that their queues fill),
// and profiles saved from shards load into one.
func TestShardsDoNotChangeResults(t *testing.T) {
	evs := stream()
	var saved [][]byte
	var found [][]string
	for _, n := range []int{1, 3} {
		for _, mode := range []string{"one by one", "batched", "async"} {
			w := mustWatcher(t, streamConfig())
			w.SetParallel(n)
			var given, done atomic.Int64
			flows := func(run []Flow) {
				if mode == "batched" {
					w.Flows(run)
					return
				}
				for len(run) > 0 {
					k := min(len(run), 3)
					given.Add(1)
					w.FlowsAsync(slices.Clone(run[:k]), func() { done.Add(1) })
					run = run[k:]
				}
			}
			if mode != "one by one" {
				var run []Flow
				for _, e := range evs {
					if e.flow != nil {
						run = append(run, *e.flow)
						continue
					}
					flows(run)
					run = run[:0]
					replay(w, []event{e})
				}
				flows(run)
				w.Wait()
				if given.Load() != done.Load() {
					t.Errorf("%d shards: %d batches given, %d done", n, given.Load(), done.Load())
				}
			} else {
				replay(w, evs)
			}
			saved = append(saved, w.Save())
			found = append(found, kinds(w.Findings()))
			if d, ok := w.Device(MACDevice(MAC{0xbc, 0xad, 0x28, 0, 0, 1})); !ok || d.Hostname != "cam-door" {
				t.Errorf("%d shards: camera %+v", n, d)
			}
		}
	}
	for i := 1; i < len(saved); i++ {
		if !bytes.Equal(saved[0], saved[i]) || strings.Join(found[0], " ") != strings.Join(found[i], " ") {
			t.Errorf("run %d differs from the first (profiles equal: %v)", i, bytes.Equal(saved[0], saved[i]))
		}
	}
	w := mustWatcher(t, streamConfig())
	w.SetParallel(2)
	if err := w.Load(saved[0]); err != nil {
		t.Fatal(err)
	}
	w.SetParallel(1)
	if !bytes.Equal(w.Save(), saved[0]) {
		t.Error("profiles loaded into shards and gathered differ")
	}
}

// TestLoadTrims: profiles saved with a larger top-K or window load into
// a smaller configuration, keeping the largest destinations and the
// latest connections.
func TestLoadTrims(t *testing.T) {
	cfg := streamConfig()
	w := mustWatcher(t, cfg)
	replay(w, stream())
	cfg.TopDestinations, cfg.Beacon = 4, BeaconConfig{Window: 8, MinEvents: 6, FullEvents: 8}
	small := mustWatcher(t, cfg)
	if err := small.Load(w.Save()); err != nil {
		t.Fatal(err)
	}
	for _, d := range small.list {
		if len(d.dests) > 4 {
			t.Errorf("%s: %d destinations", d.id, len(d.dests))
		}
		for _, e := range d.dests {
			if len(e.win.beats) > 8 {
				t.Errorf("%s: window of %d", e.addr, len(e.win.beats))
			}
		}
	}
	cam, _ := small.Device(MACDevice(MAC{0xbc, 0xad, 0x28, 0, 0, 1}))
	if len(cam.Destinations) != 1 || cam.Destinations[0].Addr.String() != "122.248.252.67" {
		t.Errorf("camera destinations %+v", cam.Destinations)
	}
}

// reseal replaces the checksum of a profile file.
func reseal(data []byte) []byte {
	body := data[:len(data)-4]
	return binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
}

func TestLoadErrors(t *testing.T) {
	base := func() *Watcher {
		w := mustWatcher(t, streamConfig())
		replay(w, stream())
		return w
	}
	good := base().Save()
	flip := bytes.Clone(good)
	flip[len(flip)/2] ^= 0x40
	v2 := bytes.Clone(good)
	v2[len(profileMagic)] = 2
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "bad magic"},
		{"foreign", []byte("{\"not\":\"a profile file\"}"), "bad magic"},
		{"truncated", good[:len(good)-100], "checksum mismatch"},
		{"bit flip", flip, "checksum mismatch"},
		{"newer version", reseal(v2), "file version 2"},
		{"trailing bytes", reseal(append(append(bytes.Clone(good[:len(good)-4]), 0, 0), 0, 0, 0, 0)), "bytes after the last device"},
	} {
		err := mustWatcher(t, streamConfig()).Load(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// Damage inside a valid envelope: each names the device and, where
	// it applies, the destination at fault.
	for _, tc := range []struct {
		name    string
		corrupt func(w *Watcher)
		want    string
	}{
		{"device twice", func(w *Watcher) { w.list = append(w.list, w.list[0]) }, "(bc:ad:28:00:00:01): listed twice"},
		{"destination twice", func(w *Watcher) { d := w.list[1]; d.dests[1] = d.dests[0] }, "): listed twice"},
		{"bad country", func(w *Watcher) { w.list[0].dests[0].cc = [2]byte{'1', '2'} }, `destination 1 (122.248.252.67): at byte`},
		{"score", func(w *Watcher) { w.list[0].dests[0].score = float32(math.NaN()) }, "beacon score NaN"},
		{"country index", func(w *Watcher) { w.list[0].dests[0].ci = 9 }, "country index 9"},
		{"window order", func(w *Watcher) {
			w.list[0].dests[0].win.linear()
			b := w.list[0].dests[0].win.beats
			b[0], b[1] = b[1], b[0]
		}, "out of time order"},
		{"overestimate", func(w *Watcher) { w.list[0].dests[0].err = 1 << 30 }, "overestimate"},
		{"identity", func(w *Watcher) { w.list[2].id.k[0] = 9 }, "identity kind 9"},
		{"finding score", func(w *Watcher) { w.list[1].recent[0].Score = 2 }, "finding 1: score 2"},
	} {
		w := base()
		tc.corrupt(w)
		err := mustWatcher(t, streamConfig()).Load(w.Save())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// Declared counts larger than the data are refused before anything
	// is allocated for them.
	huge := bytes.Clone(good[:len(profileMagic)+1])
	huge = binary.AppendVarint(huge, 0)
	huge = binary.AppendUvarint(huge, 1<<20)
	err := mustWatcher(t, streamConfig()).Load(reseal(append(huge, 0, 0, 0, 0)))
	if err == nil || !strings.Contains(err.Error(), "do not fit") {
		t.Errorf("huge count: %v", err)
	}
}

// FuzzLoad feeds the decoder damaged profile files. The checksum is
// recomputed so that the fuzzer explores the structure behind it (the
// checksum itself is tested above). Whatever loads must save and load
// again to the same bytes.
func FuzzLoad(f *testing.F) {
	w := mustWatcher(f, streamConfig())
	replay(w, stream())
	f.Add(w.Save())
	small := mustWatcher(f, Config{Learn: -1})
	small.Flow(flow("192.168.1.20", "5.9.1.1", 0, 443))
	f.Add(small.Save())
	f.Add(mustWatcher(f, Config{}).Save())
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= 4 {
			data = reseal(data)
		}
		w := mustWatcher(t, streamConfig())
		if err := w.Load(data); err != nil {
			return
		}
		saved := w.Save()
		w2 := mustWatcher(t, streamConfig())
		if err := w2.Load(saved); err != nil {
			t.Fatalf("a loaded file saves to one that does not load: %v", err)
		}
		if !bytes.Equal(saved, w2.Save()) {
			t.Fatal("save, load, save is not stable")
		}
		w2.Devices()
		w2.Flow(flow("192.168.1.20", "5.9.1.1", 0, 443))
		w2.Sweep()
	})
}
