package devices

import "encoding/binary"

// devTable maps device identities to devices: open addressing with
// linear probing over slots that hold the identity beside the device, so
// that a lookup hashes nothing (the caller passes the identity's hash,
// [idHash], computed once per connection) and reads one slot. A Go map
// hashed the 17-byte identity and compared it through a call on every
// connection.
type devTable struct {
	slots []devSlot
	n     int
	shift uint // 64 - log2(len(slots))
}

type devSlot struct {
	id DeviceID
	d  *device // nil: empty
}

// idHash hashes a device identity: for the shards (its low bits) and the
// device tables (its high bits).
func idHash(id *DeviceID) uint64 {
	return hash64(binary.LittleEndian.Uint64(id.k[1:9]) ^ hash64(binary.LittleEndian.Uint64(id.k[9:17])^uint64(id.k[0])))
}

func sameID(a, b *DeviceID) bool {
	return binary.LittleEndian.Uint64(a.k[0:8]) == binary.LittleEndian.Uint64(b.k[0:8]) &&
		binary.LittleEndian.Uint64(a.k[8:16]) == binary.LittleEndian.Uint64(b.k[8:16]) && a.k[16] == b.k[16]
}

func (t *devTable) len() int { return t.n }

// get returns the device with identity id of hash h, or nil.
func (t *devTable) get(id *DeviceID, h uint64) *device {
	if t.n == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := int(h >> t.shift); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.d == nil {
			return nil
		}
		if sameID(&s.id, id) {
			return s.d
		}
	}
}

// put adds device d of hash h (its identity must not be in the table).
func (t *devTable) put(d *device, h uint64) {
	if 8*(t.n+1) > 5*len(t.slots) {
		t.grow()
	}
	mask := len(t.slots) - 1
	i := int(h >> t.shift)
	for t.slots[i].d != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = devSlot{id: d.id, d: d}
	t.n++
}

func (t *devTable) grow() {
	old := t.slots
	size := max(16, 2*len(old))
	t.slots = make([]devSlot, size)
	t.shift = 64
	for s := size; s > 1; s >>= 1 {
		t.shift--
	}
	t.n = 0
	for i := range old {
		if d := old[i].d; d != nil {
			t.put(d, idHash(&d.id))
		}
	}
}

// del removes the device with identity id of hash h, if there is one
// (backward-shift deletion: no tombstones).
func (t *devTable) del(id *DeviceID, h uint64) {
	if t.n == 0 {
		return
	}
	mask := len(t.slots) - 1
	j := int(h >> t.shift)
	for {
		s := &t.slots[j]
		if s.d == nil {
			return
		}
		if sameID(&s.id, id) {
			break
		}
		j = (j + 1) & mask
	}
	t.n--
	for {
		t.slots[j] = devSlot{}
		k := j
		for {
			k = (k + 1) & mask
			if t.slots[k].d == nil {
				return
			}
			home := int(idHash(&t.slots[k].id) >> t.shift)
			// The entry at k may move to j unless its home lies
			// cyclically in (j, k].
			if j <= k && (home <= j || home > k) || j > k && home <= j && home > k {
				t.slots[j] = t.slots[k]
				j = k
				break
			}
		}
	}
}
