// Package dashboard is the analysts' web dashboard: a few pages of plain
// HTML, CSS and JavaScript embedded in the binary (no CDN: it works
// without internet access), and the JSON and server-sent-event routes
// they call under /ui/. Analysts sign in with an API key, which opens a
// session cookie (HttpOnly, SameSite=Strict, Secure under TLS); every
// state-changing request carries the session's CSRF token in a header.
// Everything it shows it reads through the node service, which
// authorises each request by the key's role: it is an egress adapter
// with no other way to the store. The workbench's pages (search, object
// pages, graph, ATT&CK matrix, indicators, notes, opinions, labels,
// reports) call the node API that scripts call: /ui/api/v1/ forwards to
// the API handler it is given (SetAPI) with the session's key.
package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/devicenode"
	"github.com/entente-cti/entente/internal/node"
)

//go:embed static
var staticFS embed.FS

// Prefix is the path under which the dashboard is served.
const Prefix = "/ui/"

// CookieName is the session cookie's name.
const CookieName = "entente_session"

// CSRFHeader carries the session's CSRF token on state-changing
// requests.
const CSRFHeader = "X-CSRF-Token"

// Options configure the dashboard.
type Options struct {
	// Secure marks the session cookie Secure (set when serving TLS).
	Secure bool
	// IdleTimeout ends a session unused for this long (30 minutes when
	// 0); MaxLifetime ends any session this long after sign-in (12
	// hours when 0).
	IdleTimeout time.Duration
	MaxLifetime time.Duration
	// Logger receives sign-in and sign-out events (never keys or
	// tokens); nil discards them.
	Logger *slog.Logger
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// Heartbeat is how often an idle event stream sends a comment and
	// checks that its session is still valid; 15 s when 0.
	Heartbeat time.Duration
}

// Handler serves the dashboard under Prefix.
type Handler struct {
	svc      *node.Service
	opts     Options
	log      *slog.Logger
	sessions *sessions
	mux      *http.ServeMux
	assets   map[string]asset
	// done is closed by Close: event streams end.
	done      chan struct{}
	closeOnce sync.Once
	// api is the node API's handler (/api/v1), which /ui/api/v1/
	// forwards to; nil until SetAPI.
	api atomic.Pointer[http.Handler]
}

// asset is one embedded file, with its gzip form and ETag.
type asset struct {
	body, gz    []byte
	contentType string
	etag        string
}

// New returns the dashboard of svc.
func New(svc *node.Service, opts Options) *Handler {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Minute
	}
	if opts.MaxLifetime <= 0 {
		opts.MaxLifetime = 12 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{svc: svc, opts: opts, log: opts.Logger, sessions: newSessions(opts.IdleTimeout, opts.MaxLifetime, opts.Now), mux: http.NewServeMux(), done: make(chan struct{})}
	h.loadAssets()
	m := h.mux
	m.HandleFunc("GET /ui/{$}", h.page)
	m.HandleFunc("GET /ui/static/{file}", h.static)
	m.HandleFunc("POST /ui/api/login", h.login)
	m.HandleFunc("POST /ui/api/logout", h.authed(h.logout))
	m.HandleFunc("GET /ui/api/session", h.authed(h.session))
	m.HandleFunc("GET /ui/api/overview", h.authed(h.overview))
	m.HandleFunc("GET /ui/api/alerts", h.authed(h.alerts))
	m.HandleFunc("GET /ui/api/alerts/{id}", h.authed(h.alert))
	m.HandleFunc("POST /ui/api/alerts/{id}/{action}", h.authed(h.transition))
	m.HandleFunc("GET /ui/api/search", h.authed(h.search))
	m.HandleFunc("GET /ui/api/objects/{id}", h.authed(h.object))
	m.HandleFunc("GET /ui/api/collections", h.authed(h.collections))
	m.HandleFunc("GET /ui/api/partners", h.authed(h.partners))
	m.HandleFunc("GET /ui/api/partners/{id}/preview", h.authed(h.preview))
	m.HandleFunc("GET /ui/api/partners/blind", h.authed(h.blindPartners))
	m.HandleFunc("GET /ui/api/peers", h.authed(h.peers))
	m.HandleFunc("GET /ui/api/feeds", h.authed(h.feeds))
	m.HandleFunc("GET /ui/api/audit", h.authed(h.audit))
	m.HandleFunc("GET /ui/api/events", h.authed(h.events))
	m.HandleFunc("GET /ui/api/devices", h.authed(h.devices))
	m.HandleFunc("/ui/api/v1/{path...}", h.authed(h.forward))
	return h
}

// SetAPI gives the dashboard the node API's handler, the one scripts
// call under /api/v1/ (internal/httpapi's): the pages' requests under
// /ui/api/v1/ are forwarded to it in-process with the session's key as
// credentials, so the dashboard does and sees exactly what the key may
// through the API, with the same checks, policy gate and audit. It is
// set after construction because that handler mounts the dashboard;
// until then /ui/api/v1/ answers 503.
func (h *Handler) SetAPI(api http.Handler) { h.api.Store(&api) }

// MaxForwardBody bounds the body of a request forwarded to the node API
// (the API's own default limit of node API bodies).
const MaxForwardBody = 1 << 20

// forward serves /ui/api/v1/{path...}: the request goes to the node
// API's /api/v1/{path...} with the same method, query and body (at most
// MaxForwardBody), authenticated by HTTP Basic with the session's key
// (the scheme the API takes from TAXII clients), and the API's answer
// comes back as it is: status, headers and body. The cookie and the
// CSRF token stay here; authed has checked them.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, _ entente.Principal) {
	api := h.api.Load()
	ss, _, ok := h.sessionOf(r)
	if api == nil || !ok {
		h.writeError(w, r, entente.Errorf(entente.EUNAVAILABLE, "the node API is not available to the dashboard"))
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, "/ui")
	r2.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, "/ui")
	r2.RequestURI = r2.URL.RequestURI()
	r2.Header = http.Header{}
	for _, k := range []string{"Accept", "Accept-Language", "Content-Type", "If-None-Match", "User-Agent"} {
		if v := r.Header.Values(k); len(v) > 0 {
			r2.Header[k] = v
		}
	}
	r2.SetBasicAuth("dashboard", ss.key)
	if r.Body != nil && r.Body != http.NoBody {
		r2.Body = http.MaxBytesReader(w, r.Body, MaxForwardBody)
	}
	(*api).ServeHTTP(noChallenge{w}, r2)
}

// noChallenge drops the API's WWW-Authenticate challenges, which would
// make a browser ask for a password: a page signs in again instead.
type noChallenge struct{ http.ResponseWriter }

func (n noChallenge) WriteHeader(status int) {
	n.Header().Del("WWW-Authenticate")
	n.ResponseWriter.WriteHeader(status)
}

func (n noChallenge) Write(b []byte) (int, error) {
	n.Header().Del("WWW-Authenticate")
	return n.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath.
func (n noChallenge) Unwrap() http.ResponseWriter { return n.ResponseWriter }

func (h *Handler) loadAssets() {
	h.assets = map[string]asset{}
	entries, _ := fs.ReadDir(staticFS, "static")
	for _, e := range entries {
		b, err := fs.ReadFile(staticFS, "static/"+e.Name())
		if err != nil {
			continue
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		ct := mime.TypeByExtension(path.Ext(e.Name()))
		if ct == "" {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		h.assets[e.Name()] = asset{body: b, gz: gz.Bytes(), contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
}

// Close ends the open event streams, so that a graceful shutdown of the
// server does not wait for them (register it with
// http.Server.RegisterOnShutdown). Browsers reconnect to the next
// server.
func (h *Handler) Close() { h.closeOnce.Do(func() { close(h.done) }) }

// ServeHTTP serves the dashboard's routes with security headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	if r.URL.Path == "/ui" {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// Principal returns the principal of r's session, for the HTTP
// adapter's rate limiting and logging; ok is false without a live
// session.
func (h *Handler) Principal(r *http.Request) (entente.Principal, bool) {
	ss, _, ok := h.sessionOf(r)
	if !ok {
		return entente.Principal{}, false
	}
	p, err := h.svc.Authenticate(r.Context(), ss.key)
	return p, err == nil
}

func (h *Handler) sessionOf(r *http.Request) (*session, string, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return nil, "", false
	}
	ss, ok := h.sessions.get(c.Value)
	return ss, c.Value, ok
}

// authed wraps a route that needs a session: it re-authenticates the
// session's key (a revoked key ends the session), checks the CSRF token
// of state-changing requests and the Origin header when present, and
// puts the principal in the request's context. The node service then
// authorises by role.
func (h *Handler) authed(next func(http.ResponseWriter, *http.Request, entente.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss, tok, ok := h.sessionOf(r)
		if !ok {
			h.writeError(w, r, entente.Errorf(entente.EUNAUTHORIZED, "sign in first"))
			return
		}
		p, err := h.svc.Authenticate(r.Context(), ss.key)
		if err != nil {
			h.sessions.end(tok)
			h.writeError(w, r, entente.Errorf(entente.EUNAUTHORIZED, "the session's key is no longer valid; sign in again"))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !ss.csrfOK(r.Header.Get(CSRFHeader)) || !sameOrigin(r) {
				h.writeError(w, r, entente.Errorf(entente.EFORBIDDEN, "missing or wrong CSRF token"))
				return
			}
		}
		next(w, r, p)
	}
}

// sameOrigin reports whether r's Origin header, when present, names the
// host r was sent to.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// maxLoginBody bounds the sign-in request.
const maxLoginBody = 4 << 10

// login serves POST /ui/api/login {"key": "..."}: it checks the key,
// refuses roles other than analyst and admin, and opens a session.
// Only JSON is accepted, which a cross-site form cannot send.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" || !sameOrigin(r) {
		h.writeError(w, r, entente.Errorf(entente.EUNSUPPORTED, "sign in with a JSON body {\"key\": …} from the dashboard"))
		return
	}
	var body struct {
		Key string `json:"key"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBody)).Decode(&body); err != nil {
		h.writeError(w, r, entente.Errorf(entente.EINVALID, "the sign-in body is not JSON {\"key\": …}"))
		return
	}
	key := strings.TrimSpace(body.Key)
	p, err := h.svc.Authenticate(r.Context(), key)
	if err != nil {
		if entente.ErrorCode(err) == entente.EUNAUTHORIZED {
			h.log.InfoContext(r.Context(), "dashboard sign-in refused", "remote", r.RemoteAddr)
			h.writeError(w, r, entente.Errorf(entente.EUNAUTHORIZED, "this API key is not valid"))
			return
		}
		h.writeError(w, r, err)
		return
	}
	if p.Role != entente.RoleAnalyst && p.Role != entente.RoleAdmin {
		h.log.InfoContext(r.Context(), "dashboard sign-in refused", "key_id", p.KeyID, "role", p.Role)
		h.writeError(w, r, entente.Errorf(entente.EFORBIDDEN, "the dashboard is for analyst and admin keys; this key's role is %q", p.Role))
		return
	}
	tok, ss := h.sessions.create(key, p.KeyID)
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: tok, Path: Prefix, HttpOnly: true, Secure: h.opts.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(h.opts.MaxLifetime / time.Second),
	})
	h.log.InfoContext(r.Context(), "dashboard sign-in", "key_id", p.KeyID, "role", p.Role)
	writeJSON(w, http.StatusOK, sessionInfo(p, ss))
}

func sessionInfo(p entente.Principal, ss *session) map[string]any {
	return map[string]any{"key_id": p.KeyID, "org": p.Org, "role": p.Role, "csrf": ss.csrf}
}

// logout serves POST /ui/api/logout: the session ends on the server.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	if _, tok, ok := h.sessionOf(r); ok {
		h.sessions.end(tok)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Prefix, HttpOnly: true, Secure: h.opts.Secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	h.log.InfoContext(r.Context(), "dashboard sign-out", "key_id", p.KeyID)
	w.WriteHeader(http.StatusNoContent)
}

// session serves GET /ui/api/session: who is signed in, and the CSRF
// token (the page reads it after a reload).
func (h *Handler) session(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	ss, _, _ := h.sessionOf(r)
	writeJSON(w, http.StatusOK, sessionInfo(p, ss))
}

// page serves the single page.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	h.serveAsset(w, r, "index.html", "no-cache")
}

// static serves an embedded asset.
func (h *Handler) static(w http.ResponseWriter, r *http.Request) {
	h.serveAsset(w, r, r.PathValue("file"), "no-cache")
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request, name, cache string) {
	a, ok := h.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("Cache-Control", cache)
	hd.Set("ETag", a.etag)
	hd.Set("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		hd.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// overview serves GET /ui/api/overview?window=24h&buckets=48[&until=T]:
// the window ends at until (RFC 3339), or now.
func (h *Handler) overview(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	q := r.URL.Query()
	window := 24 * time.Hour
	if s := q.Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			h.writeError(w, r, entente.Errorf(entente.EINVALID, "window %q is not a duration such as 24h", s))
			return
		}
		window = d
	}
	buckets := 24
	if s := q.Get("buckets"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			h.writeError(w, r, entente.Errorf(entente.EINVALID, "buckets %q is not a number", s))
			return
		}
		buckets = n
	}
	var until time.Time
	if s := q.Get("until"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			h.writeError(w, r, entente.Errorf(entente.EINVALID, "until %q is not an RFC 3339 time such as 2026-12-01T00:00:00Z", s))
			return
		}
		until = t
	}
	o, err := h.svc.Overview(r.Context(), p, window, buckets, until)
	h.respond(w, r, o, err)
}

// devices serves GET /ui/api/devices[?class=C]: the devices of the
// node's device watch, each with its countries, top destinations and
// latest findings (the local view: analysts and admins); the first
// maxDevicesShown, with the total.
func (h *Handler) devices(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	list, err := h.svc.Devices(r.Context(), p, r.URL.Query().Get("class"))
	out := make([]devicenode.Device, 0, min(len(list), maxDevicesShown))
	for i := range list[:min(len(list), maxDevicesShown)] {
		out = append(out, devicenode.View(&list[i], 10))
	}
	h.respond(w, r, map[string]any{"devices": out, "total": len(list)}, err)
}

// maxDevicesShown is how many devices the Devices page shows, each with
// its map.
const maxDevicesShown = 100

// alerts serves GET /ui/api/alerts[?status=S&tier=T].
func (h *Handler) alerts(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	f := node.AlertFilter{Status: correlate.Status(r.URL.Query().Get("status")), Tier: r.URL.Query().Get("tier")}
	list, err := h.svc.ListAlerts(r.Context(), p, f)
	h.respond(w, r, map[string]any{"alerts": list}, err)
}

// alert serves GET /ui/api/alerts/{id}.
func (h *Handler) alert(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	d, err := h.svc.AlertDetail(r.Context(), p, r.PathValue("id"))
	h.respond(w, r, d, err)
}

// transition serves POST /ui/api/alerts/{id}/ack and …/resolve, with an
// optional JSON body {"note": …}.
func (h *Handler) transition(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	var body struct {
		Note string `json:"note"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			h.writeError(w, r, entente.Errorf(entente.EINVALID, "the body is not JSON {\"note\": …}"))
			return
		}
	}
	id := r.PathValue("id")
	var info node.AlertInfo
	var err error
	switch r.PathValue("action") {
	case "ack":
		info, err = h.svc.AckAlert(r.Context(), p, id, body.Note)
	case "resolve":
		info, err = h.svc.ResolveAlert(r.Context(), p, id, body.Note)
	default:
		err = entente.Errorf(entente.ENOTFOUND, "no action %q: ack or resolve", r.PathValue("action"))
	}
	h.respond(w, r, info, err)
}

// search serves GET /ui/api/search?q=….
func (h *Handler) search(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	res, err := h.svc.Search(r.Context(), p, r.URL.Query().Get("q"))
	h.respond(w, r, map[string]any{"results": res}, err)
}

// object serves GET /ui/api/objects/{id}.
func (h *Handler) object(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	d, err := h.svc.ObjectDetail(r.Context(), p, r.PathValue("id"))
	h.respond(w, r, d, err)
}

// partners serves GET /ui/api/partners: each partner with its
// agreement (admin: the node decides).
func (h *Handler) partners(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	parties, err := h.svc.Partners(r.Context(), p)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	ags, err := h.svc.Agreements(r.Context(), p)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	type row struct {
		Partner   any `json:"partner"`
		Agreement any `json:"agreement,omitempty"`
	}
	out := []row{}
	for _, pt := range parties {
		rw := row{Partner: pt}
		for _, a := range ags {
			if a.Partner.ID == pt.ID {
				rw.Agreement = a
			}
		}
		out = append(out, rw)
	}
	writeJSON(w, http.StatusOK, map[string]any{"partners": out})
}

// collections serves GET /ui/api/collections: the collections the key
// may read or write, for their names (the node API's list,
// GET /api/v1/collections, is for admins).
func (h *Handler) collections(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	cs, err := h.svc.Collections(r.Context(), p)
	if cs == nil {
		cs = []entente.Collection{}
	}
	h.respond(w, r, map[string]any{"collections": cs}, err)
}

// blindPartners serves GET /ui/api/partners/blind: the partners whose
// agreement grants blind access, with their budget's use and their set.
func (h *Handler) blindPartners(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	bp, err := h.svc.BlindPartners(r.Context(), p)
	h.respond(w, r, map[string]any{"blind": bp}, err)
}

// preview serves GET /ui/api/partners/{id}/preview: what the partner
// would receive and why.
func (h *Handler) preview(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	ex, err := h.svc.Preview(r.Context(), p, r.PathValue("id"), 50)
	h.respond(w, r, map[string]any{"preview": ex}, err)
}

// peers serves GET /ui/api/peers: each peer's sync status.
func (h *Handler) peers(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	ps, err := h.svc.Peers(r.Context(), p)
	h.respond(w, r, map[string]any{"peers": ps}, err)
}

// feeds serves GET /ui/api/feeds: each feed and its last poll.
func (h *Handler) feeds(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	fs, err := h.svc.Feeds(r.Context(), p)
	h.respond(w, r, map[string]any{"feeds": fs}, err)
}

// audit serves GET /ui/api/audit[?partner=&object=&action=&next=].
func (h *Handler) audit(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	q := r.URL.Query()
	page, err := h.svc.QueryAudit(r.Context(), p, node.AuditQuery{Partner: q.Get("partner"), ObjectID: q.Get("object"), Action: q.Get("action"), Next: q.Get("next"), Limit: 100})
	h.respond(w, r, page, err)
}

// events serves GET /ui/api/events: the node's live events as
// server-sent events ("sighting" and "alert"), until the client goes or
// its session ends (checked at each heartbeat; an open stream counts as
// use of the session).
func (h *Handler) events(w http.ResponseWriter, r *http.Request, p entente.Principal) {
	sub, err := h.svc.Subscribe(p)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	defer sub.Close()
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{}) // the server's ReadTimeout must not end the stream
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "retry: 2000\n: connected\n\n")
	rc.Flush()
	t := time.NewTicker(h.opts.Heartbeat)
	defer t.Stop()
	for {
		rc.SetWriteDeadline(time.Now().Add(2*h.opts.Heartbeat + 10*time.Second))
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case ev, ok := <-sub.C:
			if !ok {
				return
			}
			b, _ := json.Marshal(ev)
			if _, err := io.WriteString(w, "event: "+ev.Kind+"\ndata: "+string(b)+"\n\n"); err != nil {
				return
			}
			if n := sub.Dropped(); n > 0 {
				// The client missed events: it reloads what it shows.
				io.WriteString(w, "event: lagged\ndata: "+strconv.Itoa(n)+"\n\n")
			}
		case <-t.C:
			// A stream lasts as long as its session and key: sign-out,
			// expiry or revocation ends it within a heartbeat.
			ss, _, ok := h.sessionOf(r)
			if !ok {
				return
			}
			if _, err := h.svc.Authenticate(r.Context(), ss.key); err != nil {
				return
			}
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
				return
			}
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// respond writes v, or err.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// statusOf maps error codes to HTTP statuses.
var statusOf = map[entente.Code]int{
	entente.EINVALID:      http.StatusBadRequest,
	entente.ENOTFOUND:     http.StatusNotFound,
	entente.ECONFLICT:     http.StatusConflict,
	entente.EUNAUTHORIZED: http.StatusUnauthorized,
	entente.EFORBIDDEN:    http.StatusForbidden,
	entente.EUNSUPPORTED:  http.StatusUnsupportedMediaType,
	entente.ERATELIMIT:    http.StatusTooManyRequests,
	entente.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// writeError writes {"error": message, "code": code}; internal errors
// are answered "internal error" (the HTTP adapter logs requests).
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, ok := statusOf[entente.ErrorCode(err)]
	if !ok {
		status = http.StatusInternalServerError
		h.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, map[string]string{"error": entente.ErrorMessage(err), "code": string(entente.ErrorCode(err))})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error","code":"internal"}`)
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
