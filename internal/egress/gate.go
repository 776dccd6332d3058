package egress

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/store"
)

// Config is what the gate needs to know about its node.
type Config struct {
	// Self returns the node's own organisation (its identity id and
	// country): the party whose objects are "own" and whose victims'
	// countries are known. Required.
	Self func(ctx context.Context) (policy.Party, error)
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// Logger receives the gate's log; nothing is logged when nil.
	Logger *slog.Logger
	// MaxAge bounds how long a rendered artifact is served from the
	// cache even when nothing it depends on is known to have changed (a
	// safety net: every known change invalidates at once). 10 minutes
	// when 0.
	MaxAge time.Duration
}

// DefaultMaxAge is Config.MaxAge's default.
const DefaultMaxAge = 10 * time.Minute

// Gate is the node's one policy gate. It is safe for concurrent use.
type Gate struct {
	st  store.Store
	ps  store.PolicyStore
	cfg Config
	log *slog.Logger

	selfMu sync.Mutex
	self   *policy.Party

	marks markingCache
	arts  artifacts
	// termsC keeps the partners' terms under the terms in force
	// (termscache.go).
	termsC termsCache

	// whMu guards wh, the withheld set (withheld.go).
	whMu sync.Mutex
	wh   *withheldSet
	// retracted caches what retractions name, for their pushes to every
	// partner (withheld.go).
	retracted retractedCache
	// dirMu guards dir, the partners' countries under the terms of
	// version dirVersion (partyCountries).
	dirMu      sync.Mutex
	dir        map[string]string
	dirVersion string

	renders atomic.Int64
	hits    atomic.Int64
}

// New returns the gate of the node whose data is in st. The store keeps
// the sharing policy and the audit log (store.PolicyStore; every backend
// does): a store without them releases nothing to partners.
func New(st store.Store, cfg Config) *Gate {
	ps, _ := st.(store.PolicyStore)
	if cfg.Self == nil {
		cfg.Self = func(context.Context) (policy.Party, error) {
			return policy.Party{}, errors.New("the node's organisation is not configured")
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Gate{st: st, ps: ps, cfg: cfg, log: log}
}

func (g *Gate) now() time.Time { return g.cfg.Now().UTC() }

// Query is what an audience asks to receive. Exactly one of three forms:
//
//   - a page of one collection (Collection and Objects): a TAXII read
//     (objects, manifest, one object, versions), a push page, the alert a
//     webhook carries;
//   - a rendering of the objects of several collections (Render): an
//     export, a sensor snapshot, cached under the terms in force;
//   - a preview (Preview): what a partner would receive, explained;
//     nothing leaves and nothing is audited.
type Query struct {
	// Channel names the path in the audit log ("objects", "manifest",
	// "push", "webhook", "export plain", "snapshot"…); "objects" when
	// empty, "manifest" for metadata-only page reads.
	Channel string

	// Collection (id or alias) and Objects select one page.
	Collection string
	Objects    entente.ObjectQuery

	// Render renders the objects of Collections (ids or aliases; every
	// collection the audience may read when empty).
	Render      Renderer
	Collections []string
	// IfNoneMatch is the entity tag of the rendering the audience holds:
	// when it is still current, the answer is NotModified and nothing
	// leaves.
	IfNoneMatch string

	// Preview asks what a partner audience would receive.
	Preview *Preview

	// Blind, with Render, renders for a partner audience what its
	// agreement grants it blind access to instead of what it may
	// receive (see [Gate.BlindGrant]): its Source reads the objects of
	// the blind collections, those policy.Gate.CheckBlind withholds
	// without their JSON; none leaves the node — only the rendering
	// does — and each serving
	// is audited as one blind record (audit.Blind), not as object
	// versions. Collections is ignored: the agreement names them.
	Blind bool
	// Peek, with Render, answers the current artifact's entity tag, item
	// count and expiry (Released.Artifact without its files): nothing
	// leaves and nothing is audited. The rendering is made, and cached,
	// when the cache holds none that is current.
	Peek bool
}

// Released is what the gate lets leave for one query.
type Released struct {
	// Page is the page a page query released.
	Page entente.Page
	// Artifact is the rendering a render query released (nil with
	// NotModified; without its files with Peek).
	Artifact *Artifact
	// NotModified is set when the audience's entity tag is current:
	// nothing leaves. ETag is then that tag.
	NotModified bool
	ETag        string
	// Preview is the answer of a preview query.
	Preview *PreviewPage
}

// Release releases what q selects to audience p: the one path by which
// stored objects leave the node, whatever the channel. It resolves the
// collections, checks that p may read them, and returns what p may
// receive. A partner (another organisation) receives only what its
// agreement allows, as the policy decides object by object and field by
// field, and every object version it receives is recorded in the audit
// log before anything is returned — a rendering served from the cache
// included. The node's own roles (admin, analyst, sensor) read without
// the policy and without an egress record.
//
// Errors for clients are *entente.Error: ENOTFOUND or EFORBIDDEN for a
// collection p may not read, EINVALID for a bad query.
func (g *Gate) Release(ctx context.Context, p entente.Principal, q Query) (*Released, error) {
	switch {
	case q.Preview != nil:
		pp, err := g.preview(ctx, p, *q.Preview)
		if err != nil {
			return nil, err
		}
		return &Released{Preview: pp}, nil
	case q.Render != nil:
		return g.render(ctx, p, q)
	default:
		page, err := g.releasePage(ctx, p, q)
		if err != nil {
			return nil, err
		}
		return &Released{Page: page}, nil
	}
}

// All yields every entry of one collection that q selects, following the
// pages of Release (so through the policy gate and its audit); an error
// ends the sequence.
func (g *Gate) All(ctx context.Context, p entente.Principal, q Query) iter.Seq2[entente.ObjectEntry, error] {
	return func(yield func(entente.ObjectEntry, error) bool) {
		for {
			r, err := g.Release(ctx, p, q)
			if err != nil {
				yield(entente.ObjectEntry{}, err)
				return
			}
			for _, e := range r.Page.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if !r.Page.More {
				return
			}
			q.Objects.Next = r.Page.Next
		}
	}
}

// Stats reports the renderings made (cache misses) and served from the
// cache, for metrics and tests.
func (g *Gate) Stats() (renders, hits int64) { return g.renders.Load(), g.hits.Load() }

// DefaultLimit is the page size of a read that asks for none (the store
// caps larger limits at store.MaxPageSize).
const DefaultLimit = 1000

// maxGateScan bounds the store pages a partner's read scans to fill one
// page when the gate withholds everything it finds, so that a partner
// does not receive a long run of empty pages.
const maxGateScan = 20

// readable resolves collection name and checks that p may read it.
func (g *Gate) readable(ctx context.Context, p entente.Principal, name string) (entente.Collection, error) {
	c, err := g.st.Collection(ctx, name)
	return c, mayRead(p, name, c, err)
}

// mayRead is readable's decision on the lookup of collection name (c, or
// the lookup's error err): nil when p may read it.
func mayRead(p entente.Principal, name string, c entente.Collection, err error) error {
	if err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			return entente.Errorf(entente.ENOTFOUND, "there is no collection %q", name)
		}
		return fmt.Errorf("look up collection %s: %w", name, err)
	}
	if !c.CanRead(p.Role) {
		return entente.Errorf(entente.EFORBIDDEN, "a key of role %q may not read collection %s", p.Role, c.ID)
	}
	return nil
}

// ownPage is releasePage for one of the node's own roles (p is no
// partner) from a store that reads the page with the lookup readable
// makes (store.CollectionPager): the same decision on the same
// collection row, one lookup instead of two. ok is false when the store
// cannot.
func (g *Gate) ownPage(ctx context.Context, p entente.Principal, q Query) (page entente.Page, ok bool, err error) {
	cp, ok := g.st.(store.CollectionPager)
	if !ok {
		return entente.Page{}, false, nil
	}
	oq := q.Objects
	oq.Collection = q.Collection
	if oq.Limit <= 0 {
		oq.Limit = DefaultLimit
	}
	var refused error
	c, page, err := cp.QueryCollection(ctx, oq, func(c entente.Collection, err error) error {
		refused = mayRead(p, q.Collection, c, err)
		return refused
	})
	switch {
	case err == nil:
		return page, true, nil
	case refused != nil:
		return entente.Page{}, true, refused
	}
	return entente.Page{}, true, queryError(c, err)
}

// channel is the audit channel of a page query.
func (q Query) channel() string {
	switch {
	case q.Channel != "":
		return q.Channel
	case q.Objects.MetadataOnly:
		return "manifest"
	}
	return "objects"
}

// releasePage is one page of one collection for p: through the policy
// gate and its audit for a partner, straight from the store for the
// node's own roles.
func (g *Gate) releasePage(ctx context.Context, p entente.Principal, q Query) (entente.Page, error) {
	if p.Role != entente.RolePartner {
		if page, ok, err := g.ownPage(ctx, p, q); ok {
			return page, err
		}
	}
	c, err := g.readable(ctx, p, q.Collection)
	if err != nil {
		return entente.Page{}, err
	}
	oq := q.Objects
	oq.Collection = c.ID
	if oq.Limit <= 0 {
		oq.Limit = DefaultLimit
	}
	if p.Role != entente.RolePartner {
		page, err := g.st.QueryObjects(ctx, oq)
		if err != nil {
			return entente.Page{}, queryError(c, err)
		}
		return page, nil
	}
	// A partner is another organisation: what it reads is egress, decided
	// by the policy gate (which needs the objects' JSON) and audited.
	t, err := g.partnerTerms(ctx, p)
	if err != nil {
		return entente.Page{}, err
	}
	metadataOnly := oq.MetadataOnly
	oq.MetadataOnly = false
	detail := q.channel() + " " + c.ID
	if oq.Limit >= pipelineMin {
		page, err := g.releaseInParts(ctx, t, c, oq, metadataOnly, detail)
		if err != nil || len(page.Entries) > 0 || !page.More {
			return page, err
		}
		oq.Next = page.Next // the gate withheld all of it: scan on as below
	}
	for scanned := 0; ; scanned++ {
		page, err := g.st.QueryObjects(ctx, oq)
		if err != nil {
			return entente.Page{}, queryError(c, err)
		}
		sink := audit.Release{Time: g.now(), Actor: p.KeyID, Partner: t.partner.ID, Detail: detail}
		if page, err = g.gatePage(ctx, t, c, page, metadataOnly, &sink, detail, true); err != nil {
			return entente.Page{}, err
		}
		// Skip pages the gate emptied, within bounds.
		if len(page.Entries) > 0 || !page.More || scanned >= maxGateScan {
			return page, nil
		}
		oq.Next = page.Next
	}
}

// queryError returns a store query's error as the client should see it:
// its own when it is the client's (a bad cursor, an unknown object),
// else wrapped with the collection.
func queryError(c entente.Collection, err error) error {
	if code := entente.ErrorCode(err); code == entente.EINVALID || code == entente.ENOTFOUND {
		return err
	}
	return fmt.Errorf("query collection %s: %w", c.ID, err)
}

// pipelineMin is the page size from which a partner's read is read,
// gated and audited in parts (releaseInParts).
const pipelineMin = 2000

// pipelinePart is the size of the parts releaseInParts reads a page in,
// and pipelineLast the size of the last part, smaller because its gating
// and audit follow the reading.
const (
	pipelinePart = 1250
	pipelineLast = 500
)

// pipelineCuts are where releaseInParts ends one audit record and begins
// the next: when no more than this many entries remain to be read. Each
// record is appended while the entries after it are read.
var pipelineCuts = []int{3000, pipelineLast}

// partBufs holds the entries releaseInParts reads parts into (capacity
// pipelinePart), for reuse: a part read afresh grew its entries from 128
// to 2,048 (a third of a megabyte for 1,250 entries), eight times for a
// 10,000-object read, beside the page the parts are copied to.
var partBufs = sync.Pool{New: func() any {
	b := make([]entente.ObjectEntry, 0, pipelinePart)
	return &b
}}

// releaseInParts is a partner's read of a large page (q.Limit ≥
// pipelineMin) in parts: each part read from the store is passed through
// the gate, and the versions it releases packed into an audit record, in
// the background while the next part is read. The page's versions are
// recorded in a few releases (see pipelineCuts), each appended in the
// background, after the one before, while the parts after it are read;
// only the last part's gating and record follow the reading. Nothing
// leaves before every record is durable: if any part or append fails, it
// returns nothing. The page returned is the parts' gated entries, with
// the last part's More and Next.
func (g *Gate) releaseInParts(ctx context.Context, t *terms, c entente.Collection, q entente.ObjectQuery, metadataOnly bool, detail string) (entente.Page, error) {
	header := audit.Release{Time: g.now(), Actor: t.p.KeyID, Partner: t.partner.ID, Detail: detail}
	type part struct {
		gated entente.Page
		err   error
		done  chan struct{} // closed when the part is gated and packed
	}
	// A record packs consecutive parts; it is appended once they are
	// packed and the record before it is appended.
	type record struct {
		packer audit.Packer
		parts  []*part
		err    error
		done   chan struct{} // closed when appended, or given up
	}
	appendRecord := func(r, prev *record) {
		defer close(r.done)
		for _, pt := range r.parts {
			if <-pt.done; pt.err != nil {
				return // the part's own error ends the request
			}
		}
		if prev != nil {
			<-prev.done
		}
		if r.packer.Len() > 0 {
			r.err = g.ps.AppendRelease(ctx, r.packer.Seal(header))
		}
	}
	var (
		parts   []*part
		records []*record // appended or being appended, in order
		last    *record   // the latest of records
		cur     = &record{done: make(chan struct{})}
		// out.Entries is filled by the parts in order (each after the
		// part before it); out.More and out.Next by the reading.
		out      = entente.Page{Entries: make([]entente.ObjectEntry, 0, q.Limit)}
		queryErr error
	)
	cuts := pipelineCuts
	remaining := q.Limit
	pq := q
	for remaining > 0 {
		cut := false
		for len(cuts) > 0 && remaining <= cuts[0] {
			cuts, cut = cuts[1:], true
		}
		if cut && len(cur.parts) > 0 {
			// What was read so far is recorded while the rest is.
			go appendRecord(cur, last)
			records, last = append(records, cur), cur
			cur = &record{done: make(chan struct{})}
		}
		pq.Limit = min(pipelinePart, remaining-pipelineLast)
		if remaining <= pipelineLast {
			pq.Limit = remaining
		}
		// The part is read into entries reused from read to read when
		// the store can (store.PageReader): they are free again once the
		// part's released entries are copied to the page.
		var (
			page entente.Page
			err  error
			bufp *[]entente.ObjectEntry
		)
		if pr, ok := g.st.(store.PageReader); ok {
			bufp = partBufs.Get().(*[]entente.ObjectEntry)
			page, err = pr.QueryObjectsInto(ctx, pq, *bufp)
		} else {
			page, err = g.st.QueryObjects(ctx, pq)
		}
		if err != nil {
			queryErr = queryError(c, err)
			break
		}
		read := len(page.Entries)
		pt := &part{done: make(chan struct{})}
		var prev chan struct{}
		if len(parts) > 0 {
			prev = parts[len(parts)-1].done
		}
		parts = append(parts, pt)
		rec := cur
		rec.parts = append(rec.parts, pt)
		go func() {
			defer close(pt.done)
			sink := header
			if pt.gated, pt.err = g.gatePage(ctx, t, c, page, metadataOnly, &sink, detail, false); pt.err != nil {
				return
			}
			// The parts are packed in order, so the records list the
			// versions in the order they are sent, and their entries are
			// added to the page in that order too, while the parts after
			// them are read, rather than after the last.
			if prev != nil {
				<-prev
			}
			if pt.err = rec.packer.Add(header, sink.Versions); pt.err != nil {
				return
			}
			out.Entries = append(out.Entries, pt.gated.Entries...)
			pt.gated.Entries = nil
			if bufp != nil {
				// Nothing refers to the entries read any more: cleared,
				// so that they keep no object alive, and reused.
				clear((*bufp)[:min(read, cap(*bufp))])
				partBufs.Put(bufp)
			}
		}()
		out.More, out.Next = page.More, page.Next
		remaining -= len(page.Entries)
		if !page.More || len(page.Entries) == 0 {
			break
		}
		pq.Next = page.Next
	}
	// The last record is appended now; every part and record ends
	// before anything returns.
	appendRecord(cur, last)
	records = append(records, cur)
	var errs []error
	for _, pt := range parts {
		<-pt.done
		if pt.err != nil {
			errs = append(errs, pt.err)
		}
	}
	for _, r := range records {
		<-r.done
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if len(errs) > 0 {
		// Nothing leaves without its audit record.
		return entente.Page{}, fmt.Errorf("policy gate: %w", errors.Join(errs...))
	}
	if queryErr != nil {
		return entente.Page{}, queryErr
	}
	return out, nil
}

// versionKey and provenance are the store's names for where an object
// version came from.
type (
	versionKey = store.VersionKey
	provenance = store.Provenance
)

// keyOf returns the provenance key of an entry.
func keyOf(e entente.ObjectEntry) versionKey {
	v, _ := store.UnixNano(e.Version)
	return versionKey{ID: e.ID, Version: v}
}
