// Package exports renders the indicators an audience may receive as
// blocklists and rule sets for enforcement points (nftables, ipset,
// Suricata, Zeek Intel, DNS RPZ, plain, CSV, MISP feed, STIX), through the
// node's one policy gate: it reads only what [egress.Gate] releases, and
// the gate caches, invalidates and audits every export it serves.
//
// For the node's own roles, which read without the policy, the exports
// keep an index per collection of the export items of each indicator's
// latest version, brought up to date with what was added since, so that
// an export converts only the indicators that are new. A partner's
// export is read through the gate, object by object.
package exports

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/egress"
	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/geo"
)

// Gate is what the exports need of the policy gate.
type Gate interface {
	Release(ctx context.Context, p entente.Principal, q egress.Query) (*egress.Released, error)
	All(ctx context.Context, p entente.Principal, q egress.Query) iter.Seq2[entente.ObjectEntry, error]
	// Withheld fingerprints what the node no longer acts on (retracted
	// objects, quarantined partners): when it changes, what the export
	// indexes hold is read again through the gate.
	Withheld(ctx context.Context) (string, error)
}

// Config is what the exports need to know.
type Config struct {
	// Gate releases the objects.
	Gate Gate
	// Reader is the node's own principal that brings the export indexes
	// up to date in the background (an admin of the node).
	Reader entente.Principal
	// Logger receives the log; nothing is logged when nil.
	Logger interface {
		DebugContext(ctx context.Context, msg string, args ...any)
		InfoContext(ctx context.Context, msg string, args ...any)
		Warn(msg string, args ...any)
	}
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// Guard, when set, is the safety net every export goes through: the
	// values it protects are left out, the networks around protected
	// space are cut, in every format (internal/safety).
	Guard export.Guard
}

// Request asks for the indicators a principal may read rendered as a
// blocklist or rule set.
type Request struct {
	// Format is one of export.Formats.
	Format string
	// Filter selects the items; its Collections restrict the collections
	// read (by id or alias) and IncludeWarninglisted keeps warninglisted
	// values.
	Filter export.Filter
	// Countries adds the address space of these countries (ISO 3166-1
	// alpha-2) to the export, from the node's geolocation data.
	Countries []string
	// Options are the rendering options (name, zone, action…).
	Options export.Options
	// IfNoneMatch is the entity tag of the export the client holds: when
	// it is current, the answer is NotModified and nothing is sent.
	IfNoneMatch string
}

// Result is a rendered export.
type Result struct {
	// Files are the export's files: one for the single-stream formats.
	Files []export.File
	// ETag is a strong entity tag of the files.
	ETag string
	// Items is the number of items rendered.
	Items int
	// NotModified is set when the client's entity tag is current; Files
	// are then empty.
	NotModified bool
}

// Service renders exports. It is safe for concurrent use.
type Service struct {
	cfg     Config
	mu      sync.Mutex
	geo     geo.Locator
	geoGen  int // changes with the geolocation data: part of every export's key
	renders atomic.Int64
	index   exportIndex
}

// New returns the export service of a node.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = nopLogger{}
	}
	return &Service{cfg: cfg}
}

type nopLogger struct{}

func (nopLogger) DebugContext(context.Context, string, ...any) {}
func (nopLogger) InfoContext(context.Context, string, ...any)  {}
func (nopLogger) Warn(string, ...any)                          {}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// SetGeo gives the exports geolocation data, used to locate IP
// indicators (country filters) and to build country blocklists. nil
// removes it. Exports rendered with the data before are not served again.
func (s *Service) SetGeo(l geo.Locator) {
	s.mu.Lock()
	s.geo = l
	s.geoGen++
	s.mu.Unlock()
	s.dropIndexes()
}

func (s *Service) geoLocator() (geo.Locator, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.geo, s.geoGen
}

// Renders returns how many exports were rendered (cache misses), for
// metrics and tests.
func (s *Service) Renders() int64 { return s.renders.Load() }

// Export renders the indicators p may read, through the policy gate, in
// req.Format. The gate serves a rendering from its cache while nothing
// it depends on changed: the terms in force, the collections' content,
// the expiry of what it holds.
//
// EINVALID for an unknown format, a country filter or list without
// geolocation data, or an unknown country; ENOTFOUND or EFORBIDDEN for a
// named collection p may not read.
func (s *Service) Export(ctx context.Context, p entente.Principal, req Request) (*Result, error) {
	if !slices.Contains(export.Formats, req.Format) {
		return nil, entente.Errorf(entente.EINVALID, "unknown export format %q (want one of %s)", req.Format, strings.Join(export.Formats, ", "))
	}
	loc, gen := s.geoLocator()
	for i, cc := range req.Countries {
		req.Countries[i] = strings.ToUpper(strings.TrimSpace(cc))
	}
	for i, cc := range req.Filter.Countries {
		req.Filter.Countries[i] = strings.ToUpper(strings.TrimSpace(cc))
	}
	if (len(req.Countries) > 0 || len(req.Filter.Countries) > 0) && loc == nil {
		return nil, entente.Errorf(entente.EINVALID, "this node has no geolocation data: country filters and country blocklists are unavailable (start it with --geo)")
	}
	for _, cc := range req.Countries {
		if len(loc.CountryPrefixes(cc)) == 0 {
			return nil, entente.Errorf(entente.EINVALID, "country %q has no address space in this node's geolocation data", cc)
		}
	}
	r := &renderer{s: s, req: req, loc: loc}
	var safetyGen uint64
	if g, ok := s.cfg.Guard.(interface{ Generation() uint64 }); ok {
		safetyGen = g.Generation()
	}
	key, err := renderKey(req, gen, safetyGen)
	if err != nil {
		return nil, err
	}
	r.key = key
	rel, err := s.cfg.Gate.Release(ctx, p, egress.Query{Channel: "export " + req.Format, Render: r,
		Collections: req.Filter.Collections, IfNoneMatch: req.IfNoneMatch})
	if err != nil {
		return nil, err
	}
	if rel.NotModified {
		return &Result{ETag: rel.ETag, NotModified: true}, nil
	}
	a := rel.Artifact
	res := &Result{ETag: a.ETag, Items: a.Items, Files: make([]export.File, len(a.Files))}
	for i, f := range a.Files {
		res.Files[i] = export.File{Name: f.Name, Data: f.Data}
	}
	return res, nil
}

// renderKey identifies an export's rendering: its request (without the
// client's entity tag), the geolocation data's generation and the safety
// net's (partners' constituencies change what it protects).
func renderKey(req Request, geoGen int, safetyGen uint64) (string, error) {
	f := req.Filter
	f.Now = time.Time{}
	f.Collections = nil // the gate keys by the collections read
	b, err := json.Marshal(struct {
		Req    Request
		Geo    int
		Safety uint64 `json:",omitempty"`
	}{Request{Format: req.Format, Filter: f, Countries: req.Countries, Options: req.Options}, geoGen, safetyGen})
	if err != nil {
		return "", fmt.Errorf("export key: %w", err)
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%x", sum[:]), nil
}

// renderer renders one export request for the gate.
type renderer struct {
	s   *Service
	req Request
	loc geo.Locator
	key string
}

// Key implements egress.Renderer.
func (r *renderer) Key() string { return r.key }

// Render implements egress.Renderer: it reads the indicators of the
// collections src releases, converts, filters and renders them.
func (r *renderer) Render(ctx context.Context, src *egress.Source) (*egress.Artifact, error) {
	s, req := r.s, r.req
	var exLoc export.Locator
	if r.loc != nil {
		exLoc = r.loc
	}
	now := src.Now()
	f := req.Filter
	f.Collections = nil // the gate chose the collections
	f.Now = now
	keep := f.Matcher()
	var items []export.Item
	if !src.Partner() {
		// The indexes hold what the gate released before: when what it
		// withholds changed, they are read again.
		fp, err := s.cfg.Gate.Withheld(ctx)
		if err != nil {
			return nil, err
		}
		s.index.resetIfWithheld(fp)
	}
	for _, c := range src.Collections() {
		if !src.Partner() {
			// The node's own roles read without the policy: from the
			// collection's export index, brought up to date first.
			ci, err := s.colIndexFor(ctx, c, r.loc, src.Read)
			if err != nil {
				return nil, err
			}
			ci.mu.Lock()
			items, _ = ci.appendItems(items, keep)
			ci.mu.Unlock()
			continue
		}
		// A partner's export: every indicator is released by the gate,
		// which records it.
		name := c.Alias
		if name == "" {
			name = c.ID
		}
		for en, err := range src.Read(ctx, c, entente.ObjectQuery{Types: []string{"indicator"}, Limit: 5000}) {
			if err != nil {
				return nil, err
			}
			its, err := export.FromIndicator(en.Raw, name, exLoc)
			if err != nil {
				s.cfg.Logger.DebugContext(ctx, "indicator left out of export", "collection", c.ID, "id", en.ID, "err", err)
				continue
			}
			for i := range its {
				if keep(&its[i]) {
					items = append(items, its[i])
				}
			}
		}
	}
	for _, cc := range req.Countries {
		items = append(items, export.CountryItems(cc, r.loc.CountryPrefixes(cc))...)
	}
	// The safety net, last: nothing protected reaches a renderer, so no
	// aggregate covers protected space either.
	items = export.Guarded(items, s.cfg.Guard)
	opts := req.Options
	if opts.Now.IsZero() {
		opts.Now = now
	}
	s.renders.Add(1)
	files, err := export.RenderFiles(req.Format, items, opts)
	if err != nil {
		return nil, fmt.Errorf("render %s export: %w", req.Format, err)
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Data))
		h.Write(f.Data)
	}
	etag := export.ETag(h.Sum(nil))
	if len(files) == 1 {
		etag = export.ETag(files[0].Data)
	}
	// The export is right until the first of its indicators expires.
	var expires time.Time
	for i := range items {
		if vu := items[i].ValidUntil; vu.After(now) && (expires.IsZero() || vu.Before(expires)) {
			expires = vu
		}
	}
	out := &egress.Artifact{ETag: etag, Items: len(items), Expires: expires, Files: make([]egress.File, len(files))}
	for i, f := range files {
		out.Files[i] = egress.File{Name: f.Name, Data: f.Data}
	}
	s.cfg.Logger.InfoContext(ctx, "export rendered", "format", req.Format, "items", len(items), "files", len(files), "key_id", src.Audience().KeyID)
	return out, nil
}

// File returns the export's file named name, or its only file when name
// is empty and it has one.
func (r *Result) File(name string) (export.File, bool) {
	for _, f := range r.Files {
		if f.Name == name || (name == "" && len(r.Files) == 1) {
			return f, true
		}
	}
	return export.File{}, false
}

// Body returns the export's bytes: its only file, or the concatenation of
// its files (for tests and hashing).
func (r *Result) Body() []byte {
	if len(r.Files) == 1 {
		return r.Files[0].Data
	}
	var b []byte
	for _, f := range r.Files {
		b = append(b, f.Data...)
	}
	return b
}
