package devices

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/hugepage"
)

// Flow is one connection, as the watch needs it.
type Flow struct {
	Time               int64 // Unix nanoseconds of its start
	Src, Dst           netip.Addr
	SrcPort, DstPort   uint16
	Proto              uint8
	Duration           int64 // nanoseconds
	SrcBytes, DstBytes uint64
	// SrcMAC is the originator's link-layer address when the sensor sees
	// the device's own segment; zero otherwise.
	SrcMAC MAC

	// What [Watcher.Prepare] worked out, for Flows.
	prepBy uint64 // the id of the watcher that prepared the flow; 0: none (an id, not a pointer: a caller's flows must not keep a watcher alive)
	class  flowClass
	key    flowKey // class egress: the device (by MAC or address; Flows adds leases)
}

// flowClass is where a connection goes, as Flows counts it.
type flowClass uint8

const (
	classUnknown  flowClass = iota // not prepared
	classEgress                    // from a device out of the constituency
	classInbound                   // from outside to a device
	classInternal                  // inside
	classOther                     // neither end inside, or not to a public address
)

// Lease is what DHCP (or Zeek's known devices) says of a device: its MAC,
// the address it was given (when known), its host name and fingerprint.
type Lease struct {
	Time        int64
	MAC         MAC
	Addr        netip.Addr // invalid when unknown
	Hostname    string
	Fingerprint string
}

// Stats counts what a watcher saw.
type Stats struct {
	// Flows counts connections; Egress those from a device to outside
	// the constituency (the ones profiled); Inbound those from outside
	// to a device; Internal those inside; Other the rest (neither end
	// inside, or to multicast, broadcast, link-local or private
	// addresses outside the constituency).
	Flows, Egress, Inbound, Internal, Other uint64
	// Leases, Resolutions and Software count the other events.
	Leases, Resolutions, Software uint64
	// Devices is the number of devices kept; Forgotten counts those
	// dropped for room (the least recently seen).
	Devices   int
	Forgotten uint64
	// Evictions counts destinations replaced in a device's top-K.
	Evictions uint64
	// Findings counts the findings made; Suppressed those over a
	// device's daily limit.
	Findings, Suppressed uint64
	// Destinations is the number of device–destination pairs kept.
	Destinations int
}

// Watcher keeps device profiles and makes findings. It is not safe for
// concurrent use: feed it from one goroutine, in log order. With
// [Watcher.SetParallel] it spreads the devices over shards that [Watcher.Flows]
// and [Watcher.Sweep] run in parallel.
type Watcher struct {
	id      uint64 // from watcherIDs, never 0
	cfg     Config
	loc     geo.Locator
	rloc    rangeLocator // loc, when it gives ranges
	geo     *geoCache    // the countries of recent destinations' ranges (with rloc)
	key     []byte
	local   []netip.Prefix
	local4  [][2]uint32 // the IPv4 networks of local, as ranges
	devices devTable
	list    []*device       // in creation order, for deterministic sweeps
	leases  *genMap[MAC]    // shared with the shards
	names   *genMap[string] // shared with the shards
	shards  []*Watcher      // when parallel: each holds some devices
	part    [][]int32       // Flows: the connections of each shard
	async   *asyncShards    // FlowsAsync: the shards' goroutines, nil when stopped
	egr     []int32         // Flows: the connections out of the constituency
	out     []Finding
	stats   Stats
	clock   int64  // latest event time
	sink    uint64 // what Flows reads ahead, kept so that the reads stay
	slab    []dest // room for full top-K tables
	sc      scratch
}

// genMap is a bounded map from addresses: two generations, the older
// dropped when the newer fills half the limit.
type genMap[V any] struct {
	cur, prev map[[16]byte]V
	limit     int
}

func (m *genMap[V]) get(a netip.Addr) (V, bool) {
	k := a.As16()
	if v, ok := m.cur[k]; ok {
		return v, true
	}
	v, ok := m.prev[k]
	return v, ok
}

func (m *genMap[V]) put(a netip.Addr, v V) {
	if m.cur == nil || len(m.cur) >= m.limit/2 {
		m.prev = m.cur
		m.cur = make(map[[16]byte]V)
	}
	m.cur[a.As16()] = v
}

func (m *genMap[V]) len() int { return len(m.cur) + len(m.prev) }

// watcherIDs numbers watchers, for the flows they prepare.
var watcherIDs atomic.Uint64

// New returns a watcher. loc places destinations in countries (nil: every
// country unknown); key is the node's pseudonym key (at least
// MinKeySize bytes).
func New(cfg Config, loc geo.Locator, key []byte) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("pseudonym key: %d bytes, want at least %d", len(key), MinKeySize)
	}
	c := cfg.withDefaults()
	w := &Watcher{id: watcherIDs.Add(1), cfg: c, loc: loc, key: append([]byte(nil), key...)}
	w.rloc, _ = loc.(rangeLocator)
	for _, p := range c.Constituency {
		p = p.Masked()
		w.local = append(w.local, p)
		if p.Addr().Is4() {
			b := p.Addr().As4()
			lo := binary.BigEndian.Uint32(b[:])
			w.local4 = append(w.local4, [2]uint32{lo, lo | uint32(uint64(1)<<(32-p.Bits())-1)})
		}
	}
	w.leases = &genMap[MAC]{limit: 4 * c.MaxDevices}
	w.names = &genMap[string]{limit: 1 << 20}
	return w, nil
}

// Config returns the configuration in force, defaults filled in.
func (w *Watcher) Config() Config { return w.cfg }

// Stats returns the counts so far.
func (w *Watcher) Stats() Stats {
	w.Wait()
	st := w.stats
	if len(w.shards) > 0 {
		for _, s := range w.shards {
			st.Forgotten += s.stats.Forgotten
			st.Evictions += s.stats.Evictions
			st.Findings += s.stats.Findings
			st.Suppressed += s.stats.Suppressed
		}
	}
	for _, s := range w.parts() {
		st.Devices += s.devices.len()
		for _, d := range s.list {
			st.Destinations += len(d.dests)
		}
	}
	return st
}

// Clock returns the latest event time seen (zero before any).
func (w *Watcher) Clock() time.Time {
	if w.clock == 0 {
		return time.Time{}
	}
	return time.Unix(0, w.clock).UTC()
}

// Inside reports whether a is in the constituency.
func (w *Watcher) Inside(a netip.Addr) bool {
	if a.Is4() {
		b := a.As4()
		v := binary.BigEndian.Uint32(b[:])
		for _, r := range w.local4 {
			if v >= r[0] && v <= r[1] {
				return true
			}
		}
		return false
	}
	a = a.Unmap()
	for _, p := range w.local {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// egress reports whether traffic to a leaves the local network: a global
// unicast address that is not private-use.
func egress(a netip.Addr) bool {
	if a.Is4() {
		b := a.As4()
		return egress4(binary.BigEndian.Uint32(b[:]))
	}
	return a.IsGlobalUnicast() && !a.IsPrivate() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// egress4 is egress for the IPv4 address v, on the integer: not
// unspecified (0.0.0.0), broadcast, loopback (127/8), link-local
// (169.254/16), multicast (224/4) or private-use (10/8, 172.16/12,
// 192.168/16). net/netip's methods compare 16-byte values one test at a
// time, on every connection.
func egress4(v uint32) bool {
	switch {
	case v == 0, v == 0xffffffff,
		v>>24 == 127, v>>24 == 10,
		v>>16 == 169<<8|254, v>>16 == 192<<8|168,
		v>>20 == 172<<4|1, // 172.16/12
		v>>28 == 0xe:      // 224/4
		return false
	}
	return true
}

// device is one device's profile. The fields every connection touches
// come first, so that they share the first cache lines.
type device struct {
	dests       []dest
	idx         []uint16 // open addressing over dests: index+1, 0 empty
	conns       uint64
	bytesOut    uint64
	bytesIn     uint64
	first, last int64
	addr        netip.Addr // the IPv4 address it last used
	addr6       netip.Addr // the IPv6 address it last used
	id          DeviceID
	mac         MAC
	hostname    string
	fingerprint string
	software    []string // at most maxSoftware
	class       int      // 1 + index in Config.Classes; 0 none
	savedClass  string   // the class name read from a profile file, while loading
	classWhy    string
	// cstats counts, per country, the connections of the destinations
	// the top-K no longer holds; a summary adds those it holds.
	cstats     []countryStat
	ccs        [][2]byte // the countries of cstats, in order: searched by admit
	countries  countrySet
	nets       netSet
	hll        hll
	door       [doorkeeperBits / 64]uint64 // destinations seen once while the top-K was full
	doorN      uint16
	recent     []Record // the latest findings, at most maxRecent
	day        int64    // the day (Unix days) dayCount counts
	dayCount   int
	suppressed uint64
	pseudo     string
	// idxBuf is the index when the top-K is at most inlineIdx/2: at a
	// fixed place and size, so that the read-ahead of a connection's
	// index slot needs no load before it (see Watcher.egressBatch).
	idxBuf [inlineIdx]uint16
}

// inlineIdx is the size of a device's own index: enough for a top-K of
// up to 32 (the default) at half load.
const inlineIdx = 64

// idxInline reports whether the device's index is its idxBuf.
func (d *device) idxInline() bool {
	return len(d.idx) > 0 && unsafe.SliceData(d.idx) == &d.idxBuf[0]
}

// fold adds a destination's connections to its country's count, when
// the top-K lets it go.
func (d *device) fold(e *dest) {
	cs := &d.cstats[e.ci]
	cs.conns += uint64(e.count - e.err)
	cs.bytesOut += e.bytesOut
	cs.bytesIn += e.bytesIn
	cs.first = min(cs.first, e.first)
	cs.last = max(cs.last, e.last)
}

// addCountryStat appends a country's counts.
func (d *device) addCountryStat(c countryStat) {
	d.cstats = append(d.cstats, c)
	d.ccs = append(d.ccs, c.cc)
}

// setAddr records the address the device uses; it reports whether it
// changed.
func (d *device) setAddr(a netip.Addr) bool {
	p := &d.addr
	if a.Is6() {
		p = &d.addr6
	}
	if *p == a {
		return false
	}
	*p = a
	return true
}

const (
	maxSoftware = 4
	maxRecent   = 16
)

type countryStat struct {
	cc                       [2]byte
	conns, bytesOut, bytesIn uint64
	first, last              int64
}

// dest is one destination of a device.
type dest struct {
	// What lookups and evictions read first, together.
	addr   netip.Addr
	port   uint16
	proto  uint8
	steady uint8   // how many recent intervals were whole multiples of the one before
	count  uint32  // space-saving count (an overestimate by at most err)
	score  float32 // the last beacon score
	last   int64
	// What every connection updates.
	gap      uint32 // the latest interval between connections, ms
	ci       uint16 // index in device.cstats
	checked  bool   // the class policy has been applied
	breached bool   // and found breached
	bytesOut uint64
	bytesIn  uint64
	first    int64
	maxDur   int64
	win      window
	// The rest.
	err      uint32 // space-saving overestimate of count
	scoredAt uint32 // count when last scored
	cc       [2]byte
	name     string
	longAt   int64 // when a long connection was last reported (0 never)
	largeAt  int64
	beaconAt int64
}

func (w *Watcher) pseudonym(d *device) string {
	if d.pseudo == "" {
		d.pseudo = Pseudonym(w.key, d.id)
	}
	return d.pseudo
}

func (w *Watcher) className(d *device) string {
	if d.class == 0 {
		return ""
	}
	return w.cfg.Classes[d.class-1].Name
}

// classify (re)computes the device's class; it reports whether it
// changed.
func (w *Watcher) classify(d *device) bool {
	a := attrs{mac: d.mac, addrs: [2]netip.Addr{d.addr, d.addr6}, hostname: d.hostname, fingerprint: d.fingerprint, software: d.software}
	cl, why := 0, ""
	for i := range w.cfg.Classes {
		if ok, r := w.cfg.Classes[i].match(&a); ok {
			cl, why = i+1, r
			break
		}
	}
	if cl == d.class {
		d.classWhy = why
		return false
	}
	d.class, d.classWhy = cl, why
	for i := range d.dests {
		d.dests[i].checked, d.dests[i].breached = false, false
	}
	return true
}

// lookupDevice returns the device with id, creating it (and making room)
// when create is set.
func (w *Watcher) lookupDevice(id DeviceID, t int64, create bool) *device {
	return w.lookupDeviceHash(id, idHash(&id), t, create)
}

// lookupDeviceHash is lookupDevice when the caller has the identity's
// hash.
func (w *Watcher) lookupDeviceHash(id DeviceID, h uint64, t int64, create bool) *device {
	if d := w.devices.get(&id, h); d != nil || !create {
		return d
	}
	if w.devices.len() >= w.cfg.MaxDevices {
		w.forget()
	}
	d := &device{id: id, first: t, last: t}
	if m, ok := id.MAC(); ok {
		d.mac = m
	}
	if a, ok := id.Addr(); ok {
		d.setAddr(a)
	}
	w.devices.put(d, h)
	w.list = append(w.list, d)
	return d
}

// forget drops the least recently seen hundredth of the devices.
func (w *Watcher) forget() {
	n := max(1, len(w.list)/100)
	byLast := slices.Clone(w.list)
	slices.SortFunc(byLast, func(a, b *device) int { return cmp.Compare(a.last, b.last) })
	gone := map[*device]bool{}
	for _, d := range byLast[:n] {
		gone[d] = true
		w.devices.del(&d.id, idHash(&d.id))
	}
	w.list = slices.DeleteFunc(w.list, func(d *device) bool { return gone[d] })
	w.stats.Forgotten += uint64(n)
}

// Flow profiles one connection.
func (w *Watcher) Flow(f *Flow) {
	w.Wait()
	w.stats.Flows++
	if f.Time > w.clock {
		w.clock = f.Time
	}
	srcIn, dstIn := w.Inside(f.Src), w.Inside(f.Dst)
	switch {
	case srcIn && dstIn:
		w.stats.Internal++
		return
	case dstIn:
		w.stats.Inbound++
		return
	case !srcIn || !egress(f.Dst.Unmap()):
		w.stats.Other++
		return
	}
	w.stats.Egress++
	k := flowKey{id: w.deviceOf(f)}
	k.h = idHash(&k.id)
	if len(w.shards) > 0 {
		w.shards[k.h%uint64(len(w.shards))].egressFlow(f, nil, 0, &k)
		return
	}
	w.egressFlow(f, nil, 0, &k)
}

// flowKey is the device of a connection: its identity and the
// identity's hash.
type flowKey struct {
	id DeviceID
	h  uint64
}

// flowClassOf returns where f goes.
func (w *Watcher) flowClassOf(f *Flow) flowClass {
	srcIn, dstIn := w.Inside(f.Src), w.Inside(f.Dst)
	switch {
	case srcIn && dstIn:
		return classInternal
	case dstIn:
		return classInbound
	case !srcIn || !egress(f.Dst.Unmap()):
		return classOther
	}
	return classEgress
}

// Prepare works out, ahead of [Watcher.Flows], what of a connection
// depends only on the configuration: where it goes and, when it goes out,
// its device by link-layer address or source address (Flows still looks
// up DHCP leases, which change with the log). It is safe to call from
// any goroutine while the watcher runs, so that the parsing goroutines
// take this work off the one that applies the connections; the flow must
// not change after.
func (w *Watcher) Prepare(f *Flow) {
	f.prepBy = w.id
	f.class = w.flowClassOf(f)
	if f.class == classEgress {
		if !f.SrcMAC.IsZero() && f.SrcMAC[0]&1 == 0 {
			f.key.id = MACDevice(f.SrcMAC)
		} else {
			f.key.id = AddrDevice(f.Src)
		}
		f.key.h = idHash(&f.key.id)
	}
}

// fullTable returns room for a device's full top-K, from a slab of
// memory backed by huge pages where the kernel gives them on request.
func (w *Watcher) fullTable(k int) []dest {
	if len(w.slab) < k {
		n := max(k, (8<<20)/int(unsafe.Sizeof(dest{})))
		w.slab = make([]dest, n)
		hugepage.Advise(w.slab, 2<<20)
	}
	t := w.slab[:0:k]
	w.slab = w.slab[k:]
	return t
}

// deviceOf returns the identity of the device that made f.
func (w *Watcher) deviceOf(f *Flow) DeviceID {
	if !f.SrcMAC.IsZero() && f.SrcMAC[0]&1 == 0 {
		return MACDevice(f.SrcMAC)
	}
	src := f.Src.Unmap()
	if w.leases.len() > 0 {
		if m, ok := w.leases.get(src); ok {
			return MACDevice(m)
		}
	}
	return AddrDevice(src)
}

// prefetchBatch is how many connections [Watcher.Flows] looks ahead.
const prefetchBatch = 32

// Flows profiles connections, as Flow does each in turn. The connections
// out of the constituency go to their devices' shards, in parallel when
// there are several (see [Watcher.SetParallel]); each shard first looks
// up the devices of a batch of connections and reads the index slots and
// destination entries they will use, so that the cache misses of many
// connections overlap instead of following one another: with tens of
// thousands of devices the profiles do not fit in the caches and a
// connection is otherwise a chain of misses. Flows prepares the
// connections [Watcher.Prepare] has not (it writes to fs).
func (w *Watcher) Flows(fs []Flow) {
	w.Wait()
	if len(w.shards) == 0 {
		w.egr = w.partition(fs, nil, w.egr)
		w.egressBatch(fs, w.egr)
		return
	}
	w.partition(fs, w.part, nil)
	w.parallel(func(k int, s *Watcher) { s.egressBatch(fs, w.part[k]) })
}

// partition counts the connections fs, prepares those [Watcher.Prepare]
// has not, and puts the indexes of those out of the constituency in
// part by shard, or, without shards, appends them to egr, which it
// returns.
func (w *Watcher) partition(fs []Flow, part [][]int32, egr []int32) []int32 {
	egr = egr[:0]
	leases := w.leases.len() > 0
	for i := range part {
		part[i] = part[i][:0]
	}
	for i := range fs {
		f := &fs[i]
		w.stats.Flows++
		if f.Time > w.clock {
			w.clock = f.Time
		}
		if f.prepBy != w.id {
			w.Prepare(f)
		}
		switch f.class {
		case classInternal:
			w.stats.Internal++
			continue
		case classInbound:
			w.stats.Inbound++
			continue
		case classOther:
			w.stats.Other++
			continue
		}
		w.stats.Egress++
		key := &f.key
		if leases && (f.SrcMAC.IsZero() || f.SrcMAC[0]&1 != 0) {
			// Known by its address: a lease may say its MAC.
			key.id = w.deviceOf(f)
			key.h = idHash(&key.id)
		}
		if len(w.shards) == 0 {
			egr = append(egr, int32(i))
			continue
		}
		k := key.h % uint64(len(w.shards))
		part[k] = append(part[k], int32(i))
	}
	return egr
}

// egressBatch profiles the connections fs[idx...] (out of the
// constituency, of this watcher's devices), reading ahead.
func (w *Watcher) egressBatch(fs []Flow, idx []int32) {
	var devs [prefetchBatch]*device
	var hs [prefetchBatch]uint64
	inline := 2*w.cfg.TopDestinations <= inlineIdx
	for len(idx) > 0 {
		n := min(len(idx), prefetchBatch)
		batch := idx[:n]
		idx = idx[n:]
		for i, j := range batch {
			devs[i] = w.devices.get(&fs[j].key.id, fs[j].key.h)
		}
		var sink uint64
		for i, d := range devs[:n] {
			if d == nil {
				continue
			}
			f := &fs[batch[i]]
			hs[i] = keyHash(f.Dst.Unmap(), f.Proto, f.DstPort)
			// The device's first two lines (its tables, counts, times and
			// address), which every connection reads, beside the index slot.
			sink += d.conns ^ uint64(d.last)
			if inline {
				// The slot's address depends on d alone: its read
				// overlaps the reads of the device's first lines.
				sink += uint64(d.idxBuf[slot(hs[i], inlineIdx-1)])
			} else if len(d.idx) > 0 {
				sink += uint64(d.idx[slot(hs[i], len(d.idx)-1)])
			}
		}
		for i, d := range devs[:n] {
			if d == nil || len(d.idx) == 0 {
				continue
			}
			if j := d.idx[slot(hs[i], len(d.idx)-1)]; j != 0 {
				e := &d.dests[j-1]
				// Its first byte (the address the lookup compares; an
				// entry is not aligned to cache lines, and the address
				// is on a line of its own for nearly half of them) and
				// its count; the window below is on the last line used.
				sink += uint64(*(*byte)(unsafe.Pointer(e))) + uint64(e.count)
				if n := len(e.win.beats); n > 0 {
					// The newest beat: the connection compares with it,
					// and adds its own beside it (after it, or over the
					// oldest, which follows it in the ring).
					k := int(e.win.head) + n - 1
					if k >= n {
						k -= n
					}
					sink += uint64(e.win.beats[k].t)
				}
			} else if len(d.dests) >= w.cfg.TopDestinations {
				// Not in the full top-K: a destination the device's side
				// tables place, which may push an entry out.
				sink += w.readAheadNew(d, &fs[batch[i]], hs[i])
			}
		}
		w.sink += sink
		forgotten := w.stats.Forgotten
		for i, j := range batch {
			f := &fs[j]
			d := devs[i]
			if d == nil || len(d.idx) == 0 || w.stats.Forgotten != forgotten {
				// A new device, or one the read-ahead could not use; or
				// devices were forgotten since (the one found may be gone).
				w.egressFlow(f, nil, 0, &f.key)
				continue
			}
			w.egressFlow(f, d, hs[i], &f.key)
		}
	}
}

// readAheadNew reads what a connection to a destination not in the
// device's full top-K will: the device's tables of countries, the
// distinct-destination sketch's register, the place of the destination's
// network among the device's and, when the doorkeeper has seen it before
// (it then takes an entry), the counts and times of the entries, which
// the choice of the one it replaces compares. It changes nothing; on the
// full day of 10,000 devices a sixth of the connections take this path,
// and each of these tables is otherwise a cache miss of its own, one
// after the other (a CPU profile put a fifth of the time there).
func (w *Watcher) readAheadNew(d *device, f *Flow, h uint64) uint64 {
	var sink uint64
	if len(d.ccs) > 0 {
		sink += uint64(d.ccs[0][0])
		sink += d.cstats[0].conns + d.cstats[len(d.cstats)-1].conns
	}
	dst := f.Dst.Unmap()
	sink += uint64(d.hll[hashAddr(dst)>>(64-hllP)])
	if n := len(d.nets.fp); n >= 16 {
		fp := netFingerprint(w.networkOf(dst))
		sink += uint64(d.nets.fp[int(uint64(fp)*uint64(n)>>32)])
	}
	if b := (h >> 8) % doorkeeperBits; d.door[b/64]&(1<<(b%64)) != 0 {
		for i := range d.dests {
			e := &d.dests[i]
			sink += uint64(e.steady) + uint64(e.last)
		}
	}
	return sink
}

// egressFlow profiles a connection from a device out of the
// constituency; key is its device, d the device when the caller has it,
// and h the hash of its destination when not 0.
func (w *Watcher) egressFlow(f *Flow, d *device, h uint64, key *flowKey) {
	src := f.Src.Unmap()
	if d == nil {
		d = w.lookupDeviceHash(key.id, key.h, f.Time, true)
	}
	if (d.setAddr(src) || d.conns == 0) && len(w.cfg.Classes) > 0 {
		w.classify(d)
	}
	d.conns++
	d.bytesOut += f.SrcBytes
	d.bytesIn += f.DstBytes
	if f.Time < d.first {
		d.first = f.Time
	}
	if f.Time > d.last {
		d.last = f.Time
	}
	if h == 0 {
		h = keyHash(f.Dst.Unmap(), f.Proto, f.DstPort)
	}
	e := w.destFor(d, f, h)
	if e == nil {
		w.unadmitted(d, f)
		return
	}
	e.count++
	e.bytesOut += f.SrcBytes
	e.bytesIn += f.DstBytes
	if f.Time < e.first {
		e.first = f.Time
	}
	if f.Time > e.last {
		e.last = f.Time
	}
	e.maxDur = max(e.maxDur, f.Duration)
	if e.count&(e.count-1) == 0 && w.names.len() > 0 && e.name == "" {
		if n, ok := w.names.get(e.addr); ok {
			e.name = n
		}
	}
	ms := f.Time / 1e6
	if n := len(e.win.beats); n > 0 {
		if last := e.win.newest(); ms-last >= w.cfg.Beacon.MinGap.Milliseconds() {
			e.regularity(ms - last)
		}
	}
	e.win.add(ms, f.SrcBytes, w.cfg.Beacon.Window)

	if f.Duration >= int64(w.cfg.LongConnection) && (e.longAt == 0 || f.Time-e.longAt >= int64(w.cfg.ReportEvery)) {
		e.longAt = f.Time
		w.connFinding(d, e, f, KindLongConnection)
	}
	if f.SrcBytes >= w.cfg.LargeBytes && (e.largeAt == 0 || f.Time-e.largeAt >= int64(w.cfg.ReportEvery)) {
		e.largeAt = f.Time
		w.connFinding(d, e, f, KindLargeUpload)
	}
}

// unadmitted accounts a connection to a destination the top-K did not
// take (its first sighting while full): it counts in its country, and
// first contacts, class policy, long connections and large uploads are
// judged as for any other; it only has no entry of its own.
func (w *Watcher) unadmitted(d *device, f *Flow) {
	e := &dest{addr: f.Dst.Unmap(), port: f.DstPort, proto: f.Proto, first: f.Time, last: f.Time, count: 1,
		bytesOut: f.SrcBytes, bytesIn: f.DstBytes, maxDur: f.Duration}
	w.admit(d, e, f)
	d.fold(e)
	if f.Duration >= int64(w.cfg.LongConnection) {
		w.connFinding(d, e, f, KindLongConnection)
	}
	if f.SrcBytes >= w.cfg.LargeBytes {
		w.connFinding(d, e, f, KindLargeUpload)
	}
}

// doorkeeperBits is the size of a device's doorkeeper.
const doorkeeperBits = 512

// doorkeeper reports whether the destination of hash h was seen before
// since the doorkeeper was last cleared, and marks it seen: a full top-K
// admits a destination on its second sighting only, so that one-off
// destinations do not push out the entries it keeps (TinyLFU's
// doorkeeper). It is cleared when half full.
func (d *device) doorkeeper(h uint64) bool {
	b := (h >> 8) % doorkeeperBits
	if d.door[b/64]&(1<<(b%64)) != 0 {
		return true
	}
	d.door[b/64] |= 1 << (b % 64)
	if d.doorN++; d.doorN >= doorkeeperBits/2 {
		d.door, d.doorN = [doorkeeperBits / 64]uint64{}, 0
	}
	return false
}

// steadyProtect is the steadiness from which a destination is kept in
// its device's top-K even when it has few connections: it may be a slow
// beacon whose window the next sweep should score.
const steadyProtect = 6

// regularity updates the destination's steadiness with the interval gap
// (ms) since its latest connection: an interval within a quarter of a
// whole multiple (or fraction) of the one before counts up, any other
// halves the count. It costs nothing like a score and lets the top-K
// keep slow, regular destinations before any sweep has scored them.
func (e *dest) regularity(gap int64) {
	g := uint32(min(gap, math.MaxUint32))
	prev := e.gap
	e.gap = g
	if prev == 0 || g == 0 {
		return
	}
	r := float64(g) / float64(prev)
	if r < 1 {
		r = 1 / r
	}
	if k := math.Round(r); k >= 1 && math.Abs(r-k) <= 0.25 {
		if g > prev {
			e.gap = uint32(float64(g) / k) // a missed beat: keep the period
		}
		if e.steady < math.MaxUint8 {
			e.steady++
		}
		return
	}
	e.steady /= 2
}

// keyHash hashes a destination (address, protocol, port) for a device's
// index and doorkeeper: one multiplication between two folds. It is
// never 0.
func keyHash(a netip.Addr, proto uint8, port uint16) uint64 {
	b := a.As16()
	x := binary.LittleEndian.Uint64(b[8:]) ^ binary.LittleEndian.Uint64(b[:8])*0x9e3779b97f4a7c15 ^ uint64(port)<<40 ^ uint64(proto)<<56
	x ^= x >> 32 // the IPv4 bytes are the high half: fold them into the low one
	x *= 0xff51afd7ed558ccd
	return x ^ x>>29 | 1
}

// slot is the home slot of hash h in an index of mask+1 slots.
func slot(h uint64, mask int) int { return int(h>>32) & mask }

// idxHash places a destination in an index of mask+1 slots.
func idxHash(a netip.Addr, proto uint8, port uint16, mask int) int {
	return slot(keyHash(a, proto, port), mask)
}

// destFor returns the device's entry for the destination of f, making
// one (and, when the device's top-K is full, replacing the entry with
// the fewest connections that does not look like a beacon).
func (w *Watcher) destFor(d *device, f *Flow, h uint64) *dest {
	dst := f.Dst.Unmap()
	if len(d.idx) > 0 {
		mask := len(d.idx) - 1
		for i := slot(h, mask); ; i = (i + 1) & mask {
			j := d.idx[i]
			if j == 0 {
				break
			}
			if e := &d.dests[j-1]; e.addr == dst && e.port == f.DstPort && e.proto == f.Proto {
				return e
			}
		}
	}
	d.hll.add(hashAddr(dst))
	k := w.cfg.TopDestinations
	var e *dest
	if len(d.dests) >= k && !d.doorkeeper(h) {
		return nil // a first sighting while the top-K is full: not admitted
	}
	if len(d.dests) < k {
		if cap(d.dests) == len(d.dests) {
			n := min(max(2*cap(d.dests), 4), k)
			var nd []dest
			if n == k {
				nd = w.fullTable(k)[:len(d.dests)]
			} else {
				nd = make([]dest, len(d.dests), n)
			}
			copy(nd, d.dests)
			d.dests = nd
		}
		d.dests = append(d.dests, dest{addr: dst, port: f.DstPort, proto: f.Proto, first: f.Time, last: f.Time})
		e = &d.dests[len(d.dests)-1]
		if len(d.dests)*2 > len(d.idx) {
			w.reindex(d)
		} else {
			w.indexAdd(d, len(d.dests)-1)
		}
	} else {
		// The victim: the entry with the fewest connections, passing over
		// those that look like beacons (space-saving: the new entry
		// inherits the victim's count as its overestimate).
		// The victim's protection, count and time stay in registers
		// through the scan rather than being read and worked out again
		// for every entry compared with it.
		threshold := float32(w.cfg.Beacon.Threshold / 2)
		victim := 0
		v := &d.dests[0]
		vb, vc, vl := v.score >= threshold || v.steady >= steadyProtect, v.count, v.last
		for i := 1; i < len(d.dests); i++ {
			c := &d.dests[i]
			cb := c.score >= threshold || c.steady >= steadyProtect
			if vb != cb {
				if vb {
					victim, vb, vc, vl = i, cb, c.count, c.last
				}
				continue
			}
			if c.count < vc || c.count == vc && c.last < vl {
				victim, vc, vl = i, c.count, c.last
			}
		}
		floor := d.dests[victim].count
		w.stats.Evictions++
		d.fold(&d.dests[victim])
		w.indexDel(d, victim)
		e = &d.dests[victim]
		beats := e.win.beats[:0] // the new entry reuses the window's room
		*e = dest{addr: dst, port: f.DstPort, proto: f.Proto, first: f.Time, last: f.Time, count: floor, err: floor}
		e.win.beats = beats
		w.indexAdd(d, victim)
	}
	w.admit(d, e, f)
	return e
}

// reindex rebuilds a device's index for its destinations.
func (w *Watcher) reindex(d *device) {
	size := 8
	for size < 2*len(d.dests) {
		size *= 2
	}
	if 2*w.cfg.TopDestinations <= inlineIdx {
		d.idx = d.idxBuf[:]
		clear(d.idx)
	} else if cap(d.idx) >= size {
		d.idx = d.idx[:size]
		clear(d.idx)
	} else {
		d.idx = make([]uint16, size)
	}
	for i := range d.dests {
		w.indexAdd(d, i)
	}
}

// indexDel removes entry i from the device's index (linear probing with
// backward-shift deletion: no tombstones, lookups stay short).
func (w *Watcher) indexDel(d *device, i int) {
	mask := len(d.idx) - 1
	e := &d.dests[i]
	j := idxHash(e.addr, e.proto, e.port, mask)
	for d.idx[j] != uint16(i+1) {
		j = (j + 1) & mask
	}
	for {
		d.idx[j] = 0
		k := j
		for {
			k = (k + 1) & mask
			if d.idx[k] == 0 {
				return
			}
			x := &d.dests[d.idx[k]-1]
			h := idxHash(x.addr, x.proto, x.port, mask)
			// The entry at k may move to j unless its home h lies
			// cyclically in (j, k].
			if j <= k && (h <= j || h > k) || j > k && h <= j && h > k {
				d.idx[j] = d.idx[k]
				j = k
				break
			}
		}
	}
}

func (w *Watcher) indexAdd(d *device, i int) {
	mask := len(d.idx) - 1
	e := &d.dests[i]
	for j := idxHash(e.addr, e.proto, e.port, mask); ; j = (j + 1) & mask {
		if d.idx[j] == 0 {
			d.idx[j] = uint16(i + 1)
			return
		}
	}
}

// networkOf returns the network of a at the configured lengths.
func (w *Watcher) networkOf(a netip.Addr) netip.Prefix {
	return network(a, w.cfg.NetworkBits4, w.cfg.NetworkBits6)
}

// network returns the network of a of bits4 (IPv4) or bits6 bits, as
// a.Prefix does; an IPv4 address is masked as an integer (Prefix masks
// 128 bits: over 500 instructions, on every destination admitted).
func network(a netip.Addr, bits4, bits6 int) netip.Prefix {
	if a.Is4() && bits4 >= 0 && bits4 <= 32 {
		b := a.As4()
		v := binary.BigEndian.Uint32(b[:]) & ^uint32(uint64(1)<<(32-bits4)-1)
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits4)
	}
	bits := bits6
	if a.Is4() {
		bits = bits4
	}
	p, _ := a.Prefix(bits)
	return p
}

// admit fills a new destination entry: its country, name and network,
// and makes the first-contact and class-policy findings.
func (w *Watcher) admit(d *device, e *dest, f *Flow) {
	cc := w.countryOf(e.addr)
	e.cc = cc
	if n, ok := w.names.get(e.addr); ok {
		e.name = n
	}
	ci := slices.Index(d.ccs, cc) // two bytes a country: one cache line
	if ci < 0 {
		d.addCountryStat(countryStat{cc: cc, first: math.MaxInt64, last: math.MinInt64})
		ci = len(d.cstats) - 1
	}
	e.ci = uint16(ci)
	learning := f.Time < d.first+int64(w.cfg.Learn)
	newCountry := !d.countries.has(cc)
	if newCountry {
		d.countries.add(cc)
	}
	net := w.networkOf(e.addr)
	newNet := d.nets.add(netFingerprint(net), w.cfg.MaxNetworks)
	if !learning {
		switch {
		case newCountry:
			w.emit(d, e, Finding{Kind: KindNewCountry, Network: net, First: unixTime(f.Time), Last: unixTime(f.Time), Count: 1,
				BytesOut: f.SrcBytes, BytesIn: f.DstBytes, Score: 1}, func(fd *Finding) string {
				known := d.countries.list()
				known = slices.DeleteFunc(known, func(s string) bool { return s == ccOrUnknown(cc) })
				what := "country " + ccOrUnknown(cc)
				if cc == ([2]byte{}) {
					what = "an address the geo data cannot place"
				}
				return fmt.Sprintf("first contact with %s: %s, after the learning period of %s (countries before: %s)",
					what, fd.where(), durText(w.cfg.Learn), orNone(known))
			})
		case newNet:
			w.emit(d, e, Finding{Kind: KindNewNetwork, Network: net, First: unixTime(f.Time), Last: unixTime(f.Time), Count: 1,
				BytesOut: f.SrcBytes, BytesIn: f.DstBytes, Score: 1}, func(fd *Finding) string {
				return fmt.Sprintf("first contact with network %s: %s, after the learning period of %s (%d networks known before)",
					net, fd.where(), durText(w.cfg.Learn), len(d.nets.fp)-1)
			})
		}
	}
	w.checkPolicy(d, e)
}

func ccOrUnknown(cc [2]byte) string {
	if cc == ([2]byte{}) {
		return "??"
	}
	return string(cc[:])
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// checkPolicy applies the device's class policy to a destination once.
func (w *Watcher) checkPolicy(d *device, e *dest) {
	if e.checked {
		return
	}
	e.checked = true
	if d.class == 0 {
		return
	}
	cl := &w.cfg.Classes[d.class-1]
	if !cl.HasPolicy() {
		return
	}
	v := cl.Judge(e.addr, ccString(e.cc), e.name)
	if v.Permitted {
		return
	}
	e.breached = true
	for i := range d.dests {
		if o := &d.dests[i]; o != e && o.addr == e.addr && o.breached {
			return // reported for another port of the same address
		}
	}
	for _, r := range d.recent {
		if r.Kind == KindPolicy && r.Dest == e.addr {
			return // reported before it had an entry, or before it was let go
		}
	}
	w.emit(d, e, Finding{Kind: KindPolicy, Network: w.networkOf(e.addr), First: unixTime(e.first), Last: unixTime(e.last),
		Count: uint64(e.count - e.err), BytesOut: e.bytesOut, BytesIn: e.bytesIn, Score: 1}, func(fd *Finding) string {
		return fmt.Sprintf("class policy breached by a connection to %s: %s", fd.where(), v.Reason)
	})
}

// connFinding reports a long connection or a large upload.
func (w *Watcher) connFinding(d *device, e *dest, f *Flow, k Kind) {
	fd := Finding{Kind: k, Network: w.networkOf(e.addr), First: unixTime(f.Time), Last: unixTime(f.Time + f.Duration),
		Count: 1, BytesOut: f.SrcBytes, BytesIn: f.DstBytes, Duration: time.Duration(f.Duration), Score: 1, Port: f.DstPort, Proto: f.Proto}
	w.emit(d, e, fd, func(fd *Finding) string {
		if k == KindLongConnection {
			return fmt.Sprintf("long connection to %s: %s from %s, %s sent, %s received; long connections start at %s",
				fd.where(), durText(fd.Duration), fd.First.Format(time.RFC3339), bytesText(fd.BytesOut), bytesText(fd.BytesIn), durText(w.cfg.LongConnection))
		}
		return fmt.Sprintf("large upload to %s: %s sent (%s received) in one connection of %s from %s; large uploads start at %s",
			fd.where(), bytesText(fd.BytesOut), bytesText(fd.BytesIn), durText(fd.Duration), fd.First.Format(time.RFC3339), bytesText(w.cfg.LargeBytes))
	})
}

func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// emit completes a finding (device, destination, evidence) and queues
// it, unless the device is over its daily limit.
func (w *Watcher) emit(d *device, e *dest, fd Finding, evidence func(*Finding) string) {
	day := fd.Last.Unix() / 86400
	if day != d.day {
		d.day, d.dayCount = day, 0
	}
	if d.dayCount >= w.cfg.MaxFindingsPerDay {
		d.suppressed++
		w.stats.Suppressed++
		return
	}
	d.dayCount++
	fd.Device = d.id
	fd.Pseudonym = w.pseudonym(d)
	fd.Class = w.className(d)
	fd.Hostname = d.hostname
	fd.Dest = e.addr
	fd.DestName = e.name
	fd.Country = ccString(e.cc)
	if fd.Port == 0 && fd.Proto == 0 {
		fd.Port, fd.Proto = e.port, e.proto
	}
	fd.Evidence = evidence(&fd)
	w.out = append(w.out, fd)
	w.stats.Findings++
	r := Record{Kind: fd.Kind, Time: fd.Last, Dest: fd.Dest, DestName: fd.DestName, Country: fd.Country, Score: fd.Score, Evidence: fd.Evidence}
	if len(d.recent) >= maxRecent {
		copy(d.recent, d.recent[1:])
		d.recent = d.recent[:maxRecent-1]
	}
	d.recent = append(d.recent, r)
}

// Lease records what DHCP says of a device. A device first known by its
// address takes its MAC from the lease.
func (w *Watcher) Lease(l *Lease) {
	w.Wait()
	w.stats.Leases++
	if l.Time > w.clock {
		w.clock = l.Time
	}
	if l.MAC.IsZero() || l.MAC[0]&1 != 0 {
		return
	}
	id := MACDevice(l.MAC)
	addr := l.Addr.Unmap()
	if addr.IsValid() && w.Inside(addr) {
		w.leases.put(addr, l.MAC)
		// A device seen before by its address becomes the MAC's.
		aid := AddrDevice(addr)
		from, to := w.shardFor(aid), w.shardFor(id)
		if old := from.devices.get(&aid, idHash(&aid)); old != nil && to.devices.get(&id, idHash(&id)) == nil {
			from.remove(old)
			old.id, old.mac, old.pseudo = id, l.MAC, ""
			to.insert(old)
		}
	}
	w.shardFor(id).leaseAttrs(l, id, addr)
}

// leaseAttrs records a lease's attributes of device id.
func (w *Watcher) leaseAttrs(l *Lease, id DeviceID, addr netip.Addr) {
	d := w.devices.get(&id, idHash(&id))
	if d == nil {
		// Remember the device's attributes only once it talks out.
		if l.Hostname == "" && l.Fingerprint == "" {
			return
		}
		d = w.lookupDevice(id, l.Time, true)
	}
	changed := false
	if l.Hostname != "" && l.Hostname != d.hostname {
		d.hostname, changed = clipString(l.Hostname), true
	}
	if l.Fingerprint != "" && l.Fingerprint != d.fingerprint {
		d.fingerprint, changed = clipString(l.Fingerprint), true
	}
	if addr.IsValid() && w.Inside(addr) && d.setAddr(addr) {
		changed = true
	}
	if changed && len(w.cfg.Classes) > 0 {
		w.classify(d)
	}
}

// remove takes a device out of this watcher's tables.
func (w *Watcher) remove(d *device) {
	w.devices.del(&d.id, idHash(&d.id))
	if i := slices.Index(w.list, d); i >= 0 {
		w.list = slices.Delete(w.list, i, i+1)
	}
}

// insert puts a device in this watcher's tables.
func (w *Watcher) insert(d *device) {
	w.devices.put(d, idHash(&d.id))
	w.list = append(w.list, d)
}

// maxString bounds the strings a profile keeps.
const maxString = 255

func clipString(s string) string {
	if len(s) > maxString {
		return s[:maxString]
	}
	return s
}

// Resolved records that name resolved to addrs (DNS), so that
// destinations can be shown, judged and shared by name.
func (w *Watcher) Resolved(t int64, name string, addrs []netip.Addr) {
	w.Wait()
	w.stats.Resolutions++
	if t > w.clock {
		w.clock = t
	}
	name = clipString(strings.TrimSuffix(strings.ToLower(name), "."))
	if name == "" {
		return
	}
	for _, a := range addrs {
		a = a.Unmap()
		if egress(a) {
			w.names.put(a, name)
		}
	}
}

// Software records software seen on a host (a device of the
// constituency known by its address or its lease).
func (w *Watcher) Software(t int64, host netip.Addr, name, version string) {
	w.Wait()
	w.stats.Software++
	host = host.Unmap()
	if !w.Inside(host) || name == "" {
		return
	}
	id := AddrDevice(host)
	if m, ok := w.leases.get(host); ok {
		id = MACDevice(m)
	}
	d := w.shardFor(id).lookupDevice(id, t, true)
	s := name
	if version != "" {
		s = name + " " + version
	}
	s = clipString(s)
	if slices.Contains(d.software, s) {
		return
	}
	if len(d.software) >= maxSoftware {
		copy(d.software, d.software[1:])
		d.software = d.software[:maxSoftware-1]
	}
	d.software = append(d.software, s)
	if len(w.cfg.Classes) > 0 {
		w.shardFor(id).classify(d)
	}
}

// Sweep scores the destinations whose windows changed since their last
// score, reports the beacons (at most once per ReportEvery of log time
// each) and applies class policies not yet applied. Call it
// periodically and at the end of a run.
func (w *Watcher) Sweep() {
	w.Wait()
	if len(w.shards) > 0 {
		w.parallel(func(_ int, s *Watcher) { s.Sweep() })
		return
	}
	bc := &w.cfg.Beacon
	for _, d := range w.list {
		for i := range d.dests {
			e := &d.dests[i]
			w.checkPolicy(d, e)
			if len(e.win.beats) < bc.MinEvents || e.scoredAt == e.count {
				continue
			}
			e.scoredAt = e.count
			st, ok := scoreBeacon(&e.win, bc, &w.sc)
			if !ok {
				e.score = 0
				continue
			}
			e.score = float32(st.Score)
			if st.Score < bc.Threshold {
				continue
			}
			last := st.Last.UnixNano()
			if e.beaconAt != 0 && last-e.beaconAt < int64(w.cfg.ReportEvery) {
				continue
			}
			e.beaconAt = last
			stats := st
			// The sighting covers the destination since it was first seen
			// (its guaranteed count); the evidence, the scored window.
			w.emit(d, e, Finding{Kind: KindBeacon, Network: w.networkOf(e.addr), First: unixTime(min(e.first, st.First.UnixNano())), Last: st.Last,
				Count: uint64(e.count - e.err), BytesOut: e.bytesOut, BytesIn: e.bytesIn, Beacon: &stats, Score: st.Score}, beaconEvidence)
		}
	}
}

// Findings returns the findings made since the last call, in a canonical
// order (by time, device, kind and destination) that does not depend on
// the number of shards.
func (w *Watcher) Findings() []Finding {
	w.Wait()
	var out []Finding
	for _, s := range w.parts() {
		out = append(out, s.out...)
		s.out = nil
	}
	// By time, then device; a device's findings keep the order they were
	// made in (a device lives in one shard).
	slices.SortStableFunc(out, func(a, b Finding) int {
		if c := a.Last.Compare(b.Last); c != 0 {
			return c
		}
		return bytes.Compare(a.Device.k[:], b.Device.k[:])
	})
	return out
}

// Pseudonym returns the pseudonym of a device under the watcher's key.
func (w *Watcher) Pseudonym(id DeviceID) string { return Pseudonym(w.key, id) }
