// Package sensorclient is the HTTP client of a node's sensor endpoints:
// a matcher downloads the compiled indicator snapshot (GET
// /api/v1/snapshot, cheaply with If-None-Match) and reports what it saw
// as a STIX bundle of sightings (POST /api/v1/sightings); a device-watch
// sensor posts its logs to the node's device watch (POST
// /api/v1/devices/events).
package sensorclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/entente-cti/entente/internal/match"
)

// stixMediaType is the media type of a STIX bundle.
const stixMediaType = "application/stix+json;version=2.1"

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
func (c *Client) FetchSnapshot(ctx context.Context, etag string) (*match.Snapshot, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.Server, "/")+match.SnapshotPath, nil)
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
	s, err := match.ReadSnapshot(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("fetch snapshot from %s: %w", c.Server, err)
	}
	return s, resp.Header.Get("ETag"), nil
}

// PostSightings posts a sightings bundle to the node.
func (c *Client) PostSightings(ctx context.Context, bundle []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.Server, "/")+match.SightingsPath, bytes.NewReader(bundle))
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
	// The node answers with a TAXII status: objects it refused are an
	// error, naming the first and why (the others were stored).
	var st struct {
		Success  int `json:"success_count"`
		Failure  int `json:"failure_count"`
		Failures []struct {
			ID      string `json:"id"`
			Message string `json:"message"`
		} `json:"failures"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil || len(bytes.TrimSpace(body)) == 0 || json.Unmarshal(body, &st) != nil {
		return nil // not a status: nothing more to say
	}
	if st.Failure > 0 {
		first := ""
		if len(st.Failures) > 0 {
			first = fmt.Sprintf(": first %s: %s", st.Failures[0].ID, st.Failures[0].Message)
		}
		return &RefusedError{Stored: st.Success, Refused: st.Failure, Message: fmt.Sprintf("report sightings to %s: %d of %d objects refused%s", c.Server, st.Failure, st.Failure+st.Success, first)}
	}
	return nil
}

// RefusedError is returned when the node refused some of the objects
// reported (the others were stored).
type RefusedError struct {
	Stored, Refused int
	Message         string
}

func (e *RefusedError) Error() string { return e.Message }

// DeviceEventsPath is the node's route for a sensor's logs to its device
// watch (mirrors httpapi.DeviceEventsPath).
const DeviceEventsPath = "/api/v1/devices/events"

// DeviceEventsResult is the node's answer to a post of logs.
type DeviceEventsResult struct {
	Lines    int64    `json:"lines"`
	Events   int64    `json:"events"`
	Bad      int64    `json:"bad_lines"`
	BadLines []string `json:"bad_line_reports"`
	Findings int      `json:"findings"`
}

// PostDeviceEvents posts a piece of a network log (a Zeek log's header
// and some of its lines, Suricata EVE lines) to the node's device watch;
// name names the log in the node's reports.
func (c *Client) PostDeviceEvents(ctx context.Context, name string, body []byte) (*DeviceEventsResult, error) {
	u := strings.TrimRight(c.Server, "/") + DeviceEventsPath + "?name=" + url.QueryEscape(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("post device events: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := c.do(req)
	if err != nil {
		return nil, fmt.Errorf("post device events: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Description string `json:"description"`
		}
		msg := string(bytes.TrimSpace(data))
		if json.Unmarshal(data, &e) == nil && e.Description != "" {
			msg = e.Description
		}
		return nil, fmt.Errorf("post device events to %s: %s: %s", c.Server, resp.Status, msg)
	}
	var res DeviceEventsResult
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("post device events to %s: %w", c.Server, err)
	}
	return &res, nil
}
