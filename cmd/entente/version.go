package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

func cmdVersion(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "version", "version",
		"Print the version of this binary: the module version, the version-control revision\n"+
			"and time it was built from (when the build recorded them) and the Go version.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	writeVersion(env.Stdout, bi)
	return nil
}

// writeVersion writes what bi records of the build (nil: nothing).
func writeVersion(w io.Writer, bi *debug.BuildInfo) {
	version, revision, at, modified := "unknown", "unknown", "unknown", ""
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (with uncommitted changes)"
				}
			}
		}
	}
	goVersion := runtime.Version()
	if bi != nil && bi.GoVersion != "" {
		goVersion = bi.GoVersion
	}
	fmt.Fprintf(w, "entente %s\nrevision %s%s\ncommitted %s\nbuilt with %s %s/%s\n", version, revision, modified, at, goVersion, runtime.GOOS, runtime.GOARCH)
}
