package egress

import (
	"sync"

	"github.com/entente-cti/entente/internal/policy"
)

// The partner's terms of a request (its party and its agreement) were
// read from the store at every request: two reads and two JSON decodes
// for each page pushed to a peer, 5.6 % of a busy CERT's CPU during the
// WAN drill's outbreak. They are now kept per partner organisation, and
// used only while both of these still hold:
//
//   - the version of the terms in force (settingTerms) is the one read
//     before the entry was read from the store. Every change of a
//     partner or an agreement, through this gate or through another
//     replica's (or an offline command's) on the same store, writes a
//     new version before it is reported done ([Gate.TermsChanged]), and
//     the version is read again at every request;
//   - this gate's own generation of changes is the one the entry was
//     read under. The generation is bumped when a policy write starts
//     and when it ends (policyWrite), and by every TermsChanged; while a
//     write is in progress nothing is served from the cache or cached.
//
// An entry is filled from reads made after the version and the
// generation it is kept under were read, so it is never older than
// them: a request never receives the terms from before a change once
// the change's version (or generation) is visible to it.

// termsCache keeps the partners' terms (see above).
type termsCache struct {
	mu sync.Mutex
	// gen counts the changes of terms through this gate (each write
	// counts twice: at its start and at its end); writing counts the
	// policy writes in progress.
	gen     uint64
	writing int
	byOrg   map[string]cachedTerms
	// hits and misses count the lookups served from the cache and read
	// from the store (tests).
	hits, misses int
}

// cachedTerms is one partner's terms, read under terms version version
// and generation gen.
type cachedTerms struct {
	version   string
	gen       uint64
	partner   policy.Party
	agreement *policy.Agreement // nil: no agreement
}

// lookup returns org's terms when they were cached under version and the
// current generation, and no policy write is in progress; else the
// generation to read them under, and whether they may be cached.
func (c *termsCache) lookup(org, version string) (e cachedTerms, ok bool, gen uint64, cacheable bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing == 0 {
		if e, ok := c.byOrg[org]; ok && e.version == version && e.gen == c.gen {
			c.hits++
			return e, true, 0, false
		}
	}
	c.misses++
	return cachedTerms{}, false, c.gen, c.writing == 0
}

// put caches e (read under e.version and e.gen) unless a change of terms
// began since its generation was read.
func (c *termsCache) put(org string, e cachedTerms) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing != 0 || c.gen != e.gen {
		return
	}
	if c.byOrg == nil {
		c.byOrg = map[string]cachedTerms{}
	}
	c.byOrg[org] = e
}

// changed forgets every entry and bumps the generation.
func (c *termsCache) changed() {
	c.mu.Lock()
	c.gen++
	c.byOrg = nil
	c.mu.Unlock()
}

// begin marks a policy write in progress; end marks it over. Both bump
// the generation, so no entry read before the write ended is used after.
func (c *termsCache) begin() {
	c.mu.Lock()
	c.gen++
	c.writing++
	c.byOrg = nil
	c.mu.Unlock()
}

func (c *termsCache) end() {
	c.mu.Lock()
	c.gen++
	c.writing--
	c.byOrg = nil
	c.mu.Unlock()
}

// policyWrite runs write, a write of a partner or an agreement to the
// store, with the partners' terms cache off from before it starts until
// after it ends.
func (g *Gate) policyWrite(write func() error) error {
	g.termsC.begin()
	defer g.termsC.end()
	return write()
}

// termsCacheStats reports the partner-terms lookups served from the
// cache and read from the store (tests).
func (g *Gate) termsCacheStats() (hits, misses int) {
	g.termsC.mu.Lock()
	defer g.termsC.mu.Unlock()
	return g.termsC.hits, g.termsC.misses
}
