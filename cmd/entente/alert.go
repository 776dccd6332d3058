package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/node"
)

func cmdAlert(ctx context.Context, env *Env, args []string) error {
	sub, args, helped, uerr := subcommand(env, args, "alert list|show|ack|resolve|false-positive [flags]",
		commandHelp("alert", "Alerts need an analyst or admin key.\n"+remoteFooter))
	if helped {
		return uerr
	}
	fs, v, err := verbFlags(env, "alert", sub)
	if err != nil {
		return err
	}
	var remote remoteFlags
	remote.register(fs, env)
	cfg := config.Default()
	fs.StringVar(&cfg.Data, "data", "", "data directory of a node, to work offline")
	fs.StringVar(&cfg.Store, "store", "", "PostgreSQL URL of a node's store, to work offline")
	var f node.AlertFilter
	var note string
	switch sub {
	case "list":
		fs.Func("status", "only alerts in this status (new, acknowledged, escalated, resolved)", func(v string) error {
			f.Status = correlate.Status(v)
			return nil
		})
		fs.StringVar(&f.Tier, "tier", "", "only alerts of this tier (national, regional, global)")
	case "ack", "resolve":
		fs.StringVar(&note, "note", "", "why the status changes (recorded in the history)")
	case "false-positive":
		fs.StringVar(&note, "reason", "", "why it is wrong (the opinion's explanation, sent with it)")
	}
	// The alert id may come before the flags (alert ack ID --note …) or
	// after them.
	pos, err := parseVerb(fs, v, args)
	if err != nil {
		return err
	}
	var id string
	if len(pos) > 0 {
		id = pos[0]
	}
	ops, err := alertBackend(ctx, env, remote, cfg)
	if err != nil {
		return err
	}
	defer ops.close()
	switch sub {
	case "list":
		list, err := ops.list(ctx, f)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tTIER\tORGS\tSOURCES\tCOUNTRIES\tLAST SEEN\tTHREAT\tVALUES")
		for _, a := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", a.ID, a.Status, a.Tier, a.Organisations, a.Sources,
				strings.Join(a.Countries, ","), a.LastSeen.UTC().Format(time.RFC3339), threatText(a), valuesText(a.Values, 3))
		}
		return tw.Flush()
	case "show":
		a, err := ops.show(ctx, id)
		if err != nil {
			return err
		}
		return printAlert(env, a)
	case "false-positive":
		fp, err := ops.falsePositive(ctx, id, note)
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("Marked %s a false positive (%s)", fp.Object, fp.Opinion)
		if fp.Revoked {
			msg += " and revoked it"
		}
		fmt.Fprintf(env.Stderr, "%s: it leaves every export, and partners that received it are told.\n", msg)
		for _, a := range fp.Withdrawn {
			fmt.Fprintf(env.Stdout, "withdrawn\t%s\n", a)
		}
		for _, a := range fp.Lowered {
			fmt.Fprintf(env.Stdout, "lowered\t%s\n", a)
		}
		return nil
	default:
		a, err := ops.transition(ctx, sub, id, note)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Alert %s is now %s.\n", a.ID, a.Status)
	}
	return nil
}

// printAlert writes an alert and its history for people.
func printAlert(env *Env, a node.AlertInfo) error {
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\nStatus:\t%s\nTier:\t%s\nRule:\t%s\nThreat:\t%s\nValues:\t%s\nOrganisations:\t%d\nIndependent sources:\t%d\nCountries:\t%s\nFirst seen:\t%s\nLast seen:\t%s\n",
		a.ID, a.Status, a.Tier, a.Rule, threatText(a), valuesText(a.Values, 0), a.Organisations, a.Sources, strings.Join(a.Countries, ","),
		a.FirstSeen.UTC().Format(time.RFC3339), a.LastSeen.UTC().Format(time.RFC3339))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(a.Evidence) > 0 {
		fmt.Fprintln(env.Stdout, "\nEvidence (by independent source):")
		tw = tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SOURCE\tWEIGHT\tORGS\tCOUNTRIES")
		for _, e := range a.Evidence {
			fmt.Fprintf(tw, "%s\t%g\t%d\t%s\n", e.Source, e.Weight, e.Organisations, strings.Join(e.Countries, ","))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(a.Suppressed) > 0 {
		fmt.Fprintln(env.Stdout, "\nSuppressed by the safety net:")
		for _, sp := range a.Suppressed {
			fmt.Fprintf(env.Stdout, "  %s: %d sightings\n", sp.Rule, sp.Sightings)
		}
	}
	fmt.Fprintln(env.Stdout, "\nHistory:")
	tw = tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tFROM\tTO\tTIER\tBY\tNOTE")
	for _, t := range a.History {
		from := string(t.From)
		if from == "" {
			from = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.At.UTC().Format(time.RFC3339), from, t.To, t.Tier, t.By, t.Note)
	}
	return tw.Flush()
}

// alertOps are the alert operations, on a running node or offline.
type alertOps struct {
	list       func(context.Context, node.AlertFilter) ([]node.AlertInfo, error)
	show       func(context.Context, string) (node.AlertInfo, error)
	transition func(ctx context.Context, action, id, note string) (node.AlertInfo, error)
	// falsePositive marks an object a false positive.
	falsePositive func(ctx context.Context, id, reason string) (node.FalsePositive, error)
	close         func()
}

func alertBackend(ctx context.Context, env *Env, remote remoteFlags, cfg config.Config) (*alertOps, error) {
	if cfg.Data != "" || cfg.Store != "" {
		svc, st, err := openNode(ctx, cfg, quietLogger(env))
		if err != nil {
			return nil, err
		}
		id, err := svc.Identity(ctx)
		if err != nil {
			st.Close()
			return nil, err
		}
		admin := node.LocalAdmin(id.ID)
		return &alertOps{
			list: func(ctx context.Context, f node.AlertFilter) ([]node.AlertInfo, error) {
				return svc.ListAlerts(ctx, admin, f)
			},
			show: func(ctx context.Context, id string) (node.AlertInfo, error) { return svc.Alert(ctx, admin, id) },
			transition: func(ctx context.Context, action, id, note string) (node.AlertInfo, error) {
				if action == "ack" {
					return svc.AckAlert(ctx, admin, id, note)
				}
				return svc.ResolveAlert(ctx, admin, id, note)
			},
			falsePositive: func(ctx context.Context, id, reason string) (node.FalsePositive, error) {
				return svc.MarkFalsePositive(ctx, admin, id, reason)
			},
			close: func() { svc.Close(); st.Close() },
		}, nil
	}
	if remote.server == "" {
		return nil, usagef("give --server URL (or ENTENTE_SERVER) for a running node, or --data DIR to work offline")
	}
	c, err := newAPIClient(remote)
	if err != nil {
		return nil, err
	}
	return &alertOps{
		list: func(ctx context.Context, f node.AlertFilter) ([]node.AlertInfo, error) {
			q := url.Values{}
			if f.Status != "" {
				q.Set("status", string(f.Status))
			}
			if f.Tier != "" {
				q.Set("tier", f.Tier)
			}
			path := "/api/v1/alerts"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var out struct {
				Alerts []node.AlertInfo `json:"alerts"`
			}
			err := c.do(ctx, "GET", path, nil, &out)
			return out.Alerts, err
		},
		show: func(ctx context.Context, id string) (node.AlertInfo, error) {
			var out node.AlertInfo
			err := c.do(ctx, "GET", "/api/v1/alerts/"+url.PathEscape(id), nil, &out)
			return out, err
		},
		transition: func(ctx context.Context, action, id, note string) (node.AlertInfo, error) {
			var out node.AlertInfo
			err := c.do(ctx, "POST", "/api/v1/alerts/"+url.PathEscape(id)+"/"+action, map[string]string{"note": note}, &out)
			return out, err
		},
		falsePositive: func(ctx context.Context, id, reason string) (node.FalsePositive, error) {
			var out node.FalsePositive
			err := c.do(ctx, "POST", "/api/v1/objects/"+url.PathEscape(id)+"/false-positive", map[string]string{"reason": reason}, &out)
			return out, err
		},
		close: func() {},
	}, nil
}

// threatText names an alert's threat for people: its name and type, and
// its id.
func threatText(a node.AlertInfo) string {
	if a.ThreatName == "" {
		return a.Threat
	}
	return fmt.Sprintf("%s (%s %s)", a.ThreatName, a.ThreatType, a.Threat)
}

// valuesText lists observable values, at most max (0: all).
func valuesText(vs []string, max int) string {
	if len(vs) == 0 {
		return "-"
	}
	if max > 0 && len(vs) > max {
		return strings.Join(vs[:max], ", ") + fmt.Sprintf(" (+%d)", len(vs)-max)
	}
	return strings.Join(vs, ", ")
}
