//go:build !linux

package devices

// adviseHuge does nothing where transparent huge pages are not known.
func adviseHuge[T any](s []T) {}
