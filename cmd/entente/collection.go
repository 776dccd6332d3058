package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/stix"
)

func cmdCollection(ctx context.Context, env *Env, args []string) error {
	sub, args, helped, uerr := subcommand(env, args, "collection create|list [flags]",
		commandHelp("collection", "Creating collections needs an admin key.\n"+remoteFooter))
	if helped {
		return uerr
	}
	fs, v, err := verbFlags(env, "collection", sub)
	if err != nil {
		return err
	}
	var remote remoteFlags
	remote.register(fs, env)
	cfg := config.Default()
	fs.StringVar(&cfg.Data, "data", "", "data directory of a node, to work offline")
	fs.StringVar(&cfg.Store, "store", "", "PostgreSQL URL of a node's store, to work offline")
	var c entente.Collection
	var read, write, tlp string
	if sub == "create" {
		fs.StringVar(&c.Title, "title", "", "title of the collection")
		fs.StringVar(&c.Alias, "alias", "", "short name, usable in place of the id")
		fs.StringVar(&c.Description, "description", "", "description")
		fs.StringVar(&read, "read", "analyst", "comma-separated roles that may read")
		fs.StringVar(&write, "write", "analyst", "comma-separated roles that may write")
		fs.StringVar(&tlp, "tlp", "amber", "TLP 2.0 level of objects that carry no marking")
	}
	if _, err := parseVerb(fs, v, args); err != nil {
		return err
	}
	if sub == "create" {
		var err error
		if c.ReadRoles, err = parseRoles(read); err != nil {
			return usagef("--read: %v", err)
		}
		if c.WriteRoles, err = parseRoles(write); err != nil {
			return usagef("--write: %v", err)
		}
		t, err := stix.ParseTLP(tlp)
		if err != nil {
			return usagef("--tlp: %v", err)
		}
		c.DefaultMarking = t.MarkingID()
	}

	var create func(context.Context, entente.Collection) (entente.Collection, error)
	var list func(context.Context) ([]entente.Collection, error)
	if cfg.Data != "" || cfg.Store != "" {
		svc, st, err := openNode(ctx, cfg, quietLogger(env))
		if err != nil {
			return err
		}
		defer st.Close()
		id, err := svc.Identity(ctx)
		if err != nil {
			return err
		}
		admin := node.LocalAdmin(id.ID)
		create = func(ctx context.Context, c entente.Collection) (entente.Collection, error) {
			return svc.CreateCollection(ctx, admin, c)
		}
		list = func(ctx context.Context) ([]entente.Collection, error) { return svc.AllCollections(ctx, admin) }
	} else {
		if remote.server == "" {
			return usagef("give --server URL (or ENTENTE_SERVER) for a running node, or --data DIR to work offline")
		}
		api, err := newAPIClient(remote)
		if err != nil {
			return err
		}
		create = func(ctx context.Context, c entente.Collection) (entente.Collection, error) {
			var out entente.Collection
			err := api.do(ctx, "POST", "/api/v1/collections", httpapi.NewCollection{
				ID: c.ID, Alias: c.Alias, Title: c.Title, Description: c.Description,
				DefaultMarking: c.DefaultMarking, ReadRoles: c.ReadRoles, WriteRoles: c.WriteRoles,
			}, &out)
			return out, err
		}
		list = func(ctx context.Context) ([]entente.Collection, error) {
			var out struct {
				Collections []entente.Collection `json:"collections"`
			}
			err := api.do(ctx, "GET", "/api/v1/collections", nil, &out)
			return out.Collections, err
		}
	}
	switch sub {
	case "create":
		if c.Title == "" {
			return usagef("--title is required")
		}
		got, err := create(ctx, c)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, got.ID)
	case "list":
		cs, err := list(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tALIAS\tTITLE\tREAD\tWRITE\tDEFAULT TLP")
		for _, c := range cs {
			level := "-"
			if t, ok := stix.TLPFromMarking(c.DefaultMarking); ok {
				level = t.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Alias, c.Title, joinRoles(c.ReadRoles), joinRoles(c.WriteRoles), level)
		}
		return tw.Flush()
	}
	return nil
}

func parseRoles(s string) ([]entente.Role, error) {
	roles := []entente.Role{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		r := entente.Role(f)
		if !r.Valid() {
			return nil, fmt.Errorf("%q is not a role (admin, analyst, partner, sensor)", f)
		}
		roles = append(roles, r)
	}
	return roles, nil
}

func joinRoles(rs []entente.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}
