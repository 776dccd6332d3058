package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/entente-cti/entente/internal/node"
)

func cmdAudit(ctx context.Context, env *Env, args []string) error {
	// "audit list", like every other command's list; "audit" alone is
	// the same.
	if len(args) > 0 && args[0] == "list" {
		args = args[1:]
	} else if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return usagef("unknown subcommand %q (list)", args[0])
	}
	fs, v, err := verbFlags(env, "audit", "list")
	if err != nil {
		return err
	}
	var b backendFlags
	b.register(fs, env)
	var q node.AuditQuery
	fs.StringVar(&q.Partner, "partner", "", "only records about this partner (identity id)")
	fs.StringVar(&q.ObjectID, "object", "", "only records of this object id")
	fs.StringVar(&q.Action, "action", "", "only egress or admin records")
	since := fs.String("since", "", "only records at or after this time (RFC 3339)")
	until := fs.String("until", "", "only records before this time (RFC 3339)")
	if _, err := parseVerb(fs, v, args); err != nil {
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
