package devices

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"net/netip"
	"slices"
)

// The profile file: a magic string, a version, the profiles, and a
// CRC-32C of everything before it (docs/devices.md describes the
// layout).
const (
	profileMagic   = "ENTDEVP\x00"
	profileVersion = 1
	maxEvidence    = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) byte1(v byte)     { e.b = append(e.b, v) }
func (e *encoder) raw(v []byte)     { e.b = append(e.b, v...) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) addr(a netip.Addr) {
	switch {
	case !a.IsValid():
		e.byte1(0)
	case a.Is4():
		e.byte1(4)
		b := a.As4()
		e.raw(b[:])
	default:
		e.byte1(16)
		b := a.As16()
		e.raw(b[:])
	}
}

// Save returns the profiles in the profile file format: deterministic
// for the same profiles.
func (w *Watcher) Save() []byte {
	w.Wait()
	e := &encoder{b: make([]byte, 0, 1<<16)}
	e.raw([]byte(profileMagic))
	e.uvarint(profileVersion)
	e.varint(w.clock)
	all := w.all()
	slices.SortFunc(all, func(a, b *device) int { return bytes.Compare(a.id.k[:], b.id.k[:]) })
	e.uvarint(uint64(len(all)))
	for _, d := range all {
		e.raw(d.id.k[:])
		e.addr(d.addr)
		e.addr(d.addr6)
		e.str(d.hostname)
		e.str(d.fingerprint)
		e.str(w.className(d))
		e.uvarint(uint64(len(d.software)))
		for _, s := range d.software {
			e.str(s)
		}
		e.varint(d.first)
		e.varint(d.last)
		e.uvarint(d.conns)
		e.uvarint(d.bytesOut)
		e.uvarint(d.bytesIn)
		for _, v := range d.countries {
			e.b = binary.LittleEndian.AppendUint64(e.b, v)
		}
		e.uvarint(uint64(len(d.cstats)))
		for _, c := range d.cstats {
			e.raw(c.cc[:])
			e.uvarint(c.conns)
			e.uvarint(c.bytesOut)
			e.uvarint(c.bytesIn)
			e.varint(c.first)
			e.varint(c.last)
		}
		e.uvarint(uint64(len(d.nets.fp)))
		prev := uint32(0)
		for i, f := range d.nets.fp {
			if i == 0 {
				e.uvarint(uint64(f))
			} else {
				e.uvarint(uint64(f - prev))
			}
			prev = f
		}
		e.byte1(boolByte(d.nets.saturated))
		e.raw(d.hll[:])
		for _, v := range d.door {
			e.b = binary.LittleEndian.AppendUint64(e.b, v)
		}
		e.uvarint(uint64(d.doorN))
		e.uvarint(uint64(len(d.dests)))
		for i := range d.dests {
			x := &d.dests[i]
			e.addr(x.addr)
			e.str(x.name)
			e.raw(x.cc[:])
			e.uvarint(uint64(x.ci))
			e.uvarint(uint64(x.port))
			e.byte1(x.proto)
			e.byte1(boolByte(x.checked) | boolByte(x.breached)<<1)
			e.uvarint(uint64(x.count))
			e.uvarint(uint64(x.err))
			e.uvarint(x.bytesOut)
			e.uvarint(x.bytesIn)
			for _, v := range [...]int64{x.first, x.last, x.maxDur, x.longAt, x.largeAt, x.beaconAt} {
				e.varint(v)
			}
			e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(x.score))
			e.uvarint(uint64(x.scoredAt))
			e.uvarint(uint64(x.gap))
			e.byte1(x.steady)
			e.varint(x.win.base)
			e.uvarint(uint64(len(x.win.beats)))
			for i := range x.win.beats {
				b := x.win.at(i)
				e.uvarint(uint64(b.t))
				e.uvarint(uint64(b.size))
			}
		}
		e.uvarint(uint64(len(d.recent)))
		for _, r := range d.recent {
			e.byte1(byte(r.Kind))
			e.varint(r.Time.UnixNano())
			e.addr(r.Dest)
			e.str(r.DestName)
			e.str(r.Country)
			e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(r.Score))
			e.str(r.Evidence)
		}
		e.varint(d.day)
		e.uvarint(uint64(d.dayCount))
		e.uvarint(d.suppressed)
	}
	e.b = binary.LittleEndian.AppendUint32(e.b, crc32.Checksum(e.b, castagnoli))
	return e.b
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// decoder reads the profile format; the first error sticks.
type decoder struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("unexpected end of data")

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("at byte %d: %s", d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad or truncated varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad or truncated varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return make([]byte, n)
	}
	if n < 0 || d.off+n > len(d.b) {
		d.fail("%v", errShort)
		return make([]byte, max(n, 0))
	}
	v := d.b[d.off : d.off+n]
	d.off += n
	return v
}

func (d *decoder) byte1() byte { return d.bytes(1)[0] }

// count reads a count of elements of at least minSize bytes each, no more
// than limit and no more than the bytes left could hold.
func (d *decoder) count(what string, limit, minSize int) int {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v > uint64(limit) {
		d.fail("%d %s, at most %d", v, what, limit)
		return 0
	}
	if v*uint64(minSize) > uint64(len(d.b)-d.off) {
		d.fail("%d %s do not fit in the %d bytes left", v, what, len(d.b)-d.off)
		return 0
	}
	return int(v)
}

func (d *decoder) str(what string, limit int) string {
	n := d.count(what+" bytes", limit, 1)
	return string(d.bytes(n))
}

func (d *decoder) addr(what string) netip.Addr {
	switch n := d.byte1(); n {
	case 0:
		return netip.Addr{}
	case 4:
		return netip.AddrFrom4([4]byte(d.bytes(4)))
	case 16:
		a := netip.AddrFrom16([16]byte(d.bytes(16)))
		if a.Is4In6() {
			d.fail("%s: an IPv4-mapped address", what)
		}
		return a
	default:
		d.fail("%s: address length %d (want 0, 4 or 16)", what, n)
		return netip.Addr{}
	}
}

func (d *decoder) u32(what string) uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 {
		d.fail("%s: %d is too large", what, v)
	}
	return uint32(v)
}

// Load reads profiles saved by [Watcher.Save] into an empty watcher. A
// damaged, truncated or foreign file is an error that says so, naming
// the device and destination at fault; nothing is loaded then.
// Profiles larger than the configuration allows (more destinations or
// a longer window) are trimmed to it; devices over MaxDevices are
// forgotten, the least recently seen first.
func (w *Watcher) Load(data []byte) error {
	w.Wait()
	if len(w.all()) > 0 {
		return errors.New("load profiles: the watcher already holds devices")
	}
	if len(data) < len(profileMagic)+5 || string(data[:len(profileMagic)]) != profileMagic {
		return errors.New("load profiles: not an entente device profile file (bad magic)")
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return errors.New("load profiles: checksum mismatch: the file is damaged or truncated")
	}
	dec := &decoder{b: body, off: len(profileMagic)}
	if v := dec.uvarint(); dec.err == nil && v != profileVersion {
		return fmt.Errorf("load profiles: file version %d, this entente reads version %d", v, profileVersion)
	}
	clock := dec.varint()
	n := dec.count("devices", math.MaxInt32, 260)
	list := make([]*device, 0, n)
	seen := make(map[DeviceID]bool, n)
	for i := 0; i < n && dec.err == nil; i++ {
		d := w.decodeDevice(dec)
		if dec.err != nil {
			return fmt.Errorf("load profiles: device %d (%s): %w", i+1, d.id, dec.err)
		}
		if seen[d.id] {
			return fmt.Errorf("load profiles: device %d (%s): listed twice", i+1, d.id)
		}
		seen[d.id] = true
		list = append(list, d)
	}
	if dec.err != nil {
		return fmt.Errorf("load profiles: %w", dec.err)
	}
	if dec.off != len(body) {
		return fmt.Errorf("load profiles: %d bytes after the last device", len(body)-dec.off)
	}
	if len(list) > w.cfg.MaxDevices {
		slices.SortStableFunc(list, func(a, b *device) int { return cmp.Compare(b.last, a.last) })
		w.stats.Forgotten += uint64(len(list) - w.cfg.MaxDevices)
		list = list[:w.cfg.MaxDevices]
	}
	w.clock = max(w.clock, clock)
	for _, d := range list {
		s := w.shardFor(d.id)
		s.insert(d)
		if !d.mac.IsZero() {
			for _, a := range []netip.Addr{d.addr, d.addr6} {
				if a.IsValid() && w.Inside(a) {
					w.leases.put(a, d.mac)
				}
			}
		}
		s.reindex(d)
		// The class the profile was saved with, when the configuration
		// still has it: its policy verdicts stand; a device whose class
		// changed is judged again.
		d.class = 0
		for i := range w.cfg.Classes {
			if w.cfg.Classes[i].Name == d.savedClass {
				d.class = i + 1
			}
		}
		d.savedClass = ""
		s.classify(d)
	}
	return nil
}

func (w *Watcher) decodeDevice(dec *decoder) *device {
	d := &device{}
	copy(d.id.k[:], dec.bytes(17))
	switch d.id.k[0] {
	case 1:
		for _, b := range d.id.k[7:] {
			if b != 0 {
				dec.fail("a MAC identity with trailing bytes")
			}
		}
		d.mac, _ = d.id.MAC()
	case 4:
		for _, b := range d.id.k[5:] {
			if b != 0 {
				dec.fail("an IPv4 identity with trailing bytes")
			}
		}
	case 6:
		if a, _ := d.id.Addr(); a.Is4In6() {
			dec.fail("an IPv4-mapped identity")
		}
	default:
		dec.fail("identity kind %d (want 1, 4 or 6)", d.id.k[0])
	}
	d.addr = dec.addr("IPv4 address")
	d.addr6 = dec.addr("IPv6 address")
	if d.addr.IsValid() && !d.addr.Is4() || d.addr6.IsValid() && !d.addr6.Is6() {
		dec.fail("addresses of the wrong family")
	}
	d.hostname = dec.str("host name", maxString)
	d.fingerprint = dec.str("fingerprint", maxString)
	d.savedClass = dec.str("class", 64)
	ns := dec.count("software", maxSoftware, 1)
	for j := 0; j < ns; j++ {
		d.software = append(d.software, dec.str("software", maxString))
	}
	d.first, d.last = dec.varint(), dec.varint()
	d.conns, d.bytesOut, d.bytesIn = dec.uvarint(), dec.uvarint(), dec.uvarint()
	for j := range d.countries {
		d.countries[j] = binary.LittleEndian.Uint64(dec.bytes(8))
	}
	if d.countries[len(d.countries)-1]>>(unknownCountryBit%64+1) != 0 {
		dec.fail("country set: bits past the last country")
	}
	nc := dec.count("countries", unknownCountryBit+1, 7)
	for j := 0; j < nc && dec.err == nil; j++ {
		var c countryStat
		copy(c.cc[:], dec.bytes(2))
		if c.cc != ([2]byte{}) && ccOf(string(c.cc[:])) != c.cc {
			dec.fail("country %d: %q is not a country code", j+1, c.cc[:])
		}
		c.conns, c.bytesOut, c.bytesIn = dec.uvarint(), dec.uvarint(), dec.uvarint()
		c.first, c.last = dec.varint(), dec.varint()
		d.addCountryStat(c)
	}
	nn := dec.count("networks", maxNetworksLimit, 1)
	d.nets.fp = make([]uint32, 0, nn)
	var prev uint64
	for j := 0; j < nn && dec.err == nil; j++ {
		v := dec.uvarint()
		if j > 0 {
			if v == 0 {
				dec.fail("networks: not strictly increasing")
			}
			v += prev
		}
		if v > math.MaxUint32 {
			dec.fail("networks: fingerprint out of range")
		}
		d.nets.fp = append(d.nets.fp, uint32(v))
		prev = v
	}
	d.nets.saturated = dec.byte1() != 0
	copy(d.hll[:], dec.bytes(len(d.hll)))
	for j := range d.door {
		d.door[j] = binary.LittleEndian.Uint64(dec.bytes(8))
	}
	if n := dec.uvarint(); n >= doorkeeperBits/2 {
		dec.fail("doorkeeper count %d", n)
	} else {
		d.doorN = uint16(n)
	}
	for _, r := range d.hll {
		if r > 64-hllP+1 {
			dec.fail("distinct-destination sketch: register %d out of range", r)
			break
		}
	}
	nd := dec.count("destinations", maxTopDestinations, 30)
	d.dests = make([]dest, 0, min(nd, w.cfg.TopDestinations))
	type key struct {
		a     netip.Addr
		port  uint16
		proto uint8
	}
	addrs := make(map[key]bool, nd)
	var all []dest
	for j := 0; j < nd && dec.err == nil; j++ {
		x := w.decodeDest(dec, len(d.cstats))
		if dec.err != nil {
			dec.err = fmt.Errorf("destination %d (%s): %w", j+1, x.addr, dec.err)
			break
		}
		k := key{x.addr, x.port, x.proto}
		if addrs[k] {
			dec.fail("destination %d (%s): listed twice", j+1, x.addr)
			break
		}
		addrs[k] = true
		all = append(all, x)
	}
	if len(all) > w.cfg.TopDestinations {
		slices.SortStableFunc(all, func(a, b dest) int { return cmp.Compare(b.count, a.count) })
		all = all[:w.cfg.TopDestinations]
	}
	d.dests = append(d.dests, all...)
	nr := dec.count("findings", maxRecent, 13)
	for j := 0; j < nr && dec.err == nil; j++ {
		var r Record
		k := Kind(dec.byte1())
		if k.String() == "invalid" {
			dec.fail("finding %d: kind %d", j+1, k)
		}
		r.Kind = k
		r.Time = unixTime(dec.varint())
		r.Dest = dec.addr("finding destination")
		r.DestName = dec.str("finding name", maxString)
		r.Country = dec.str("finding country", 2)
		r.Score = math.Float64frombits(binary.LittleEndian.Uint64(dec.bytes(8)))
		if !(r.Score >= 0 && r.Score <= 1) {
			dec.fail("finding %d: score %v out of [0, 1]", j+1, r.Score)
		}
		r.Evidence = dec.str("finding evidence", maxEvidence)
		d.recent = append(d.recent, r)
	}
	d.day = dec.varint()
	d.dayCount = int(dec.u32("findings of the day"))
	d.suppressed = dec.uvarint()
	return d
}

func (w *Watcher) decodeDest(dec *decoder, ncountries int) dest {
	var x dest
	x.addr = dec.addr("destination")
	if !x.addr.IsValid() && dec.err == nil {
		dec.fail("no address")
	}
	x.name = dec.str("name", maxString)
	copy(x.cc[:], dec.bytes(2))
	if x.cc != ([2]byte{}) && ccOf(string(x.cc[:])) != x.cc {
		dec.fail("%q is not a country code", x.cc[:])
	}
	ci := dec.uvarint()
	if ci >= uint64(ncountries) && dec.err == nil {
		dec.fail("country index %d, the device has %d countries", ci, ncountries)
	}
	x.ci = uint16(ci)
	port := dec.uvarint()
	if port > math.MaxUint16 {
		dec.fail("port %d", port)
	}
	x.port = uint16(port)
	x.proto = dec.byte1()
	flags := dec.byte1()
	if flags > 3 {
		dec.fail("flags %#x", flags)
	}
	x.checked, x.breached = flags&1 != 0, flags&2 != 0
	x.count, x.err = dec.u32("connections"), dec.u32("overestimate")
	if x.err > x.count {
		dec.fail("overestimate %d over the count %d", x.err, x.count)
	}
	x.bytesOut, x.bytesIn = dec.uvarint(), dec.uvarint()
	x.first, x.last, x.maxDur = dec.varint(), dec.varint(), dec.varint()
	x.longAt, x.largeAt, x.beaconAt = dec.varint(), dec.varint(), dec.varint()
	x.score = math.Float32frombits(binary.LittleEndian.Uint32(dec.bytes(4)))
	if !(x.score >= 0 && x.score <= 1) {
		dec.fail("beacon score %v out of [0, 1]", x.score)
	}
	x.scoredAt = dec.u32("scored count")
	x.gap = dec.u32("latest interval")
	x.steady = dec.byte1()
	x.win.base = dec.varint()
	nb := dec.count("window connections", maxWindow, 2)
	beats := make([]beat, 0, nb)
	for j := 0; j < nb && dec.err == nil; j++ {
		b := beat{dec.u32("window time"), dec.u32("window size")}
		if j > 0 && b.t < beats[j-1].t {
			dec.fail("window: connection %d is out of time order", j+1)
		}
		beats = append(beats, b)
	}
	if limit := w.cfg.Beacon.Window; len(beats) > limit {
		beats = beats[len(beats)-limit:] // the latest
	}
	x.win.beats = beats
	return x
}
