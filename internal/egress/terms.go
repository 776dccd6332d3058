package egress

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// settingTerms is the store setting that holds the version of the terms
// in force: a random value written anew by every change of an agreement,
// a partner, a key, a collection or a deletion, on any replica. Every
// cache of released content is keyed by it.
const settingTerms = "egress.terms"

// termsVersion returns the version of the terms in force, as every
// replica sees it.
func (g *Gate) termsVersion(ctx context.Context) (string, error) {
	b, err := g.st.Setting(ctx, settingTerms)
	if err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			return "", nil
		}
		return "", fmt.Errorf("read the version of the terms in force: %w", err)
	}
	return string(b), nil
}

// TermsChanged records that the terms the gate applies changed: an
// agreement, a partner, a key, a collection's default marking or
// permissions, or the objects themselves (a deletion). Every cache of
// released content is invalid from the moment it returns, on this
// replica and on every other one sharing the store; the next request on
// any path is decided under the new terms. A change that cannot be
// recorded must not be reported as done: the error is returned.
func (g *Gate) TermsChanged(ctx context.Context, why string) error {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("new terms version: %w", err)
	}
	g.termsC.changed()
	g.arts.dropAll()
	g.marks.forget()
	g.retracted.forget()
	g.dirMu.Lock()
	g.dir = nil
	g.dirMu.Unlock()
	g.selfMu.Lock()
	g.self = nil
	g.selfMu.Unlock()
	if err := g.st.PutSetting(context.WithoutCancel(ctx), settingTerms, []byte(hex.EncodeToString(b[:]))); err != nil {
		return fmt.Errorf("record the change of terms (%s): %w", why, err)
	}
	g.log.DebugContext(ctx, "terms changed; caches of released content dropped", "why", why)
	return nil
}

// self returns the node's own organisation as a policy party.
func (g *Gate) selfParty(ctx context.Context) (policy.Party, error) {
	g.selfMu.Lock()
	if p := g.self; p != nil {
		g.selfMu.Unlock()
		return *p, nil
	}
	g.selfMu.Unlock()
	p, err := g.cfg.Self(ctx)
	if err != nil {
		return policy.Party{}, err
	}
	g.selfMu.Lock()
	g.self = &p
	g.selfMu.Unlock()
	return p, nil
}

// terms is what the gate applies to one partner audience: read once per
// request, whatever number of pages it gates.
type terms struct {
	// version is the version of the terms in force these were read
	// under. Each page is gated under the version read when it is gated
	// (gatePage reads the terms again when it moved): its withheld set,
	// partners' countries and agreement are those of that version or a
	// later one.
	version   string
	p         entente.Principal
	self      policy.Party
	partner   policy.Party
	agreement *policy.Agreement // nil when the partner has none
}

// partnerTerms returns the terms of partner principal p's request: the
// node's party, the partner's, and its agreement. A partner the node has
// not described is known by its identity id only: with no country, it
// receives nothing that carries a residency marking. The partner's party
// and agreement come from the cache while the terms in force are those
// it read them under (termscache.go), else from the store.
func (g *Gate) partnerTerms(ctx context.Context, p entente.Principal) (*terms, error) {
	if g.ps == nil {
		return nil, fmt.Errorf("policy gate: the store %T keeps no sharing policy", g.st)
	}
	t := &terms{p: p}
	var err error
	if t.self, err = g.selfParty(ctx); err != nil {
		return nil, fmt.Errorf("policy gate: %w", err)
	}
	// The version is read before the terms: what is read after it is
	// never older than it.
	v, err := g.termsVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy gate: %w", err)
	}
	t.version = v
	e, ok, gen, cacheable := g.termsC.lookup(p.Org, v)
	if !ok {
		if e, err = g.readPartnerTerms(ctx, p.Org); err != nil {
			return nil, err
		}
		if cacheable {
			e.version, e.gen = v, gen
			g.termsC.put(p.Org, e)
		}
	}
	t.partner = e.partner
	if e.agreement != nil {
		a := *e.agreement // each request its own copy
		t.agreement = &a
	}
	return t, nil
}

// readPartnerTerms reads partner org's party and agreement from the
// store.
func (g *Gate) readPartnerTerms(ctx context.Context, org string) (cachedTerms, error) {
	var e cachedTerms
	party, err := g.ps.Party(ctx, org)
	if err != nil {
		if entente.ErrorCode(err) != entente.ENOTFOUND {
			return e, fmt.Errorf("policy gate: read partner %s: %w", org, err)
		}
		party = policy.Party{ID: org}
	}
	e.partner = party
	a, err := g.ps.Agreement(ctx, org)
	if err != nil {
		if entente.ErrorCode(err) != entente.ENOTFOUND {
			return e, fmt.Errorf("policy gate: read agreement with %s: %w", org, err)
		}
		return e, nil
	}
	// The party on record is authoritative for the partner's country.
	if party.Country != "" {
		a.Partner = party
	}
	e.agreement = &a
	return e, nil
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

// markingCache remembers the residency marking definitions the node
// holds, by canonical id: plain lists definitions known not to be
// residency markings. Definitions it does not hold are looked up again
// next time, so that an object whose residency marking arrives later is
// then restricted.
type markingCache struct {
	mu        sync.Mutex
	residency map[string][]string
	plain     map[string]bool
}

func (m *markingCache) forget() {
	m.mu.Lock()
	m.residency, m.plain = nil, nil
	m.mu.Unlock()
}

// known reports whether every marking definition of refs (canonical ids)
// was found: as a residency marking or another.
func (m *markingCache) known(refs map[string]bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for r := range refs {
		if _, ok := m.residency[r]; !ok && !m.plain[r] {
			return false
		}
	}
	return true
}

// markings returns the residency markings among refs (canonical ids),
// looking up the marking definitions not seen yet in the collections.
func (g *Gate) markings(ctx context.Context, refs map[string]bool) (policy.Markings, error) {
	mc := &g.marks
	mc.mu.Lock()
	var unknown []string
	for r := range refs {
		if _, ok := mc.residency[r]; !ok && !mc.plain[r] {
			unknown = append(unknown, r)
		}
	}
	mc.mu.Unlock()
	if len(unknown) > 0 {
		found := map[string][]string{}
		plain := map[string]bool{}
		colls, err := g.st.Collections(ctx)
		if err != nil {
			return policy.Markings{}, fmt.Errorf("resolve markings: %w", err)
		}
		// The store keeps ids as written: look for both spellings.
		ids := make([]string, 0, 2*len(unknown))
		for _, u := range unknown {
			ids = append(ids, u)
			if up := upperUUID(u); up != u {
				ids = append(ids, up)
			}
		}
		for _, c := range colls {
			page, err := g.st.QueryObjects(ctx, entente.ObjectQuery{Collection: c.ID, IDs: ids, Types: []string{"marking-definition"}, Limit: len(ids)})
			if err != nil {
				return policy.Markings{}, fmt.Errorf("resolve markings in collection %s: %w", c.ID, err)
			}
			for _, e := range page.Entries {
				id, js, ok, err := policy.ParseResidencyMarking(e.Raw)
				switch {
				case err != nil:
					// A malformed residency marking restricts to nowhere.
					found[stix.CanonicalRef(e.ID)] = []string{}
					g.log.WarnContext(ctx, "invalid residency marking", "marking", e.ID, "err", err)
				case ok:
					found[id] = js
				default:
					plain[stix.CanonicalRef(e.ID)] = true
				}
			}
		}
		mc.mu.Lock()
		if mc.residency == nil {
			mc.residency, mc.plain = map[string][]string{}, map[string]bool{}
		}
		for k, v := range found {
			mc.residency[k] = v
		}
		for k := range plain {
			mc.plain[k] = true
		}
		mc.mu.Unlock()
	}
	m := policy.Markings{Residency: map[string][]string{}}
	mc.mu.Lock()
	for r := range refs {
		if js, ok := mc.residency[r]; ok {
			m.Residency[r] = js
		}
	}
	mc.mu.Unlock()
	return m, nil
}

// upperUUID returns id with its UUID's hex digits in upper case: the
// other spelling a store may hold a marking definition under.
func upperUUID(id string) string {
	typ, u, ok := strings.Cut(id, "--")
	if !ok {
		return id
	}
	return typ + "--" + strings.ToUpper(u)
}

// partyCountries maps every partner the node knows to its country, read
// once under the terms in force (of version v, read before): every change of a partner changes the
// terms (TermsChanged, which also forgets it), and the sightings of every
// push page to a partner, redacted to their victims' countries, need it.
func (g *Gate) partyCountries(ctx context.Context, v string) (map[string]string, error) {
	g.dirMu.Lock()
	if g.dir != nil && g.dirVersion == v {
		m := g.dir
		g.dirMu.Unlock()
		return m, nil
	}
	g.dirMu.Unlock()
	parties, err := g.ps.Parties(ctx)
	if err != nil {
		return nil, fmt.Errorf("read partners: %w", err)
	}
	m := make(map[string]string, len(parties))
	for _, p := range parties {
		m[p.ID] = p.Country
	}
	g.dirMu.Lock()
	g.dir, g.dirVersion = m, v
	g.dirMu.Unlock()
	return m, nil
}

// directory returns the countries of the organisations and locations that
// sightings' victims refer to: the node's own, the partners', and the
// location objects the node holds, under the terms of version v.
func (g *Gate) directory(ctx context.Context, v string, self policy.Party, refs []string) (func(string) (string, bool), error) {
	known, err := g.partyCountries(ctx, v)
	if err != nil {
		return nil, err
	}
	countries := make(map[string]string, len(known)+1)
	if self.Country != "" {
		countries[self.ID] = self.Country
	}
	for id, cc := range known {
		countries[id] = cc
	}
	var locs []string
	for _, r := range refs {
		if strings.HasPrefix(r, "location--") {
			locs = append(locs, r)
		}
	}
	if len(locs) > 0 {
		colls, err := g.st.Collections(ctx)
		if err != nil {
			return nil, fmt.Errorf("resolve locations: %w", err)
		}
		for _, c := range colls {
			page, err := g.st.QueryObjects(ctx, entente.ObjectQuery{Collection: c.ID, IDs: locs, Limit: len(locs)})
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
