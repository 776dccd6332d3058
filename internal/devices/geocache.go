package devices

import (
	"net/netip"

	"github.com/entente-cti/entente/internal/geo"
)

// rangeLocator is a geo.Locator that can give, with the country of an
// IPv4 address, the range of addresses that share it (geo.Table does).
type rangeLocator interface {
	LookupRange4(v uint32) (cc [2]byte, lo, hi uint32, ok bool)
}

var _ rangeLocator = (*geo.Table)(nil)

// geoCacheBits sizes a watcher's country cache: 2^12 ranges, 64 KiB.
const geoCacheBits = 12

// geoCache remembers the countries of the IPv4 ranges of recent
// destinations, so that a destination admitted to a device's top
// destinations (one connection in seven, on a busy network: the tail of
// each device's destinations takes turns) costs no binary search over the
// geo data, whose ranges do not stay in the caches. It is direct-mapped
// by the address's /24 (most ranges span whole /24s, and a device's
// destinations cluster in a provider's networks); an entry answers for
// every address of its range, so the cache answers as the table does.
// Each watcher (shard) has its own: no locks.
type geoCache struct {
	e [1 << geoCacheBits]geoEntry
}

type geoEntry struct {
	lo, hi uint32
	cc     [2]byte // as ccOf gives it: zero for no country
	set    bool
}

// countryOf returns the country of a (zero when unknown), as ccOf of the
// locator's answer.
func (w *Watcher) countryOf(a netip.Addr) [2]byte {
	if w.loc == nil {
		return [2]byte{}
	}
	if w.rloc != nil && a.Is4() {
		b := a.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		if w.geo == nil {
			w.geo = new(geoCache)
		}
		e := &w.geo.e[geoSlot(v)]
		if e.set && e.lo <= v && v <= e.hi {
			return e.cc
		}
		cc, lo, hi, ok := w.rloc.LookupRange4(v)
		c := [2]byte{}
		if ok {
			c = ccOf(string(cc[:]))
		}
		*e = geoEntry{lo: lo, hi: hi, cc: c, set: true}
		return c
	}
	if c, ok := w.loc.Lookup(a); ok {
		return ccOf(c)
	}
	return [2]byte{}
}

// geoSlot is the cache entry of the IPv4 address v: by its /24.
func geoSlot(v uint32) uint32 { return (v >> 8) * 0x9e3779b1 >> (32 - geoCacheBits) }
