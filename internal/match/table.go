package match

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"

	"github.com/entente-cti/entente/internal/hugepage"
)

// hugePageMin is the size from which a table is worth backing with huge
// pages: lookups in a table much larger than the TLB's reach otherwise
// pay a page walk on top of each cache miss.
const hugePageMin = 8 << 20

// fixedTable is an open-addressing hash table from fixed-size keys to
// indicator references: 2 to 4 slots per entry (a load of at most one
// half keeps the probes of a miss short), no per-entry pointers.
// The zero key marks empty slots and is kept aside.
type fixedTable[K comparable] struct {
	keys    []K
	vals    []uint32
	n       int
	hasZero bool
	zeroVal uint32
	hash    func(*K) uint64
}

func (t *fixedTable[K]) len() int {
	if t.hasZero {
		return t.n + 1
	}
	return t.n
}

// get returns the reference stored for k.
func (t *fixedTable[K]) get(k *K) (uint32, bool) {
	var zero K
	if *k == zero {
		return t.zeroVal, t.hasZero
	}
	if len(t.keys) == 0 {
		return 0, false
	}
	mask := uint64(len(t.keys) - 1)
	for i := t.hash(k) & mask; ; i = (i + 1) & mask {
		if t.keys[i] == *k {
			return t.vals[i], true
		}
		if t.keys[i] == zero {
			return 0, false
		}
	}
}

// getHashed is get for a key whose hash the caller computed with the
// table's hash function: calling that function directly, rather than
// through the table's function value, keeps k from escaping.
func (t *fixedTable[K]) getHashed(k *K, h uint64) (uint32, bool) {
	var zero K
	if *k == zero {
		return t.zeroVal, t.hasZero
	}
	if len(t.keys) == 0 {
		return 0, false
	}
	mask := uint64(len(t.keys) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		if t.keys[i] == *k {
			return t.vals[i], true
		}
		if t.keys[i] == zero {
			return 0, false
		}
	}
}

// slot returns a pointer to the value of k, inserting k if absent; added
// reports whether k was inserted.
func (t *fixedTable[K]) slot(k *K) (v *uint32, added bool) {
	var zero K
	if *k == zero {
		added = !t.hasZero
		t.hasZero = true
		return &t.zeroVal, added
	}
	if 2*(t.n+1) > len(t.keys) {
		t.grow()
	}
	mask := uint64(len(t.keys) - 1)
	for i := t.hash(k) & mask; ; i = (i + 1) & mask {
		if t.keys[i] == *k {
			return &t.vals[i], false
		}
		if t.keys[i] == zero {
			t.keys[i] = *k
			t.n++
			return &t.vals[i], true
		}
	}
}

func (t *fixedTable[K]) grow() {
	size := 1024
	for size < 4*(t.n+1) {
		size *= 2
	}
	if size < 2*len(t.keys) {
		size = 2 * len(t.keys)
	}
	old, oldv := t.keys, t.vals
	t.keys, t.vals = make([]K, size), make([]uint32, size)
	hugepage.Advise(t.keys, hugePageMin)
	var zero K
	mask := uint64(size - 1)
	for j := range old {
		if old[j] == zero {
			continue
		}
		i := t.hash(&old[j]) & mask
		for t.keys[i] != zero {
			i = (i + 1) & mask
		}
		t.keys[i], t.vals[i] = old[j], oldv[j]
	}
}

// each calls fn for every entry.
func (t *fixedTable[K]) each(fn func(k *K, v uint32)) {
	var zero K
	if t.hasZero {
		fn(&zero, t.zeroVal)
	}
	for i := range t.keys {
		if t.keys[i] != zero {
			fn(&t.keys[i], t.vals[i])
		}
	}
}

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func hashU32(k *uint32) uint64 { return mix64(uint64(*k)) }

func hash16(k *[16]byte) uint64 {
	return mix64(binary.LittleEndian.Uint64(k[:8]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(k[8:]), 31))
}

// Hash values are already uniformly distributed: their first bytes do.
func hash20(k *[20]byte) uint64  { return binary.LittleEndian.Uint64(k[:8]) }
func hash32(k *[32]byte) uint64  { return binary.LittleEndian.Uint64(k[:8]) }
func hash64(k *[64]byte) uint64  { return binary.LittleEndian.Uint64(k[:8]) }
func hashMD5(k *[16]byte) uint64 { return binary.LittleEndian.Uint64(k[:8]) }

// strTable is an open-addressing hash table from strings to indicator
// references. The strings live in one arena, each prefixed by its length
// as a uvarint. A slot holds 32 bits of the key's hash (so that most
// probes never touch the arena) and the arena offset plus one (0 is
// empty).
type strTable struct {
	arena []byte
	slots []uint64
	vals  []uint32
	n     int
	seed  maphash.Seed
}

func newStrTable() *strTable { return &strTable{seed: maphash.MakeSeed()} }

func (t *strTable) at(off uint32) []byte {
	l, n := binary.Uvarint(t.arena[off:])
	return t.arena[int(off)+n : int(off)+n+int(l)]
}

func (t *strTable) get(k []byte) (uint32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	h := maphash.Bytes(t.seed, k)
	tag := h >> 32 << 32
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if s&^0xFFFFFFFF == tag && string(t.at(uint32(s)-1)) == string(k) {
			return t.vals[i], true
		}
	}
}

func (t *strTable) slot(k []byte) (*uint32, bool) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	h := maphash.Bytes(t.seed, k)
	tag := h >> 32 << 32
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			off := len(t.arena)
			t.arena = binary.AppendUvarint(t.arena, uint64(len(k)))
			t.arena = append(t.arena, k...)
			t.slots[i] = tag | uint64(off+1)
			t.n++
			return &t.vals[i], true
		}
		if s&^0xFFFFFFFF == tag && string(t.at(uint32(s)-1)) == string(k) {
			return &t.vals[i], false
		}
	}
}

func (t *strTable) grow() {
	size := 1024
	if len(t.slots) > 0 {
		size = 2 * len(t.slots)
	}
	old, oldv := t.slots, t.vals
	t.slots, t.vals = make([]uint64, size), make([]uint32, size)
	hugepage.Advise(t.slots, hugePageMin)
	mask := uint64(size - 1)
	for j, s := range old {
		if s == 0 {
			continue
		}
		i := maphash.Bytes(t.seed, t.at(uint32(s)-1)) & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i], t.vals[i] = s, oldv[j]
	}
}

// full reports whether adding k would overflow the 32-bit arena offsets.
func (t *strTable) full(k []byte) bool {
	return len(t.arena)+len(k)+binary.MaxVarintLen64 >= 0xFFFFFFF0
}

func (t *strTable) each(fn func(k []byte, v uint32)) {
	for i, s := range t.slots {
		if s != 0 {
			fn(t.at(uint32(s)-1), t.vals[i])
		}
	}
}

// compact trims the arena's spare capacity once building is done.
func (t *strTable) compact() {
	if cap(t.arena) > len(t.arena)+len(t.arena)/8 {
		t.arena = append([]byte(nil), t.arena...)
	}
}
