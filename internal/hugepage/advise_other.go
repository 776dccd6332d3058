//go:build !linux

package hugepage

// adviseOS does nothing where transparent huge pages are not known.
func adviseOS([]byte) {}
