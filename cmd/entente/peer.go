package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/entente-cti/entente/internal/node"
)

func cmdPeer(ctx context.Context, env *Env, args []string) error {
	sub, args, helped, uerr := subcommand(env, args, "peer add|list|remove|sync [flags]",
		commandHelp("peer", "--peer-token is the key the peer issued to this node; it is stored and never shown.\n"+
			"--pin is the fingerprint of the peer's TLS key, which its administrator gives you\n"+
			"out of band; a peer that then presents another key is refused, audited and logged.\n"+
			"Managing peers needs an admin key.\n"+remoteFooter))
	if helped {
		return uerr
	}
	fs, v, err := verbFlags(env, "peer", sub)
	if err != nil {
		return err
	}
	var b backendFlags
	b.register(fs, env)
	var p node.Peer
	var noCheck bool
	if sub == "add" {
		fs.StringVar(&p.ID, "id", "", "the peer's id on this node (default: a new UUID)")
		fs.StringVar(&p.Name, "name", "", "the peer's name")
		fs.StringVar(&p.DiscoveryURL, "url", "", "the peer's TAXII discovery URL")
		fs.StringVar(&p.APIRoot, "api-root", "", "the peer's API root URL")
		fs.StringVar(&p.Collection, "collection", "", "the peer's collection id")
		fs.StringVar(&p.LocalCollection, "into", "", "this node's collection (id or alias) to pull into and push from")
		fs.StringVar(&p.Token, "peer-token", "", "the key the peer issued to this node")
		fs.StringVar(&p.Org, "org", "", "the STIX identity id of the peer's organisation")
		fs.StringVar(&p.Direction, "direction", "pull", "pull, push or both")
		fs.StringVar(&p.Pin, "pin", "", "the fingerprint of the peer's TLS key (SHA256:…, as its 'entente init' printed it): the node then accepts that key alone, over https")
		fs.BoolVar(&noCheck, "no-check", false, "add the peer without checking first that it answers as a TAXII 2.1 server with this collection and token")
	}
	pos, err := parseVerb(fs, v, args)
	if err != nil {
		return err
	}
	if sub == "add" && p.APIRoot == "" && p.DiscoveryURL != "" {
		return usagef("peer add needs --api-root (the API root URL)")
	}
	ops, done, err := b.open(ctx, env)
	if err != nil {
		return err
	}
	defer done()
	switch sub {
	case "add":
		p, err := ops.addPeer(ctx, p, !noCheck)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Added peer %s (%s).\n", p.ID, p.Name)
		fmt.Fprintln(env.Stdout, p.ID)
	case "list":
		ps, err := ops.peers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tDIRECTION\tAPI ROOT\tCOLLECTION\tINTO\tLAST SYNC\tLAST ERROR")
		for _, p := range ps {
			last := "-"
			if !p.LastSync.IsZero() {
				last = p.LastSync.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Direction, p.APIRoot, p.Collection, p.LocalCollection, last, dash(p.LastError))
		}
		return tw.Flush()
	case "remove":
		if err := ops.removePeer(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "Removed peer %s.\n", pos[0])
	case "sync":
		ids := pos
		if len(ids) == 0 {
			ps, err := ops.peers(ctx)
			if err != nil {
				return err
			}
			for _, p := range ps {
				ids = append(ids, p.ID)
			}
		}
		// Every peer is tried; one failing does not stop the others.
		var failed int
		for _, id := range ids {
			res, err := ops.syncPeer(ctx, id)
			if err != nil {
				failed++
				fmt.Fprintf(env.Stderr, "peer %s: %v\n", id, err)
				continue
			}
			fmt.Fprintf(env.Stdout, "%s\tpulled %d\tstored %d\tinvalid %d\tpushed %d\tpush failed %d\n",
				id, res.Pulled, res.Stored, res.Invalid, res.Pushed, res.PushFailed)
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d peers failed to sync", failed, len(ids))
		}
	}
	return nil
}
