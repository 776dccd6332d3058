package taxiiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-cti/entente/internal/pin"
	"github.com/entente-cti/entente/internal/taxii"
)

// Media types of TAXII 2.1.
const (
	MediaTAXII = "application/taxii+json;version=2.1"
	MediaSTIX  = "application/stix+json;version=2.1"
)

// Sentinel errors wrapped by the errors the client returns.
var (
	// ErrMediaType: the response is not application/taxii+json (an HTML
	// page, plain text, another version).
	ErrMediaType = errors.New("unexpected media type")
	// ErrBadEnvelope: the body is not the JSON resource TAXII defines.
	ErrBadEnvelope = errors.New("malformed TAXII response")
	// ErrEndlessPaging: the server keeps answering more: true without
	// progress.
	ErrEndlessPaging = errors.New("endless paging")
	// ErrSlow: the response arrived slower than Limits.MinBytesPerSecond.
	ErrSlow = errors.New("response too slow")
	// ErrTooLarge: the response or an object to push exceeds a size limit.
	ErrTooLarge = errors.New("too large")
	// ErrHTTPStatus: the server answered with an error status.
	ErrHTTPStatus = errors.New("error status")
	// ErrStatusTimeout: a pushed request's status was not complete in time.
	ErrStatusTimeout = errors.New("status not complete in time")
)

// Auth holds the credentials presented to the peer: a bearer token when
// Token is set, else HTTP Basic when Username is set, else nothing.
type Auth struct {
	Username, Password string
	Token              string
}

// Limits bound what the client does and accepts. A zero field takes the
// default named in its comment.
type Limits struct {
	// PageSize is the limit parameter sent with object requests; 0 sends
	// none and lets the server choose.
	PageSize int
	// MaxPages bounds the pages of one Pull (default 1,000,000).
	MaxPages int
	// MaxObjects bounds the objects of one page (default 100,000).
	MaxObjects int
	// MaxResponseBytes bounds one response body (default 256 MiB).
	MaxResponseBytes int64
	// PerRequestTimeout bounds one HTTP exchange (default 5 minutes).
	PerRequestTimeout time.Duration
	// MinBytesPerSecond is the slowest a response body may arrive, after
	// a grace period of SlowGrace (defaults 4096 bytes/s and 10 seconds).
	MinBytesPerSecond int
	SlowGrace         time.Duration
	// HeaderTimeout bounds the wait for the response headers (default 60
	// seconds).
	HeaderTimeout time.Duration
	// MaxRetries is how many times a failed request is retried
	// (default 5; negative: never).
	MaxRetries int
	// BackoffBase and MaxBackoff shape the exponential back-off
	// (defaults 500 ms and 30 s).
	BackoffBase, MaxBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After honoured; a longer one
	// fails the request (default 5 minutes).
	MaxRetryAfter time.Duration
	// StatusTimeout bounds the polling of a push's status (default 2
	// minutes).
	StatusTimeout time.Duration
}

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxPages, 1_000_000)
	def(&l.MaxObjects, 100_000)
	def(&l.MinBytesPerSecond, 4096)
	def(&l.MaxRetries, 5)
	if l.MaxResponseBytes == 0 {
		l.MaxResponseBytes = 256 << 20
	}
	defD(&l.PerRequestTimeout, 5*time.Minute)
	defD(&l.BackoffBase, 500*time.Millisecond)
	defD(&l.MaxBackoff, 30*time.Second)
	defD(&l.MaxRetryAfter, 5*time.Minute)
	defD(&l.StatusTimeout, 2*time.Minute)
	defD(&l.SlowGrace, 10*time.Second)
	defD(&l.HeaderTimeout, time.Minute)
	return l
}

// Client is a TAXII 2.1 client for one peer. Set the fields before the
// first call and do not change them afterwards.
type Client struct {
	// DiscoveryURL is the server's discovery URL ("https://peer/taxii2/"),
	// used only by Discover.
	DiscoveryURL string
	// APIRoot is the URL of the API root to pull from and push to
	// ("https://peer/api1/"); a missing final slash is added.
	APIRoot string
	// HTTP is the HTTP client; nil means http.DefaultClient.
	HTTP *http.Client
	// Auth is presented with every request.
	Auth Auth
	// UserAgent is sent as User-Agent (default "entente-taxiiclient").
	UserAgent string
	// Limits bound requests, responses and retries.
	Limits Limits

	mu       sync.Mutex
	rootInfo *APIRootInfo
}

// Discovery is a TAXII 2.1 discovery resource. The client shares the protocol
// package's definition.
type Discovery = taxii.Discovery

// APIRootInfo is a TAXII 2.1 API root resource. The client shares the protocol
// package's definition.
type APIRootInfo = taxii.APIRoot

// Collection is a TAXII 2.1 collection resource. The client shares the protocol
// package's definition.
type Collection = taxii.Collection

// Discover reads the server's discovery resource.
func (c *Client) Discover(ctx context.Context) (*Discovery, error) {
	var d Discovery
	if _, err := c.getJSON(ctx, c.DiscoveryURL, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// APIRootInfo reads the API root resource. The result is cached for
// Push, which needs max_content_length.
func (c *Client) APIRootInfo(ctx context.Context) (*APIRootInfo, error) {
	var r APIRootInfo
	if _, err := c.getJSON(ctx, c.root(), &r); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.rootInfo = &r
	c.mu.Unlock()
	return &r, nil
}

// Collections lists the API root's collections.
func (c *Client) Collections(ctx context.Context) ([]Collection, error) {
	var r struct {
		Collections []Collection `json:"collections"`
	}
	if _, err := c.getJSON(ctx, c.root()+"collections/", &r); err != nil {
		return nil, err
	}
	return r.Collections, nil
}

func (c *Client) root() string {
	if strings.HasSuffix(c.APIRoot, "/") {
		return c.APIRoot
	}
	return c.APIRoot + "/"
}

func (c *Client) collectionURL(coll string) string {
	return c.root() + "collections/" + url.PathEscape(coll) + "/"
}

// getJSON GETs u and decodes its TAXII JSON body into v.
func (c *Client) getJSON(ctx context.Context, u string, v any) (http.Header, error) {
	resp, err := c.do(ctx, http.MethodGet, u, nil, "")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(resp.body, v); err != nil {
		return nil, fmt.Errorf("GET %s: %w: %v", u, ErrBadEnvelope, err)
	}
	return resp.header, nil
}

// response is a fully read, checked response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do performs one request with retries and returns the checked response
// of a 2xx answer. body is re-sent on each attempt.
func (c *Client) do(ctx context.Context, method, u string, body []byte, contentType string) (*response, error) {
	lim := c.Limits.withDefaults()
	for attempt := 0; ; attempt++ {
		resp, retryAfter, err := c.once(ctx, lim, method, u, body, contentType)
		if err == nil {
			return resp, nil
		}
		if retryAfter < 0 || attempt >= lim.MaxRetries || ctx.Err() != nil {
			if attempt > 0 {
				return nil, fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
			return nil, err
		}
		wait := retryAfter
		if wait == 0 {
			wait = backoff(lim, attempt)
		}
		if wait > lim.MaxRetryAfter {
			return nil, fmt.Errorf("%w; Retry-After %s exceeds the %s the client waits", err, wait, lim.MaxRetryAfter)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w; gave up waiting to retry: %w", err, ctx.Err())
		case <-t.C:
		}
	}
}

// backoff returns the wait before retry attempt+1: full jitter over an
// exponentially growing window.
func backoff(lim Limits, attempt int) time.Duration {
	w := lim.BackoffBase << min(attempt, 20)
	if w <= 0 || w > lim.MaxBackoff {
		w = lim.MaxBackoff
	}
	return w/2 + rand.N(w/2+1)
}

// once performs one attempt. retryAfter is negative when the error must
// not be retried, zero for the default back-off, positive for the wait the
// server asked for.
func (c *Client) once(ctx context.Context, lim Limits, method, u string, body []byte, contentType string) (_ *response, retryAfter time.Duration, _ error) {
	ctx, cancel := context.WithTimeout(ctx, lim.PerRequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, -1, fmt.Errorf("%s %s: %w", method, u, err)
	}
	req.Header.Set("Accept", MediaTAXII)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	ua := c.UserAgent
	if ua == "" {
		ua = "entente-taxiiclient"
	}
	req.Header.Set("User-Agent", ua)
	switch {
	case c.Auth.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Auth.Token)
	case c.Auth.Username != "":
		req.SetBasicAuth(c.Auth.Username, c.Auth.Password)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	var noHeaders atomic.Bool
	headerTimer := time.AfterFunc(lim.HeaderTimeout, func() { noHeaders.Store(true); cancel() })
	resp, err := hc.Do(req)
	headerTimer.Stop()
	if err != nil {
		if _, ok := errors.AsType[*pin.MismatchError](err); ok {
			// Another key than the one pinned: retrying cannot help.
			return nil, -1, fmt.Errorf("%s %s: %w", method, u, err)
		}
		if noHeaders.Load() {
			return nil, 0, fmt.Errorf("%s %s: %w: no response headers within %s", method, u, ErrSlow, lim.HeaderTimeout)
		}
		return nil, 0, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	data, rerr := readBody(resp.Body, lim, cancel)
	if rerr != nil {
		if errors.Is(rerr, ErrTooLarge) {
			return nil, -1, fmt.Errorf("%s %s: %w", method, u, rerr)
		}
		if errors.Is(rerr, ErrSlow) {
			return nil, 0, fmt.Errorf("%s %s: %w", method, u, rerr)
		}
		return nil, 0, fmt.Errorf("%s %s: read body: %w", method, u, rerr)
	}
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := fmt.Errorf("%s %s: %w %d %s%s", method, u, ErrHTTPStatus, resp.StatusCode,
			http.StatusText(resp.StatusCode), errorDetail(ct, data))
		switch {
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
			ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
			if !ok {
				return nil, 0, err
			}
			return nil, max(ra, time.Millisecond), err
		case resp.StatusCode >= 500:
			return nil, 0, err
		default:
			return nil, -1, &StatusError{StatusCode: resp.StatusCode, Err: err}
		}
	}
	if err := checkMediaType(ct, data); err != nil {
		return nil, -1, fmt.Errorf("%s %s: %w", method, u, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, 0, nil
}

// StatusError is a non-retryable error status (4xx other than 429).
type StatusError struct {
	StatusCode int
	Err        error
}

// Error returns the underlying message.
func (e *StatusError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error (which wraps [ErrHTTPStatus]).
func (e *StatusError) Unwrap() error { return e.Err }

// errorDetail summarises an error body: the title and description of a
// TAXII error message, or the start of any other body.
func errorDetail(ct string, data []byte) string {
	var e struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	if json.Unmarshal(data, &e) == nil && e.Title != "" {
		if e.Description != "" {
			return ": " + e.Title + ": " + e.Description
		}
		return ": " + e.Title
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return ""
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return fmt.Sprintf(" (%s body %q)", ct, s)
}

// checkMediaType accepts application/taxii+json with version 2.1 (or no
// version parameter) and a body that looks like JSON.
func checkMediaType(ct string, data []byte) error {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("%w: Content-Type %q: %v", ErrMediaType, ct, err)
	}
	if mt != "application/taxii+json" {
		what := ""
		if mt == "text/html" || bytes.HasPrefix(bytes.TrimSpace(data), []byte("<")) {
			what = " (an HTML page, not a TAXII server?)"
		}
		return fmt.Errorf("%w: Content-Type %q, want %s%s", ErrMediaType, ct, MediaTAXII, what)
	}
	if v, ok := params["version"]; ok && v != "2.1" {
		return fmt.Errorf("%w: Content-Type %q is TAXII version %s, want 2.1", ErrMediaType, ct, v)
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] != '{' {
		return fmt.Errorf("%w: body is not a JSON object (starts with %q)", ErrBadEnvelope, t[:min(len(t), 20)])
	}
	return nil
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP
// date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<30)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
