package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/policy"
)

func cmdPartner(ctx context.Context, env *Env, args []string) error {
	sub, args, helped, uerr := subcommand(env, args, "partner add|list|remove|quarantine|release|trust [flags]",
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
		fs.Func("constituency", "what the partner declares its own, never acted on here: comma-separated networks, addresses, domains (repeatable)", func(v string) error {
			for _, e := range strings.Split(v, ",") {
				if e = strings.TrimSpace(e); e != "" {
					p.Constituency = append(p.Constituency, e)
				}
			}
			return nil
		})
	}
	var reason string
	var weight float64
	var quota int
	switch sub {
	case "quarantine":
		fs.StringVar(&reason, "reason", "", "why (recorded in the audit log and shown with the partner)")
	case "trust":
		fs.Float64Var(&weight, "weight", 0, "what the partner counts for towards a tier's independent sources (0 to 10; negative: the default)")
		fs.IntVar(&quota, "quota", 0, "sightings the partner may add per correlation window (0: none; negative: the default)")
	}
	pos, err := parseVerb(fs, v, args)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if sub == "trust" && !set["weight"] && !set["quota"] {
		return usagef("partner trust needs --weight or --quota")
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
		fmt.Fprintln(tw, "ID\tNAME\tCOUNTRY\tSECTOR\tTRUST")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Country, p.Sector, trustText(p.Trust))
		}
		return tw.Flush()
	case "quarantine":
		if _, err := ops.quarantine(ctx, pos[0], reason); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Quarantined partner %s: nothing it contributed is acted on until 'entente partner release %s'.\n", pos[0], pos[0])
	case "release":
		if _, err := ops.release(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Released partner %s from quarantine.\n", pos[0])
	case "trust":
		req := httpapi.TrustRequest{}
		if set["weight"] {
			req.Weight = &weight
		}
		if set["quota"] {
			req.Quota = &quota
		}
		got, err := ops.trust(ctx, pos[0], req)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Partner %s: %s.\n", pos[0], trustText(got.Trust))
	case "remove":
		if err := ops.removePartner(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Removed partner %s.\n", pos[0])
	}
	return nil
}

// trustText describes a partner's trust for people.
func trustText(t policy.Trust) string {
	w, q := "weight default", "quota default"
	if t.Weight != nil {
		w = fmt.Sprintf("weight %g", *t.Weight)
	}
	if t.Quota != nil {
		q = fmt.Sprintf("quota %d", *t.Quota)
	}
	s := w + ", " + q
	if t.Quarantined {
		s = "QUARANTINED since " + t.QuarantinedAt.UTC().Format("2006-01-02T15:04:05Z")
		if t.Reason != "" {
			s += " (" + t.Reason + ")"
		}
	}
	return s
}
