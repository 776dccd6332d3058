// Package hugepage asks the kernel to back large buffers with transparent
// huge pages: a buffer filled once then costs one page fault per 2 MiB
// instead of one per 4 KiB, and a table read at random one page walk per
// 2 MiB of reach. It is a hint only: where the kernel does not know it,
// or is not configured to honour it ("madvise" mode), nothing changes but
// speed.
package hugepage

import "unsafe"

// Advise asks for huge pages under the memory of s when it holds at least
// min bytes, on the whole 4 KiB pages inside it. Call it right after s was
// allocated, before its pages are touched. Failures are ignored.
func Advise[T any](s []T, min uintptr) {
	var zero T
	n := uintptr(len(s)) * unsafe.Sizeof(zero)
	if n < min || n == 0 {
		return
	}
	const page = 4096
	base := unsafe.Pointer(unsafe.SliceData(s))
	start := uintptr(base)
	end := (start + n) &^ (page - 1)
	off := (start+page-1)&^(page-1) - start
	if end <= start+off {
		return
	}
	advise(unsafe.Slice((*byte)(unsafe.Add(base, off)), end-start-off))
}

// advise gives the advice on page-aligned b (a variable for the tests).
var advise = adviseOS
