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
