package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// policyState is the service's cache of what the policy gate needs on
// every read: the node's own party and the residency markings it knows.
type policyState struct {
	mu   sync.Mutex
	self *policy.Party
	// residency maps the id of each residency marking definition the node
	// holds to its jurisdictions; plain lists marking definitions known
	// not to be residency markings.
	residency map[string][]string
	plain     map[string]bool
	// syncing holds the ids of the peers whose sync or push is running;
	// pushAgain those for which one more push was asked meanwhile.
	syncing   map[string]bool
	pushAgain map[string]bool
}

// maxGateScan bounds the store pages a partner's read scans to fill one
// page when the gate withholds everything it finds, so that a partner
// does not receive a long run of empty pages.
const maxGateScan = 20

// policyStore returns the store's policy storage. Every backend has it;
// a store without it cannot release anything to partners.
func (s *Service) policyStore() (store.PolicyStore, error) {
	ps, ok := s.st.(store.PolicyStore)
	if !ok {
		return nil, fmt.Errorf("the store %T keeps no sharing policy", s.st)
	}
	return ps, nil
}

// self returns the node's own organisation as a policy party.
func (s *Service) self(ctx context.Context) (policy.Party, error) {
	s.pol.mu.Lock()
	if p := s.pol.self; p != nil {
		s.pol.mu.Unlock()
		return *p, nil
	}
	s.pol.mu.Unlock()
	id, err := s.Identity(ctx)
	if err != nil {
		if entente.ErrorCode(err) != entente.ENOTFOUND || s.cfg.Org == "" {
			return policy.Party{}, err
		}
		// A node run without init (tests): its organisation has no country.
		id = Identity{ID: s.cfg.Org}
	}
	p := policy.Party{ID: id.ID, Name: id.Name, Country: id.Country, Sector: id.Sector}
	s.pol.mu.Lock()
	s.pol.self = &p
	s.pol.mu.Unlock()
	return p, nil
}

// partnerTerms returns the party a partner principal stands for and its
// agreement (nil when it has none). A partner the node has not described
// is known by its identity id only: with no country, it receives nothing
// that carries a residency marking.
func (s *Service) partnerTerms(ctx context.Context, ps store.PolicyStore, org string) (policy.Party, *policy.Agreement, error) {
	party, err := ps.Party(ctx, org)
	if err != nil {
		if entente.ErrorCode(err) != entente.ENOTFOUND {
			return party, nil, fmt.Errorf("read partner %s: %w", org, err)
		}
		party = policy.Party{ID: org}
	}
	a, err := ps.Agreement(ctx, org)
	if err != nil {
		if entente.ErrorCode(err) != entente.ENOTFOUND {
			return party, nil, fmt.Errorf("read agreement with %s: %w", org, err)
		}
		return party, nil, nil
	}
	// The party on record is authoritative for the partner's country.
	if party.Country != "" {
		a.Partner = party
	}
	return party, &a, nil
}

// defaultTLP is the TLP of a collection's objects that carry none: its
// default marking, or AMBER when it has no TLP default (never less
// restrictive than the collection's owners could have meant).
func defaultTLP(c entente.Collection) stix.TLP {
	if t, ok := stix.TLPFromMarking(c.DefaultMarking); ok {
		return t
	}
	return stix.TLPAmber
}

// markings returns the residency markings among refs, looking up the
// marking definitions the node has not seen yet in its collections.
// Definitions it does not hold are looked up again next time, so that an
// object whose residency marking arrives later is then restricted.
func (s *Service) markings(ctx context.Context, refs map[string]bool) (policy.Markings, error) {
	s.pol.mu.Lock()
	var unknown []string
	for r := range refs {
		if _, ok := s.pol.residency[r]; !ok && !s.pol.plain[r] {
			unknown = append(unknown, r)
		}
	}
	s.pol.mu.Unlock()
	if len(unknown) > 0 {
		found := map[string][]string{}
		plain := map[string]bool{}
		colls, err := s.st.Collections(ctx)
		if err != nil {
			return policy.Markings{}, fmt.Errorf("resolve markings: %w", err)
		}
		for _, c := range colls {
			page, err := s.st.QueryObjects(ctx, entente.ObjectQuery{Collection: c.ID, IDs: unknown, Types: []string{"marking-definition"}, Limit: len(unknown)})
			if err != nil {
				return policy.Markings{}, fmt.Errorf("resolve markings in collection %s: %w", c.ID, err)
			}
			for _, e := range page.Entries {
				id, js, ok, err := policy.ParseResidencyMarking(e.Raw)
				switch {
				case err != nil:
					// A malformed residency marking restricts to nowhere.
					found[e.ID] = []string{}
					s.log.WarnContext(ctx, "invalid residency marking", "marking", e.ID, "err", err)
				case ok:
					found[id] = js
				default:
					plain[e.ID] = true
				}
			}
		}
		s.pol.mu.Lock()
		if s.pol.residency == nil {
			s.pol.residency, s.pol.plain = map[string][]string{}, map[string]bool{}
		}
		for k, v := range found {
			s.pol.residency[k] = v
		}
		for k := range plain {
			s.pol.plain[k] = true
		}
		s.pol.mu.Unlock()
	}
	m := policy.Markings{Residency: map[string][]string{}}
	s.pol.mu.Lock()
	for r := range refs {
		if js, ok := s.pol.residency[r]; ok {
			m.Residency[r] = js
		}
	}
	s.pol.mu.Unlock()
	return m, nil
}

// directory returns the countries of the organisations and locations that
// sightings' victims refer to: the node's own, the partners', and the
// location objects the node holds.
func (s *Service) directory(ctx context.Context, ps store.PolicyStore, self policy.Party, refs []string) (func(string) (string, bool), error) {
	countries := map[string]string{}
	if self.Country != "" {
		countries[self.ID] = self.Country
	}
	parties, err := ps.Parties(ctx)
	if err != nil {
		return nil, fmt.Errorf("read partners: %w", err)
	}
	for _, p := range parties {
		countries[p.ID] = p.Country
	}
	var locs []string
	for _, r := range refs {
		if strings.HasPrefix(r, "location--") {
			locs = append(locs, r)
		}
	}
	if len(locs) > 0 {
		colls, err := s.st.Collections(ctx)
		if err != nil {
			return nil, fmt.Errorf("resolve locations: %w", err)
		}
		for _, c := range colls {
			page, err := s.st.QueryObjects(ctx, entente.ObjectQuery{Collection: c.ID, IDs: locs, Limit: len(locs)})
			if err != nil {
				return nil, fmt.Errorf("resolve locations in collection %s: %w", c.ID, err)
			}
			for _, e := range page.Entries {
				var l struct {
					Country string `json:"country"`
				}
				if json.Unmarshal(e.Raw, &l) == nil && l.Country != "" {
					countries[e.ID] = strings.ToUpper(l.Country)
				}
			}
		}
	}
	return func(ref string) (string, bool) {
		c, ok := countries[ref]
		return c, ok && c != ""
	}, nil
}

// gateTerms is what the gate applies to one partner principal's request:
// read once per request, whatever number of pages it gates.
type gateTerms struct {
	p         entente.Principal
	ps        store.PolicyStore
	self      policy.Party
	partner   policy.Party
	agreement *policy.Agreement // nil when the partner has none
}

// gateTerms reads the terms of partner principal p's request: the
// node's party, the partner's, and its agreement.
func (s *Service) gateTerms(ctx context.Context, p entente.Principal) (*gateTerms, error) {
	ps, err := s.policyStore()
	if err != nil {
		return nil, err
	}
	t := &gateTerms{p: p, ps: ps}
	if t.self, err = s.self(ctx); err != nil {
		return nil, fmt.Errorf("policy gate: %w", err)
	}
	if t.partner, t.agreement, err = s.partnerTerms(ctx, ps, p.Org); err != nil {
		return nil, fmt.Errorf("policy gate: %w", err)
	}
	return t, nil
}

// gate passes one page of a collection's entries through the policy gate
// for partner principal p: it drops what p's agreement withholds, redacts
// what it releases (adding the objects redaction introduces) and appends
// one egress audit record of the page, listing every object version
// released (a audit.Release). The entries must
// carry their JSON; metadataOnly clears it after the decision.
//
// With sink not nil the released versions are added to sink (whose
// Detail names the channel) and the caller appends it before anything
// leaves.
func (s *Service) gate(ctx context.Context, t *gateTerms, c entente.Collection, page entente.Page, metadataOnly bool, sink *audit.Release) (entente.Page, error) {
	out := page
	if len(page.Entries) == 0 {
		return out, nil
	}
	// What is released is written over what was read, in place: entry i
	// is written at an index ≤ i, after it is read, unless redaction
	// adds objects, and then the entries move to a new array first.
	out.Entries = page.Entries[:0]
	p, ps, self, partner, agreement := t.p, t.ps, t.self, t.partner, t.agreement
	var err error
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
	for i, e := range page.Entries {
		if !okMeta[i] {
			// Stored objects were valid when added; one that no longer
			// decodes is withheld rather than sent unexamined.
			s.log.ErrorContext(ctx, "stored object does not decode; withheld", "collection", c.ID, "object", e.ID)
			continue
		}
		ids = append(ids, e.ID)
		for _, r := range metas[i].markingRefs {
			if _, tlp := stix.TLPFromMarking(r); !tlp {
				refs[r] = true
			}
		}
	}
	marks := policy.Markings{}
	if len(refs) > 0 {
		if marks, err = s.markings(ctx, refs); err != nil {
			return entente.Page{}, fmt.Errorf("policy gate: %w", err)
		}
	}
	// ids repeat only when several versions of an object are read: the
	// store's lookups take duplicates, and sorting 10,000 ids to remove
	// them would cost more than the lookup of a collection without
	// provenance.
	prov, err := ps.Provenance(ctx, c.ID, ids)
	if err != nil {
		return entente.Page{}, fmt.Errorf("policy gate: %w", err)
	}
	g := &policy.Gate{Self: self}
	if len(victims) > 0 {
		if g.CountryOf, err = s.directory(ctx, ps, self, victims); err != nil {
			return entente.Page{}, fmt.Errorf("policy gate: %w", err)
		}
	}
	now := s.now()
	def := defaultTLP(c)
	channel := "objects"
	if metadataOnly {
		channel = "manifest"
	}
	detail := channel + " " + c.ID
	if sink != nil {
		detail = sink.Detail
	}
	rec := audit.Release{Time: now, Actor: p.KeyID, Partner: partner.ID, Detail: detail,
		Versions: make([]audit.ReleasedVersion, 0, len(page.Entries))}
	var related map[string]bool
	for i, e := range page.Entries {
		if !okMeta[i] {
			continue
		}
		o := &metas[i]
		tlp, residency := marks.Classify(o.markingRefs, def)
		meta := policy.ObjectMeta{ID: e.ID, Type: e.Type, Collection: c.ID, TLP: tlp, Residency: residency, CreatedByRef: o.createdByRef}
		if len(prov) > 0 {
			v, _ := store.UnixNano(e.Version)
			if pr, ok := prov[store.VersionKey{ID: e.ID, Version: v}]; ok {
				meta.Origin, meta.ReceivedFromPeer = pr.Origin, pr.Peer
			}
		}
		rel, d, err := g.Release(agreement, partner, meta, e.Raw, now)
		if err != nil {
			s.log.ErrorContext(ctx, "policy gate could not redact; withheld", "collection", c.ID, "object", e.ID, "err", err)
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
	if sink != nil {
		sink.Versions = append(sink.Versions, rec.Versions...)
		return out, nil
	}
	if len(rec.Versions) > 0 {
		// Nothing leaves without its audit record: one durable record of
		// the whole page, indexed by object, before the page is returned.
		if err := ps.AppendRelease(ctx, rec); err != nil {
			return entente.Page{}, fmt.Errorf("policy gate: %w", err)
		}
	}
	return out, nil
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
			metas[i], ok[i] = gateMeta{markingRefs: o.MarkingRefs, createdByRef: o.CreatedByRef}, true
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

// gateMeta is what the gate reads from an object's JSON: its marking
// references and creator.
type gateMeta struct {
	markingRefs  []string
	createdByRef string
}

// scanGateMeta reads the top-level object_marking_refs and created_by_ref
// of a stored object in one pass that jumps over strings, without
// decoding the rest. It handles only the common form: no backslash
// anywhere (so no string holds a quote and no member name is escaped),
// each of the two members at most once, the refs an array of strings.
// ok is false for anything else, and the caller decodes the object
// fully: a reference the scan could miss must never be missed.
func scanGateMeta(raw []byte) (m gateMeta, ok bool) { return (*refCache)(nil).scan(raw) }

// refCache keeps the marking arrays and creators that scanGateMeta has
// read, so that the objects of a page, which mostly share them, share
// one copy instead of each allocating its own. The slices it returns are
// shared: nobody may change them. A nil refCache keeps nothing. It is not
// safe for concurrent use.
type refCache struct {
	arrays  map[string][]string
	strings map[string]string
}

// str returns b as a string, the cached one when there is one.
func (c *refCache) str(b []byte) string {
	if c == nil {
		return string(b)
	}
	if s, ok := c.strings[string(b)]; ok {
		return s
	}
	if c.strings == nil {
		c.strings = map[string]string{}
	}
	s := string(b)
	c.strings[s] = s
	return s
}

// scan is scanGateMeta with c's strings.
func (c *refCache) scan(raw []byte) (m gateMeta, ok bool) {
	if bytes.IndexByte(raw, '\\') >= 0 {
		return m, false
	}
	var seenRefs, seenBy bool
	depth := 0
	expectKey := false
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '{':
			depth++
			expectKey = depth == 1
		case '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		case '"':
			end := bytes.IndexByte(raw[i+1:], '"')
			if end < 0 {
				return m, false
			}
			s := raw[i+1 : i+1+end]
			i += end + 1
			if !expectKey {
				continue
			}
			expectKey = false
			switch string(s) {
			case "object_marking_refs":
				if seenRefs {
					return m, false
				}
				seenRefs = true
				refs, n, ok := c.scanStringArray(raw[i+1:])
				if !ok {
					return m, false
				}
				m.markingRefs, i = refs, i+1+n
			case "created_by_ref":
				if seenBy {
					return m, false
				}
				seenBy = true
				j := skipColon(raw, i+1)
				if j < 0 || j >= len(raw) || raw[j] != '"' {
					return m, false
				}
				end := bytes.IndexByte(raw[j+1:], '"')
				if end < 0 {
					return m, false
				}
				m.createdByRef = c.str(raw[j+1 : j+1+end])
				i = j + 1 + end
			}
		}
	}
	return m, depth == 0
}

// skipColon returns the index after the colon that follows a member name
// ending before i (and the white space after it), or -1.
func skipColon(raw []byte, i int) int {
	for i < len(raw) && isSpace(raw[i]) {
		i++
	}
	if i >= len(raw) || raw[i] != ':' {
		return -1
	}
	i++
	for i < len(raw) && isSpace(raw[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// scanStringArray reads `: ["a", "b"]` at the start of b (no escapes) and
// returns the strings and the index of the closing bracket.
func (c *refCache) scanStringArray(b []byte) ([]string, int, bool) {
	i := skipColon(b, 0)
	if i < 0 || i >= len(b) || b[i] != '[' {
		return nil, 0, false
	}
	start, n := i, 0
	for i++; i < len(b); i++ {
		switch ch := b[i]; {
		case isSpace(ch) || ch == ',':
		case ch == ']':
			return c.array(b[start:i+1], n), i, true
		case ch == '"':
			end := bytes.IndexByte(b[i+1:], '"')
			if end < 0 {
				return nil, 0, false
			}
			n++
			i += end + 1
		default:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// array returns the n strings of text, a JSON array of strings without
// escapes that scanStringArray has checked, the cached slice when there
// is one.
func (c *refCache) array(text []byte, n int) []string {
	if c != nil {
		if a, ok := c.arrays[string(text)]; ok {
			return a
		}
	}
	out := make([]string, 0, n)
	for i := 0; i < len(text); i++ {
		if text[i] == '"' {
			end := bytes.IndexByte(text[i+1:], '"')
			out = append(out, c.str(text[i+1:i+1+end]))
			i += end + 1
		}
	}
	if c != nil {
		if c.arrays == nil {
			c.arrays = map[string][]string{}
		}
		c.arrays[string(text)] = out
	}
	return out
}
