package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/store"
)

func cmdFeed(ctx context.Context, env *Env, args []string) error {
	sub, args, helped, uerr := subcommand(env, args, "feed add|list|remove|poll [flags]",
		commandHelp("feed", "Feeds need an admin key.\n"+remoteFooter))
	if helped {
		return uerr
	}
	fs, v, err := verbFlags(env, "feed", sub)
	if err != nil {
		return err
	}
	var remote remoteFlags
	remote.register(fs, env)
	cfg := config.Default()
	fs.StringVar(&cfg.Data, "data", "", "data directory of a node, offline")
	fs.StringVar(&cfg.Store, "store", "", "PostgreSQL URL of a node's store, offline")
	var fr httpapi.FeedRequest
	if sub == "add" {
		fs.StringVar(&fr.Name, "name", "", "feed name, recorded as the indicators' source (required)")
		fs.StringVar(&fr.URL, "url", "", "http(s) URL of the feed (required)")
		fs.StringVar(&fr.Format, "format", "auto", "auto, misp-event, csv, urlhaus, threatfox, feodo or plain")
		fs.StringVar(&fr.Interval, "interval", "1h", "polling interval")
		fs.StringVar(&fr.TLP, "tlp", "", "TLP of indicators the feed does not mark")
		fs.IntVar(&fr.Confidence, "confidence", 0, "confidence of indicators the feed does not rate")
		fs.StringVar(&fr.ValidFor, "valid-for", "", "how long the feed's indicators stay valid")
		fs.StringVar(&fr.Collection, "collection", node.CollectionIntel, "collection to import into")
	}
	pos, err := parseVerb(fs, v, args)
	if err != nil {
		return err
	}
	var id string
	if len(pos) > 0 {
		id = pos[0]
	}

	var feeds []store.Feed
	switch {
	case cfg.Data != "" || cfg.Store != "":
		svc, st, err := openNode(ctx, cfg, quietLogger(env))
		if err != nil {
			return err
		}
		defer st.Close()
		who, err := svc.Identity(ctx)
		if err != nil {
			return err
		}
		admin := node.LocalAdmin(who.ID)
		switch sub {
		case "add":
			f := store.Feed{Name: fr.Name, URL: fr.URL, Format: fr.Format, TLP: fr.TLP, Confidence: fr.Confidence, Collection: fr.Collection}
			if f.Interval, err = time.ParseDuration(fr.Interval); err != nil {
				return usagef("--interval: %v", err)
			}
			if fr.ValidFor != "" {
				if f.ValidFor, err = time.ParseDuration(fr.ValidFor); err != nil {
					return usagef("--valid-for: %v", err)
				}
			}
			f, err = svc.AddFeed(ctx, admin, f)
			if err != nil {
				return err
			}
			feeds = []store.Feed{f}
		case "list":
			if feeds, err = svc.Feeds(ctx, admin); err != nil {
				return err
			}
		case "remove":
			return svc.RemoveFeed(ctx, admin, id)
		case "poll":
			f, err := svc.PollFeed(ctx, admin, id)
			if f.ID == "" {
				return err
			}
			printFeeds(env, []store.Feed{f})
			return err
		}
	case remote.server != "":
		c, err := newAPIClient(remote)
		if err != nil {
			return err
		}
		switch sub {
		case "add":
			var f store.Feed
			if err := c.do(ctx, "POST", "/api/v1/feeds", fr, &f); err != nil {
				return err
			}
			feeds = []store.Feed{f}
		case "list":
			var out struct {
				Feeds []store.Feed `json:"feeds"`
			}
			if err := c.do(ctx, "GET", "/api/v1/feeds", nil, &out); err != nil {
				return err
			}
			feeds = out.Feeds
		case "remove":
			return c.do(ctx, "DELETE", "/api/v1/feeds/"+url.PathEscape(id), nil, nil)
		case "poll":
			var f store.Feed
			if err := c.do(ctx, "POST", "/api/v1/feeds/"+url.PathEscape(id)+"/poll", nil, &f); err != nil {
				return err
			}
			printFeeds(env, []store.Feed{f})
			if f.LastError != "" {
				return fmt.Errorf("poll feed %s: %s", f.Name, f.LastError)
			}
			return nil
		}
	default:
		return usagef("give --server URL (or ENTENTE_SERVER) or --data DIR")
	}
	printFeeds(env, feeds)
	return nil
}

// printFeeds writes feeds as a table on stdout.
func printFeeds(env *Env, feeds []store.Feed) {
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tFORMAT\tINTERVAL\tCOLLECTION\tLAST RUN\tSTORED\tLAST ERROR\tURL")
	for _, f := range feeds {
		last := "never"
		if !f.LastRun.IsZero() {
			last = f.LastRun.Format(time.RFC3339)
		}
		var stats node.FeedStats
		json.Unmarshal(f.Stats, &stats)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", f.ID, f.Name, f.Format, f.Interval, f.Collection, last, stats.Stored, f.LastError, f.URL)
	}
	tw.Flush()
}
