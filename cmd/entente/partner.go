package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/entente-cti/entente/internal/policy"
)

func cmdPartner(ctx context.Context, env *Env, args []string) error {
	sub, args, helped, uerr := subcommand(env, args, "partner add|list|remove [flags]",
		commandHelp("partner", "Managing partners needs an admin key.\n"+remoteFooter))
	if helped {
		return uerr
	}
	fs, v, err := verbFlags(env, "partner", sub)
	if err != nil {
		return err
	}
	var b backendFlags
	b.register(fs, env)
	var p policy.Party
	if sub == "add" {
		fs.StringVar(&p.ID, "id", "", "the partner's STIX identity id (identity--UUID)")
		fs.StringVar(&p.Name, "name", "", "the partner's name")
		fs.StringVar(&p.Country, "country", "", "ISO 3166-1 alpha-2 country code (FR, DE, …)")
		fs.StringVar(&p.Sector, "sector", "", "industry sector (STIX industry-sector-ov)")
	}
	pos, err := parseVerb(fs, v, args)
	if err != nil {
		return err
	}
	if sub == "add" && (p.ID == "" || p.Country == "") {
		return usagef("partner add needs --id and --country")
	}
	ops, done, err := b.open(ctx, env)
	if err != nil {
		return err
	}
	defer done()
	switch sub {
	case "add":
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
	case "remove":
		if err := ops.removePartner(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Removed partner %s.\n", pos[0])
	}
	return nil
}
