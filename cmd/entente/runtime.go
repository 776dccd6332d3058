package main

import (
	"runtime/debug"

	"github.com/entente-cti/entente/internal/config"
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
