// Package feedfetch fetches feeds over HTTP(S) for the node's feed
// poller (ingest.Fetcher): conditionally (If-None-Match,
// If-Modified-Since), bounded in size and time, and refusing an answer
// that is a web page rather than a feed.
package feedfetch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/entente-cti/entente/internal/ingest"
)

// Fetch implements ingest.Fetcher with Go's default HTTP client.
func Fetch(ctx context.Context, url, etag, lastModified string, maxBytes int64) (ingest.Fetched, error) {
	return Client{HTTP: http.DefaultClient}.Fetch(ctx, url, etag, lastModified, maxBytes)
}

// Client fetches feeds with an HTTP client of its own.
type Client struct {
	HTTP *http.Client
}

// Fetch GETs url, conditionally when etag or lastModified is set, and
// returns at most maxBytes of its body. An answer other than 200 or 304,
// a larger body and an HTML page are errors that say so.
func (c Client) Fetch(ctx context.Context, url, etag, lastModified string, maxBytes int64) (ingest.Fetched, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return ingest.Fetched{}, err
	}
	req.Header.Set("User-Agent", "entente-feed")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if lastModified != "" {
		req.Header.Set("If-Modified-Since", lastModified)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return ingest.Fetched{}, fmt.Errorf("GET: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return ingest.Fetched{NotModified: true}, nil
	}
	if resp.StatusCode != http.StatusOK {
		return ingest.Fetched{}, fmt.Errorf("GET: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return ingest.Fetched{}, fmt.Errorf("read body after %d bytes: %w", len(body), err)
	}
	if int64(len(body)) > maxBytes {
		return ingest.Fetched{}, fmt.Errorf("the feed is larger than %d bytes", maxBytes)
	}
	if isHTML(resp.Header.Get("Content-Type"), body) {
		return ingest.Fetched{}, fmt.Errorf("the server answered an HTML page, not a feed (Content-Type %q)", resp.Header.Get("Content-Type"))
	}
	return ingest.Fetched{Body: body, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}, nil
}

// isHTML reports whether an answer is a web page rather than a feed.
func isHTML(contentType string, body []byte) bool {
	if strings.HasPrefix(strings.ToLower(contentType), "text/html") {
		return true
	}
	head := strings.ToLower(strings.TrimSpace(string(body[:min(len(body), 512)])))
	return strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html")
}
