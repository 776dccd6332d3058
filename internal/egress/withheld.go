package egress

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

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
	// sum is the digest the fingerprint shows.
	sum setSum
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

// Withdrawal names what the node stops acting on: objects a retraction
// it honours withholds, and partners it quarantines, each with why.
type Withdrawal struct {
	// Objects maps a withheld object's id to why.
	Objects map[string]string
	// Origins maps a quarantined partner to why.
	Origins map[string]string
}

// Withhold records that the node stops acting on what w names (a
// retraction it honours, stored already; a partner whose quarantine is
// recorded already), without re-reading everything withheld: the cached
// withheld set gains w's objects and origins, and the terms version is
// bumped so that every cached artifact (export, snapshot, blind set) is
// rendered again, on this replica and every other one sharing the store
// (which reload their withheld set from the store). The node's other
// caches (markings, its own party) are kept: nothing they hold changed.
//
// It keeps the gate's promise: from the moment it returns, no read,
// release or cached artifact on any path releases what w names. Only
// additions go this way; what acts on objects again (a retraction
// revoked, a quarantine lifted) is reported with [Gate.TermsChanged],
// which reloads the set.
func (g *Gate) Withhold(ctx context.Context, why string, w Withdrawal) error {
	if len(w.Objects) == 0 && len(w.Origins) == 0 {
		return nil
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("new terms version: %w", err)
	}
	next := hex.EncodeToString(b[:])
	g.whMu.Lock()
	defer g.whMu.Unlock()
	base := g.wh
	if base != nil {
		// Built on a set that is not the store's latest, the increment
		// would miss a change another replica made: reload instead.
		v, err := g.termsVersion(ctx)
		if err != nil || v != base.version {
			base = nil
		}
	}
	g.wh = nil
	g.arts.dropAll()
	if err := g.st.PutSetting(context.WithoutCancel(ctx), settingTerms, []byte(next)); err != nil {
		return fmt.Errorf("record the withdrawal (%s): %w", why, err)
	}
	if base != nil {
		if v, err := g.termsVersion(ctx); err == nil && v == next {
			g.wh = base.with(w, next)
		}
	}
	g.log.DebugContext(ctx, "withheld incrementally; caches of released content dropped", "why", why,
		"objects", len(w.Objects), "origins", len(w.Origins), "incremental", g.wh != nil)
	return nil
}

// with returns a copy of w with what d names added (what w withholds
// already keeps its reason), under terms version.
func (w *withheldSet) with(d Withdrawal, version string) *withheldSet {
	out := &withheldSet{version: version, objects: maps.Clone(w.objects), origins: maps.Clone(w.origins), sum: w.sum}
	if out.objects == nil {
		out.objects = map[string]string{}
	}
	if out.origins == nil {
		out.origins = map[string]string{}
	}
	for kind, m := range []map[string]string{d.Objects, d.Origins} {
		dst := out.objects
		if kind == 1 {
			dst = out.origins
		}
		for k, why := range m {
			if _, ok := dst[k]; ok {
				continue
			}
			dst[k] = why
			out.sum.add(kind, k)
		}
	}
	out.fingerprint = out.sum.String()
	return out
}

// setSum is an order-independent digest of a set of keys (the XOR of
// each key's SHA-256), so that adding a key updates it without reading
// the others.
type setSum [sha256.Size]byte

// add adds key k of kind (0 object, 1 origin) to the digest.
func (s *setSum) add(kind int, k string) {
	h := sha256.New()
	h.Write([]byte{byte(kind)})
	h.Write([]byte(k))
	var d [sha256.Size]byte
	h.Sum(d[:0])
	for i := range s {
		s[i] ^= d[i]
	}
}

// String is the digest in hex ("" for the empty set).
func (s setSum) String() string {
	if s == (setSum{}) {
		return ""
	}
	return hex.EncodeToString(s[:])
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

// fingerprintOf digests the withheld ids and origins (see setSum) and
// records the digest.
func (w *withheldSet) fingerprintOf() string {
	w.sum = setSum{}
	for k := range w.objects {
		w.sum.add(0, k)
	}
	for k := range w.origins {
		w.sum.add(1, k)
	}
	return w.sum.String()
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
	w.objects = WithdrawalOf(rs, self.ID).Objects
	return w, nil
}

// WithdrawalOf is what honouring the retractions held does on the node
// whose identity is self: the objects they withhold, each with the
// first retraction that withholds it.
func WithdrawalOf(held []Held, self string) Withdrawal {
	w := Withdrawal{Objects: map[string]string{}}
	for _, r := range held {
		for _, id := range r.Effect(self).Withhold {
			if _, ok := w.Objects[id]; !ok {
				w.Objects[id] = "retracted by " + cmpOr(r.Origin, "this node") + " (" + r.ID + ")"
			}
		}
	}
	return w
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
func (g *Gate) retractionsFor(ctx context.Context, t *terms, c entente.Collection, entries []entente.ObjectEntry, ok []bool) (map[int]bool, error) {
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
		page, err := g.st.QueryObjects(ctx, entente.ObjectQuery{Collection: c.ID, IDs: refs, Limit: len(refs) + 1})
		if err != nil {
			return nil, fmt.Errorf("policy gate: read the objects retractions name: %w", err)
		}
		metas, _, err := g.metas(ctx, c, page)
		if err != nil {
			return nil, fmt.Errorf("policy gate: %w", err)
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
