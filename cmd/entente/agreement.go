package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

func cmdAgreement(ctx context.Context, env *Env, args []string) error {
	sub, args, helped, uerr := subcommand(env, args, "agreement set|list|show|delete|preview [flags]",
		commandHelp("agreement", "Managing agreements needs an admin key.\n"+remoteFooter))
	if helped {
		return uerr
	}
	fs, v, err := verbFlags(env, "agreement", sub)
	if err != nil {
		return err
	}
	var b backendFlags
	b.register(fs, env)
	partner := fs.String("partner", "", "the partner's STIX identity id")
	var collections, types, maxTLP, redact, from, until, blindColls, blindBudget *string
	var reshare *bool
	dryRun := new(bool)
	objects := new(bool)
	if sub == "preview" {
		objects = fs.Bool("objects", false, "list every object with its decision (default: a summary of counts per rule, type and TLP)")
	}
	if sub == "set" {
		collections = fs.String("collections", "", "comma-separated collection ids or aliases the agreement covers")
		types = fs.String("types", "", "comma-separated STIX types it covers (default: all)")
		maxTLP = fs.String("max-tlp", "green", "highest TLP the partner may receive: clear, green, amber, amber+strict (red never leaves a node and is refused)")
		reshare = fs.Bool("reshare", false, "allow passing on objects received from third parties (CLEAR and GREEN only)")
		redact = fs.String("redact", "", "comma-separated redactions: victims, identities, freetext")
		from = fs.String("from", "", "start of validity (RFC 3339)")
		until = fs.String("until", "", "end of validity (RFC 3339)")
		blindColls = fs.String("blind", "", "comma-separated collection ids or aliases the partner may test its own values against without receiving them (RED and AMBER+STRICT included; see docs/blind.md)")
		blindBudget = fs.String("blind-budget", "", "with --blind: evaluations the partner may have per period, N/period (minute, hour, day, week or a Go duration), e.g. 100000/day")
		dryRun = fs.Bool("dry-run", false, "record nothing: print what the agreement would release, against the agreement on record, and the objects whose release it would change")
	}
	if _, err := parseVerb(fs, v, args); err != nil {
		return err
	}
	if sub != "list" && *partner == "" {
		return usagef("agreement %s needs --partner", sub)
	}
	var a policy.Agreement
	if sub == "set" {
		var err error
		if a, err = agreementFromFlags(*partner, *collections, *types, *maxTLP, *redact, *from, *until, *reshare); err != nil {
			return err
		}
		if a.Blind, err = blindFromFlags(*blindColls, *blindBudget); err != nil {
			return err
		}
		if len(a.Collections) == 0 && a.Blind == nil {
			return usagef("agreement set needs --collections, or --blind and --blind-budget")
		}
	}
	ops, done, err := b.open(ctx, env)
	if err != nil {
		return err
	}
	defer done()
	switch sub {
	case "set":
		if *dryRun {
			return dryRunAgreement(ctx, env, ops, a)
		}
		a, err := ops.putAgreement(ctx, a)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Recorded agreement %s with %s.\n", a.ID, a.Partner.ID)
	case "list":
		as, err := ops.agreements(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTNER\tCOUNTRY\tCOLLECTIONS\tMAX TLP\tRESHARE\tVALID FROM\tVALID UNTIL\tBLIND")
		for _, a := range as {
			bl := "-"
			if a.Blind != nil {
				bl = strings.Join(a.Blind.Collections, ",") + " " + a.Blind.Budget.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\t%s\t%s\n", a.Partner.ID, a.Partner.Country, dash(strings.Join(a.Collections, ",")),
				a.MaxTLP, a.AllowReshare, fmtOptTime(a.ValidFrom), fmtOptTime(a.ValidUntil), bl)
		}
		return tw.Flush()
	case "show":
		a, err := ops.agreement(ctx, *partner)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(a)
	case "delete":
		if err := ops.deleteAgreement(ctx, *partner); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Deleted the agreement with %s.\n", *partner)
	case "preview":
		return previewAgreement(ctx, env, ops, *partner, *objects)
	default:
		return usagef("unknown subcommand %q (set, list, show, delete or preview)", sub)
	}
	return nil
}

// maxDryRunChanges is how many of the objects a change turns around
// agreement set --dry-run lists.
const maxDryRunChanges = 20

// dryRunAgreement prints what agreement set would change, recording
// nothing: the counts released and withheld now and with the change, and
// the objects whose release it turns around.
func dryRunAgreement(ctx context.Context, env *Env, ops policyOps, a policy.Agreement) error {
	page, err := ops.previewProposed(ctx, a)
	if err != nil {
		return err
	}
	if page.Summary == nil || page.Current == nil {
		return fmt.Errorf("preview of the agreement with %s: the node answered no summary", a.Partner.ID)
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tRELEASED\tWITHHELD")
	fmt.Fprintf(tw, "now\t%d\t%d\n", page.Current.Released, page.Current.Withheld)
	fmt.Fprintf(tw, "with the change\t%d\t%d\n", page.Summary.Released, page.Summary.Withheld)
	changes := page.Changes[:min(len(page.Changes), maxDryRunChanges)]
	fmt.Fprintf(tw, "\n%d objects would change", page.Summary.Changed)
	if len(changes) < page.Summary.Changed {
		fmt.Fprintf(tw, " (the first %d listed)", len(changes))
	}
	fmt.Fprintln(tw, ".")
	if len(changes) > 0 {
		fmt.Fprintln(tw, "\nOBJECT\tTYPE\tTLP\tNOW\tWITH THE CHANGE\tRULE")
		verb := map[bool]string{true: "release", false: "withhold"}
		for _, c := range changes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Object.ID, c.Object.Type, dash(c.Object.TLP.String()), verb[c.Before.Allow], verb[c.After.Allow], c.After.Rule)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(env.Stderr, "Dry run: nothing recorded.")
	return nil
}

// agreementFromFlags builds the agreement of agreement set.
func agreementFromFlags(partner, collections, types, maxTLP, redact, from, until string, reshare bool) (policy.Agreement, error) {
	a := policy.Agreement{Partner: policy.Party{ID: partner}, Collections: splitList(collections), ObjectTypes: splitList(types), AllowReshare: reshare}
	tlp, err := stix.ParseTLP(maxTLP)
	if err != nil {
		return a, usagef("--max-tlp: %v", err)
	}
	a.MaxTLP = tlp
	for _, r := range splitList(redact) {
		switch r {
		case "victims":
			a.Redact.SightingVictimsToCountry = true
		case "identities":
			a.Redact.RemoveThirdPartyIdentities = true
		case "freetext":
			a.Redact.StripFreeText = true
		default:
			return a, usagef("--redact: %q is not victims, identities or freetext", r)
		}
	}
	for _, t := range []struct {
		flag, v string
		dst     *time.Time
	}{{"from", from, &a.ValidFrom}, {"until", until, &a.ValidUntil}} {
		if t.v == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.v)
		if err != nil {
			return a, usagef("--%s: %q is not an RFC 3339 time", t.flag, t.v)
		}
		*t.dst = v.UTC()
	}
	return a, nil
}

// blindFromFlags builds the blind access of agreement set: none when
// neither flag is given.
func blindFromFlags(collections, budget string) (*policy.BlindAccess, error) {
	colls := splitList(collections)
	switch {
	case len(colls) == 0 && budget == "":
		return nil, nil
	case len(colls) == 0:
		return nil, usagef("--blind-budget needs --blind COLLECTIONS")
	case budget == "":
		return nil, usagef("--blind needs --blind-budget N/period (e.g. 100000/day)")
	}
	b, err := blind.ParseBudget(budget)
	if err != nil {
		return nil, usagef("--blind-budget: %v", err)
	}
	return &policy.BlindAccess{Collections: colls, Budget: b}, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func fmtOptTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// previewAgreement prints what a partner would receive: a summary of
// counts, or with objects every object with its decision, page by page
// as the node answers them (a node of millions of objects never answers
// in one piece).
func previewAgreement(ctx context.Context, env *Env, ops policyOps, partner string, objects bool) error {
	if !objects {
		page, err := ops.preview(ctx, partner, node.PreviewRequest{Summary: true})
		if err != nil {
			return err
		}
		sum := page.Summary
		if sum == nil {
			return fmt.Errorf("preview of %s: the node answered no summary", partner)
		}
		tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "%d of %d objects would be released to %s; %d withheld.\n", sum.Released, sum.Objects, partner, sum.Withheld)
		if sum.BlindByRule != nil {
			fmt.Fprintf(tw, "blind: %d indicators, no values released.\n", sum.Blind)
		}
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "RULE\tOBJECTS")
		for _, k := range slices.Sorted(maps.Keys(sum.ByRule)) {
			fmt.Fprintf(tw, "%s\t%d\n", k, sum.ByRule[k])
		}
		for _, part := range []struct {
			title string
			m     map[string]*node.PreviewCounts
		}{{"TYPE", sum.ByType}, {"TLP", sum.ByTLP}} {
			fmt.Fprintf(tw, "\n%s\tRELEASED\tWITHHELD\n", part.title)
			for _, k := range slices.Sorted(maps.Keys(part.m)) {
				fmt.Fprintf(tw, "%s\t%d\t%d\n", k, part.m[k].Released, part.m[k].Withheld)
			}
		}
		if len(sum.BlindByRule) > 0 {
			fmt.Fprintln(tw, "\nBLIND RULE\tINDICATORS")
			for _, k := range slices.Sorted(maps.Keys(sum.BlindByRule)) {
				fmt.Fprintf(tw, "%s\t%d\n", k, sum.BlindByRule[k])
			}
		}
		if len(sum.FieldsRemoved) > 0 {
			fmt.Fprintln(tw, "\nFIELDS REMOVED BY RULE\tCOUNT")
			for _, k := range slices.Sorted(maps.Keys(sum.FieldsRemoved)) {
				fmt.Fprintf(tw, "%s\t%d\n", k, sum.FieldsRemoved[k])
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(env.Stderr, "Use --objects to list every object with its decision.")
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DECISION\tRULE\tOBJECT\tTLP\tCOLLECTION\tBLIND\tREASON")
	released, total, blindN := 0, 0, 0
	blindAccess := false
	req := node.PreviewRequest{Limit: 5000}
	for {
		page, err := ops.preview(ctx, partner, req)
		if err != nil {
			return err
		}
		for _, e := range page.Explanations {
			d := "withhold"
			if e.Decision.Allow {
				d = "release"
				released++
			}
			total++
			bl := "-"
			if e.Blind != nil {
				blindAccess = true
				bl = "withheld (" + e.Blind.Rule + ")"
				if e.Blind.Allow {
					bl = "blind, no value released"
					blindN++
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d, e.Decision.Rule, e.Object.ID, e.Object.TLP, e.Object.Collection, bl, e.Decision.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if page.Next == "" {
			break
		}
		req.Next = page.Next
	}
	fmt.Fprintf(env.Stderr, "%d of %d objects would be released to %s.\n", released, total, partner)
	if blindAccess {
		fmt.Fprintf(env.Stderr, "blind: %d indicators, no values released.\n", blindN)
	}
	return nil
}
