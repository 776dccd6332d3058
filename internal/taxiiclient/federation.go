package taxiiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/entente-cti/entente/internal/federation"
	"github.com/entente-cti/entente/internal/pin"
)

// DefaultFederationPageSize is the page size a federation's pulls ask
// for: large pages, because each costs a few durable commits on both
// sides.
const DefaultFederationPageSize = 10000

// Dialer returns the federation's way of reaching peers over TAXII 2.1:
// one Client per peer (its API root, discovery URL and token), with the
// given HTTP client (nil: one without a global timeout, the limits bound
// every exchange) and limits (zero fields take their defaults; the page
// size defaults to DefaultFederationPageSize). A peer with a Pin is
// reached over https with a transport of its own that accepts its pinned
// key alone (see [HTTPFor]); a peer that presents another key is refused
// with a *pin.MismatchError, which the federation audits.
func Dialer(hc *http.Client, lim Limits, opts ...DialOption) federation.Dialer {
	if lim.PageSize == 0 {
		lim.PageSize = DefaultFederationPageSize
	}
	var o dialOptions
	for _, opt := range opts {
		opt(&o)
	}
	return func(p federation.Peer) federation.Remote {
		c := hc
		if p.Pin != "" {
			if u, err := url.Parse(p.APIRoot); err != nil || u.Scheme != "https" {
				return failed{fmt.Errorf("peer %s is pinned to a key but its API root %q is not an https URL", p.ID, p.APIRoot)}
			}
			var err error
			if c, err = HTTPFor(hc, p.Pin, o.onMismatch); err != nil {
				return failed{fmt.Errorf("peer %s: %w", p.ID, err)}
			}
		}
		return remote{&Client{DiscoveryURL: p.DiscoveryURL, APIRoot: p.APIRoot, HTTP: c,
			Auth: Auth{Token: p.Token}, UserAgent: "entente", Limits: lim}}
	}
}

// DialOption configures a [Dialer].
type DialOption func(*dialOptions)

type dialOptions struct {
	onMismatch func(*pin.MismatchError)
}

// OnKeyMismatch has f called each time a pinned peer presents another
// key (for a metric; the federation logs and audits the refusal).
func OnKeyMismatch(f func(*pin.MismatchError)) DialOption {
	return func(o *dialOptions) { o.onMismatch = f }
}

// failed is the Remote of a peer that cannot be reached as configured.
type failed struct{ err error }

// Pull implements federation.Remote.
func (f failed) Pull(context.Context, string, json.RawMessage, func(*federation.Pulled) error) error {
	return f.err
}

// Push implements federation.Remote.
func (f failed) Push(context.Context, string, []json.RawMessage) (int, int, error) {
	return 0, 0, f.err
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
