//go:build !linux

package sensor

import "os"

// mapFile maps nothing on this system: files are read.
func mapFile(*os.File) *mapping { return nil }

func unmap([]byte) {}

func willNeed([]byte) {}

func dropPages([]byte) {}
