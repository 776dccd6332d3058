package main

import (
	"context"
	"fmt"

	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/nodekey"
)

func cmdInit(ctx context.Context, env *Env, args []string) error {
	cfg := config.Default()
	fs := newFlags(env, "init", "init --data DIR --org NAME --country CC [--sector S] [--store URL]",
		"Create a node: its identity (a STIX identity located in its country), the default\n"+
			"collections (node, intel, sightings, alerts), the first admin key and, in the\n"+
			"data directory, the node's TLS key pair (node-key.pem, node-cert.pem) that\n"+
			"'serve --tls' serves. The admin key is printed once, on stdout, and is all\n"+
			"stdout carries; the TLS key's fingerprint is printed on stderr: give it to the\n"+
			"administrators of the node's peers out of band (peer add --pin).")
	fs.StringVar(&cfg.Data, "data", "", "data directory of the embedded store")
	fs.StringVar(&cfg.Store, "store", "", "PostgreSQL URL (postgres://…) instead of the embedded store")
	org := fs.String("org", "", "name of the organisation that runs the node")
	country := fs.String("country", "", "ISO 3166-1 alpha-2 code of the organisation's country")
	sector := fs.String("sector", "", "the organisation's industry sector (STIX vocabulary, e.g. government)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *org == "" || *country == "" {
		return usagef("--org and --country are required")
	}
	if cfg.Data == "" && cfg.Store == "" {
		return usagef("--data DIR (or --store URL) is required")
	}
	st, err := openStore(ctx, cfg.Data, cfg.Store, true)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := newService(st, cfg, nil, quietLogger(env))
	id, secret, err := svc.Init(ctx, *org, *country, *sector)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "Created node for %s (%s, %s). The admin key follows on stdout; it is shown only once.\n", id.Name, id.Country, id.ID)
	if cfg.Data != "" {
		pair, err := nodekey.Ensure(cfg.Data, id.Name)
		if err != nil {
			return fmt.Errorf("the node was created, but not its TLS key pair: %w", err)
		}
		fmt.Fprintf(env.Stderr, "Its TLS key fingerprint, for its peers to pin (peer add --pin): %s\n", pair.Fingerprint)
	} else {
		fmt.Fprintln(env.Stderr, "No --data: no TLS key pair was made; 'entente serve --tls --data DIR' makes one.")
	}
	fmt.Fprintln(env.Stdout, secret)
	return nil
}
