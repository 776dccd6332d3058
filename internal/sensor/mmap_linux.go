//go:build linux

package sensor

import (
	"os"
	"syscall"
	"unsafe"
)

// mapFile maps f read-only when it is a regular file that is not empty
// and does not start with the gzip magic number; it returns nil (and the
// caller reads f) otherwise, or when the mapping fails.
func mapFile(f *os.File) *mapping {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() <= 0 || int64(int(st.Size())) != st.Size() {
		return nil
	}
	var head [2]byte
	if n, _ := f.ReadAt(head[:], 0); n == 2 && head[0] == 0x1f && head[1] == 0x8b {
		return nil
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	// The file is read once, front to back: read ahead, and the pages
	// behind may go. (MADV_WILLNEED is asked block by block, willNeed:
	// on the whole file it would read all of a log larger than memory.)
	_ = syscall.Madvise(data, syscall.MADV_SEQUENTIAL)
	m := &mapping{data: data}
	m.refs.Store(1)
	return m
}

func unmap(data []byte) { _ = syscall.Munmap(data) }

// dropPages takes the pages that lie wholly within b, a chunk of a
// mapping that is done, out of the process: they stay in the page cache,
// and an access after this reads them again from there, so nothing
// changes but the resident size, which would otherwise grow by the whole
// file (a 1 GB conn.log matched read 1.3 GB resident against 0.4 GB
// read into buffers).
func dropPages(b []byte) {
	if len(b) == 0 {
		return
	}
	page := uintptr(syscall.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := (start + page - 1) &^ (page - 1)
	hi := (start + uintptr(len(b))) &^ (page - 1)
	if hi <= lo {
		return
	}
	_ = syscall.Madvise(b[lo-start:hi-start], syscall.MADV_DONTNEED)
}

// willNeed asks the kernel to read b, the next block, ahead.
func willNeed(b []byte) {
	if len(b) > 0 {
		_ = syscall.Madvise(b, syscall.MADV_WILLNEED)
	}
}
