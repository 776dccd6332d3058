package main

import (
	"runtime"
	"runtime/debug"

	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/hugepage"
)

// tuneRuntime applies the configuration's garbage-collector settings,
// unless the GOGC or GOMEMLIMIT environment variables set them.
func tuneRuntime(env *Env, cfg config.Config) {
	if env.Getenv("GOGC") == "" && cfg.GCPercent > 0 {
		debug.SetGCPercent(cfg.GCPercent)
	}
	if env.Getenv("GOMEMLIMIT") == "" && cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
}

// warmHeap faults in, before serve takes its first request, the memory
// its heap grows into under its first load, then leaves it to the heap,
// free: the collector's smallest goal (warmHeapSize), which the
// runtime's scavenger keeps rather than returns. Asked for transparent
// huge pages, it costs a handful of page faults instead of one per
// 4 KiB page.
//
// Why: a fresh process takes every page of its growing heap from the
// kernel with a page fault, and on the virtual machines of issue 15 a
// fault costs microseconds. A node's first 10,000 objects posted
// (taxii-load post) faulted ~3,000 pages of heap (of ~6,600 faults in
// all) while its heap grew to its first goals (16-24 MB at gc_percent
// 400), in the request handlers, validation and the writer; warm, the
// same POST faults ~3,100 fewer pages and its server CPU per object is
// 13-18 % lower (docs/performance.md, "A warm heap and ..."). A node that
// has served for a while has its heap in place anyway; this is the JVM's
// AlwaysPreTouch for the heap's first goal, not more.
func warmHeap() {
	gcPercent := debug.SetGCPercent(-1)
	debug.SetGCPercent(gcPercent)
	n := warmHeapSize(gcPercent, debug.SetMemoryLimit(-1))
	if n == 0 {
		return
	}
	b := make([]byte, n)
	hugepage.Advise(b, 2<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	// Collected at once, its pages are free heap, mapped and resident.
	runtime.GC()
}

// warmHeapSize is how much heap warmHeap faults in: the collector's
// smallest heap goal, 4 MiB scaled by gcPercent (16 MiB at serve's
// default 400; the runtime's scavenger keeps that much plus a tenth
// resident), at most warmHeapMax and a quarter of a memory limit
// (memLimit, math.MaxInt64 when none); nothing when the collector is
// off (gcPercent < 0).
func warmHeapSize(gcPercent int, memLimit int64) int {
	if gcPercent < 0 {
		return 0
	}
	n := int64(4<<20) * int64(gcPercent) / 100
	n = min(n, warmHeapMax, memLimit/4)
	return int(max(n, 0))
}

// warmHeapMax bounds warmHeapSize.
const warmHeapMax = 64 << 20

// bodyPressure is what serve does while large request bodies are being
// decoded (httpapi.Options.BodyPressure): the collector runs at Go's
// default pace (gc_percent 100, unless configured lower or GOGC is set)
// so that their garbage does not pile up to gc_percent 400's five times
// the live heap, and once they are stored the memory goes back to the
// operating system at once.
func bodyPressure(env *Env, cfg config.Config) func(high bool) {
	tune := env.Getenv("GOGC") == "" && cfg.GCPercent > 100
	return func(high bool) {
		switch {
		case high && tune:
			debug.SetGCPercent(100)
		case !high:
			if tune {
				debug.SetGCPercent(cfg.GCPercent)
			}
			debug.FreeOSMemory()
		}
	}
}
