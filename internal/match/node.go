package match

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"time"
)

// SnapshotPath and SightingsPath are the node API endpoints a sensor uses.
const (
	SnapshotPath  = "/api/v1/snapshot"
	SightingsPath = "/api/v1/sightings"
	// SnapshotMediaType is the media type of a serialised snapshot.
	SnapshotMediaType = "application/vnd.entente.snapshot"
	stixMediaType     = "application/stix+json;version=2.1"
)

// BuildFromObjects compiles the indicators among objects (raw STIX JSON,
// as a node's store yields them) into a snapshot, leaving out revoked
// and expired ones; the indicators whose STIX patterns are for the
// evaluator travel with it ([Snapshot.Patterns]). It is what a node calls to serve
// GET /api/v1/snapshot; see [ServeSnapshot].
func BuildFromObjects(objects iter.Seq2[json.RawMessage, error], now time.Time) (*Snapshot, LoadStats, error) {
	return BuildGuarded(objects, now, nil)
}

// BuildGuarded is [BuildFromObjects] through a guard (the safety net):
// what g protects is never compiled (see [Builder.Guard]); nil guards
// nothing.
func BuildGuarded(objects iter.Seq2[json.RawMessage, error], now time.Time, g Guard) (*Snapshot, LoadStats, error) {
	b := NewBuilder()
	if g != nil {
		b.Guard(g)
	}
	b.CollectPatterns(NewPatternSet())
	var st LoadStats
	i := 0
	for raw, err := range objects {
		if err != nil {
			return nil, st, fmt.Errorf("build snapshot: object %d: %w", i, err)
		}
		AddObject(b, raw, now, &st, fmt.Sprintf("object %d", i))
		i++
	}
	return b.Snapshot(), st, nil
}

// ServeSnapshot answers a snapshot download: 304 when the request's
// If-None-Match names etag, else the serialised snapshot data with its
// ETag. A node's handler for GET /api/v1/snapshot calls it with the bytes
// and ETag from [Snapshot.Encode] (cached until the next rebuild).
func ServeSnapshot(w http.ResponseWriter, r *http.Request, data []byte, etag string) {
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	for _, t := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		if t = strings.TrimSpace(t); t == etag || t == "*" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", SnapshotMediaType)
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(data)
}

// Client talks to a node's sensor endpoints.
type Client struct {
	Server string // base URL of the node
	Token  string // API key (sensor role)
	HTTP   *http.Client
}

func (c *Client) do(req *http.Request) (*http.Response, error) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	return hc.Do(req)
}

// FetchSnapshot downloads the node's compiled snapshot. When etag is not
// empty and the node's snapshot has not changed, it returns nil and the
// same etag (the caller keeps its snapshot).
func (c *Client) FetchSnapshot(ctx context.Context, etag string) (*Snapshot, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.Server, "/")+SnapshotPath, nil)
	if err != nil {
		return nil, "", fmt.Errorf("fetch snapshot: %w", err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, "", fmt.Errorf("fetch snapshot: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, etag, nil
	case http.StatusOK:
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, "", fmt.Errorf("fetch snapshot from %s: %s: %s", c.Server, resp.Status, bytes.TrimSpace(msg))
	}
	s, err := ReadSnapshot(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("fetch snapshot from %s: %w", c.Server, err)
	}
	return s, resp.Header.Get("ETag"), nil
}

// PostSightings posts a sightings bundle to the node.
func (c *Client) PostSightings(ctx context.Context, bundle []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.Server, "/")+SightingsPath, bytes.NewReader(bundle))
	if err != nil {
		return fmt.Errorf("report sightings: %w", err)
	}
	req.Header.Set("Content-Type", stixMediaType)
	resp, err := c.do(req)
	if err != nil {
		return fmt.Errorf("report sightings: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("report sightings to %s: %s: %s", c.Server, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Refresh rebuilds the snapshot with build every interval and publishes
// each new one in h, until ctx is done. Build errors go to onErr (when
// set) and keep the current snapshot.
func Refresh(ctx context.Context, h *Holder, interval time.Duration, build func(context.Context) (*Snapshot, error), onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, err := build(ctx)
		if err != nil {
			if onErr != nil {
				onErr(err)
			}
			continue
		}
		if s != nil {
			h.Store(s)
		}
	}
}
