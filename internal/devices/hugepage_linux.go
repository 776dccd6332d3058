//go:build linux

package devices

import (
	"syscall"
	"unsafe"
)

// adviseHuge asks the kernel to back the memory of s with transparent
// huge pages (when it is configured to do so on request): profiles of
// tens of thousands of devices are read at random, and with 4 KiB pages
// each read would also pay a page walk. It is a hint: failures are
// ignored and change nothing but speed. Called right after s was
// allocated, before its pages are touched.
func adviseHuge[T any](s []T) {
	var zero T
	n := uintptr(len(s)) * unsafe.Sizeof(zero)
	const page = 4096
	if n < 2<<20 {
		return
	}
	base := unsafe.Pointer(unsafe.SliceData(s))
	start := uintptr(base)
	end := (start + n) &^ (page - 1)
	off := (start+page-1)&^(page-1) - start
	if end <= start+off {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(base, off)), end-start-off)
	_ = syscall.Madvise(b, 14) // MADV_HUGEPAGE
}
