package hugepage

import (
	"testing"
	"unsafe"
)

// TestAdviseBounds checks what Advise asks of the kernel: the whole 4 KiB
// pages inside s and nothing outside, whatever its alignment; nothing for
// a slice under the minimum or holding no whole page; sizes counted in
// bytes for elements wider than a byte.
func TestAdviseBounds(t *testing.T) {
	var got []byte
	calls := 0
	advise = func(b []byte) { got, calls = b, calls+1 }
	defer func() { advise = adviseOS }()
	buf := make([]byte, 6<<20)
	words := make([]uint64, 1<<18) // 2 MiB
	for _, tc := range []struct {
		name  string
		base  unsafe.Pointer
		size  uintptr
		run   func()
		calls int
	}{
		{"large, unaligned", unsafe.Pointer(&buf[1]), 6<<20 - 1, func() { Advise(buf[1:], 2<<20) }, 1},
		{"under the minimum", nil, 0, func() { Advise(buf[:1<<20], 2<<20) }, 0},
		{"less than a page", nil, 0, func() { Advise(buf[1:4000], 0) }, 0},
		{"empty", nil, 0, func() { Advise(buf[:0], 0) }, 0},
		{"wider elements, at the minimum", unsafe.Pointer(&words[0]), 2 << 20, func() { Advise(words, 2<<20) }, 1},
	} {
		got, calls = nil, 0
		tc.run()
		if calls != tc.calls {
			t.Errorf("%s: %d calls, want %d", tc.name, calls, tc.calls)
			continue
		}
		if calls == 0 {
			continue
		}
		start, lo := uintptr(tc.base), uintptr(unsafe.Pointer(unsafe.SliceData(got)))
		hi := lo + uintptr(len(got))
		if lo < start || hi > start+tc.size || lo%4096 != 0 || hi%4096 != 0 {
			t.Errorf("%s: advice on [%#x, %#x) for [%#x, %#x): outside or unaligned", tc.name, lo, hi, start, start+tc.size)
		}
		if lo-start >= 4096 || start+tc.size-hi >= 4096 {
			t.Errorf("%s: advice on [%#x, %#x) leaves a whole page of [%#x, %#x) out", tc.name, lo, hi, start, start+tc.size)
		}
	}
}
