package taxiiclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// CheckLimits are the limits of [Client.Check] when the client sets none:
// no retries and short timeouts, so that a wrong address fails at once.
var CheckLimits = Limits{MaxRetries: -1, HeaderTimeout: 15 * time.Second, PerRequestTimeout: 30 * time.Second, MaxResponseBytes: 16 << 20}

// Check verifies, before a peer is recorded, that the client reaches a
// TAXII 2.1 server whose collection its credentials may use: the
// discovery resource answers (when DiscoveryURL is set), the API root
// answers as a TAXII API root, and the collection exists and can be read
// (to pull) and written (to push). The error says which step failed and
// why: unreachable, not TAXII, refused credentials, no such collection
// (naming those the credentials can see), or missing rights.
func (c *Client) Check(ctx context.Context, collection string, pull, push bool) (*Collection, error) {
	if c.Limits == (Limits{}) {
		c.Limits = CheckLimits
	}
	if c.DiscoveryURL != "" {
		if _, err := c.Discover(ctx); err != nil {
			return nil, fmt.Errorf("discovery %s: %w", c.DiscoveryURL, explain(err))
		}
	}
	if _, err := c.APIRootInfo(ctx); err != nil {
		return nil, fmt.Errorf("API root %s: %w", c.root(), explain(err))
	}
	var coll Collection
	if _, err := c.getJSON(ctx, c.collectionURL(collection), &coll); err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("collection %q: not found at %s%s", collection, c.root(), c.visible(ctx))
		}
		return nil, fmt.Errorf("collection %q: %w", collection, explain(err))
	}
	var missing []string
	if pull && !coll.CanRead {
		missing = append(missing, "read it (to pull)")
	}
	if push && !coll.CanWrite {
		missing = append(missing, "write it (to push)")
	}
	if len(missing) > 0 {
		return &coll, fmt.Errorf("collection %q: the peer's key may not %s", collection, strings.Join(missing, " or "))
	}
	return &coll, nil
}

// visible names the collections the credentials can see, for an error.
func (c *Client) visible(ctx context.Context) string {
	cs, err := c.Collections(ctx)
	if err != nil || len(cs) == 0 {
		return " (the key sees no collection there)"
	}
	var names []string
	for _, x := range cs {
		names = append(names, x.ID+" ("+x.Title+")")
	}
	slices.Sort(names)
	if len(names) > 10 {
		names = append(names[:10], "…")
	}
	return "; the key sees " + strings.Join(names, ", ")
}

// explain adds to an error what it most likely means for a peer address.
func explain(err error) error {
	var se *StatusError
	switch {
	case errors.As(err, &se) && (se.StatusCode == http.StatusUnauthorized || se.StatusCode == http.StatusForbidden):
		return fmt.Errorf("%w (the peer refused the key)", err)
	case errors.As(err, &se) && se.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w (no TAXII API root at this address)", err)
	case errors.Is(err, ErrMediaType), errors.Is(err, ErrBadEnvelope):
		return fmt.Errorf("%w (the address does not answer as a TAXII 2.1 server)", err)
	}
	return err
}
