package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/geo"
)

// ExportMaxAge is how long a rendered export is served from the cache
// while no object is added to its collections. Past it the export is
// rendered again, so that expiry, deletions and policy changes show.
const ExportMaxAge = 5 * time.Minute

// ExportRequest asks for the indicators a principal may read rendered as
// a blocklist or rule set.
type ExportRequest struct {
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
}

// ExportResult is a rendered export.
type ExportResult struct {
	// Files are the export's files: one for the single-stream formats.
	Files []export.File
	// ETag is a strong entity tag of the files.
	ETag string
	// Items is the number of items rendered.
	Items int
}

// extras is the node state of exports and feeds (this file and feeds.go).
type extras struct {
	mu      sync.Mutex
	geo     geo.Locator
	exports map[string]*cachedExport
	renders atomic.Int64
	index   exportIndex // export items by collection (exportindex.go)
}

// cachedExport is one rendered export and the state of its collections
// when it was rendered.
type cachedExport struct {
	res       *ExportResult
	built     time.Time
	lastAdded map[string]time.Time // by collection id
}

func (s *Service) ext() *extras {
	s.extrasOnce.Do(func() { s.extras.exports = map[string]*cachedExport{} })
	return &s.extras
}

// SetGeo gives the node geolocation data, used to locate IP indicators in
// exports (country filters) and to build country blocklists. nil removes
// it.
func (s *Service) SetGeo(l geo.Locator) {
	e := s.ext()
	e.mu.Lock()
	e.geo = l
	clear(e.exports)
	e.mu.Unlock()
	s.dropExportIndexes()
}

func (e *extras) geoLocator() geo.Locator {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.geo
}

// ExportRenders returns how many exports the node has rendered (cache
// misses), for metrics and tests.
func (s *Service) ExportRenders() int64 { return s.ext().renders.Load() }

// Export renders the indicators p may read, through the policy gate
// (release), in req.Format. A result rendered for the same audience and
// request is returned without rendering while none of its collections
// received an object since and it is younger than ExportMaxAge.
//
// EINVALID for an unknown format, a country filter or list without
// geolocation data, or an unknown country; ENOTFOUND or EFORBIDDEN for a
// named collection p may not read.
func (s *Service) Export(ctx context.Context, p entente.Principal, req ExportRequest) (*ExportResult, error) {
	if !slices.Contains(export.Formats, req.Format) {
		return nil, entente.Errorf(entente.EINVALID, "unknown export format %q (want one of %s)", req.Format, strings.Join(export.Formats, ", "))
	}
	e := s.ext()
	e.mu.Lock()
	loc := e.geo
	e.mu.Unlock()
	for i, cc := range req.Countries {
		req.Countries[i] = strings.ToUpper(strings.TrimSpace(cc))
	}
	for i, cc := range req.Filter.Countries {
		req.Filter.Countries[i] = strings.ToUpper(strings.TrimSpace(cc))
	}
	if (len(req.Countries) > 0 || len(req.Filter.Countries) > 0) && loc == nil {
		return nil, entente.Errorf(entente.EINVALID, "this node has no geolocation data: country filters and country blocklists are unavailable (start it with --geo)")
	}
	colls, err := s.exportCollections(ctx, p, req.Filter.Collections)
	if err != nil {
		return nil, err
	}
	key, err := exportKey(p, req)
	if err != nil {
		return nil, err
	}
	now := s.now()
	e.mu.Lock()
	c := e.exports[key]
	e.mu.Unlock()
	if c != nil && now.Sub(c.built) < ExportMaxAge {
		fresh, err := s.unchangedSince(ctx, p, colls, c.lastAdded)
		if err != nil {
			return nil, err
		}
		if fresh {
			return c.res, nil
		}
	}
	c, err = s.renderExport(ctx, p, req, colls, loc, now)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if len(e.exports) > 1000 {
		clear(e.exports)
	}
	e.exports[key] = c
	e.mu.Unlock()
	return c.res, nil
}

// exportCollections returns the collections an export reads: those named
// (which p must be allowed to read) or every one p may read.
func (s *Service) exportCollections(ctx context.Context, p entente.Principal, named []string) ([]entente.Collection, error) {
	if len(named) > 0 {
		out := make([]entente.Collection, 0, len(named))
		for _, n := range named {
			c, err := s.collection(ctx, n)
			if err != nil {
				return nil, err
			}
			if !c.CanRead(p.Role) {
				return nil, forbidden(p, "read", c)
			}
			out = append(out, c)
		}
		return out, nil
	}
	all, err := s.Collections(ctx, p)
	if err != nil {
		return nil, err
	}
	out := all[:0:0]
	for _, c := range all {
		if c.CanRead(p.Role) {
			out = append(out, c)
		}
	}
	return out, nil
}

// exportKey identifies an export: its audience and request.
func exportKey(p entente.Principal, req ExportRequest) (string, error) {
	f := req.Filter
	f.Now = time.Time{}
	b, err := json.Marshal(struct {
		Org, Role, Key string
		Req            ExportRequest
	}{p.Org, string(p.Role), p.KeyID, ExportRequest{Format: req.Format, Filter: f, Countries: req.Countries, Options: req.Options}})
	if err != nil {
		return "", fmt.Errorf("export key: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// unchangedSince reports whether no collection received an object after
// the date_added recorded for it (one metadata query per collection).
func (s *Service) unchangedSince(ctx context.Context, p entente.Principal, colls []entente.Collection, last map[string]time.Time) (bool, error) {
	if len(colls) != len(last) {
		return false, nil
	}
	for _, c := range colls {
		t, ok := last[c.ID]
		if !ok {
			return false, nil
		}
		q := entente.ObjectQuery{Types: []string{"indicator"}, Limit: 1, MetadataOnly: true, AddedAfter: t}
		page, err := s.release(ctx, p, c.ID, q)
		if err != nil {
			return false, err
		}
		if len(page.Entries) > 0 {
			return false, nil
		}
	}
	return true, nil
}

// renderExport reads the indicators of colls through release, converts,
// filters and renders them.
func (s *Service) renderExport(ctx context.Context, p entente.Principal, req ExportRequest, colls []entente.Collection, loc geo.Locator, now time.Time) (*cachedExport, error) {
	var exLoc export.Locator
	if loc != nil {
		exLoc = loc
	}
	f := req.Filter
	f.Collections = nil // the collections were chosen below
	f.Now = now
	keep := f.Matcher()
	var items []export.Item
	var sinks []*audit.Release
	last := make(map[string]time.Time, len(colls))
	for _, c := range colls {
		if p.Role != entente.RolePartner {
			// The node's own roles read without the gate: from the
			// collection's export index, brought up to date first.
			ci, err := s.colIndexFor(ctx, c, loc)
			if err != nil {
				return nil, err
			}
			ci.mu.Lock()
			items, last[c.ID] = ci.appendItems(items, keep)
			ci.mu.Unlock()
			continue
		}
		// A partner's export passes the policy gate page by page; what
		// it releases is audited as one record per collection before the
		// export is returned.
		name := c.Alias
		if name == "" {
			name = c.ID
		}
		last[c.ID] = time.Time{}
		sink := &audit.Release{Time: now, Actor: p.KeyID, Partner: p.Org, Detail: "export " + req.Format + " " + c.ID}
		sinks = append(sinks, sink)
		for en, err := range s.releasedTo(ctx, p, c.ID, entente.ObjectQuery{Types: []string{"indicator"}, Limit: 5000}, sink) {
			if err != nil {
				return nil, err
			}
			if en.DateAdded.After(last[c.ID]) {
				last[c.ID] = en.DateAdded
			}
			its, err := export.FromIndicator(en.Raw, name, exLoc)
			if err != nil {
				s.log.DebugContext(ctx, "indicator left out of export", "collection", c.ID, "id", en.ID, "err", err)
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
		ps := loc.CountryPrefixes(cc)
		if len(ps) == 0 {
			return nil, entente.Errorf(entente.EINVALID, "country %q has no address space in this node's geolocation data", cc)
		}
		items = append(items, export.CountryItems(cc, ps)...)
	}
	opts := req.Options
	if opts.Now.IsZero() {
		opts.Now = now
	}
	s.ext().renders.Add(1)
	files, err := export.RenderFiles(req.Format, items, opts)
	if err != nil {
		return nil, fmt.Errorf("render %s export: %w", req.Format, err)
	}
	// Nothing leaves without its audit record.
	for _, sink := range sinks {
		if len(sink.Versions) == 0 {
			continue
		}
		ps, err := s.policyStore()
		if err != nil {
			return nil, err
		}
		if err := ps.AppendRelease(ctx, *sink); err != nil {
			return nil, fmt.Errorf("policy gate: %w", err)
		}
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
	s.log.InfoContext(ctx, "export rendered", "format", req.Format, "items", len(items), "files", len(files), "key_id", p.KeyID)
	return &cachedExport{res: &ExportResult{Files: files, ETag: etag, Items: len(items)}, built: now, lastAdded: last}, nil
}

// File returns the export's file named name, or its only file when name
// is empty and it has one.
func (r *ExportResult) File(name string) (export.File, bool) {
	for _, f := range r.Files {
		if f.Name == name || (name == "" && len(r.Files) == 1) {
			return f, true
		}
	}
	return export.File{}, false
}

// Body returns the export's bytes: its only file, or the concatenation of
// its files (for tests and hashing).
func (r *ExportResult) Body() []byte {
	if len(r.Files) == 1 {
		return r.Files[0].Data
	}
	var b bytes.Buffer
	for _, f := range r.Files {
		b.Write(f.Data)
	}
	return b.Bytes()
}
