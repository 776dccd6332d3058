package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/taxii"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options are the HTTP adapter's limits.
type Options struct {
	// MaxBodyBytes limits the bodies of node API requests; 1 MiB when 0.
	// TAXII POST bodies are limited by the node's MaxContentLength, the
	// value its API root advertises.
	MaxBodyBytes int64
	// MaxJSONDepth is the deepest JSON nesting accepted in a body;
	// taxii.DefaultMaxDepth (64) when 0.
	MaxJSONDepth int
	// RatePerSecond and Burst size the token bucket of each API key;
	// RatePerSecond <= 0 disables rate limiting. Burst defaults to
	// twice the rate (at least 1).
	RatePerSecond float64
	Burst         int
	// PublicURL is the scheme and host by which clients reach the node
	// (e.g. "https://cti.example.org"), used in the discovery resource;
	// when empty, it is taken from each request.
	PublicURL string
	// BodyMemoryPerKey and BodyMemoryTotal bound the memory that request
	// bodies of TAXII Add Objects and of sightings hold while they are
	// read, decoded, validated and stored: per API key, and for the
	// whole node. A body is charged twice its size plus 1 KiB per object
	// it holds (what BenchmarkPostEnvelope32MB measures), from before it
	// is read until its objects are stored. A request past its key's
	// bound gets 429, past the node's 503, both with Retry-After; a
	// request is always admitted when nothing else is charged to its key
	// (or at all), so that no body within max_content_length is refused
	// for its size alone. The defaults, DefaultBodyMemoryPerKey (256 MiB:
	// three 32 MiB envelopes of ATT&CK objects at once, or one of the
	// smallest indicators) and DefaultBodyMemoryTotal (1 GiB), apply when
	// 0.
	BodyMemoryPerKey int64
	BodyMemoryTotal  int64
	// BodyPressure, when set, is called (on a goroutine of its own) with
	// true when the memory charged to bodies reaches 64 MiB (two of the
	// largest envelopes are being decoded) and with false when it falls
	// back to zero. serve lowers the collector's gc_percent to Go's
	// default in between, so that the garbage of large bodies is
	// collected as they are decoded, and gives memory back to the
	// operating system after (debug.FreeOSMemory).
	BodyPressure func(high bool)
	// MaxHeaderBytes bounds the request line and headers of a request
	// together; a request past it gets a 431 TAXII error. Default 64 KiB.
	// NewServer lets net/http read up to ServerMaxHeaderBytes so that this
	// limit is answered here, in JSON; past that net/http answers a
	// plain-text 431 itself.
	MaxHeaderBytes int
	// Dashboard, when set, is served under /ui/ (and / redirects to it).
	// It authenticates by session cookie, so its requests skip API-key
	// authentication here; they are still logged, measured and, when
	// they belong to a session, rate-limited by the session's key.
	Dashboard Dashboard
	// Safety is the node's safety net: GET /api/v1/explain answers
	// which rule keeps a value out of which output, and its counters are
	// served on /metrics. nil: the route answers that nothing is
	// protected.
	Safety *safety.Net
}

// Dashboard is the web dashboard (internal/dashboard) as the adapter
// mounts it.
type Dashboard interface {
	http.Handler
	// Principal returns the principal of r's session, if any.
	Principal(r *http.Request) (entente.Principal, bool)
}

// dashboardPath reports whether path is the dashboard's.
func dashboardPath(path string) bool { return path == "/ui" || strings.HasPrefix(path, "/ui/") }

// handler serves every route.
type handler struct {
	svc     *node.Service
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	limiter *limiter
	budget  *budget
	m       *metrics
	root    string               // "/taxii2/api1/"
	queries map[string]querySpec // by route pattern; noQuery when absent
	// patterns are the patterns registered on mux, in order.
	patterns []string
}

// New returns the node's HTTP handler. reg, when not nil, receives the
// adapter's metrics; when it is also a prometheus.Gatherer (such as a
// *prometheus.Registry) it is served on /metrics. logger may be nil.
func New(svc *node.Service, opts Options, logger *slog.Logger, reg prometheus.Registerer) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.MaxJSONDepth <= 0 {
		opts.MaxJSONDepth = taxii.DefaultMaxDepth
	}
	if opts.Burst <= 0 {
		opts.Burst = max(1, int(math.Ceil(2*opts.RatePerSecond)))
	}
	if opts.BodyMemoryPerKey <= 0 {
		opts.BodyMemoryPerKey = DefaultBodyMemoryPerKey
	}
	if opts.BodyMemoryTotal <= 0 {
		opts.BodyMemoryTotal = DefaultBodyMemoryTotal
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{
		svc:    svc,
		opts:   opts,
		log:    logger,
		mux:    http.NewServeMux(),
		m:      newMetrics(reg),
		root:   "/taxii2/" + svc.Config().APIRoot + "/",
		budget: newBudget(opts.BodyMemoryPerKey, opts.BodyMemoryTotal),
	}
	h.budget.pressure = opts.BodyPressure
	if opts.RatePerSecond > 0 {
		h.limiter = newLimiter(opts.RatePerSecond, opts.Burst)
	}
	svc.OnComplete(func(st *taxii.Status) {
		h.m.added.Add(float64(st.SuccessCount))
		h.m.refused.Add(float64(st.FailureCount))
		h.budget.complete(st.ID)
	})
	h.m.bodyMemory(h.budget)
	if reg != nil && opts.Safety != nil {
		reg.MustRegister(newSafetyCollector(opts.Safety))
	}
	h.routes(reg)
	return h
}

// DefaultMaxHeaderBytes is the default of Options.MaxHeaderBytes.
const DefaultMaxHeaderBytes = 64 << 10

// ServerMaxHeaderBytes is how much of a request's line and headers
// NewServer's server reads: more than the handler's own limit
// (Options.MaxHeaderBytes), so that requests past that limit get the
// handler's TAXII error rather than net/http's plain-text 431.
const ServerMaxHeaderBytes = 1 << 20

// NewServer returns an http.Server for h on addr with timeouts that
// bound slow clients: headers within 10 s, a whole request within 5
// minutes (large uploads), idle keep-alive connections closed after 2
// minutes.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    ServerMaxHeaderBytes,
	}
}

func (h *handler) routes(reg prometheus.Registerer) {
	m, root := h.route(), h.root
	m.HandleFunc("GET /taxii2/{$}", h.discovery)
	m.HandleFunc("GET "+root+"{$}", h.apiRoot)
	m.HandleFunc("GET "+root+"collections/{$}", h.collections)
	m.HandleFunc("GET "+root+"collections/{coll}/{$}", h.collection)
	m.HandleFunc("GET "+root+"collections/{coll}/objects/{$}", h.getObjects)
	m.HandleFunc("POST "+root+"collections/{coll}/objects/{$}", h.addObjects)
	m.HandleFunc("GET "+root+"collections/{coll}/objects/{obj}/{$}", h.getObject)
	m.HandleFunc("DELETE "+root+"collections/{coll}/objects/{obj}/{$}", h.deleteObject)
	m.HandleFunc("GET "+root+"collections/{coll}/objects/{obj}/versions/{$}", h.versions)
	m.HandleFunc("GET "+root+"collections/{coll}/manifest/{$}", h.manifest)
	m.HandleFunc("GET "+root+"status/{status}/{$}", h.status)

	m.HandleFunc("GET /api/v1/whoami", h.whoami)
	m.HandleFunc("GET /api/v1/keys", h.listKeys)
	m.HandleFunc("POST /api/v1/keys", h.createKey)
	m.HandleFunc("DELETE /api/v1/keys/{id}", h.revokeKey)
	m.HandleFunc("GET /api/v1/collections", h.listCollections)
	m.HandleFunc("POST /api/v1/collections", h.createCollection)
	m.HandleFunc("GET /api/v1/partners", h.listPartners)
	m.HandleFunc("PUT /api/v1/partners/{id}", h.putPartner)
	m.HandleFunc("DELETE /api/v1/partners/{id}", h.removePartner)
	m.HandleFunc("POST /api/v1/partners/{id}/quarantine", h.quarantinePartner)
	m.HandleFunc("POST /api/v1/partners/{id}/release", h.releasePartner)
	m.HandleFunc("PUT /api/v1/partners/{id}/trust", h.partnerTrust)
	m.HandleFunc("POST /api/v1/objects/{id}/false-positive", h.falsePositive)
	m.HandleFunc("GET /api/v1/agreements", h.listAgreements)
	m.HandleFunc("PUT /api/v1/agreements/{partner}", h.putAgreement)
	m.HandleFunc("GET /api/v1/agreements/{partner}", h.getAgreement)
	m.HandleFunc("DELETE /api/v1/agreements/{partner}", h.deleteAgreement)
	m.HandleFunc("GET /api/v1/agreements/{partner}/preview", h.previewAgreement)
	m.HandleFunc("POST /api/v1/agreements/{partner}/preview", h.previewProposedAgreement)
	m.HandleFunc("GET /api/v1/audit", h.queryAudit)
	m.HandleFunc("GET /api/v1/peers", h.listPeers)
	m.HandleFunc("POST /api/v1/peers", h.addPeer)
	m.HandleFunc("DELETE /api/v1/peers/{id}", h.removePeer)
	m.HandleFunc("POST /api/v1/peers/{id}/sync", h.syncPeer)
	m.HandleFunc("GET "+match.SnapshotPath, h.snapshot)
	m.HandleFunc("HEAD "+match.SnapshotPath, h.snapshot)
	m.HandleFunc("POST "+match.SightingsPath, h.sightings)
	m.HandleFunc("GET /export/{format}", h.exportFormat)
	m.HandleFunc("GET /export/{format}/{file}", h.exportFile)
	m.HandleFunc("GET /api/v1/feeds", h.listFeeds)
	m.HandleFunc("POST /api/v1/feeds", h.addFeed)
	m.HandleFunc("PUT /api/v1/feeds/{id}", h.updateFeed)
	m.HandleFunc("POST /api/v1/feeds/{id}/preview", h.previewFeed)
	m.HandleFunc("DELETE /api/v1/feeds/{id}", h.removeFeed)
	m.HandleFunc("POST /api/v1/feeds/{id}/poll", h.pollFeed)
	m.HandleFunc("GET /api/v1/alerts", h.listAlerts)
	m.HandleFunc("GET /api/v1/alerts/stats", h.alertStats)
	m.HandleFunc("GET /api/v1/alerts/{id}", h.getAlert)
	m.HandleFunc("POST /api/v1/alerts/{id}/ack", h.ackAlert)
	m.HandleFunc("POST /api/v1/alerts/{id}/resolve", h.resolveAlert)
	m.HandleFunc("GET /api/v1/node/key", h.nodeKey)
	m.HandleFunc("GET "+ExplainPath, h.explain)
	m.HandleFunc("POST "+DeviceEventsPath, h.deviceEvents)
	m.HandleFunc("GET /api/v1/devices", h.listDevices)
	m.HandleFunc("GET /api/v1/devices/{device}", h.getDevice)

	// The query parameters each route takes; the others take none.
	h.queries = map[string]querySpec{
		"GET /taxii2/{$}":                                               noTAXIIFilters,
		"GET " + root + "{$}":                                           noTAXIIFilters,
		"GET " + root + "collections/{$}":                               noTAXIIFilters,
		"GET " + root + "collections/{coll}/{$}":                        noTAXIIFilters,
		"GET " + root + "collections/{coll}/objects/{$}":                taxiiQuery(taxii.EndpointObjects),
		"POST " + root + "collections/{coll}/objects/{$}":               noTAXIIFilters,
		"GET " + root + "collections/{coll}/objects/{obj}/{$}":          taxiiQuery(taxii.EndpointObject),
		"DELETE " + root + "collections/{coll}/objects/{obj}/{$}":       taxiiQuery(taxii.EndpointDelete),
		"GET " + root + "collections/{coll}/objects/{obj}/versions/{$}": taxiiQuery(taxii.EndpointVersions),
		"GET " + root + "collections/{coll}/manifest/{$}":               taxiiQuery(taxii.EndpointManifest),
		"GET " + root + "status/{status}/{$}":                           noTAXIIFilters,
		"GET /api/v1/audit":                                             auditQuery,
		"GET /api/v1/alerts":                                            alertsQuery,
		"GET /api/v1/agreements/{partner}/preview":                      previewQuery,
		"POST /api/v1/agreements/{partner}/preview":                     previewQuery,
		"POST /api/v1/peers":                                            peerAddQuery,
		"GET " + ExplainPath:                                            explainQuery,
		"POST " + DeviceEventsPath:                                      eventsQuery,
		"GET /api/v1/devices":                                           devicesQuery,
		"GET /api/v1/devices/{device}":                                  noQuery,
		"GET /export/{format}":                                          exportQuery,
		"GET /export/{format}/{file}":                                   exportQuery,
	}
	h.blindRoutes()
	h.workbenchRoutes()

	if d := h.opts.Dashboard; d != nil {
		m.Handle("/ui/", d)
		m.Handle("/ui", d)
		m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		})
	}
	m.HandleFunc("GET /healthz", h.healthz)
	m.HandleFunc("GET /readyz", h.readyz)
	if g, ok := reg.(prometheus.Gatherer); ok && reg != nil {
		metricsHandler := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
		m.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			p, _ := entente.PrincipalFrom(r.Context())
			if p.Role != entente.RoleAdmin {
				h.writeError(w, r, entente.Errorf(entente.EFORBIDDEN, "metrics are for admin keys"))
				return
			}
			metricsHandler.ServeHTTP(w, r)
		})
	}
}

// route returns the mux, remembering the patterns registered on it.
func (h *handler) route() patternMux { return patternMux{h.mux, &h.patterns} }

// countedKey is the context key of the API key whose request the rate
// limiter has counted already: a dashboard request, which the dashboard
// forwards to the node API in-process. Only this package sets it, and
// only from ServeHTTP: no client can.
type countedKey struct{}

// counted reports whether ctx is a request of key that the rate limiter
// has counted already.
func counted(ctx context.Context, key string) bool {
	k, ok := ctx.Value(countedKey{}).(string)
	return ok && k == key
}

// public reports whether path is served without authentication (the
// health probes, which reveal nothing).
func public(path string) bool { return path == "/healthz" || path == "/readyz" }

// ServeHTTP authenticates, rate-limits, routes, logs and measures every
// request.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	_, pattern := h.mux.Handler(r)
	route := pattern
	// A TAXII URL without its trailing slash: the mux answers with a
	// redirect to the URL with it, and gives the pattern it matched.
	redirect := strings.HasSuffix(pattern, "/{$}") && !strings.HasSuffix(r.URL.Path, "/")
	switch {
	case pattern == "":
		route = "unmatched"
	case redirect:
		route = "redirect"
	}
	rw := &recorder{ResponseWriter: w, status: http.StatusOK}
	var keyID string
	defer func() {
		if v := recover(); v != nil {
			h.log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
			if !rw.wrote {
				writeErrorBody(rw, http.StatusInternalServerError, "internal error", string(entente.EINTERNAL))
			}
		}
		d := time.Since(start)
		h.m.observe(route, rw.status, d)
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", route),
			slog.Int("status", rw.status),
			slog.Int64("bytes", rw.bytes),
			slog.Duration("duration", d),
			slog.String("key_id", keyID),
			slog.String("remote", r.RemoteAddr),
		)
	}()
	if n := headerBytes(r); n > h.opts.MaxHeaderBytes {
		writeErrorBody(rw, http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf(
			"the request line and headers hold %d bytes, more than the limit of %d; send fewer match[] values per request", n, h.opts.MaxHeaderBytes),
			string(entente.ETOOLARGE))
		return
	}
	if h.opts.Dashboard != nil && (dashboardPath(r.URL.Path) || r.URL.Path == "/") {
		if p, ok := h.opts.Dashboard.Principal(r); ok {
			keyID = p.KeyID
			if h.limiter != nil {
				if ok, wait := h.limiter.allow(p.KeyID, time.Now()); !ok {
					rw.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
					writeErrorBody(rw, http.StatusTooManyRequests, "too many requests for this API key; retry later", string(entente.ERATELIMIT))
					return
				}
				// Counted: the dashboard forwards its /ui/api/v1/
				// requests to this handler in-process, with the same
				// context, and they must not count again.
				r = r.WithContext(context.WithValue(r.Context(), countedKey{}, p.KeyID))
			}
		}
	} else if !public(r.URL.Path) {
		key, _ := keyFromRequest(r)
		p, err := h.svc.Authenticate(r.Context(), key)
		if err != nil {
			if entente.ErrorCode(err) != entente.EUNAUTHORIZED {
				h.writeError(rw, r, err)
				return
			}
			// The same answer whatever was wrong with the credentials.
			writeErrorBody(rw, http.StatusUnauthorized, "a valid API key is required (Authorization: Bearer KEY, or as the password of HTTP Basic)", string(entente.EUNAUTHORIZED))
			return
		}
		keyID = p.KeyID
		if h.limiter != nil && !counted(r.Context(), p.KeyID) {
			if ok, wait := h.limiter.allow(p.KeyID, time.Now()); !ok {
				rw.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				writeErrorBody(rw, http.StatusTooManyRequests, "too many requests for this API key; retry later", string(entente.ERATELIMIT))
				return
			}
		}
		r = r.WithContext(entente.WithPrincipal(r.Context(), p))
	}
	if p := r.URL.Path; cleanPath(p) != p {
		// The mux would redirect (with an HTML body) to the cleaned path.
		writeErrorBody(rw, http.StatusBadRequest, fmt.Sprintf(
			"the path %q has empty, \".\" or \"..\" segments; request its canonical form", clip(p)), string(entente.EINVALID))
		return
	}
	if pattern == "" || redirect {
		// Not found, method not allowed or a redirect: let the mux
		// decide, and turn its plain-text and HTML answers into TAXII
		// errors.
		h.mux.ServeHTTP(&routingErrors{recorder: rw}, r)
		return
	}
	if !dashboardPath(r.URL.Path) && r.URL.Path != "/" && !public(r.URL.Path) {
		spec, ok := h.queries[pattern]
		if !ok {
			spec = noQuery
		}
		if err := checkQuery(r.URL.RawQuery, spec); err != nil {
			h.refuseUnread(rw, r, err)
			return
		}
		if err := authorise(pattern, principal(r)); err != nil {
			h.refuseUnread(rw, r, err)
			return
		}
	}
	h.mux.ServeHTTP(rw, r)
}

// refuseUnread answers err to a request refused before its handler ran,
// draining its body within the limit of the route's bodies.
func (h *handler) refuseUnread(w http.ResponseWriter, r *http.Request, err error) {
	limit := h.opts.MaxBodyBytes
	if strings.HasPrefix(r.URL.Path, "/taxii2/") || r.URL.Path == match.SightingsPath {
		limit = h.svc.Config().MaxContentLength
	}
	h.refuse(w, r, limit, err)
}

// headerBytes is about what the request line and headers of r took on
// the wire.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// cleanPath returns the canonical form of p, as http.ServeMux computes
// it: no empty, "." or ".." segments, a trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// recorder remembers the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (w *recorder) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	w.wrote = true
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// routingErrors replaces the ServeMux's plain-text 404 and 405 bodies
// with TAXII error messages.
type routingErrors struct {
	*recorder
	replaced bool
}

func (w *routingErrors) WriteHeader(code int) {
	var desc, ecode string
	switch code {
	case http.StatusNotFound:
		desc, ecode = "there is no such resource", string(entente.ENOTFOUND)
	case http.StatusMethodNotAllowed:
		desc, ecode = "the resource does not support this method; see the Allow header", "method_not_allowed"
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		// A TAXII URL without its trailing slash: the redirect stays, its
		// HTML body goes.
		desc, ecode = "the resource is at "+w.Header().Get("Location"), "moved"
	default:
		w.recorder.WriteHeader(code)
		return
	}
	w.replaced = true
	w.Header().Del("Content-Type")
	w.Header().Del("Content-Length")
	writeErrorBody(w.recorder, code, desc, ecode)
}

func (w *routingErrors) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil
	}
	return w.recorder.Write(b)
}

// principal returns the request's authenticated principal.
func principal(r *http.Request) entente.Principal {
	p, _ := entente.PrincipalFrom(r.Context())
	return p
}
