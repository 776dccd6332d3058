// Package devicewatch runs the device watch (internal/devices) over
// network logs read by internal/sensor: the logs are parsed on every
// core, and their events are applied to one devices.Watcher in log order,
// so that a run gives the same profiles and findings whatever the number
// of workers.
package devicewatch

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/entente-cti/entente/internal/devices"
	"github.com/entente-cti/entente/internal/sensor"
)

// Options configure [Run].
type Options struct {
	// Watcher receives the events.
	Watcher *devices.Watcher
	// Logs are the inputs, applied in this order (see [SortInputs]).
	Logs []sensor.Input
	// Scan configures the readers (format, workers, limits).
	Scan sensor.Options
	// SweepEvery is how much log time passes between beacon sweeps
	// (default 6 hours); a final sweep follows the last event.
	SweepEvery time.Duration
	// Shards is the number of goroutines that profile connections
	// (devices.Watcher.SetParallel); 0 means GOMAXPROCS. The results do
	// not depend on it.
	Shards int
	// IgnoreFlowMACs leaves out the link-layer addresses of connections,
	// for sensors that see devices behind a router (whose MAC every
	// connection would carry); DHCP leases still map addresses to MACs.
	IgnoreFlowMACs bool
}

// op is one event of a batch, by kind and index in its kind's slice.
type op struct {
	kind sensor.EventKind
	i    int32
}

type dnsRec struct {
	t      int64
	name   string
	a0, a1 int32 // its addresses in batch.addrs
}

type softRec struct {
	t             int64
	host          netip.Addr
	name, version string
}

// batch is the events of one chunk, in line order.
type batch struct {
	seq    int
	ops    []op
	flows  []devices.Flow
	leases []devices.Lease
	dns    []dnsRec
	soft   []softRec
	addrs  []netip.Addr
}

func (b *batch) reset() {
	b.ops, b.flows, b.leases, b.dns, b.soft, b.addrs = b.ops[:0], b.flows[:0], b.leases[:0], b.dns[:0], b.soft[:0], b.addrs[:0]
}

type runner struct {
	opts Options
	// free holds the batches applied, for reuse with their room: a
	// sync.Pool is emptied by every collection, and each batch it dropped
	// grew again from nothing (a tenth of the watch's time went to copying
	// connections into growing slices, and the garbage made more
	// collections, each scanning the profiles).
	free    chan *batch
	mu      sync.Mutex
	next    int
	pending map[int]*batch
	ready   chan *batch
}

type handler struct {
	r   *runner
	cur *batch
}

// minFlowLine bounds the room a batch takes for a chunk's connections:
// shorter than any line of a connection (a Zeek conn.log line with one-
// byte time, uid, ports and one-digit addresses has 29).
const minFlowLine = 24

// Event copies an event into the chunk's batch.
func (h *handler) Event(c *sensor.Chunk, line int64, ev *sensor.Event) {
	b := h.cur
	if b == nil {
		b = h.r.getBatch()
		h.cur = b
		// Most likely a chunk of a conn.log: room for all its lines at
		// once, rather than growing by copies (each batch is megabytes,
		// and the copies' garbage made collections); no connection line
		// is shorter than minFlowLine bytes.
		if n := min(c.Lines, len(c.Data)/minFlowLine); cap(b.flows) < n && ev.Kind == sensor.EventFlow {
			b.flows = make([]devices.Flow, 0, n)
			b.ops = make([]op, 0, n)
		}
	}
	switch ev.Kind {
	case sensor.EventFlow:
		f := devices.Flow{Time: ev.Time, Src: ev.Src, Dst: ev.Dst, SrcPort: ev.SrcPort, DstPort: ev.DstPort, Proto: ev.Proto,
			Duration: ev.Duration, SrcBytes: ev.SrcBytes, DstBytes: ev.DstBytes}
		if !h.r.opts.IgnoreFlowMACs {
			f.SrcMAC = devices.MAC(ev.SrcMAC)
		}
		b.ops = append(b.ops, op{sensor.EventFlow, int32(len(b.flows))})
		b.flows = append(b.flows, f)
		// Where it goes and its device, here on the parsing goroutines
		// rather than on the one that applies the batches in order.
		h.r.opts.Watcher.Prepare(&b.flows[len(b.flows)-1])
	case sensor.EventLease, sensor.EventDevice:
		b.ops = append(b.ops, op{sensor.EventLease, int32(len(b.leases))})
		b.leases = append(b.leases, devices.Lease{Time: ev.Time, MAC: devices.MAC(ev.SrcMAC), Addr: ev.Src,
			Hostname: string(ev.Name), Fingerprint: string(ev.Aux)})
	case sensor.EventDNS:
		a0 := int32(len(b.addrs))
		b.addrs = append(b.addrs, ev.Addrs...)
		b.ops = append(b.ops, op{sensor.EventDNS, int32(len(b.dns))})
		b.dns = append(b.dns, dnsRec{ev.Time, string(ev.Name), a0, int32(len(b.addrs))})
	case sensor.EventSoftware:
		b.ops = append(b.ops, op{sensor.EventSoftware, int32(len(b.soft))})
		b.soft = append(b.soft, softRec{ev.Time, ev.Src, string(ev.Name), string(ev.Aux)})
	}
}

// getBatch returns an empty batch, reused when one is free.
func (r *runner) getBatch() *batch {
	select {
	case b := <-r.free:
		b.reset()
		return b
	default:
		return &batch{}
	}
}

// ChunkDone hands the chunk's batch over, in chunk order, to the
// goroutine that applies them.
func (h *handler) ChunkDone(c *sensor.Chunk) {
	b := h.cur
	h.cur = nil
	if b == nil {
		b = h.r.getBatch()
	}
	b.seq = c.Seq
	r := h.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending[c.Seq] = b
	for {
		nb, ok := r.pending[r.next]
		if !ok {
			return
		}
		delete(r.pending, r.next)
		r.next++
		r.ready <- nb
	}
}

// apply applies batches in order to the watcher.
func (r *runner) apply(done chan<- struct{}) {
	defer close(done)
	w := r.opts.Watcher
	every := r.opts.SweepEvery
	if every <= 0 {
		every = 6 * time.Hour
	}
	var lastSweep time.Time
	for b := range r.ready {
		if len(b.ops) == len(b.flows) {
			// Connections only (a chunk of a conn.log): the shards take
			// the batch on their own goroutines, each going on with the
			// next batch when through with this one, and the batch is
			// reused when all are through (see devices.Watcher.FlowsAsync).
			w.FlowsAsync(b.flows, func() { r.release(b) })
			r.maybeSweep(&lastSweep, every)
			continue
		}
		for k := 0; k < len(b.ops); k++ {
			o := b.ops[k]
			switch o.kind {
			case sensor.EventFlow:
				// A run of connections goes in one call, which reads
				// ahead (see devices.Watcher.Flows).
				j := k + 1
				for j < len(b.ops) && b.ops[j].kind == sensor.EventFlow {
					j++
				}
				w.Flows(b.flows[o.i : int(o.i)+j-k])
				k = j - 1
			case sensor.EventLease:
				w.Lease(&b.leases[o.i])
			case sensor.EventDNS:
				d := &b.dns[o.i]
				w.Resolved(d.t, d.name, b.addrs[d.a0:d.a1])
			case sensor.EventSoftware:
				s := &b.soft[o.i]
				w.Software(s.t, s.host, s.name, s.version)
			}
		}
		r.maybeSweep(&lastSweep, every)
		r.release(b)
	}
	w.Sweep()
}

// maybeSweep sweeps the watcher when every has passed in log time since
// the last sweep.
func (r *runner) maybeSweep(lastSweep *time.Time, every time.Duration) {
	w := r.opts.Watcher
	now := w.Clock()
	if lastSweep.IsZero() {
		*lastSweep = now
	}
	if now.Sub(*lastSweep) >= every {
		w.Sweep()
		*lastSweep = now
	}
}

// release keeps an applied batch for reuse.
func (r *runner) release(b *batch) {
	// Drop the strings the batch points to before reuse.
	clear(b.leases)
	clear(b.dns)
	clear(b.soft)
	select {
	case r.free <- b:
	default: // as many as can be in flight are kept already
	}
}

// Run reads the logs and applies their events to the watcher, then
// sweeps it once more. The findings are the watcher's to take
// ([devices.Watcher.Findings]). Bad lines are counted in the stats;
// errors reading an input are returned after the other inputs were read.
func Run(ctx context.Context, opts Options) (sensor.Stats, error) {
	if opts.Watcher == nil {
		return sensor.Stats{}, errors.New("devicewatch: no watcher")
	}
	shards := opts.Shards
	if shards <= 0 {
		shards = runtime.GOMAXPROCS(0)
	}
	opts.Watcher.SetParallel(shards)
	opts.Scan.SkipPackets = true // the watch does not use them
	workers := opts.Scan.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	r := &runner{opts: opts, pending: map[int]*batch{}, ready: make(chan *batch, 8), free: make(chan *batch, 4*workers+16)}
	done := make(chan struct{})
	go r.apply(done)
	stats, err := sensor.ScanEvents(ctx, opts.Logs, opts.Scan, func(int) sensor.EventHandler { return &handler{r: r} })
	close(r.ready)
	<-done
	return stats, err
}

// SortInputs orders inputs so that those that describe devices and names
// (DHCP, known devices, DNS, software) come before those of connections,
// keeping the given order otherwise; a device's connections are then
// attributed with its lease already known. It reads the first block of
// each input (stdin, "-", stays last and is not read).
func SortInputs(inputs []sensor.Input, format sensor.Format) ([]sensor.Input, error) {
	type ranked struct {
		in   sensor.Input
		rank int
	}
	var rs []ranked
	for _, in := range inputs {
		if in.Name == "-" {
			rs = append(rs, ranked{in, 2})
			continue
		}
		k, err := firstKind(in, format)
		if err != nil {
			return nil, err
		}
		rank := 1
		if k != 0 && k != sensor.EventFlow {
			rank = 0
		}
		rs = append(rs, ranked{in, rank})
	}
	slices.SortStableFunc(rs, func(a, b ranked) int { return a.rank - b.rank })
	out := make([]sensor.Input, len(rs))
	for i, r := range rs {
		out[i] = r.in
	}
	return out, nil
}

// firstKind returns the kind of the first event in the input's first
// 256 KiB (0 when there is none).
func firstKind(in sensor.Input, format sensor.Format) (sensor.EventKind, error) {
	rc, err := in.Open()
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", in.Name, err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("read %s: gzip: %w", in.Name, err)
		}
		defer zr.Close()
		r = zr
	}
	head := make([]byte, 256<<10)
	n, _ := io.ReadFull(r, head)
	head = head[:n]
	if i := bytes.LastIndexByte(head, '\n'); i >= 0 && n == len(head) {
		head = head[:i]
	}
	f := format
	if f == nil {
		if f, err = sensor.Detect(head); err != nil {
			return 0, fmt.Errorf("%s: %w", in.Name, err)
		}
	}
	ef, ok := sensor.EventFormatOf(f)
	if !ok {
		return 0, fmt.Errorf("%s: the %s format has no event reader", in.Name, f.Name())
	}
	p := ef.NewEventParser()
	for _, l := range bytes.Split(head, []byte("\n")) {
		var ev sensor.Event
		if ok, err := p.ParseEvent(bytes.TrimSuffix(l, []byte("\r")), &ev); err == nil && ok {
			return ev.Kind, nil
		}
	}
	return 0, nil
}
