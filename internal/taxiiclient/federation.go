package taxiiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/entente-cti/entente/internal/federation"
)

// DefaultFederationPageSize is the page size a federation's pulls ask
// for: large pages, because each costs a few durable commits on both
// sides.
const DefaultFederationPageSize = 10000

// Dialer returns the federation's way of reaching peers over TAXII 2.1:
// one Client per peer (its API root, discovery URL and token), with the
// given HTTP client (nil: one without a global timeout, the limits bound
// every exchange) and limits (zero fields take their defaults; the page
// size defaults to DefaultFederationPageSize).
func Dialer(hc *http.Client, lim Limits) federation.Dialer {
	if lim.PageSize == 0 {
		lim.PageSize = DefaultFederationPageSize
	}
	return func(p federation.Peer) federation.Remote {
		return remote{&Client{DiscoveryURL: p.DiscoveryURL, APIRoot: p.APIRoot, HTTP: hc,
			Auth: Auth{Token: p.Token}, UserAgent: "entente", Limits: lim}}
	}
}

// remote is a Client as a federation.Remote.
type remote struct{ c *Client }

// Pull implements federation.Remote.
func (r remote) Pull(ctx context.Context, collection string, from json.RawMessage, page func(*federation.Pulled) error) error {
	var cp Checkpoint
	if len(from) > 0 {
		if err := json.Unmarshal(from, &cp); err != nil {
			return fmt.Errorf("pull checkpoint %s is not a TAXII checkpoint: %w", from, err)
		}
	}
	_, err := r.c.Pull(ctx, collection, cp, func(p *Page) error {
		b, err := json.Marshal(p.Checkpoint)
		if err != nil {
			return fmt.Errorf("encode checkpoint: %w", err)
		}
		out := &federation.Pulled{URL: p.URL, Objects: p.Objects, Checkpoint: b, ReceivedAt: p.ReceivedAt}
		for _, inv := range p.Invalid {
			out.Invalid = append(out.Invalid, inv)
		}
		return page(out)
	})
	return err
}

// Push implements federation.Remote.
func (r remote) Push(ctx context.Context, collection string, objects []json.RawMessage) (int, int, error) {
	res, err := r.c.Push(ctx, collection, objects)
	if res == nil {
		return 0, 0, err
	}
	return res.Success, res.Failure, err
}
