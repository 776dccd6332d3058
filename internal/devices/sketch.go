package devices

import (
	"math"
	"math/bits"
	"net/netip"
	"slices"
)

// countrySet is an exact set of country codes, one bit per pair of
// letters, plus one bit for "unknown" (88 bytes).
type countrySet [11]uint64

const unknownCountryBit = 26 * 26

func countryBit(cc [2]byte) int {
	if cc == ([2]byte{}) {
		return unknownCountryBit
	}
	return int(cc[0]-'A')*26 + int(cc[1]-'A')
}

func (s *countrySet) has(cc [2]byte) bool {
	b := countryBit(cc)
	return s[b/64]&(1<<(b%64)) != 0
}

func (s *countrySet) add(cc [2]byte) {
	b := countryBit(cc)
	s[b/64] |= 1 << (b % 64)
}

// list returns the codes in the set, "??" for unknown.
func (s *countrySet) list() []string {
	var out []string
	for b := 0; b <= unknownCountryBit; b++ {
		if s[b/64]&(1<<(b%64)) == 0 {
			continue
		}
		if b == unknownCountryBit {
			out = append(out, "??")
			continue
		}
		out = append(out, string([]byte{byte('A' + b/26), byte('A' + b%26)}))
	}
	return out
}

// ccOf packs a country code ("" for unknown).
func ccOf(s string) [2]byte {
	if !isCountry(s) {
		return [2]byte{}
	}
	return [2]byte{s[0] &^ 0x20, s[1] &^ 0x20}
}

func ccString(cc [2]byte) string {
	if cc == ([2]byte{}) {
		return ""
	}
	return string(cc[:])
}

// netSet is the set of networks a device has talked to, as 32-bit
// fingerprints, sorted; it stops growing at its limit and then says it
// is saturated.
type netSet struct {
	fp        []uint32
	saturated bool
}

// add adds fingerprint f; it reports whether f was new (and, when the set
// is full, whether it might be).
func (s *netSet) add(f uint32, limit int) (added bool) {
	i, found := s.search(f)
	if found {
		return false
	}
	if len(s.fp) >= limit {
		s.saturated = true
		return false
	}
	s.fp = slices.Insert(s.fp, i, f)
	return true
}

// search returns where f is in the set, or would be inserted, as
// slices.BinarySearch does. Fingerprints are hashes, spread evenly over
// 32 bits: f is looked for from where it would be if they were evenly
// spaced, and found a few entries away, in one or two cache lines,
// instead of the eight lines a binary search over a full set reads.
func (s *netSet) search(f uint32) (int, bool) {
	n := len(s.fp)
	if n < 16 {
		return slices.BinarySearch(s.fp, f)
	}
	i := int(uint64(f) * uint64(n) >> 32)
	if s.fp[i] < f {
		for i++; i < n && s.fp[i] < f; i++ {
		}
	} else {
		for i > 0 && s.fp[i-1] >= f {
			i--
		}
	}
	return i, i < n && s.fp[i] == f
}

// hash64 mixes a 64-bit value (splitmix64's finaliser).
func hash64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashAddr hashes an address.
func hashAddr(a netip.Addr) uint64 {
	b := a.As16()
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 | uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 | uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	return hash64(hi ^ hash64(lo))
}

// netFingerprint is the fingerprint of the network of a (its first bits4
// or bits6 bits).
func netFingerprint(p netip.Prefix) uint32 {
	h := hashAddr(p.Addr())
	return uint32(h>>32) ^ uint32(h) ^ uint32(p.Bits())
}

// hllP is the precision of the distinct-destination estimate: 2^7
// registers, a standard error of about 9%.
const hllP = 7

// hll is a HyperLogLog sketch of distinct destinations.
type hll [1 << hllP]uint8

func (h *hll) add(x uint64) {
	i := x >> (64 - hllP)
	w := x<<hllP | 1<<(hllP-1)
	r := uint8(bits.LeadingZeros64(w)) + 1
	if r > h[i] {
		h[i] = r
	}
}

// estimate returns the estimated number of distinct values added, with
// the small-range (linear counting) correction.
func (h *hll) estimate() uint64 {
	const m = float64(1 << hllP)
	alpha := 0.7213 / (1 + 1.079/m)
	sum := 0.0
	zeros := 0
	for _, r := range h {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	e := alpha * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros))
	}
	return uint64(e + 0.5)
}
