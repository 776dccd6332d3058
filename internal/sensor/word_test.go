package sensor

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// checkFirstZeros holds firstZeros to what its callers read of it: its
// lowest set bit is the high bit of x's lowest zero byte, and it has a
// bit below a byte position p exactly when some byte below p is zero.
func checkFirstZeros(t *testing.T, x uint64) {
	m := firstZeros(x)
	first := 8
	for k := 0; k < 8; k++ {
		if byte(x>>(8*k)) == 0 {
			first = k
			break
		}
	}
	if got := bits.TrailingZeros64(m) >> 3; m == 0 && first != 8 || m != 0 && got != first {
		t.Fatalf("firstZeros(%#x) = %#x: lowest zero byte %d", x, m, first)
	}
	for p := 0; p <= 8; p++ {
		below := m&(1<<(8*p)-1) != 0
		if p == 8 {
			below = m != 0
		}
		if below != (first < p) {
			t.Fatalf("firstZeros(%#x) = %#x: bits below byte %d %v, zero byte below it %v", x, m, p, below, first < p)
		}
	}
}

func TestFirstZerosAndWord8(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		x := r.Uint64()
		// Zero bytes, 0x01 and 0x80 bytes (the borrow's cases) at random.
		for k := 0; k < 8; k++ {
			switch r.IntN(6) {
			case 0:
				x &^= 0xff << (8 * k)
			case 1:
				x = x&^(0xff<<(8*k)) | 0x01<<(8*k)
			case 2:
				x = x&^(0xff<<(8*k)) | 0x80<<(8*k)
			}
		}
		checkFirstZeros(t, x)
	}
	b := make([]byte, 40)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for i := 0; i+8 <= len(b); i++ {
		if word8(b, i) != binary.LittleEndian.Uint64(b[i:]) {
			t.Fatalf("word8 at %d", i)
		}
	}
}
