package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/node"
)

func cmdKey(ctx context.Context, env *Env, args []string) error {
	sub, args, helped, uerr := subcommand(env, args, "key create|list|revoke [flags]",
		commandHelp("key", "Managing keys needs an admin key.\n"+remoteFooter))
	if helped {
		return uerr
	}
	fs, v, err := verbFlags(env, "key", sub)
	if err != nil {
		return err
	}
	var remote remoteFlags
	remote.register(fs, env)
	cfg := config.Default()
	fs.StringVar(&cfg.Data, "data", "", "data directory of a node, to work offline")
	fs.StringVar(&cfg.Store, "store", "", "PostgreSQL URL of a node's store, to work offline")
	var nk node.NewKey
	role := new(string)
	if sub == "create" {
		role = fs.String("role", "", "admin, analyst, partner or sensor")
		fs.StringVar(&nk.Org, "org", "", "STIX identity id of the key's organisation (default: the node's own)")
		fs.StringVar(&nk.Name, "name", "", "a label for the key")
	}
	pos, err := parseVerb(fs, v, args)
	if err != nil {
		return err
	}
	if sub == "create" {
		nk.Role = entente.Role(*role)
		if !nk.Role.Valid() {
			return usagef("--role must be admin, analyst, partner or sensor")
		}
	}

	k, err := keyBackend(ctx, env, remote, cfg)
	if err != nil {
		return err
	}
	defer k.close()
	switch sub {
	case "create":
		secret, key, err := k.create(ctx, nk)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Created %s key %s for %s. It is shown only once:\n", key.Role, key.ID, key.Org)
		fmt.Fprintln(env.Stdout, secret)
	case "list":
		keys, err := k.list(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tROLE\tORG\tNAME\tCREATED\tREVOKED")
		for _, key := range keys {
			revoked := "-"
			if key.Revoked != nil {
				revoked = key.Revoked.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", key.ID, key.Role, key.Org, key.Name, key.Created.UTC().Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "revoke":
		if err := k.revoke(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Revoked key %s.\n", pos[0])
	}
	return nil
}

// keyOps are the key operations, on a running node or offline.
type keyOps struct {
	create func(context.Context, node.NewKey) (string, entente.Key, error)
	list   func(context.Context) ([]entente.Key, error)
	revoke func(context.Context, string) error
	close  func()
}

func keyBackend(ctx context.Context, env *Env, remote remoteFlags, cfg config.Config) (*keyOps, error) {
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
		return &keyOps{
			create: func(ctx context.Context, nk node.NewKey) (string, entente.Key, error) {
				return svc.CreateKey(ctx, admin, nk)
			},
			list:   func(ctx context.Context) ([]entente.Key, error) { return svc.Keys(ctx, admin) },
			revoke: func(ctx context.Context, id string) error { return svc.RevokeKey(ctx, admin, id) },
			close:  func() { st.Close() },
		}, nil
	}
	if remote.server == "" {
		return nil, usagef("give --server URL (or ENTENTE_SERVER) for a running node, or --data DIR to work offline")
	}
	c, err := newAPIClient(remote)
	if err != nil {
		return nil, err
	}
	return &keyOps{
		create: func(ctx context.Context, nk node.NewKey) (string, entente.Key, error) {
			var out struct {
				entente.Key
				Secret string `json:"secret"`
			}
			err := c.do(ctx, "POST", "/api/v1/keys", nk, &out)
			return out.Secret, out.Key, err
		},
		list: func(ctx context.Context) ([]entente.Key, error) {
			var out struct {
				Keys []entente.Key `json:"keys"`
			}
			err := c.do(ctx, "GET", "/api/v1/keys", nil, &out)
			return out.Keys, err
		},
		revoke: func(ctx context.Context, id string) error { return c.do(ctx, "DELETE", "/api/v1/keys/"+id, nil, nil) },
		close:  func() {},
	}, nil
}
