// Package devicesim generates the network logs of a synthetic population
// of devices for the device watch's tests and benchmarks: real
// connections (from the shared Zeek and Suricata logs) are the templates
// of each device's background traffic, and beacons and decoys are
// planted with their ground truth. It writes Zeek TSV conn logs (the
// header of a real one) in the order Zeek writes them (by the end of
// each connection).
package devicesim

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/entente-cti/entente/internal/sensor"
)

// Template is one real connection out of a network, reduced to what a
// synthetic one copies.
type Template struct {
	Dst                netip.Addr
	Port               uint16
	Proto              uint8
	SrcBytes, DstBytes uint64
	SrcPkts, DstPkts   uint64
	Duration           int64 // nanoseconds
}

type collect struct {
	mu  *sync.Mutex
	out *[]Template
}

// Event keeps the connections to global addresses.
func (c collect) Event(_ *sensor.Chunk, _ int64, ev *sensor.Event) {
	if ev.Kind != sensor.EventFlow {
		return
	}
	d := ev.Dst.Unmap()
	if !d.IsGlobalUnicast() || d.IsPrivate() {
		return
	}
	c.mu.Lock()
	*c.out = append(*c.out, Template{Dst: d, Port: ev.DstPort, Proto: ev.Proto, SrcBytes: ev.SrcBytes, DstBytes: ev.DstBytes,
		SrcPkts: ev.SrcPkts, DstPkts: ev.DstPkts, Duration: ev.Duration})
	c.mu.Unlock()
}

// ChunkDone does nothing.
func (collect) ChunkDone(*sensor.Chunk) {}

// LoadTemplates reads the connections to global addresses of real logs
// (any format the sensor reads), in file and line order.
func LoadTemplates(paths ...string) ([]Template, error) {
	var mu sync.Mutex
	var out []Template
	var inputs []sensor.Input
	for _, p := range paths {
		inputs = append(inputs, sensor.Input{Name: p, Open: func() (io.ReadCloser, error) { return os.Open(p) }})
	}
	_, err := sensor.ScanEvents(context.Background(), inputs, sensor.Options{Workers: 1}, func(int) sensor.EventHandler { return collect{&mu, &out} })
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("templates: no connection to a global address in %v", paths)
	}
	return out, nil
}

// Beacon is a planted beacon: a device connecting to a destination every
// Period, each sleep shortened by a random fraction up to Jitter (as
// Cobalt Strike's jitter does), missing each beat with probability
// Missed, sending SrcBytes varied by up to ±SizeNoise, with extra
// connections to the same destination at NoiseRate times the beacon's
// rate.
type Beacon struct {
	Period    time.Duration
	Jitter    float64
	Missed    float64
	SizeNoise float64
	NoiseRate float64
	SrcBytes  uint64
}

// Truth is the ground truth of one planted stream.
type Truth struct {
	Device netip.Addr
	Dst    netip.Addr
	Port   uint16
	Proto  uint8
	// Kind is "beacon" (positive) or "decoy" (a negative made to look
	// like one: random times, constant size).
	Kind        string
	Beacon      Beacon
	Connections int
}

// Config describes a population.
type Config struct {
	Seed uint64
	// Devices are numbered from the first address of Network.
	Devices int
	Network netip.Prefix
	// Extra devices: existing addresses (those of a real log) that also
	// get planted streams.
	ExtraDevices []netip.Addr
	Start        time.Time
	Span         time.Duration
	// FlowsPerDevice is the mean number of background connections a
	// device makes over the span (browsing-like sessions of template
	// connections).
	FlowsPerDevice int
	// DestinationsPerDevice is the size of a device's pool of background
	// destinations (Zipf-weighted).
	DestinationsPerDevice int
	// Beacons are planted on devices drawn at random (several may share
	// a device); Decoys are random-time, constant-size streams.
	Beacons []Beacon
	Decoys  int
}

// Stats counts what was written.
type Stats struct {
	Lines, Background, Planted int
}

// conn is one synthetic connection.
type conn struct {
	ts       int64
	src, dst netip.Addr
	sport    uint16
	port     uint16
	proto    uint8
	sb, db   uint64
	sp, dp   uint64
	dur      int64
}

func (c *conn) end() int64 { return c.ts + c.dur }

// zeekHeader is the header of the real Zeek 3 conn.log of the Slips
// test10 capture.
const zeekHeader = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2020-10-06-17-32-56\n" +
	"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n" +
	"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n"

// ZeekHeader returns the header Generate writes.
func ZeekHeader() string { return zeekHeader }

// stream produces a device's connections in time order.
type stream struct {
	next  func(after int64) (conn, bool) // the next connection, false when done
	pend  conn
	valid bool
	truth int // index in the truths, -1 for background
}

// Generate writes the population's connections as a Zeek TSV conn log to
// w (header included), time slice by time slice so that memory stays
// bounded for any span, and returns the planted streams' ground truth.
func Generate(cfg Config, templates []Template, w io.Writer) ([]Truth, Stats, error) {
	if len(templates) == 0 {
		return nil, Stats{}, fmt.Errorf("devicesim: no templates")
	}
	if cfg.Devices < 1 || !cfg.Network.IsValid() {
		return nil, Stats{}, fmt.Errorf("devicesim: want devices and a network")
	}
	start, end := cfg.Start.UnixNano(), cfg.Start.Add(cfg.Span).UnixNano()
	devices := make([]netip.Addr, 0, cfg.Devices+len(cfg.ExtraDevices))
	a := cfg.Network.Masked().Addr().Next()
	for i := 0; i < cfg.Devices; i++ {
		if !cfg.Network.Contains(a) {
			return nil, Stats{}, fmt.Errorf("devicesim: %d devices do not fit in %s", cfg.Devices, cfg.Network)
		}
		devices = append(devices, a)
		a = a.Next()
	}
	// A pool of destinations: each template address and variants of it
	// in the same /24 (or /48), so that devices have distinct
	// destinations in real networks.
	variant := func(t Template, r *rand.Rand) Template {
		b := t.Dst.AsSlice()
		if t.Dst.Is4() {
			b[3] = byte(1 + r.IntN(254))
		} else {
			for i := 10; i < 16; i++ {
				b[i] = byte(r.Uint32())
			}
		}
		v, _ := netip.AddrFromSlice(b)
		t.Dst = v
		return t
	}
	var streams []*stream
	var truths []Truth
	dpd := max(cfg.DestinationsPerDevice, 1)
	for i, dev := range devices {
		r := rand.New(rand.NewPCG(cfg.Seed+uint64(i)*7919, 1))
		pool := make([]Template, dpd)
		for j := range pool {
			t := templates[r.IntN(len(templates))]
			if j > 0 && r.IntN(4) != 0 {
				t = variant(t, r)
			}
			pool[j] = t
		}
		zipf := rand.NewZipf(r, 1.2, 1, uint64(dpd-1))
		meanGap := float64(end-start) / float64(max(cfg.FlowsPerDevice, 1))
		t := start + int64(r.ExpFloat64()*meanGap)
		burst := 0
		dev := dev
		streams = append(streams, &stream{truth: -1, next: func(after int64) (conn, bool) {
			// Sessions: bursts of 1 to 8 connections seconds apart, gaps
			// between them exponential, at a rate that follows the hour
			// of the day (busy in the evening, quiet at night).
			if burst > 0 {
				t += int64((0.05 + r.Float64()*3) * 1e9)
				burst--
			} else {
				b := 1 + r.IntN(8)
				for {
					t += int64(r.ExpFloat64() * meanGap * float64(b) / 2)
					if t >= end || r.Float64() < diurnal(t) {
						break
					}
				}
				burst = b - 1
			}
			if t >= end {
				return conn{}, false
			}
			// The destination from the device's pool; the sizes and
			// duration of another real connection to the same port.
			tp := pool[zipf.Uint64()]
			sz := templates[r.IntN(len(templates))]
			if sz.Port == tp.Port || r.IntN(2) == 0 {
				tp.SrcBytes, tp.DstBytes, tp.SrcPkts, tp.DstPkts, tp.Duration = sz.SrcBytes, sz.DstBytes, sz.SrcPkts, sz.DstPkts, sz.Duration
			}
			return fromTemplate(dev, tp, t, r), true
		}})
	}
	all := append(slices.Clone(devices), cfg.ExtraDevices...)
	for bi, b := range cfg.Beacons {
		r := rand.New(rand.NewPCG(cfg.Seed+1_000_003*uint64(bi+1), 2))
		dev := all[r.IntN(len(all))]
		tp := variant(templates[r.IntN(len(templates))], r)
		if b.SrcBytes > 0 {
			tp.SrcBytes = b.SrcBytes
		}
		tp.Duration = min(tp.Duration, int64(b.Period)/4)
		truths = append(truths, Truth{Device: dev, Dst: tp.Dst, Port: tp.Port, Proto: tp.Proto, Kind: "beacon", Beacon: b})
		ti := len(truths) - 1
		t := start + int64(r.Float64()*float64(b.Period))
		noiseAt := int64(math.MaxInt64)
		if b.NoiseRate > 0 {
			noiseAt = t + int64(r.ExpFloat64()*float64(b.Period)/b.NoiseRate)
		}
		base := tp
		streams = append(streams, &stream{truth: ti, next: func(after int64) (conn, bool) {
			for {
				var at int64
				if noiseAt < t {
					at = noiseAt
					noiseAt += int64(r.ExpFloat64() * float64(b.Period) / b.NoiseRate)
				} else {
					at = t
					t += int64(float64(b.Period) * (1 - r.Float64()*b.Jitter))
					if r.Float64() < b.Missed {
						continue
					}
				}
				if at >= end {
					return conn{}, false
				}
				c := fromTemplate(dev, base, at, r)
				if b.SizeNoise > 0 {
					c.sb = uint64(float64(base.SrcBytes) * (1 + b.SizeNoise*(2*r.Float64()-1)))
				}
				truths[ti].Connections++
				return c, true
			}
		}})
	}
	for di := 0; di < cfg.Decoys; di++ {
		r := rand.New(rand.NewPCG(cfg.Seed+2_000_003*uint64(di+1), 3))
		dev := all[r.IntN(len(all))]
		tp := variant(templates[r.IntN(len(templates))], r)
		// Decoys: Poisson times (mean gap between 1 and 30 minutes),
		// constant size, as NTP or a chatty protocol might be.
		gap := float64(time.Minute) * (1 + 29*r.Float64())
		truths = append(truths, Truth{Device: dev, Dst: tp.Dst, Port: tp.Port, Proto: tp.Proto, Kind: "decoy"})
		ti := len(truths) - 1
		t := start
		streams = append(streams, &stream{truth: ti, next: func(after int64) (conn, bool) {
			t += int64(r.ExpFloat64() * gap)
			if t >= end {
				return conn{}, false
			}
			truths[ti].Connections++
			return fromTemplate(dev, tp, t, r), true
		}})
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString(zeekHeader)
	var st Stats
	// Slices of time: every stream's connections that end in the slice,
	// sorted by end (Zeek writes a connection when it ends).
	const slice = int64(10 * time.Minute)
	var batch []conn
	var line []byte
	uid := uint64(0)
	done := make([]bool, len(streams))
	live := len(streams)
	for s := start; live > 0; s += slice {
		batch = batch[:0]
		for i, sm := range streams {
			for !done[i] {
				if !sm.valid {
					c, ok := sm.next(0)
					if !ok {
						done[i] = true
						live--
						break
					}
					sm.pend, sm.valid = c, true
				}
				if sm.pend.end() >= s+slice {
					break
				}
				batch = append(batch, sm.pend)
				sm.valid = false
				if sm.truth >= 0 {
					st.Planted++
				} else {
					st.Background++
				}
			}
		}
		slices.SortFunc(batch, func(a, b conn) int { return cmp.Compare(a.end(), b.end()) })
		for i := range batch {
			uid++
			line = appendConn(line[:0], &batch[i], uid)
			bw.Write(line)
		}
		st.Lines += len(batch)
	}
	bw.WriteString("#close\t2020-10-07-17-32-56\n")
	return truths, st, bw.Flush()
}

// diurnal is the relative activity of people's devices at time t (UTC):
// low at night, highest in the evening; its mean over a day is 1/2.
func diurnal(t int64) float64 {
	h := float64((t/1e9)%86400) / 3600
	return 0.5 - 0.45*math.Cos(2*math.Pi*(h-3)/24)
}

func fromTemplate(dev netip.Addr, t Template, at int64, r *rand.Rand) conn {
	return conn{ts: at, src: dev, dst: t.Dst, sport: uint16(32768 + r.IntN(28000)), port: t.Port, proto: t.Proto,
		sb: t.SrcBytes, db: t.DstBytes, sp: t.SrcPkts, dp: t.DstPkts, dur: t.Duration}
}

// appendConn writes one conn.log line.
func appendConn(b []byte, c *conn, uid uint64) []byte {
	b = appendSeconds(b, c.ts)
	b = append(b, "\tC"...)
	b = strconv.AppendUint(b, uid, 36)
	b = append(b, '\t')
	b = c.src.AppendTo(b)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(c.sport), 10)
	b = append(b, '\t')
	b = c.dst.AppendTo(b)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(c.port), 10)
	switch c.proto {
	case 6:
		b = append(b, "\ttcp\t-\t"...)
	case 17:
		b = append(b, "\tudp\t-\t"...)
	case 1, 58:
		b = append(b, "\ticmp\t-\t"...)
	default:
		b = append(b, "\tunknown_transport\t-\t"...)
	}
	b = appendSeconds(b, c.dur)
	b = append(b, '\t')
	b = strconv.AppendUint(b, c.sb, 10)
	b = append(b, '\t')
	b = strconv.AppendUint(b, c.db, 10)
	b = append(b, "\tSF\t-\t-\t0\tShADadFf\t"...)
	b = strconv.AppendUint(b, c.sp, 10)
	b = append(b, '\t')
	b = strconv.AppendUint(b, c.sb+40*c.sp, 10)
	b = append(b, '\t')
	b = strconv.AppendUint(b, c.dp, 10)
	b = append(b, '\t')
	b = strconv.AppendUint(b, c.db+40*c.dp, 10)
	b = append(b, "\t-\n"...)
	return b
}

// appendSeconds writes nanoseconds as seconds with six decimals.
func appendSeconds(b []byte, ns int64) []byte {
	if ns < 0 {
		ns = 0
	}
	b = strconv.AppendInt(b, ns/1e9, 10)
	b = append(b, '.')
	us := (ns % 1e9) / 1e3
	s := strconv.AppendInt(nil, us+1_000_000, 10)
	return append(b, s[1:]...)
}
