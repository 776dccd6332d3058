package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/sensorclient"
)

// whoami returns the organisation (identity id) of the key of rf.
func whoami(ctx context.Context, rf remoteFlags) (string, error) {
	c, err := newAPIClient(rf)
	if err != nil {
		return "", err
	}
	var who struct {
		Org string `json:"org"`
	}
	if err := c.do(ctx, "GET", "/api/v1/whoami", nil, &who); err != nil {
		return "", err
	}
	if who.Org == "" {
		return "", fmt.Errorf("the node names no organisation for this key")
	}
	return who.Org, nil
}

// listFlag is a flag that may be given many times (or with commas).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func cmdMatch(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "match", "match [flags] [LOG...]",
		"Match network logs (Zeek TSV or JSON, Suricata EVE, JSON lines; gzip or plain; stdin when no LOG\n"+
			"is given) against indicators from a node (--server, --token) or from files (--indicators).\n"+
			"Indicators whose patterns are more than values to look up (AND, NOT, ports, FOLLOWEDBY, WITHIN,\n"+
			"REPEATS...) are evaluated against each log record as an observation.\n"+
			"Writes one JSON line per hit to stdout or --out, and aggregates the hits into STIX sightings\n"+
			"written to --sightings and/or posted to the node with --report.\n"+
			"With --blind PEER, matches against the blinded set of a partner that grants you blind access\n"+
			"(see docs/blind.md): each distinct value of the logs is translated once through batched blind\n"+
			"evaluations within your budget, the partner learns nothing of your values, and hits name the\n"+
			"partner's indicators by blinded references unless --resolve gets them released.")
	var (
		rf         remoteFlags
		indicators listFlag
		format     = fs.String("log-format", "auto", "log format: auto, zeek, zeek-json, eve or jsonl")
		fields     = fs.String("fields", "", "for --log-format jsonl: field mapping path=kind,... (kinds: ip, domain, host, url, email, hash, any)")
		timeField  = fs.String("time-field", "", "for --log-format jsonl: path of the record's timestamp")
		out        = fs.String("out", "", "write hits to this file instead of stdout")
		sightings  = fs.String("sightings", "", "write the sightings bundle to this file")
		report     = fs.Bool("report", false, "post the sightings bundle to the node (--server)")
		identity   = fs.String("identity", env.Getenv("ENTENTE_IDENTITY"), "identity id of this organisation, for where_sighted_refs (or $ENTENTE_IDENTITY; default: the organisation of --token on --server)")
		workers    = fs.Int("workers", 0, "parsing goroutines (default: every core)")
		quiet      = fs.Bool("quiet", false, "do not print the summary and bad lines on stderr")
	)
	blindPeer := fs.String("blind", "", "match against the blinded set of PEER: a peer of this node (its id or name; with --data DIR or --store URL, where it is configured) or the URL of the partner's node (with --blind-token)")
	blindToken := fs.String("blind-token", "", "with --blind URL: the key the partner's node issued to you (or $ENTENTE_BLIND_TOKEN)")
	resolve := fs.Bool("resolve", false, "with --blind: ask the partner to resolve the hits' blinded references (it learns which of its indicators your logs hit); the sightings then name the indicators it releases")
	blindData := fs.String("data", "", "with --blind PEER: this node's data directory, where PEER is configured")
	blindStore := fs.String("store", "", "with --blind PEER: this node's PostgreSQL store, where PEER is configured")
	cfgFile := fs.String("config", "", "node configuration file whose [safety] table guards --indicators (default: the defaults: IANA special-purpose space and the shipped warninglists)")
	rf.register(fs, env)
	fs.Var(&indicators, "indicators", "indicator file: STIX bundle or plain list of values, gzip or plain (repeatable)")
	lim := inputLimits(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *blindPeer != "" && len(indicators) > 0 {
		return usagef("--blind and --indicators are two ways to match: give one")
	}
	if *blindPeer == "" && (*resolve || *blindToken != "" || *blindData != "" || *blindStore != "") {
		return usagef("--resolve, --blind-token, --data and --store go with --blind")
	}
	if len(indicators) == 0 && rf.server == "" && *blindPeer == "" {
		return usagef("give --indicators FILE, --server URL or --blind PEER")
	}
	if *report && rf.server == "" {
		return usagef("--report needs --server")
	}
	if (*report || *sightings != "") && *identity == "" && *blindPeer == "" {
		if rf.server == "" {
			return usagef("--sightings and --report need --identity (the identity id of this organisation), or --server and --token to ask the node")
		}
		who, err := whoami(ctx, rf)
		if err != nil {
			return fmt.Errorf("--identity: ask the node: %w", err)
		}
		*identity = who
	}
	var scan sensor.Options
	scan.Workers = *workers
	switch *format {
	case "auto":
	case "jsonl":
		f, err := sensor.JSONLines(*fields, *timeField)
		if err != nil {
			return usagef("--fields: %v", err)
		}
		scan.Format = f
	default:
		f, ok := sensor.Formats[*format]
		if !ok {
			return usagef("unknown --log-format %q (want auto, zeek, zeek-json, eve or jsonl)", *format)
		}
		scan.Format = f
	}
	if !*quiet {
		scan.OnBadLine = func(b sensor.BadLine) { fmt.Fprintf(env.Stderr, "bad line: %v\n", b) }
	}

	if *blindPeer != "" {
		tok := *blindToken
		if tok == "" {
			tok = env.Getenv("ENTENTE_BLIND_TOKEN")
		}
		return matchBlind(ctx, env, blindMatchOptions{peer: *blindPeer, token: tok, data: *blindData, store: *blindStore,
			resolve: *resolve, identity: *identity, rf: rf, report: *report, quiet: *quiet, sightings: *sightings, out: *out,
			scan: scan, logs: logInputs(env, fs.Args())})
	}

	start := time.Now()
	var snap *match.Snapshot
	var patterns *match.PatternSet
	client := &sensorclient.Client{Server: rf.server, Token: rf.key()}
	if len(indicators) > 0 {
		// The safety net guards what is compiled, as the node's does for
		// the snapshots it serves: nothing protected is ever matched.
		cfg := config.Default()
		if *cfgFile != "" {
			var err error
			if cfg, err = config.Load(*cfgFile, env.Getenv); err != nil {
				return err
			}
		}
		guard, err := safetyNet(cfg, *cfgFile)
		if err != nil {
			return err
		}
		b := match.NewBuilder()
		b.Guard(guard.Guard(safety.OutputMatch))
		patterns = match.NewPatternSet()
		b.CollectPatterns(patterns)
		var st match.LoadStats
		for _, name := range indicators {
			f, err := os.Open(name)
			if err != nil {
				return fmt.Errorf("indicators: %w", err)
			}
			s, err := match.LoadFileMax(b, name, f, time.Now(), lim.MaxSize)
			f.Close()
			st.Add(s)
			if err != nil {
				return fmt.Errorf("indicators: %w", err)
			}
		}
		for _, p := range st.Problems {
			fmt.Fprintf(env.Stderr, "indicator problem: %s\n", p)
		}
		snap = b.Snapshot()
		if n := patterns.Unobservable(); n > 0 && !*quiet {
			fmt.Fprintf(env.Stderr, "indicators: %d patterns name only object types that network logs do not hold (processes, accounts, registry keys...): they cannot match\n", n)
		}
		if !*quiet {
			fmt.Fprintf(env.Stderr, "indicators: %d values (%d STIX indicators; %d revoked, %d expired, %d patterns evaluated per record, %d in another pattern language, %d invalid) in %v\n",
				snap.Len(), st.Indicators, st.Revoked, st.Expired, st.Evaluated, st.Uncompiled-st.Evaluated, st.Invalid, time.Since(start).Round(time.Millisecond))
			if st.Protected > 0 {
				fmt.Fprintf(env.Stderr, "indicators: %d values or patterns left out or cut by the safety net (protected space; entente export --explain VALUE says why)\n", st.Protected)
			}
		}
	} else {
		s, _, err := client.FetchSnapshot(ctx, "")
		if err != nil {
			return err
		}
		snap = s
		patterns = s.Patterns()
	}

	logs := logInputs(env, fs.Args())

	hitsW := env.Stdout
	var outFile *os.File
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		outFile = f
		hitsW = f
	}
	bw := bufio.NewWriterSize(hitsW, 1<<20)
	res, runErr := match.Run(ctx, match.Options{Snapshot: snap, Patterns: patterns, Logs: logs, Scan: scan, Hits: bw})
	if err := bw.Flush(); err != nil && runErr == nil {
		runErr = fmt.Errorf("write hits: %w", err)
	}
	if outFile != nil {
		if err := outFile.Close(); err != nil && runErr == nil {
			runErr = fmt.Errorf("write hits: %w", err)
		}
	}
	if res == nil {
		return runErr
	}
	if !*quiet {
		for _, p := range res.EvalProblems {
			fmt.Fprintf(env.Stderr, "pattern evaluation: %s\n", p)
		}
		el := time.Since(start)
		fmt.Fprintf(env.Stderr, "%s; %v\n", res.Summary(), el.Round(time.Millisecond))
	}
	if *sightings != "" || *report {
		bundle, err := match.SightingsBundle(res.Sightings, *identity, time.Now())
		if err != nil {
			return err
		}
		if *sightings != "" {
			if err := os.WriteFile(*sightings, bundle, 0o644); err != nil {
				return fmt.Errorf("--sightings: %w", err)
			}
		}
		if *report {
			if err := client.PostSightings(ctx, bundle); err != nil {
				return err
			}
		}
	}
	return runErr
}

// logInputs returns the log inputs named by args: stdin for "-" or
// when there are none.
func logInputs(env *Env, args []string) []sensor.Input {
	var logs []sensor.Input
	if len(args) == 0 {
		logs = append(logs, sensor.Input{Name: "-", Open: func() (io.ReadCloser, error) { return io.NopCloser(env.Stdin), nil }})
	}
	for _, a := range args {
		if a == "-" {
			logs = append(logs, sensor.Input{Name: "-", Open: func() (io.ReadCloser, error) { return io.NopCloser(env.Stdin), nil }})
			continue
		}
		logs = append(logs, sensor.Input{Name: a, Open: func() (io.ReadCloser, error) { return os.Open(a) }})
	}
	return logs
}
