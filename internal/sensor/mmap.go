package sensor

import (
	"errors"
	"sync/atomic"
)

// ErrTruncated is the error of a file that shrank while it was read
// through its memory mapping: the lines before the fault are parsed, the
// rest of the file is not.
var ErrTruncated = errors.New("file truncated while read")

// mapping is a regular file mapped read-only into memory: its chunks are
// slices of the mapping instead of copies (the kernel's copy into read
// buffers was about 5 % of a conn.log match). The file is read as it was
// when opened: lines appended later are not read. A page past the end of
// a file truncated meanwhile faults (SIGBUS); the goroutines that read
// the mapping turn that fault into ErrTruncated (debug.SetPanicOnFault).
type mapping struct {
	data []byte
	// refs counts the reader and the chunks not yet done; the last
	// release unmaps.
	refs atomic.Int64
}

func (m *mapping) acquire() { m.refs.Add(1) }

func (m *mapping) release() {
	if m.refs.Add(-1) == 0 {
		unmap(m.data)
		m.data = nil
	}
}

// isFault reports whether a recovered panic is a memory fault (the
// runtime's error for an access to an address that faulted, with
// debug.SetPanicOnFault on).
func isFault(r any) bool {
	_, ok := r.(interface{ Addr() uintptr })
	return ok
}
