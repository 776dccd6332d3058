package match

import (
	"syscall"
	"unsafe"
)

// hugePageMin is the size from which a table is worth backing with huge
// pages: lookups in a table much larger than the TLB's reach otherwise
// pay a page walk on top of each cache miss.
const hugePageMin = 8 << 20

// adviseHuge asks the kernel to back the memory of s with transparent
// huge pages (when it is configured to do so on request). It is a hint:
// failures are ignored and change nothing but speed. Called right after
// s was allocated, before its pages are touched.
func adviseHuge[T any](s []T) {
	var zero T
	n := uintptr(len(s)) * unsafe.Sizeof(zero)
	if n < hugePageMin {
		return
	}
	const page = 4096
	base := unsafe.Pointer(unsafe.SliceData(s))
	start := uintptr(base)
	end := start + n
	off := (start+page-1)&^(page-1) - start
	end &^= page - 1
	if end <= start+off {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(base, off)), end-start-off)
	_ = syscall.Madvise(b, 14) // MADV_HUGEPAGE
}
