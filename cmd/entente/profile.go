package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles starts the profiles that the (undocumented, for the
// developers') environment variables ENTENTE_CPUPROFILE and
// ENTENTE_HEAPPROFILE ask for, of the whole process, whatever the
// command; the function it returns writes them. The heap profile is
// taken at the end, after a collection, with every allocation sampled
// since the start (its alloc_space is what the command allocated; its
// inuse_space at the peak is not kept: see peak RSS instead).
func startProfiles(getenv func(string) string) (stop func()) {
	var stops []func()
	if p := getenv("ENTENTE_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "entente: cpu profile: %v\n", err)
		} else {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if p := getenv("ENTENTE_HEAPPROFILE"); p != "" {
		stops = append(stops, func() {
			f, err := os.Create(p)
			if err == nil {
				runtime.GC()
				err = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "entente: heap profile: %v\n", err)
			}
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}
