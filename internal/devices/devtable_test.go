package devices

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestDevTable: random puts, gets and deletions agree with a Go map,
// over identities of every kind, through growth and with deletions
// that shift the entries after them back.
func TestDevTable(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	ids := make([]DeviceID, 3000)
	for i := range ids {
		switch i % 3 {
		case 0:
			ids[i] = MACDevice(MAC{0x02, byte(i >> 16), byte(i >> 8), byte(i), 1, 2})
		case 1:
			ids[i] = AddrDevice(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		default:
			ids[i] = AddrDevice(netip.AddrFrom16([16]byte{0xfd, 15: byte(i), 14: byte(i >> 8)}))
		}
	}
	for _, tc := range []struct {
		name    string
		ops     int
		delRate int // one deletion in delRate operations
	}{{"puts", 5000, 0}, {"churn", 50000, 2}, {"mostly deletions", 20000, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			var tab devTable
			ref := map[DeviceID]*device{}
			for range tc.ops {
				id := ids[r.IntN(len(ids))]
				h := idHash(&id)
				if tc.delRate > 0 && r.IntN(tc.delRate+1) == 0 {
					tab.del(&id, h)
					delete(ref, id)
				} else if ref[id] == nil {
					d := &device{id: id}
					tab.put(d, h)
					ref[id] = d
				}
				if tab.len() != len(ref) {
					t.Fatalf("%d devices, want %d", tab.len(), len(ref))
				}
			}
			for i := range ids {
				if got, want := tab.get(&ids[i], idHash(&ids[i])), ref[ids[i]]; got != want {
					t.Fatalf("device %v: %p, want %p", ids[i], got, want)
				}
			}
		})
	}
}
