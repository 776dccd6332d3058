package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/blind/blindhttp"
	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/federation"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/pin"
	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/sensorclient"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

// blindBase returns the URL of the blind access of the node that rawURL
// (its base URL, discovery or API root) belongs to.
func blindBase(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%q is not the URL of a node", rawURL)
	}
	return u.Scheme + "://" + u.Host + httpapi.BlindPath + "/", nil
}

// dialBlind reaches the blind access of a peer over HTTP, with the key the
// peer issued to this node (node.Config.DialBlind).
func dialBlind(p federation.Peer) blind.Peer {
	u := p.APIRoot
	if u == "" {
		u = p.DiscoveryURL
	}
	base, err := blindBase(u)
	if err != nil {
		return brokenPeer{fmt.Errorf("peer %s: %w", p.ID, err)}
	}
	c := &blindhttp.Client{Base: base, Token: p.Token}
	if p.Pin != "" {
		if !strings.HasPrefix(base, "https://") {
			return brokenPeer{fmt.Errorf("peer %s is pinned to a key but its URL %q is not https", p.ID, u)}
		}
		hc, err := taxiiclient.HTTPFor(nil, p.Pin, func(*pin.MismatchError) { peerKeyMismatches.Inc() })
		if err != nil {
			return brokenPeer{fmt.Errorf("peer %s: %w", p.ID, err)}
		}
		hc.Timeout = time.Minute
		c.HTTP = hc
	}
	return c
}

// brokenPeer answers every call with the error that made it.
type brokenPeer struct{ err error }

func (b brokenPeer) Info(context.Context) (*blind.EpochInfo, error) { return nil, b.err }
func (b brokenPeer) Set(context.Context, uint64) ([]byte, error)    { return nil, b.err }
func (b brokenPeer) Evaluate(context.Context, *blind.EvalRequest) (*blind.EvalResponse, error) {
	return nil, b.err
}

// blindMatchOptions are what match --blind needs of match's flags.
type blindMatchOptions struct {
	peer, token    string
	data, store    string
	resolve        bool
	identity       string
	rf             remoteFlags
	report, quiet  bool
	sightings, out string
	scan           sensor.Options
	logs           []sensor.Input
}

// matchBlind matches logs against the blinded set of a partner that
// grants this organisation blind access: every distinct value of the logs
// is translated once (batched evaluations within the budget), the lines
// are matched locally, and hits are reported as sightings naming the
// partner's indicator only when the partner released it (--resolve),
// otherwise its blinded reference. Nothing the partner did not release
// is written anywhere.
func matchBlind(ctx context.Context, env *Env, o blindMatchOptions) error {
	var peer blind.Peer
	partner := o.peer
	if strings.Contains(o.peer, "://") {
		base, err := blindBase(o.peer)
		if err != nil {
			return usagef("--blind: %v", err)
		}
		if o.token == "" {
			return usagef("--blind %s needs --blind-token (or $ENTENTE_BLIND_TOKEN): the key that node issued to you", o.peer)
		}
		peer = &blindhttp.Client{Base: base, Token: o.token}
	} else {
		if o.data == "" && o.store == "" {
			return usagef("--blind PEER needs this node's --data DIR (or --store URL), where the peer is configured; or give the partner node's URL")
		}
		cfg := config.Default()
		cfg.Data, cfg.Store = o.data, o.store
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
		if peer, err = svc.BlindPeer(ctx, admin, o.peer); err != nil {
			return err
		}
		if peers, err := svc.Peers(ctx, admin); err == nil {
			for _, p := range peers {
				if (p.ID == o.peer || p.Name == o.peer) && p.Org != "" {
					partner = p.Org
				}
			}
		}
		if o.identity == "" {
			o.identity = id.ID
		}
	}
	if (o.report || o.sightings != "") && o.identity == "" {
		if o.rf.server == "" {
			return usagef("--sightings and --report need --identity (the identity id of this organisation), or --server and --token to ask the node")
		}
		who, err := whoami(ctx, o.rf)
		if err != nil {
			return fmt.Errorf("--identity: ask the node: %w", err)
		}
		o.identity = who
	}
	hitsW := env.Stdout
	var outFile *os.File
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		outFile = f
		hitsW = f
	}
	start := time.Now()
	bw := bufio.NewWriterSize(hitsW, 1<<20)
	tr := blind.NewTranslator(peer)
	res, runErr := blind.Match(ctx, tr, blind.MatchOptions{Logs: o.logs, Scan: o.scan, Hits: bw})
	if err := bw.Flush(); err != nil && runErr == nil {
		runErr = fmt.Errorf("write hits: %w", err)
	}
	if outFile != nil {
		if err := outFile.Close(); err != nil && runErr == nil {
			runErr = fmt.Errorf("write hits: %w", err)
		}
	}
	if res == nil || res.Result == nil {
		return runErr
	}
	var budgetErr *blind.Error
	if errors.As(runErr, &budgetErr) && budgetErr.Reason == blind.ReasonBudget {
		fmt.Fprintf(env.Stderr, "blind: the budget ran out: %d of %d distinct values were not translated, and their lines could not be decided; retry in %v\n",
			res.Translate.Left, res.Translate.Asked, budgetErr.RetryAfter.Round(time.Second))
	}
	if !o.quiet {
		st := res.Translate
		fmt.Fprintf(env.Stderr, "blind: epoch %d, set of %d inputs; %d distinct inputs in the logs: %d known from this run, %d evaluated in %d batches, %d left; budget %d of %d used (period %s)\n",
			res.Info.Epoch, res.Info.SetLen, res.Inputs, st.Cached, st.Evaluated, st.Batches, st.Left, res.Info.Budget.Used+int64(st.Evaluated), res.Info.Budget.Limit, res.Info.Budget.Period)
		fmt.Fprintf(env.Stderr, "%s; %v\n", res.Summary(), time.Since(start).Round(time.Millisecond))
	}
	hits := make([]blind.Hit, 0, len(res.Sightings))
	for _, s := range res.Sightings {
		ref, err := blind.ParseRef(s.Indicator)
		if err != nil {
			return fmt.Errorf("blind: hit on %q: %w", s.Indicator, err)
		}
		hits = append(hits, blind.Hit{Ref: ref, Count: s.Count, FirstSeen: s.FirstSeen, LastSeen: s.LastSeen, Observed: res.Observed[s.Indicator]})
	}
	if o.resolve && len(hits) > 0 {
		r, ok := peer.(blind.Resolver)
		if !ok {
			return errors.New("--resolve: this peer cannot resolve blinded references")
		}
		released := 0
		for start := 0; start < len(hits); start += blind.MaxResolveRefs {
			part := hits[start:min(start+blind.MaxResolveRefs, len(hits))]
			refs := make([]string, len(part))
			for i, h := range part {
				refs[i] = h.Ref.String()
			}
			resp, err := r.Resolve(ctx, refs)
			if err != nil {
				return fmt.Errorf("--resolve: %w", err)
			}
			for i, rr := range resp.Results {
				if rr.Ref != refs[i] {
					return fmt.Errorf("--resolve: the partner answered %q for %q", rr.Ref, refs[i])
				}
				if rr.Status == blind.ResolveReleased {
					part[i].Released = rr.Objects
					released++
				}
			}
		}
		if !o.quiet {
			fmt.Fprintf(env.Stderr, "blind: %d of %d hit references resolved to indicators the partner released; the others stay blinded references\n", released, len(hits))
		}
	}
	if o.sightings != "" || o.report {
		bundle, err := blind.SightingsBundle(hits, o.identity, partner, time.Now())
		if err != nil {
			return err
		}
		if o.sightings != "" {
			if err := os.WriteFile(o.sightings, bundle, 0o644); err != nil {
				return fmt.Errorf("--sightings: %w", err)
			}
		}
		if o.report {
			client := &sensorclient.Client{Server: o.rf.server, Token: o.rf.key()}
			if err := client.PostSightings(ctx, bundle); err != nil {
				return err
			}
		}
	}
	return runErr
}
