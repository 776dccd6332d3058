package egress

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// gatePage passes one page of a collection's entries through the policy
// gate for a partner audience: it drops what the agreement withholds,
// removes what granular markings keep from the partner, redacts what it
// releases (adding the objects redaction introduces) and records every
// object version released in sink, under detail. The entries must carry
// their JSON; metadataOnly clears it after the decision.
//
// With flush set, sink is appended to the audit log before the page is
// returned (nothing leaves without its record); otherwise the caller
// appends it before anything leaves.
func (g *Gate) gatePage(ctx context.Context, t *terms, c entente.Collection, page entente.Page, metadataOnly bool, sink *audit.Release, detail string, flush bool) (entente.Page, error) {
	out := page
	if len(page.Entries) == 0 {
		return out, nil
	}
	// What is released is written over what was read, in place: entry i
	// is written at an index ≤ i, after it is read, unless redaction
	// adds objects, and then the entries move to a new array first.
	out.Entries = page.Entries[:0]
	// Every page is gated under the terms in force when it is gated:
	// one read of their version, and the request's terms read again
	// (from the cache, termscache.go) if they changed since it started,
	// so a retraction, a quarantine or a narrowed or deleted agreement
	// holds from the next page of a request already running (a push, a
	// pipelined read, an export). t is shared by the parts of a
	// pipelined read: the fresh terms are this page's own.
	v, err := g.termsVersion(ctx)
	if err != nil {
		return entente.Page{}, fmt.Errorf("policy gate: %w", err)
	}
	if v != t.version {
		if t, err = g.partnerTerms(ctx, t.p); err != nil {
			return entente.Page{}, err
		}
	}
	partner, agreement := t.partner, t.agreement
	metas := make([]gateMeta, len(page.Entries))
	okMeta := make([]bool, len(page.Entries))
	ids := make([]string, 0, len(page.Entries))
	refs := map[string]bool{}
	var victims []string
	redactVictims := agreement != nil && agreement.Redact.SightingVictimsToCountry
	scanAll(page.Entries, metas, okMeta, func(e *entente.ObjectEntry) bool { return redactVictims && e.Type == "sighting" }, func(o *stix.Object) {
		if !redactVictims || o.Type != "sighting" {
			return
		}
		if sg, err := o.Sighting(); err == nil {
			victims = append(victims, sg.WhereSightedRefs...)
		}
	})
	// Granular markings are read in full, for the few objects that carry
	// them.
	var granular map[int][]stix.GranularMarking
	for i, e := range page.Entries {
		if !okMeta[i] {
			// Stored objects were valid when added; one that no longer
			// decodes is withheld rather than sent unexamined.
			g.log.ErrorContext(ctx, "stored object does not decode; withheld", "collection", c.ID, "object", e.ID)
			continue
		}
		ids = append(ids, e.ID)
		for _, r := range metas[i].markingRefs {
			if _, tlp := stix.TLPFromMarking(r); !tlp {
				refs[r] = true
			}
		}
		if metas[i].granular {
			gms, err := stix.GranularMarkings(e.Raw)
			if err != nil {
				g.log.ErrorContext(ctx, "stored object's granular markings do not decode; withheld", "collection", c.ID, "object", e.ID, "err", err)
				okMeta[i] = false
				continue
			}
			if granular == nil {
				granular = map[int][]stix.GranularMarking{}
			}
			granular[i] = gms
			for _, gm := range gms {
				if _, tlp := stix.TLPFromMarking(gm.MarkingRef); !tlp && gm.MarkingRef != "" {
					refs[gm.MarkingRef] = true
				}
			}
		}
	}
	marks := policy.Markings{}
	if len(refs) > 0 {
		if marks, err = g.markings(ctx, refs); err != nil {
			return entente.Page{}, fmt.Errorf("policy gate: %w", err)
		}
	}
	// ids repeat only when several versions of an object are read: the
	// store's lookups take duplicates, and sorting 10,000 ids to remove
	// them would cost more than the lookup of a collection without
	// provenance.
	prov, err := g.ps.Provenance(ctx, c.ID, ids)
	if err != nil {
		return entente.Page{}, fmt.Errorf("policy gate: %w", err)
	}
	// What the node no longer acts on (retracted, from a quarantined
	// partner) is not passed on; retractions follow what the partner
	// received, naming only that.
	// Under the version of the terms this page is gated under (above):
	// one read of the version per page, not three.
	wh, err := g.withheldAt(ctx, t.version)
	if err != nil {
		return entente.Page{}, fmt.Errorf("policy gate: %w", err)
	}
	version := ""
	if wh != nil {
		version = wh.version
	}
	rets, err := g.retractionsFor(ctx, t, c, page.Entries, okMeta, version)
	if err != nil {
		return entente.Page{}, err
	}
	pg := &policy.Gate{Self: t.self}
	if len(victims) > 0 {
		if pg.CountryOf, err = g.directory(ctx, t.version, t.self, victims); err != nil {
			return entente.Page{}, fmt.Errorf("policy gate: %w", err)
		}
	}
	now := g.now()
	def := defaultTLP(c)
	rec := audit.Release{Time: now, Actor: t.p.KeyID, Partner: partner.ID, Detail: detail,
		Versions: make([]audit.ReleasedVersion, 0, len(page.Entries))}
	var related map[string]bool
	for i, e := range page.Entries {
		if !okMeta[i] {
			continue
		}
		o := &metas[i]
		meta := objectMeta(c, e, o, marks, def, prov)
		if release, isRet := rets[i]; isRet {
			if !release {
				continue
			}
			meta.Retraction = true
		} else if !wh.empty() && wh.withholds(e.ID, meta.Origin) != "" {
			continue
		}
		if gms := granular[i]; len(gms) > 0 {
			meta.Granular = marks.ClassifyGranular(gms)
		}
		rel, d, err := pg.Release(agreement, partner, meta, e.Raw, now)
		if err != nil {
			g.log.ErrorContext(ctx, "policy gate could not redact; withheld", "collection", c.ID, "object", e.ID, "err", err)
			continue
		}
		if !d.Allow {
			continue
		}
		e.Raw = rel.Object
		if metadataOnly {
			e.Raw = nil
		}
		out.Entries = append(out.Entries, e)
		rec.Versions = append(rec.Versions, audit.ReleasedVersion{ObjectID: e.ID, Version: e.Version, Rule: d.Rule})
		for _, r := range rel.Related {
			ro, err := stix.Decode(r)
			if err != nil || related[ro.ID] {
				continue
			}
			if related == nil {
				related = map[string]bool{}
			}
			related[ro.ID] = true
			re := entente.ObjectEntry{ID: ro.ID, Type: ro.Type, SpecVersion: ro.SpecVersion, Version: ro.Version(), DateAdded: e.DateAdded, Raw: r}
			if metadataOnly {
				re.Raw = nil
			}
			if len(out.Entries) > i && &out.Entries[:1][0] == &page.Entries[0] {
				// It would overwrite an entry not read yet.
				out.Entries = append(make([]entente.ObjectEntry, 0, len(page.Entries)+len(rel.Related)), out.Entries...)
			}
			out.Entries = append(out.Entries, re)
			rec.Versions = append(rec.Versions, audit.ReleasedVersion{ObjectID: re.ID, Version: re.Version, Rule: d.Rule,
				Detail: detail + " redaction of " + e.ID})
		}
	}
	sink.Versions = append(sink.Versions, rec.Versions...)
	if flush && len(sink.Versions) > 0 {
		// Nothing leaves without its audit record: one durable record of
		// the whole page, indexed by object, before the page is returned.
		if err := g.ps.AppendRelease(ctx, *sink); err != nil {
			return entente.Page{}, fmt.Errorf("policy gate: %w", err)
		}
	}
	return out, nil
}

// objectMeta is what the policy needs to know of entry e of collection c:
// its type, TLP and residency (from its markings, else the collection's
// default), creator and provenance.
func objectMeta(c entente.Collection, e entente.ObjectEntry, o *gateMeta, marks policy.Markings, def stix.TLP, prov map[versionKey]provenance) policy.ObjectMeta {
	tlp, residency := marks.Classify(o.markingRefs, def)
	meta := policy.ObjectMeta{ID: e.ID, Type: e.Type, Collection: c.ID, TLP: tlp, Residency: residency, CreatedByRef: o.createdByRef}
	if len(prov) > 0 {
		if pr, ok := prov[keyOf(e)]; ok {
			meta.Origin, meta.ReceivedFromPeer = pr.Origin, pr.Peer
		}
	}
	return meta
}

// scanAll reads the gate's fields of each entry into metas (ok[i] false
// when the object does not decode), on every core for large pages.
// Entries that full asks for, and those the scan cannot read, are
// decoded in full; each fully decoded object is passed to decoded (under
// a lock).
func scanAll(entries []entente.ObjectEntry, metas []gateMeta, ok []bool, full func(*entente.ObjectEntry) bool, decoded func(*stix.Object)) {
	var mu sync.Mutex
	scan := func(lo, hi int) {
		var c refCache
		for i := lo; i < hi; i++ {
			e := &entries[i]
			if !full(e) {
				if metas[i], ok[i] = c.scan(e.Raw); ok[i] {
					continue
				}
			}
			o, err := stix.Decode(e.Raw)
			if err != nil {
				continue
			}
			metas[i], ok[i] = gateMeta{markingRefs: o.MarkingRefs, createdByRef: o.CreatedByRef, granular: hasGranular(e.Raw)}, true
			mu.Lock()
			decoded(o)
			mu.Unlock()
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if len(entries) < 2000 || workers < 2 {
		scan(0, len(entries))
		return
	}
	var wg sync.WaitGroup
	step := (len(entries) + workers - 1) / workers
	for lo := 0; lo < len(entries); lo += step {
		wg.Go(func() { scan(lo, min(lo+step, len(entries))) })
	}
	wg.Wait()
}

// hasGranular reports whether a decoded object may carry granular
// markings: its JSON names the property, or holds an escape that could
// spell the name; the gate then reads them in full.
func hasGranular(raw []byte) bool {
	return bytes.Contains(raw, []byte("granular_markings")) || bytes.IndexByte(raw, '\\') >= 0
}
