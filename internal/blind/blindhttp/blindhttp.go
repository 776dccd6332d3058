// Package blindhttp carries the blind-access protocol of package blind
// over HTTP: a handler that the node mounts under /api/v1/blind/ after
// its own authentication, and a client that implements blind.Peer.
//
// Routes (relative to the mount point):
//
//	GET  epoch              → blind.EpochInfo (JSON)
//	GET  set?epoch=N        → the encoded set (application/octet-stream),
//	                          ETag = its digest
//	POST evaluate           ← blind.EvalRequest, → blind.EvalResponse (JSON)
//	POST resolve            ← blind.ResolveRequest, → blind.ResolveResponse
//	                          (when the Service is a Resolver)
//
// Refusals are JSON blind.ErrorBody with the status of blind.Error.Status
// (400, 403, 409, 413, 429 with Retry-After).
package blindhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/blind"
)

// Grant is what the node's authentication and agreements say of a
// request: the partner, its blind budget and the node's principal of the
// request (for a service that goes through the node's gate).
type Grant struct {
	Partner   string
	Budget    blind.Budget
	Principal entente.Principal
}

// Authorize returns the grant of an authenticated request, or an error
// (a *blind.Error, or an error the node maps itself) to refuse it.
type Authorize func(r *http.Request) (Grant, error)

// Service is what the handler serves: a [blind.Server] as it is
// ([Direct]), or a node's blind access, which answers through its policy
// gate.
type Service interface {
	// MaxBatch is the largest evaluation batch.
	MaxBatch() int
	// Info returns the partner's current epoch.
	Info(ctx context.Context, g Grant) (*blind.EpochInfo, error)
	// Set returns the encoded set of epoch, or only its digest (Data
	// nil, notModified true) when ifNoneMatch names it.
	Set(ctx context.Context, g Grant, epoch uint64, ifNoneMatch string) (set *blind.Published, notModified bool, err error)
	// Evaluate evaluates one batch within the partner's budget.
	Evaluate(ctx context.Context, g Grant, req *blind.EvalRequest) (*blind.EvalResponse, error)
}

// Resolver is a Service that resolves blinded references: the handler
// serves POST resolve when its Service is one.
type Resolver interface {
	Resolve(ctx context.Context, g Grant, req *blind.ResolveRequest, refs []blind.Ref) (*blind.ResolveResponse, error)
}

// Direct serves a [blind.Server] as it is: no gate, no resolution (for
// tests and for a server used outside a node).
func Direct(srv *blind.Server) Service { return direct{srv} }

type direct struct{ srv *blind.Server }

func (d direct) MaxBatch() int { return d.srv.MaxBatch() }

func (d direct) Info(ctx context.Context, g Grant) (*blind.EpochInfo, error) {
	return d.srv.Info(ctx, g.Partner, g.Budget)
}

func (d direct) Set(ctx context.Context, g Grant, epoch uint64, ifNoneMatch string) (*blind.Published, bool, error) {
	if g.Budget.Limit <= 0 {
		return nil, false, &blind.Error{Reason: blind.ReasonNoAccess, Index: -1, Message: "no blind access: the agreement sets no budget"}
	}
	p, err := d.srv.Set(ctx, g.Partner, epoch)
	if err != nil {
		return nil, false, err
	}
	if ifNoneMatch == `"`+p.Digest+`"` {
		return &blind.Published{Epoch: p.Epoch, Digest: p.Digest, Len: p.Len}, true, nil
	}
	return p, false, nil
}

func (d direct) Evaluate(ctx context.Context, g Grant, req *blind.EvalRequest) (*blind.EvalResponse, error) {
	return d.srv.Evaluate(ctx, g.Partner, g.Budget, req)
}

// Handler serves the protocol for svc. Mount it with the prefix stripped.
func Handler(svc Service, auth Authorize, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &handler{svc: svc, auth: auth, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /epoch", h.epoch)
	mux.HandleFunc("GET /set", h.set)
	mux.HandleFunc("POST /evaluate", h.evaluate)
	if _, ok := svc.(Resolver); ok {
		mux.HandleFunc("POST /resolve", h.resolve)
	}
	return mux
}

// Queries lists the query parameters each route takes (by pattern
// relative to the mount point), for adapters that check them.
var Queries = map[string][]string{"GET /set": {"epoch"}}

type handler struct {
	svc  Service
	auth Authorize
	log  *slog.Logger
}

func (h *handler) grant(w http.ResponseWriter, r *http.Request) (Grant, bool) {
	g, err := h.auth(r)
	if err != nil {
		h.fail(w, err)
		return Grant{}, false
	}
	return g, true
}

func (h *handler) epoch(w http.ResponseWriter, r *http.Request) {
	g, ok := h.grant(w, r)
	if !ok {
		return
	}
	info, err := h.svc.Info(r.Context(), g)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (h *handler) set(w http.ResponseWriter, r *http.Request) {
	g, ok := h.grant(w, r)
	if !ok {
		return
	}
	e, err := strconv.ParseUint(r.URL.Query().Get("epoch"), 10, 64)
	if err != nil {
		h.fail(w, &blind.Error{Reason: blind.ReasonLength, Index: -1, Message: "query parameter epoch: want a whole number"})
		return
	}
	p, notModified, err := h.svc.Set(r.Context(), g, e, r.Header.Get("If-None-Match"))
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("ETag", `"`+p.Digest+`"`)
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(p.Data)))
	w.Write(p.Data)
}

func (h *handler) evaluate(w http.ResponseWriter, r *http.Request) {
	g, ok := h.grant(w, r)
	if !ok {
		return
	}
	req, err := blind.ParseEvalRequest(r.Body, h.svc.MaxBatch())
	if err != nil {
		h.fail(w, err)
		return
	}
	resp, err := h.svc.Evaluate(r.Context(), g, req)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) resolve(w http.ResponseWriter, r *http.Request) {
	g, ok := h.grant(w, r)
	if !ok {
		return
	}
	req, refs, err := blind.ParseResolveRequest(r.Body)
	if err != nil {
		h.fail(w, err)
		return
	}
	resp, err := h.svc.(Resolver).Resolve(r.Context(), g, req, refs)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) fail(w http.ResponseWriter, err error) {
	var e *blind.Error
	if !errors.As(err, &e) {
		h.log.Error("blind access", "err", err)
		writeJSON(w, http.StatusInternalServerError, blind.ErrorBody{Reason: "internal", Message: "internal error"})
		return
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	writeJSON(w, e.Status(), e.Body())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Client is a blind.Peer over HTTP.
type Client struct {
	// Base is the URL the handler is mounted at, e.g.
	// https://node-a.example/api/v1/blind/.
	Base string
	// Token is the partner's API key at the node.
	Token string
	// HTTP defaults to a client with a one-minute timeout.
	HTTP *http.Client
	// MaxSetBytes bounds the set downloaded (default 256 MiB).
	MaxSetBytes int64
}

var _ blind.Peer = (*Client)(nil)

func (c *Client) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	u := strings.TrimSuffix(c.Base, "/") + "/" + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var eb blind.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Reason != "" {
			e := eb.Err()
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && e.RetryAfter == 0 {
				e.RetryAfter = time.Duration(ra) * time.Second
			}
			return nil, e
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, bytes.TrimSpace(data))
	}
	return resp, nil
}

// Info implements blind.Peer.
func (c *Client) Info(ctx context.Context) (*blind.EpochInfo, error) {
	resp, err := c.do(ctx, http.MethodGet, "epoch", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return blind.ParseEpochInfo(resp.Body)
}

// Set implements blind.Peer.
func (c *Client) Set(ctx context.Context, epoch uint64) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "set?epoch="+strconv.FormatUint(epoch, 10), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	limit := c.MaxSetBytes
	if limit <= 0 {
		limit = 256 << 20
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read set: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("set of epoch %d is larger than %d bytes", epoch, limit)
	}
	return data, nil
}

// Evaluate implements blind.Peer.
func (c *Client) Evaluate(ctx context.Context, req *blind.EvalRequest) (*blind.EvalResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodPost, "evaluate", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return blind.ParseEvalResponse(resp.Body, len(req.Elements))
}

// Resolve asks the node what blinded references name.
func (c *Client) Resolve(ctx context.Context, refs []string) (*blind.ResolveResponse, error) {
	body, err := json.Marshal(blind.ResolveRequest{Refs: refs})
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodPost, "resolve", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return blind.ParseResolveResponse(resp.Body, len(refs))
}
