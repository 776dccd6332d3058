package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/entente-cti/entente/internal/node"
)

func cmdAudit(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "audit", "audit [--partner ID] [--object ID] [--action egress|admin] [--since T] [--until T]",
		"List the audit log: every object version that left the node (to whom, when, under which rule) and every administrative change, oldest first.")
	var b backendFlags
	b.register(fs, env)
	var q node.AuditQuery
	fs.StringVar(&q.Partner, "partner", "", "only records about this partner (identity id)")
	fs.StringVar(&q.ObjectID, "object", "", "only records of this object id")
	fs.StringVar(&q.Action, "action", "", "only egress or admin records")
	since := fs.String("since", "", "only records at or after this time (RFC 3339)")
	until := fs.String("until", "", "only records before this time (RFC 3339)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, t := range []struct {
		flag, v string
		dst     *time.Time
	}{{"since", *since, &q.From}, {"until", *until, &q.To}} {
		if t.v == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.v)
		if err != nil {
			return usagef("--%s: %q is not an RFC 3339 time", t.flag, t.v)
		}
		*t.dst = v
	}
	ops, done, err := b.open(ctx, env)
	if err != nil {
		return err
	}
	defer done()
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTION\tACTOR\tPARTNER\tOBJECT\tVERSION\tRULE\tDETAIL")
	for {
		page, err := ops.audit(ctx, q)
		if err != nil {
			return err
		}
		for _, r := range page.Records {
			version := "-"
			if !r.Version.IsZero() {
				version = r.Version.UTC().Format(time.RFC3339Nano)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339Nano), r.Action, r.Actor,
				dash(r.Partner), dash(r.ObjectID), version, r.Rule, r.Detail)
		}
		if page.Next == "" {
			break
		}
		q.Next = page.Next
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
