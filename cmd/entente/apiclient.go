package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/taxiiclient"
)

// httpClient returns an HTTP client for --server with the given timeout:
// one that trusts the pinned key alone when --server-pin is set.
func (r *remoteFlags) httpClient(timeout time.Duration) (*http.Client, error) {
	hc := &http.Client{Timeout: timeout}
	if r.pin == "" {
		return hc, nil
	}
	hc, err := taxiiclient.HTTPFor(hc, r.pin, nil)
	if err != nil {
		return nil, usagef("--server-pin: %v", err)
	}
	return hc, nil
}

// apiClient calls a running node's API (/api/v1/…) with a key.
type apiClient struct {
	base string
	key  string
	http *http.Client
}

func newAPIClient(r remoteFlags) (*apiClient, error) {
	if r.key() == "" {
		return nil, usagef("--token KEY (or ENTENTE_TOKEN) is required with --server")
	}
	hc, err := r.httpClient(60 * time.Second)
	if err != nil {
		return nil, err
	}
	return &apiClient{base: strings.TrimRight(r.server, "/"), key: r.key(), http: hc}, nil
}

// do sends a JSON request and decodes a JSON answer into out (when not
// nil). Error answers are returned as errors carrying the node's message.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Title       string `json:"title"`
			Description string `json:"description"`
		}
		if json.Unmarshal(data, &e) == nil && e.Title != "" {
			if e.Description != "" {
				return fmt.Errorf("%s %s: %s: %s", method, path, e.Title, e.Description)
			}
			return fmt.Errorf("%s %s: %s", method, path, e.Title)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}
