package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/entente-cti/entente/internal/policy"
)

func cmdPartner(ctx context.Context, env *Env, args []string) error {
	const synopsis = "partner add|list [flags]"
	sub, args, helped, uerr := subcommand(env, args, synopsis,
		"  add --id identity--… --name N --country CC [--sector S]   record (or update) an organisation the node shares with\n"+
			"  list                                                     list partners\n\n"+
			"Each talks to a running node (--server URL --token KEY) or works offline (--data DIR).\n")
	if helped {
		return uerr
	}
	fs := newFlags(env, "partner "+sub, "partner "+sub+" [flags]", "Manage partner organisations (admin).")
	var b backendFlags
	b.register(fs, env)
	var p policy.Party
	if sub == "add" {
		fs.StringVar(&p.ID, "id", "", "the partner's STIX identity id (identity--UUID)")
		fs.StringVar(&p.Name, "name", "", "the partner's name")
		fs.StringVar(&p.Country, "country", "", "ISO 3166-1 alpha-2 country code (FR, DE, …)")
		fs.StringVar(&p.Sector, "sector", "", "industry sector (STIX industry-sector-ov)")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ops, done, err := b.open(ctx, env)
	if err != nil {
		return err
	}
	defer done()
	switch sub {
	case "add":
		if p.ID == "" || p.Country == "" {
			return usagef("partner add needs --id and --country")
		}
		if err := ops.putPartner(ctx, p); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Recorded partner %s (%s, %s).\n", p.ID, p.Name, p.Country)
	case "list":
		ps, err := ops.partners(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCOUNTRY\tSECTOR")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Country, p.Sector)
		}
		return tw.Flush()
	default:
		return usagef("unknown subcommand %q (add or list)", sub)
	}
	return nil
}
