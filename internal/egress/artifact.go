package egress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
)

// Renderer turns the objects an audience may receive into an artifact:
// a blocklist export, a sensor snapshot. It reads them only through its
// [Source], which applies the gate; the gate caches the artifact under
// the terms in force and the collections' content, and audits every
// serving of it.
type Renderer interface {
	// Key identifies the rendering (its format and options) among an
	// audience's artifacts.
	Key() string
	// Render renders what src releases.
	Render(ctx context.Context, src *Source) (*Artifact, error)
}

// Staler is implemented by a renderer whose artifact the node's own roles
// may receive while a newer one is rendered in the background, after
// objects were added: StaleFor is how long after it was rendered an
// artifact is served without even starting that (a sensor snapshot: a
// busy node does not rebuild it on every poll). Partners never receive a
// stale artifact.
type Staler interface {
	StaleFor() time.Duration
}

// Artifact is a rendering as it leaves the node.
type Artifact struct {
	// Files are its files: one for single-stream formats.
	Files []File
	// ETag is a strong entity tag of the files.
	ETag string
	// Items counts what it holds (indicators, entries).
	Items int
	// Expires is when the artifact stops being right by itself (the
	// first expiry of something it holds); zero when it does not.
	Expires time.Time
}

// File is one file of an artifact.
type File struct {
	Name string
	Data []byte
}

// Source is what a renderer reads: the objects the audience may receive,
// through the gate. For a partner every version read is recorded, and
// the records are appended before the artifact leaves.
type Source struct {
	g       *Gate
	p       entente.Principal
	t       *terms // nil for the node's own roles
	colls   []entente.Collection
	channel string
	now     time.Time
	sinks   map[string]*audit.Release // by collection id
	order   []string
	blind   bool   // a blind rendering: CheckBlind decides
	terms   string // the version of the terms rendered under
}

// Blind reports whether the rendering is a blind one (Query.Blind): Read
// yields what the partner may test blindly, which must not leave the
// node as it is.
func (s *Source) Blind() bool { return s.blind }

// Terms is the version of the terms in force that the rendering is made
// under. A renderer that keeps state between its renderings (to bring an
// artifact up to date incrementally) starts afresh when it changes: any
// decision may have changed with it.
func (s *Source) Terms() string { return s.terms }

// Audience is the principal the artifact is rendered for.
func (s *Source) Audience() entente.Principal { return s.p }

// Partner reports whether the audience is another organisation (the
// gate decides every object it reads).
func (s *Source) Partner() bool { return s.t != nil }

// Now is the time of the rendering.
func (s *Source) Now() time.Time { return s.now }

// Collections are the collections to render, each readable by the
// audience.
func (s *Source) Collections() []entente.Collection { return s.colls }

// Read yields the entries of collection c that q selects, page by page,
// as the audience may receive them; an error ends the sequence.
func (s *Source) Read(ctx context.Context, c entente.Collection, q entente.ObjectQuery) iter.Seq2[entente.ObjectEntry, error] {
	return func(yield func(entente.ObjectEntry, error) bool) {
		if !slices.ContainsFunc(s.colls, func(x entente.Collection) bool { return x.ID == c.ID }) {
			yield(entente.ObjectEntry{}, fmt.Errorf("render: collection %s is not among the collections rendered", c.ID))
			return
		}
		q.Collection = c.ID
		if q.Limit <= 0 {
			q.Limit = 5000
		}
		metadataOnly := q.MetadataOnly
		if s.t != nil {
			q.MetadataOnly = false
		}
		detail := s.channel + " " + c.ID
		for scanned := 0; ; scanned++ {
			page, err := s.g.st.QueryObjects(ctx, q)
			if err != nil {
				yield(entente.ObjectEntry{}, queryError(c, err))
				return
			}
			if s.t == nil || s.blind {
				// What the node no longer acts on leaves its own
				// renderings and blind sets (partners' releases drop it
				// in gatePage).
				if page, err = s.g.dropWithheld(ctx, c, page); err != nil {
					yield(entente.ObjectEntry{}, err)
					return
				}
			}
			if s.t != nil && s.blind {
				if page, err = s.g.blindPage(ctx, s.t, c, page, s.now); err != nil {
					yield(entente.ObjectEntry{}, err)
					return
				}
			} else if s.t != nil {
				sink := s.sinks[c.ID]
				if sink == nil {
					sink = &audit.Release{Time: s.now, Actor: s.p.KeyID, Partner: s.t.partner.ID, Detail: detail}
					s.sinks[c.ID] = sink
					s.order = append(s.order, c.ID)
				}
				if page, err = s.g.gatePage(ctx, s.t, c, page, metadataOnly, sink, detail, false); err != nil {
					yield(entente.ObjectEntry{}, err)
					return
				}
			}
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if !page.More {
				return
			}
			q.Next = page.Next
		}
	}
}

// artifacts is the gate's cache of rendered artifacts, by audience and
// rendering. An entry is served only while the terms in force, the
// collections' content and its own expiry are what they were when it was
// rendered.
type artifacts struct {
	mu      sync.Mutex
	byKey   map[string]*cached
	flights map[string]chan struct{}
}

// maxArtifacts bounds the cache.
const maxArtifacts = 1000

// cached is one rendered artifact and what it was rendered under.
type cached struct {
	art      *Artifact
	terms    string               // the terms version
	latest   map[string]time.Time // by collection id: its latest addition
	built    time.Time
	expires  time.Time
	releases []audit.Release // a partner's: appended at every serving
	records  []audit.Record  // a blind rendering's: appended at every serving
	// refreshing is set while a newer rendering runs in the background.
	refreshing bool
}

func (a *artifacts) dropAll() {
	a.mu.Lock()
	clear(a.byKey)
	a.mu.Unlock()
}

// render answers a render query: from the cache when the entry is
// current, else rendered anew.
func (g *Gate) render(ctx context.Context, p entente.Principal, q Query) (*Released, error) {
	var colls []entente.Collection
	var err error
	if q.Blind {
		colls, err = g.blindCollections(ctx, p)
	} else {
		colls, err = g.renderCollections(ctx, p, q.Collections)
	}
	if err != nil {
		return nil, err
	}
	channel := q.Channel
	if channel == "" {
		channel = "render"
	}
	rkey := q.Render.Key()
	if q.Blind {
		rkey = "blind|" + rkey
	}
	key := artifactKey(p, channel, rkey, colls)
	for {
		version, err := g.termsVersion(ctx)
		if err != nil {
			return nil, err
		}
		latest := make(map[string]time.Time, len(colls))
		for _, c := range colls {
			t, err := g.st.LatestAdded(ctx, c.ID)
			if err != nil {
				return nil, fmt.Errorf("render: %w", err)
			}
			latest[c.ID] = t
		}
		now := g.now()
		a := &g.arts
		a.mu.Lock()
		e := a.byKey[key]
		if e != nil && e.terms == version && now.Before(e.expires) {
			current := sameLatest(e.latest, latest)
			if current {
				a.mu.Unlock()
				g.hits.Add(1)
				if q.Peek {
					return peek(e), nil
				}
				return g.serve(ctx, e, q.IfNoneMatch, now)
			}
			if st, ok := q.Render.(Staler); ok && p.Role != entente.RolePartner {
				// The node's own roles get the artifact they had while a
				// newer one is rendered.
				if now.Sub(e.built) >= st.StaleFor() && !e.refreshing {
					e.refreshing = true
					go g.refresh(p, q, colls, channel, key)
				}
				a.mu.Unlock()
				g.hits.Add(1)
				return g.serve(ctx, e, q.IfNoneMatch, now)
			}
		}
		if wait, busy := a.flights[key]; busy {
			a.mu.Unlock()
			select {
			case <-wait:
				continue // look again: it may be what this request needs
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if a.flights == nil {
			a.flights = map[string]chan struct{}{}
		}
		done := make(chan struct{})
		a.flights[key] = done
		a.mu.Unlock()
		e, err = g.renderEntry(ctx, p, q, colls, channel, version, latest, now)
		a.mu.Lock()
		delete(a.flights, key)
		close(done)
		if err == nil {
			if a.byKey == nil || len(a.byKey) >= maxArtifacts {
				a.byKey = map[string]*cached{}
			}
			a.byKey[key] = e
		}
		a.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if q.Peek {
			return peek(e), nil
		}
		// Audited as it is served, unless the audience holds it already.
		return g.serve(ctx, e, q.IfNoneMatch, now)
	}
}

// refresh renders an artifact anew in the background and swaps it in.
func (g *Gate) refresh(p entente.Principal, q Query, colls []entente.Collection, channel, key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	defer func() {
		g.arts.mu.Lock()
		if e := g.arts.byKey[key]; e != nil {
			e.refreshing = false
		}
		g.arts.mu.Unlock()
	}()
	version, err := g.termsVersion(ctx)
	if err != nil {
		g.log.Warn("background rendering", "channel", channel, "err", err)
		return
	}
	latest := make(map[string]time.Time, len(colls))
	for _, c := range colls {
		t, err := g.st.LatestAdded(ctx, c.ID)
		if err != nil {
			g.log.Warn("background rendering", "channel", channel, "err", err)
			return
		}
		latest[c.ID] = t
	}
	e, err := g.renderEntry(ctx, p, q, colls, channel, version, latest, g.now())
	if err != nil {
		g.log.Warn("background rendering failed", "channel", channel, "err", err)
		return
	}
	g.arts.mu.Lock()
	if old := g.arts.byKey[key]; old != nil && old.terms == version {
		g.arts.byKey[key] = e
	}
	g.arts.mu.Unlock()
}

// renderEntry renders an artifact for p and, for a partner, packs the
// audit records of what it holds, which every serving appends.
func (g *Gate) renderEntry(ctx context.Context, p entente.Principal, q Query, colls []entente.Collection, channel, version string, latest map[string]time.Time, now time.Time) (*cached, error) {
	src := &Source{g: g, p: p, colls: colls, channel: channel, now: now, sinks: map[string]*audit.Release{}, blind: q.Blind, terms: version}
	expires := now.Add(g.cfg.MaxAge)
	if p.Role == entente.RolePartner {
		t, err := g.partnerTerms(ctx, p)
		if err != nil {
			return nil, err
		}
		src.t = t
		if a := t.agreement; a != nil {
			for _, at := range []time.Time{a.ValidFrom, a.ValidUntil} {
				if !at.IsZero() && at.After(now) && at.Before(expires) {
					expires = at
				}
			}
		}
	}
	art, err := q.Render.Render(ctx, src)
	if err != nil {
		return nil, err
	}
	g.renders.Add(1)
	if !art.Expires.IsZero() && art.Expires.Before(expires) {
		expires = art.Expires
	}
	e := &cached{art: art, terms: version, latest: latest, built: now, expires: expires}
	if q.Blind {
		// Nothing that was read leaves: the serving is recorded as
		// what it is, a blinded set of so many indicators.
		e.records = []audit.Record{audit.BlindRecord(now, p.KeyID, src.t.partner.ID, RuleBlindSet,
			fmt.Sprintf("%s: %d indicators, %s", channel, art.Items, art.ETag), nil)}
	}
	for _, id := range src.order {
		sink := src.sinks[id]
		if len(sink.Versions) == 0 {
			continue
		}
		var pk audit.Packer
		if err := pk.Add(*sink, sink.Versions); err != nil {
			return nil, fmt.Errorf("policy gate: %w", err)
		}
		e.releases = append(e.releases, pk.Seal(*sink))
	}
	return e, nil
}

// serve returns a cached artifact: not modified when the audience holds
// it already (nothing leaves), else after its audit records, appended
// anew with this serving's time.
func (g *Gate) serve(ctx context.Context, e *cached, ifNoneMatch string, now time.Time) (*Released, error) {
	if ifNoneMatch != "" && etagMatch(ifNoneMatch, e.art.ETag) {
		return &Released{NotModified: true, ETag: e.art.ETag}, nil
	}
	for _, r := range e.releases {
		r.Time = now
		if err := g.ps.AppendRelease(ctx, r); err != nil {
			return nil, fmt.Errorf("policy gate: %w", err)
		}
	}
	if len(e.records) > 0 {
		recs := slices.Clone(e.records)
		for i := range recs {
			recs[i].Time = now
		}
		if err := g.ps.AppendAudit(ctx, recs); err != nil {
			return nil, fmt.Errorf("policy gate: %w", err)
		}
	}
	return &Released{Artifact: e.art}, nil
}

// peek returns what a Peek query answers of a cached artifact.
func peek(e *cached) *Released {
	return &Released{Artifact: &Artifact{ETag: e.art.ETag, Items: e.art.Items, Expires: e.art.Expires}, ETag: e.art.ETag}
}

// renderCollections returns the collections a rendering reads: those
// named (which p must be allowed to read) or every one p may read.
func (g *Gate) renderCollections(ctx context.Context, p entente.Principal, named []string) ([]entente.Collection, error) {
	if len(named) > 0 {
		out := make([]entente.Collection, 0, len(named))
		for _, n := range named {
			c, err := g.readable(ctx, p, n)
			if err != nil {
				return nil, err
			}
			if !slices.ContainsFunc(out, func(x entente.Collection) bool { return x.ID == c.ID }) {
				out = append(out, c)
			}
		}
		return out, nil
	}
	all, err := g.st.Collections(ctx)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	out := all[:0:0]
	for _, c := range all {
		if c.CanRead(p.Role) {
			out = append(out, c)
		}
	}
	return out, nil
}

// artifactKey identifies an artifact: its audience, channel, rendering
// and collections.
func artifactKey(p entente.Principal, channel, render string, colls []entente.Collection) string {
	h := sha256.New()
	for _, s := range []string{p.Org, string(p.Role), p.KeyID, channel, render} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, c := range colls {
		h.Write([]byte(c.ID))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sameLatest(a, b map[string]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !w.Equal(v) {
			return false
		}
	}
	return true
}

// etagMatch reports whether an If-None-Match header names etag (or is *).
func etagMatch(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
