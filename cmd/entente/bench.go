package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/bench"
)

const benchHelp = `Measure every headline figure in one run, beside its goal and its peer:
TAXII POST, paged reads and latency (../shared/bench/taxii-load), the
ATT&CK ingest, matching Zeek conn and Suricata EVE logs beside grep and a
Python set matcher, exports of 1,000,000 IPs, the policy gate's cost, a
node-to-node pull, a small drill, and the SQLite WAL under mixed load.
It builds what it needs (go build, from the repository and ../shared/bench)
and prints, per workload, each figure, its goal, the peer's figure from the
same run (or the recorded one, marked so, when the peer cannot run here),
the ratio, and the machine's load before and after. --json writes one JSON
line per figure and sample; 'entente bench compare OLD NEW' compares two
such files. --quick takes about five minutes; the full run the sizes the
goals are stated for, with several samples (about 30-60 minutes).

Subcommands:
  entente bench [flags]                  run the workloads
  entente bench list                     list the workloads
  entente bench compare OLD.jsonl NEW.jsonl
                                         compare two results files: median, spread,
                                         delta and Mann-Whitney p-value per figure`

func cmdBench(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "list":
			for _, w := range bench.Workloads() {
				only := ""
				if w.FullOnly {
					only = " (full mode, or --only)"
				}
				fmt.Fprintf(env.Stdout, "%-14s %s%s\n", w.Name, w.About, only)
			}
			return nil
		case "compare":
			return benchCompare(env, args[1:])
		}
	}
	fs := newFlags(env, "bench", "bench [--quick] [--only W,...] [--skip W,...] [--json FILE] [--work DIR] | list | compare OLD NEW", benchHelp)
	quick := fs.Bool("quick", false, "the quick run (about five minutes) instead of the full one")
	only := fs.String("only", "", "comma-separated workloads to run (see 'entente bench list'); full-only ones run when named")
	skip := fs.String("skip", "", "comma-separated workloads not to run")
	jsonOut := fs.String("json", "", "write one JSON line per figure and sample to FILE")
	work := fs.String("work", filepath.Join(os.TempDir(), "entente-bench"), "scratch directory: binaries, generated workloads (kept for later runs), nodes' data")
	repo := fs.String("repo", "", "the repository's root (default: the directory holding go.mod, above the current one)")
	shared := fs.String("shared", "", "the shared folder holding data/ and bench/ (default: ../shared beside the repository, or the parent of $ENTENTE_SHARED_DATA)")
	strace := fs.Bool("strace", false, "count the ingest's system calls too (one more run under strace -c -f)")
	ripgrep := fs.Bool("ripgrep", false, "run ripgrep among the matching peers when installed (needs 6-9 GB for a million patterns)")
	walDur := fs.Duration("wal-duration", 0, "length of the wal workload's mixed load (default 30s quick, 60s full)")
	walClients := fs.Int("wal-clients", 16, "clients of the wal workload's mixed load")
	keep := fs.Bool("keep", false, "keep the nodes' data directories")
	var match [4]int
	fs.IntVar(&match[0], "match-indicators", 0, "indicators of the match workload (default 1,000,000 quick, 2,000,000 full)")
	fs.IntVar(&match[1], "match-conn-lines", 0, "conn.log lines of the match workload (default 2,000,000 quick, 5,000,000 full)")
	fs.IntVar(&match[2], "match-dns-lines", 0, "dns.log lines of the match workload, reported from 100,000 (default 1,000 quick, 1,000,000 full)")
	fs.IntVar(&match[3], "match-eve-lines", 0, "eve.json lines of the match workload (default 1,000,000 quick, 2,000,000 full)")
	bin := fs.String("entente", "", "measure this entente binary instead of building one from the repository (A/B runs; Go benchmarks still use the repository)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *walClients < 1 || *walClients > 256 {
		return usagef("--wal-clients %d: between 1 and 256", *walClients)
	}
	for _, n := range match {
		if n < 0 || n > 100_000_000 {
			return usagef("--match-*: between 0 (the default) and 100,000,000")
		}
	}
	if *walDur < 0 || *walDur > 2*time.Hour {
		return usagef("--wal-duration %v: between 0 and 2h", *walDur)
	}
	opts := bench.Options{Mode: bench.Full, Work: *work, Out: env.Stdout, Log: env.Stderr, Strace: *strace, Ripgrep: *ripgrep,
		WALDuration: *walDur, WALClients: *walClients, Keep: *keep, Entente: *bin,
		MatchIndicators: match[0], MatchConnLines: match[1], MatchDNSLines: match[2], MatchEVELines: match[3], Only: splitList(*only), Skip: splitList(*skip)}
	if *quick {
		opts.Mode = bench.Quick
	}
	if *bin != "" {
		abs, err := filepath.Abs(*bin)
		if err != nil {
			return err
		}
		if fi, err := os.Stat(abs); err != nil || fi.IsDir() {
			return usagef("--entente %s: not a binary (%v)", *bin, err)
		}
		opts.Entente = abs
	}
	if _, err := bench.Select(bench.Workloads(), opts.Only, opts.Skip, opts.Mode); err != nil {
		return usagef("%v", err)
	}
	var err error
	if opts.Repo, err = benchRepo(*repo); err != nil {
		return err
	}
	opts.Shared = *shared
	if opts.Shared == "" {
		opts.Shared = filepath.Join(opts.Repo, "..", "shared")
		if d := env.Getenv("ENTENTE_SHARED_DATA"); d != "" {
			opts.Shared = filepath.Dir(filepath.Clean(d))
		}
	}
	if _, err := os.Stat(filepath.Join(opts.Shared, "data")); err != nil {
		return usagef("shared folder %s has no data/ (give --shared DIR): %v", opts.Shared, err)
	}
	if *jsonOut != "" {
		f, err := os.Create(*jsonOut)
		if err != nil {
			return err
		}
		defer f.Close()
		opts.JSON = f
	}
	return bench.Run(ctx, opts, bench.Workloads())
}

// benchCompare prints the comparison of two results files.
func benchCompare(env *Env, args []string) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(env.Stderr, "Usage: entente bench compare OLD.jsonl NEW.jsonl")
		return nil
	}
	if len(args) != 2 {
		return usagef("compare takes two results files (before and after), written by 'entente bench --json'")
	}
	read := func(path string) ([]bench.Record, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		recs, err := bench.ReadRecords(path, f)
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			return nil, fmt.Errorf("%s holds no figures", path)
		}
		return recs, nil
	}
	old, err := read(args[0])
	if err != nil {
		return err
	}
	new, err := read(args[1])
	if err != nil {
		return err
	}
	return bench.WriteComparison(env.Stdout, args[0], args[1], old, new, bench.Compare(old, new))
}

// benchRepo returns the repository's root: dir, or the directory holding
// this module's go.mod above the current one.
func benchRepo(dir string) (string, error) {
	if dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
			return "", usagef("--repo %s: no go.mod there", dir)
		}
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/entente-cti/entente\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("not inside the Entente repository (no go.mod of github.com/entente-cti/entente above here): give --repo DIR")
		}
	}
}
