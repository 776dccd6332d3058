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
	sub, args, helped, uerr := subcommand(env, args, "alert list|show|ack|resolve [flags]",
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
		fmt.Fprintln(tw, "ID\tSTATUS\tTIER\tORGS\tCOUNTRIES\tLAST SEEN\tTHREAT")
		for _, a := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.ID, a.Status, a.Tier, a.Organisations,
				strings.Join(a.Countries, ","), a.LastSeen.UTC().Format(time.RFC3339), a.Threat)
		}
		return tw.Flush()
	case "show":
		a, err := ops.show(ctx, id)
		if err != nil {
			return err
		}
		return printAlert(env, a)
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
	fmt.Fprintf(tw, "ID:\t%s\nStatus:\t%s\nTier:\t%s\nThreat:\t%s\nOrganisations:\t%d\nCountries:\t%s\nFirst seen:\t%s\nLast seen:\t%s\n",
		a.ID, a.Status, a.Tier, a.Threat, a.Organisations, strings.Join(a.Countries, ","),
		a.FirstSeen.UTC().Format(time.RFC3339), a.LastSeen.UTC().Format(time.RFC3339))
	if err := tw.Flush(); err != nil {
		return err
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
	close      func()
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
			close: func() { st.Close() },
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
		close: func() {},
	}, nil
}
