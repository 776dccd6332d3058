package egress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/retraction"
)

// withheldSet is what the node no longer acts on although it holds it:
// objects a retraction it honours names (internal/retraction), and
// everything a quarantined partner contributed. Such objects leave every
// rendered artifact (exports, snapshots) and every release to partners;
// the node's own reads (analysts, search) still show them, with the
// retraction. It is loaded from the store, and reloaded whenever the
// terms version changes (a retraction and a quarantine change it), so
// every replica sharing the store agrees.
type withheldSet struct {
	version string
	// fingerprint changes exactly when what is withheld does.
	fingerprint string
	// objects maps a withheld object's id to why.
	objects map[string]string
	// origins maps a quarantined partner to why.
	origins map[string]string
}

// empty reports whether nothing is withheld.
func (w *withheldSet) empty() bool { return w == nil || len(w.objects) == 0 && len(w.origins) == 0 }

// withholds says why the entry of object id whose origin is origin is
// withheld ("" when it is not).
func (w *withheldSet) withholds(id, origin string) string {
	if w == nil {
		return ""
	}
	if why, ok := w.objects[id]; ok {
		return why
	}
	if origin != "" {
		if why, ok := w.origins[origin]; ok {
			return why
		}
	}
	return ""
}

// withheld returns the withheld set under the terms in force, loading it
// when they changed since it was last loaded.
func (g *Gate) withheld(ctx context.Context) (*withheldSet, error) {
	if g.ps == nil {
		return nil, nil
	}
	v, err := g.termsVersion(ctx)
	if err != nil {
		return nil, err
	}
	return g.withheldAt(ctx, v)
}

// withheldAt is withheld under the terms of version v, read before.
func (g *Gate) withheldAt(ctx context.Context, v string) (*withheldSet, error) {
	if g.ps == nil {
		return nil, nil
	}
	g.whMu.Lock()
	defer g.whMu.Unlock()
	if g.wh != nil && g.wh.version == v {
		return g.wh, nil
	}
	w, err := g.loadWithheld(ctx)
	if err != nil {
		return nil, err
	}
	w.version = v
	w.fingerprint = w.fingerprintOf()
	g.wh = w
	return w, nil
}

// Withheld returns a fingerprint of what the node no longer acts on
// (retracted objects, quarantined partners): it changes exactly when
// that does, so that indexes built from earlier releases can be read
// again.
func (g *Gate) Withheld(ctx context.Context) (string, error) {
	w, err := g.withheld(ctx)
	if err != nil || w == nil {
		return "", err
	}
	return w.fingerprint, nil
}

// fingerprintOf hashes the withheld ids and origins.
func (w *withheldSet) fingerprintOf() string {
	if w.empty() {
		return ""
	}
	h := sha256.New()
	for _, m := range []map[string]string{w.objects, w.origins} {
		keys := slices.Sorted(maps.Keys(m))
		for _, k := range keys {
			h.Write([]byte(k))
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// loadWithheld reads the quarantined partners and the retractions the
// node honours.
func (g *Gate) loadWithheld(ctx context.Context) (*withheldSet, error) {
	w := &withheldSet{objects: map[string]string{}, origins: map[string]string{}}
	parties, err := g.ps.Parties(ctx)
	if err != nil {
		return nil, fmt.Errorf("read quarantined partners: %w", err)
	}
	for _, p := range parties {
		if p.Trust.Quarantined {
			w.origins[p.ID] = "partner " + p.ID + " is quarantined"
			if p.Trust.Reason != "" {
				w.origins[p.ID] += ": " + p.Trust.Reason
			}
		}
	}
	self, err := g.selfParty(ctx)
	if err != nil {
		return nil, err
	}
	colls, err := g.st.Collections(ctx)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	rs, err := Retractions(ctx, g.st, g.ps, colls)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		for _, id := range r.Effect(self.ID).Withhold {
			if _, ok := w.objects[id]; !ok {
				w.objects[id] = "retracted by " + cmpOr(r.Origin, "this node") + " (" + r.ID + ")"
			}
		}
	}
	return w, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Held is a stored retraction with where it and the objects it names
// came from.
type Held struct {
	retraction.Retraction
	// Collection holds the opinion.
	Collection string
	// Origin is the organisation the opinion came from ("" for the
	// node's own).
	Origin string
	// RefOrigins maps each retracted object the node holds to its origin
	// ("" for the node's own).
	RefOrigins map[string]string
}

// Effect is what honouring the retraction does on the node whose identity
// is self (see retraction.Decide).
func (h Held) Effect(self string) retraction.Effect {
	return retraction.Decide(h.Retraction, h.Origin, self, func(id string) string { return h.RefOrigins[id] })
}

// objectReader is what Retractions reads.
type objectReader interface {
	QueryObjects(ctx context.Context, q entente.ObjectQuery) (entente.Page, error)
}

// provenanceReader reads provenance.
type provenanceReader interface {
	Provenance(ctx context.Context, collection string, ids []string) (map[versionKey]provenance, error)
}

// Retractions reads every retraction stored in colls, with the
// provenance of each and of the objects it names.
func Retractions(ctx context.Context, st objectReader, ps provenanceReader, colls []entente.Collection) ([]Held, error) {
	var out []Held
	for _, c := range colls {
		q := entente.ObjectQuery{Collection: c.ID, Types: []string{"opinion"}, Limit: 1000}
		for {
			page, err := st.QueryObjects(ctx, q)
			if err != nil {
				return nil, fmt.Errorf("read the opinions of collection %s: %w", c.ID, err)
			}
			held, err := HeldIn(ctx, ps, c.ID, page.Entries)
			if err != nil {
				return nil, err
			}
			out = append(out, held...)
			if !page.More {
				break
			}
			q.Next = page.Next
		}
	}
	return out, nil
}

// HeldIn reads the retractions among entries of collection, with the
// provenance of each and of the objects they name (looked up in the same
// collection: a retraction travels with what it retracts).
func HeldIn(ctx context.Context, ps provenanceReader, collection string, entries []entente.ObjectEntry) ([]Held, error) {
	var out []Held
	var ids, refs []string
	for _, e := range entries {
		if e.Type != "opinion" && e.Type != "" {
			continue
		}
		r, ok := retraction.Parse(e.Raw)
		if !ok {
			continue
		}
		out = append(out, Held{Retraction: r, Collection: collection})
		ids = append(ids, r.ID)
		refs = append(refs, r.Refs...)
	}
	if len(out) == 0 || ps == nil {
		return out, nil
	}
	prov, err := ps.Provenance(ctx, collection, append(ids, refs...))
	if err != nil {
		return nil, fmt.Errorf("read the provenance of retractions in collection %s: %w", collection, err)
	}
	origin := map[string]string{}
	for k, p := range prov {
		if origin[k.ID] == "" {
			origin[k.ID] = p.Origin
		}
	}
	for i := range out {
		out[i].Origin = origin[out[i].ID]
		out[i].RefOrigins = map[string]string{}
		for _, id := range out[i].Refs {
			out[i].RefOrigins[id] = origin[id]
		}
	}
	return out, nil
}

// retractionsFor rewrites the retractions among a page's entries for a
// partner: each names only the objects the partner may receive from the
// collection under its terms (what it received), and one that names none
// is dropped. It returns the indexes of the entries that are retractions
// still to release (their Raw rewritten); other entries are untouched.
// version is the terms in force (the withheld set's), under which what
// the retractions name is read once for every partner (retractedCache).
func (g *Gate) retractionsFor(ctx context.Context, t *terms, c entente.Collection, entries []entente.ObjectEntry, ok []bool, version string) (map[int]bool, error) {
	var idx []int
	var refs []string
	parsed := map[int]retraction.Retraction{}
	for i, e := range entries {
		if !ok[i] || e.Type != "opinion" || !retraction.IsRetraction(e.Raw) {
			continue
		}
		// A revoked retraction follows the retraction it revokes.
		r, _, isR := retraction.ParseAny(e.Raw)
		if !isR {
			continue
		}
		idx = append(idx, i)
		parsed[i] = r
		refs = append(refs, r.Refs...)
	}
	if len(idx) == 0 {
		return nil, nil
	}
	slices.Sort(refs)
	refs = slices.Compact(refs)
	allowed := map[string]bool{}
	if t.agreement != nil {
		metas, err := g.retractedMetas(ctx, c, refs, version)
		if err != nil {
			return nil, err
		}
		pg := &policy.Gate{Self: t.self}
		now := g.now()
		for _, m := range metas {
			if pg.Check(t.agreement, t.partner, m, now).Allow {
				allowed[m.ID] = true
			}
		}
	}
	out := map[int]bool{}
	for _, i := range idx {
		r := parsed[i]
		keep := slices.DeleteFunc(slices.Clone(r.Refs), func(id string) bool { return !allowed[id] })
		if len(keep) == 0 {
			out[i] = false
			continue
		}
		if len(keep) < len(r.Refs) {
			raw, err := setObjectRefs(entries[i].Raw, keep)
			if err != nil {
				out[i] = false
				continue
			}
			entries[i].Raw = raw
		}
		out[i] = true
	}
	return out, nil
}

// retractedCache keeps the policy metadata of the objects that the
// retractions of a page name (by collection and ids), so that a
// retraction pushed to every partner has them read and classified once,
// not once per partner (a quarantine's retraction names every object the
// partner contributed, and a national CERT pushes it to every other
// CERT). An entry holds while the terms in force are those it was read
// under (TermsChanged also drops every entry: a deletion, a collection's
// default marking, partners, agreements), the collection has no newer
// entry (store.Store.LatestAdded: no new version of what it names), and
// only when every marking definition involved was known.
type retractedCache struct {
	mu sync.Mutex
	m  map[string]*retractedMetas
	// reads counts the metadata read from the store, hits those served
	// from the cache (for tests).
	reads, hits int
}

// retractedMetas is one entry of retractedCache.
type retractedMetas struct {
	terms  string
	latest time.Time
	metas  []policy.ObjectMeta
}

// maxRetractedCache bounds the entries of retractedCache: past it, it
// starts again empty.
const maxRetractedCache = 64

func (rc *retractedCache) forget() {
	rc.mu.Lock()
	rc.m = nil
	rc.mu.Unlock()
}

// retractedMetas returns the policy metadata of the objects refs (sorted,
// without duplicates) of collection c, read under the terms in force
// (version terms; "" reads them without the cache).
func (g *Gate) retractedMetas(ctx context.Context, c entente.Collection, refs []string, terms string) ([]policy.ObjectMeta, error) {
	var key string
	var latest time.Time
	rc := &g.retracted
	if terms != "" {
		var err error
		// Read before the objects: an entry added meanwhile makes the
		// next lookup miss, never a stale hit.
		if latest, err = g.st.LatestAdded(ctx, c.ID); err != nil {
			return nil, fmt.Errorf("policy gate: %w", err)
		}
		key = c.ID + "\x00" + strings.Join(refs, "\x00")
		rc.mu.Lock()
		if e := rc.m[key]; e != nil && e.terms == terms && e.latest.Equal(latest) {
			rc.hits++
			rc.mu.Unlock()
			return e.metas, nil
		}
		rc.mu.Unlock()
	}
	page, err := g.st.QueryObjects(ctx, entente.ObjectQuery{Collection: c.ID, IDs: refs, Limit: len(refs) + 1})
	if err != nil {
		return nil, fmt.Errorf("policy gate: read the objects retractions name: %w", err)
	}
	metas, _, known, err := g.metasOf(ctx, c, page)
	if err != nil {
		return nil, fmt.Errorf("policy gate: %w", err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.reads++
	if key != "" && known {
		if rc.m == nil || len(rc.m) >= maxRetractedCache {
			rc.m = map[string]*retractedMetas{}
		}
		rc.m[key] = &retractedMetas{terms: terms, latest: latest, metas: metas}
	}
	return metas, nil
}

// setObjectRefs returns raw with its object_refs replaced.
func setObjectRefs(raw json.RawMessage, refs []string) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	b, err := json.Marshal(refs)
	if err != nil {
		return nil, err
	}
	m["object_refs"] = b
	return json.Marshal(m)
}

// dropWithheld removes from a page of collection c what the node no
// longer acts on, for the node's own renderings (exports, snapshots).
func (g *Gate) dropWithheld(ctx context.Context, c entente.Collection, page entente.Page) (entente.Page, error) {
	wh, err := g.withheld(ctx)
	if err != nil || wh.empty() {
		return page, err
	}
	var prov map[versionKey]provenance
	if len(wh.origins) > 0 {
		ids := make([]string, len(page.Entries))
		for i, e := range page.Entries {
			ids[i] = e.ID
		}
		if prov, err = g.ps.Provenance(ctx, c.ID, ids); err != nil {
			return page, fmt.Errorf("policy gate: %w", err)
		}
	}
	kept := page.Entries[:0:0]
	for _, e := range page.Entries {
		origin := ""
		if prov != nil {
			origin = prov[keyOf(e)].Origin
		}
		if wh.withholds(e.ID, origin) == "" || e.Type == "opinion" {
			kept = append(kept, e)
		}
	}
	page.Entries = kept
	return page, nil
}
