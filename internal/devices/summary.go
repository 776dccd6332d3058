package devices

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
	"unsafe"
)

// DeviceSummary is what a profile says of a device, for people and for
// the dashboard.
type DeviceSummary struct {
	ID          DeviceID
	Pseudonym   string
	Class       string
	ClassReason string // the rule that assigned the class
	Hostname    string
	Fingerprint string
	Software    []string
	Addrs       []netip.Addr // the IPv4 and IPv6 addresses it last used
	First, Last time.Time
	// Learning is true while new countries and networks are learnt
	// silently (until First + Config.Learn, in log time).
	Learning             bool
	Connections          uint64
	BytesOut, BytesIn    uint64
	DistinctDestinations uint64 // estimated (HyperLogLog, ±9%)
	Networks             int    // distinct networks remembered
	NetworksSaturated    bool   // too many to remember: no new-network findings
	Countries            []CountrySummary
	Destinations         []DestSummary // by connections, most first
	Findings             []Record      // the latest, oldest first
	SuppressedFindings   uint64
}

// CountrySummary is a device's traffic to one country ("" unknown).
type CountrySummary struct {
	Country           string
	Connections       uint64
	BytesOut, BytesIn uint64
	First, Last       time.Time
}

// DestSummary is a device's traffic to one of its top destinations.
type DestSummary struct {
	Addr    netip.Addr
	Name    string
	Country string
	Port    uint16
	Proto   string
	// Connections is the space-saving count; it may overestimate by up
	// to Overestimate (connections of destinations it replaced).
	Connections, Overestimate uint32
	BytesOut, BytesIn         uint64
	First, Last               time.Time
	LongestConnection         time.Duration
	BeaconScore               float64 // the last score; 0 when not scored
}

func (w *Watcher) summary(d *device) DeviceSummary {
	s := DeviceSummary{ID: d.id, Pseudonym: w.pseudonym(d), Class: w.className(d), ClassReason: d.classWhy,
		Hostname: d.hostname, Fingerprint: d.fingerprint, Software: slices.Clone(d.software),
		First: unixTime(d.first), Last: unixTime(d.last), Learning: w.clock < d.first+int64(w.cfg.Learn),
		Connections: d.conns, BytesOut: d.bytesOut, BytesIn: d.bytesIn, DistinctDestinations: d.hll.estimate(),
		Networks: len(d.nets.fp), NetworksSaturated: d.nets.saturated, Findings: slices.Clone(d.recent), SuppressedFindings: d.suppressed}
	for _, a := range []netip.Addr{d.addr, d.addr6} {
		if a.IsValid() {
			s.Addrs = append(s.Addrs, a)
		}
	}
	cs := slices.Clone(d.cstats)
	for i := range d.dests {
		e := &d.dests[i]
		c := &cs[e.ci]
		c.conns += uint64(e.count - e.err)
		c.bytesOut += e.bytesOut
		c.bytesIn += e.bytesIn
		c.first = min(c.first, e.first)
		c.last = max(c.last, e.last)
	}
	for _, c := range cs {
		if c.conns == 0 && c.first > c.last {
			continue // known only from connections the sketch no longer counts
		}
		s.Countries = append(s.Countries, CountrySummary{Country: ccString(c.cc), Connections: c.conns, BytesOut: c.bytesOut,
			BytesIn: c.bytesIn, First: unixTime(c.first), Last: unixTime(c.last)})
	}
	slices.SortStableFunc(s.Countries, func(a, b CountrySummary) int { return cmp.Compare(b.Connections, a.Connections) })
	for i := range d.dests {
		e := &d.dests[i]
		s.Destinations = append(s.Destinations, DestSummary{Addr: e.addr, Name: e.name, Country: ccString(e.cc), Port: e.port,
			Proto: protoName(e.proto), Connections: e.count, Overestimate: e.err, BytesOut: e.bytesOut, BytesIn: e.bytesIn,
			First: unixTime(e.first), Last: unixTime(e.last), LongestConnection: time.Duration(e.maxDur), BeaconScore: float64(e.score)})
	}
	slices.SortStableFunc(s.Destinations, func(a, b DestSummary) int {
		if c := cmp.Compare(b.Connections-b.Overestimate, a.Connections-a.Overestimate); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Connections, a.Connections); c != 0 {
			return c
		}
		return a.Addr.Compare(b.Addr)
	})
	return s
}

// Devices returns the summaries of every device, in the order they were
// first seen (then by identity).
func (w *Watcher) Devices() []DeviceSummary {
	w.Wait()
	all := w.all()
	out := make([]DeviceSummary, 0, len(all))
	for _, d := range all {
		out = append(out, w.summary(d))
	}
	return out
}

// Device returns the summary of one device.
func (w *Watcher) Device(id DeviceID) (DeviceSummary, bool) {
	w.Wait()
	d := w.shardFor(id).devices.get(&id, idHash(&id))
	if d == nil {
		return DeviceSummary{}, false
	}
	return w.summary(d), true
}

// MemoryBytes estimates the memory the profiles take: the structures,
// slices (by capacity) and strings they hold, not the device table's
// slots (about 50 bytes a device).
func (w *Watcher) MemoryBytes() int64 {
	w.Wait()
	var n int64
	for _, d := range w.all() {
		n += int64(unsafe.Sizeof(*d)) + 8 // the device and its list entry
		n += int64(cap(d.dests)) * int64(unsafe.Sizeof(dest{}))
		if !d.idxInline() {
			n += int64(cap(d.idx)) * 2
		}
		n += int64(cap(d.cstats))*int64(unsafe.Sizeof(countryStat{})) + int64(cap(d.ccs))*2
		n += int64(cap(d.nets.fp)) * 4
		n += int64(cap(d.recent)) * int64(unsafe.Sizeof(Record{}))
		n += int64(len(d.hostname) + len(d.fingerprint) + len(d.pseudo))
		for _, s := range d.software {
			n += int64(len(s)) + 16
		}
		for _, r := range d.recent {
			n += int64(len(r.Evidence) + len(r.DestName))
		}
		for i := range d.dests {
			e := &d.dests[i]
			n += int64(cap(e.win.beats))*int64(unsafe.Sizeof(beat{})) + int64(len(e.name))
		}
	}
	return n
}
