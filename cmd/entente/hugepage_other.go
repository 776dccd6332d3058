//go:build !linux

package main

// adviseHuge does nothing where transparent huge pages are not known.
func adviseHuge([]byte) {}
