//go:build linux

package hugepage

import "syscall"

// adviseOS is madvise(MADV_HUGEPAGE) on b, whose bounds are page-aligned.
func adviseOS(b []byte) { _ = syscall.Madvise(b, 14) } // MADV_HUGEPAGE
