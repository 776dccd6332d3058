package safety

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/warninglist"
	"github.com/gaissmai/bart"
	"go4.org/netipx"
)

// Entry is one value of a constituency or an allowlist, with where it
// was written.
type Entry struct {
	// Value is the value as written: an address, a network, a domain
	// (protecting its subdomains too), a URL, an e-mail address, a hash,
	// or, in a constituency, an autonomous system ("AS64500").
	Value string
	// Where names its origin for rules and errors: "allow.txt line 3",
	// "config line 12".
	Where string
}

// Config is what the net protects.
type Config struct {
	// IANA protects what the IANA special-purpose address registries say
	// is not globally reachable, and the multicast blocks.
	IANA bool
	// Warninglists are the MISP warninglists to protect (see
	// [ShippedWarninglists]).
	Warninglists []*warninglist.List
	// Constituency is the node's own networks, addresses, domains and
	// autonomous systems.
	Constituency []Entry
	// ASNPrefixes gives the prefixes of the autonomous systems a
	// constituency may name (see [ParseASNPrefixes]); an AS the map does
	// not hold is an error.
	ASNPrefixes map[uint32][]Entry
	// ASNSource names where ASNPrefixes was read ("asn-prefixes.txt").
	ASNSource string
	// Allowlist is the operator's allowlist: values of any kind.
	Allowlist []Entry
	// Networks is what happens to a network that contains protected
	// space: ModeCut (the default) or ModeRefuse.
	Networks Mode
	// WidestIPv4 and WidestIPv6 are the shortest prefix lengths a network
	// may have: a wider network is refused (0: no limit).
	WidestIPv4, WidestIPv6 int
	// WidestSetting names the settings of WidestIPv4 and WidestIPv6 in
	// rules ("safety.widest_ipv4"; "widest_ipv4" when empty).
	WidestSetting [2]string
}

// Net is the safety net. It is immutable once built and safe for
// concurrent use; its counters are atomic. A nil *Net protects nothing.
type Net struct {
	rules []Rule
	// ip maps every protected prefix to an index of sets: the rules that
	// protect exactly that prefix.
	ip   *bart.Table[uint32]
	sets [][]int32
	// extra are the sets of a net derived by [Net.WithConstituency]:
	// set i >= len(sets) is extra[i-len(sets)]. sets and ip are then
	// shared with the net it was derived from, and never written.
	extra  [][]int32
	shared bool
	// domains maps a protected domain (and so its subdomains) to rules.
	domains map[string][]int32
	// exact maps "kind\x00value" of allowlisted URLs, e-mail addresses
	// and hashes to rules.
	exact map[string][]int32
	// wl holds the warninglists that are not lists of networks (those
	// are in ip); wlRule maps their names to rules.
	wl     *warninglist.Set
	wlRule map[string]int32
	// wlIP is set when a list in wl may match an address or network (an
	// entry that is one, or a substring or regex list): otherwise
	// addresses skip the look-up, the hot path of large exports.
	wlIP   bool
	mode   Mode
	widest [2]int   // IPv4, IPv6
	broad  [2]int32 // the too-broad rules (-1: none)
	counts []atomic.Int64
	// partners is the layer of the constituencies partners declared
	// (see [Net.SetPartners]): a net of its own, swapped whole; gen
	// counts its changes.
	partners atomic.Pointer[Net]
	gen      atomic.Uint64
}

var asnEntry = regexp.MustCompile(`^(?i)AS(\d{1,10})$`)

// dotted matches what only looks like an address ("10.0.0.300"): all
// labels numeric.
var dotted = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)

// New builds the net of cfg. It refuses an entry that is not a value of
// a kind its list may hold, naming the entry and where it was written.
func New(cfg Config) (*Net, error) {
	mode, err := ParseMode(string(cfg.Networks))
	if err != nil {
		return nil, err
	}
	n := &Net{ip: new(bart.Table[uint32]), domains: map[string][]int32{}, exact: map[string][]int32{}, wlRule: map[string]int32{},
		mode: mode, broad: [2]int32{-1, -1}, wl: warninglist.New()}
	if cfg.IANA {
		if err := n.addRegistries(); err != nil {
			return nil, err
		}
	}
	for _, l := range cfg.Warninglists {
		if err := n.addWarninglist(l); err != nil {
			return nil, err
		}
	}
	for _, e := range cfg.Constituency {
		if m := asnEntry.FindStringSubmatch(strings.TrimSpace(e.Value)); m != nil {
			if err := n.addASN(cfg, e, m[1]); err != nil {
				return nil, err
			}
			continue
		}
		if err := n.addEntry(RuleConstituency, e, false, ""); err != nil {
			return nil, err
		}
	}
	for _, e := range cfg.Allowlist {
		if err := n.addEntry(RuleAllowlist, e, true, ""); err != nil {
			return nil, err
		}
	}
	for i, w := range [2]int{cfg.WidestIPv4, cfg.WidestIPv6} {
		bits, fam := 32, "IPv4"
		if i == 1 {
			bits, fam = 128, "IPv6"
		}
		if w < 0 || w > bits {
			return nil, fmt.Errorf("widest %s network /%d: want a prefix length from 0 to %d", fam, w, bits)
		}
		if w == 0 {
			continue
		}
		setting := cfg.WidestSetting[i]
		if setting == "" {
			setting = [2]string{"widest_ipv4", "widest_ipv6"}[i]
		}
		n.widest[i] = w
		n.broad[i] = n.rule(Rule{Kind: RuleTooBroad, Entry: fmt.Sprintf("%s networks wider than /%d", fam, w), Detail: setting, Source: "too-broad"})
	}
	n.counts = make([]atomic.Int64, len(n.rules)*int(numOutputs))
	return n, nil
}

// rule adds r and returns its index.
func (n *Net) rule(r Rule) int32 {
	n.rules = append(n.rules, r)
	return int32(len(n.rules) - 1)
}

// insert protects prefix p by rule r.
func (n *Net) insert(p netip.Prefix, r int32) {
	p = p.Masked()
	if n.shared {
		// Copy on write: the table and the sets are another net's too.
		idx := uint32(len(n.sets) + len(n.extra))
		if i, ok := n.ip.Get(p); ok {
			s := n.set(i)
			if slices.Contains(s, r) {
				return
			}
			n.extra = append(n.extra, append(slices.Clip(s), r))
		} else {
			n.extra = append(n.extra, []int32{r})
		}
		n.ip = n.ip.InsertPersist(p, idx)
		return
	}
	if i, ok := n.ip.Get(p); ok {
		if !slices.Contains(n.sets[i], r) {
			n.sets[i] = append(n.sets[i], r)
		}
		return
	}
	n.sets = append(n.sets, []int32{r})
	n.ip.Insert(p, uint32(len(n.sets)-1))
}

// set returns the rules of set i.
func (n *Net) set(i uint32) []int32 {
	if int(i) < len(n.sets) {
		return n.sets[i]
	}
	return n.extra[int(i)-len(n.sets)]
}

// WithConstituency returns a net that protects what n protects and the
// constituency entries too (networks, addresses, domains; no autonomous
// systems), for one node among many that share the same registries and
// warninglists (a drill's nodes in one process): the new net shares n's
// tables and lists, copying only what the entries change, so that
// deriving it costs the entries, not the lists. n is not changed; the
// new net counts its suppressions apart.
func (n *Net) WithConstituency(entries []Entry) (*Net, error) {
	if n == nil {
		return nil, fmt.Errorf("safety: no net to derive a constituency's from")
	}
	m := &Net{rules: slices.Clone(n.rules), ip: n.ip, sets: n.sets, extra: slices.Clone(n.extra), shared: true,
		domains: maps.Clone(n.domains), exact: maps.Clone(n.exact), wl: n.wl, wlRule: n.wlRule, wlIP: n.wlIP,
		mode: n.mode, widest: n.widest, broad: n.broad}
	for _, e := range entries {
		if asnEntry.MatchString(strings.TrimSpace(e.Value)) {
			return nil, fmt.Errorf("constituency entry %q (%s): an autonomous system needs the node's own net (safety.New)", e.Value, e.Where)
		}
		if err := m.addEntry(RuleConstituency, e, false, ""); err != nil {
			return nil, err
		}
	}
	m.counts = make([]atomic.Int64, len(m.rules)*int(numOutputs))
	return m, nil
}

// addRegistries protects the registries' blocks that are not globally
// reachable, less the globally reachable blocks inside them, and the
// multicast blocks.
func (n *Net) addRegistries() error {
	es, err := Registries()
	if err != nil {
		return err
	}
	for _, e := range es {
		if !e.Protects() {
			continue
		}
		kind := RuleIANA
		if e.Multicast {
			kind = RuleMulticast
		}
		r := n.rule(Rule{Kind: kind, Entry: e.Prefix.String(), Detail: e.RFC + ", " + e.Name, Source: e.Registry})
		var b netipx.IPSetBuilder
		b.AddPrefix(e.Prefix)
		for _, x := range es {
			if x.exception() && x.Prefix.Bits() > e.Prefix.Bits() && e.Prefix.Contains(x.Prefix.Addr()) {
				b.RemovePrefix(x.Prefix)
			}
		}
		set, err := b.IPSet()
		if err != nil {
			return fmt.Errorf("registry block %s: %w", e.Prefix, err)
		}
		for _, p := range set.Prefixes() {
			n.insert(p, r)
		}
	}
	return nil
}

// addWarninglist protects the values of l: its networks in ip, anything
// else through a warninglist.Set.
func (n *Net) addWarninglist(l *warninglist.List) error {
	if l == nil {
		return nil
	}
	if _, dup := n.wlRule[l.Name]; dup {
		return nil // the same list from two places (shipped and a directory)
	}
	r := n.rule(Rule{Kind: RuleWarninglist, Entry: l.Name, Source: l.Name})
	n.wlRule[l.Name] = r
	if l.Type != "cidr" {
		if l.Type == "substring" || l.Type == "regex" {
			n.wlIP = true
		}
		for _, e := range l.Entries {
			if _, ok := parseNet(strings.TrimSpace(e)); ok {
				n.wlIP = true
				break
			}
		}
		if err := n.wl.Add(l); err != nil {
			return fmt.Errorf("warninglist %q: %w", l.Name, err)
		}
		return nil
	}
	for _, e := range l.Entries {
		if p, ok := parseNet(strings.TrimSpace(e)); ok {
			n.insert(p, r)
		}
	}
	return nil
}

// parseNet reads an address or network as warninglists and allowlists
// write them (IPv4-mapped forms are unmapped).
func parseNet(s string) (netip.Prefix, bool) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, false
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, false
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// addEntry protects e under a rule of kind k; any says whether values of
// every kind are allowed (an allowlist) or only networks, addresses and
// domains (a constituency). detail, when set, replaces e.Where.
func (n *Net) addEntry(k RuleKind, e Entry, any bool, detail string) error {
	v := strings.TrimSpace(e.Value)
	kind, canon, err := observable.Detect(v)
	if err != nil {
		return fmt.Errorf("%s entry %q (%s): %v", k, v, e.Where, err)
	}
	if detail == "" {
		detail = e.Where
	}
	switch kind {
	case observable.IPv4, observable.IPv6, observable.CIDR4, observable.CIDR6:
		p, ok := parseNet(canon)
		if !ok {
			return fmt.Errorf("%s entry %q (%s): not an address or a network", k, v, e.Where)
		}
		n.insert(p, n.rule(Rule{Kind: k, Entry: canon, Detail: detail, Source: string(k)}))
	case observable.Domain:
		if dotted.MatchString(canon) {
			return fmt.Errorf("%s entry %q (%s): neither an address nor a domain", k, v, e.Where)
		}
		r := n.rule(Rule{Kind: k, Entry: canon, Detail: detail, Source: string(k)})
		n.domains[canon] = append(n.domains[canon], r)
	default:
		if !any {
			return fmt.Errorf("%s entry %q (%s): a %s; a constituency holds networks, addresses, domains and autonomous systems (AS64500)", k, v, e.Where, kind)
		}
		r := n.rule(Rule{Kind: k, Entry: canon, Detail: detail, Source: string(k)})
		key := string(kind) + "\x00" + canon
		n.exact[key] = append(n.exact[key], r)
	}
	return nil
}

// addASN protects the prefixes of the autonomous system asn (the entry
// e of the constituency).
func (n *Net) addASN(cfg Config, e Entry, asn string) error {
	num, err := strconv.ParseUint(asn, 10, 32)
	if err != nil {
		return fmt.Errorf("constituency entry %q (%s): not an AS number", e.Value, e.Where)
	}
	if cfg.ASNPrefixes == nil {
		return fmt.Errorf("constituency entry %q (%s): an autonomous system needs a file of its prefixes (safety.asn_prefixes)", e.Value, e.Where)
	}
	ps := cfg.ASNPrefixes[uint32(num)]
	if len(ps) == 0 {
		src := cfg.ASNSource
		if src == "" {
			src = "the AS prefix file"
		}
		return fmt.Errorf("constituency entry %q (%s): %s has no prefix of AS%d", e.Value, e.Where, src, num)
	}
	for _, p := range ps {
		if err := n.addEntry(RuleConstituency, p, false, fmt.Sprintf("AS%d, %s; %s", num, e.Where, p.Where)); err != nil {
			return err
		}
	}
	return nil
}

// Rules returns every rule of the net.
func (n *Net) Rules() []Rule {
	if n == nil {
		return nil
	}
	out := slices.Clone(n.rules)
	if p := n.partners.Load(); p != nil {
		out = append(out, p.rules...)
	}
	return out
}

// Decision is what the net does with one value.
type Decision struct {
	// Action is what happens to it.
	Action Action
	// Rule is the rule that decided (for every action but Keep).
	Rule Rule
	// Parts are what a Cut keeps: the prefixes of the network that remain
	// once the protected ranges are cut out.
	Parts []netip.Prefix
	rule  int32
	// layer is the net whose rule decided: this one, or its partners'
	// layer.
	layer *Net
}

// Decide decides what happens to value, a normalised observable of kind
// k (see internal/observable), without counting it.
func (n *Net) Decide(k observable.Kind, value string) Decision {
	d := n.decide(k, value, true)
	if d.Action != Keep {
		d.Rule = d.layer.rules[d.rule]
	}
	return d
}

func keep() Decision { return Decision{rule: -1} }

func (n *Net) decision(a Action, rule int32) Decision {
	return Decision{Action: a, rule: rule, layer: n}
}

// decide is Decide without the rule's copy; parts says whether a Cut
// computes its parts. The partners' layer decides what the node's own
// rules keep, and cuts what remains of a network they cut.
func (n *Net) decide(k observable.Kind, v string, parts bool) Decision {
	if n == nil {
		return keep()
	}
	p := n.partners.Load()
	if p == nil {
		return n.decideOwn(k, v, parts)
	}
	d := n.decideOwn(k, v, true)
	switch d.Action {
	case Keep:
		return p.decideOwn(k, v, parts)
	case Cut:
		var kept []netip.Prefix
		for _, q := range d.Parts {
			kind := observable.CIDR4
			if q.Addr().Is6() {
				kind = observable.CIDR6
			}
			switch pd := p.decideOwn(kind, q.String(), true); pd.Action {
			case Keep:
				kept = append(kept, q)
			case Cut:
				kept = append(kept, pd.Parts...)
			}
		}
		if len(kept) == 0 {
			return n.decision(Suppress, d.rule)
		}
		if !parts {
			kept = nil
		}
		d.Parts = kept
	}
	return d
}

// decideOwn decides by the net's own rules, without the partners'.
func (n *Net) decideOwn(k observable.Kind, v string, parts bool) Decision {
	if n == nil {
		return keep()
	}
	switch k {
	case observable.IPv4, observable.IPv6:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return keep()
		}
		if i, ok := n.ip.Lookup(a.Unmap()); ok {
			return n.decision(Suppress, n.set(i)[0])
		}
		if !n.wlIP {
			return keep()
		}
	case observable.CIDR4, observable.CIDR6:
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return keep()
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		fam := 0
		if p.Addr().Is6() {
			fam = 1
		}
		if n.widest[fam] > 0 && p.Bits() < n.widest[fam] {
			return n.decision(Refuse, n.broad[fam])
		}
		if _, i, ok := n.ip.LookupPrefixLPM(p); ok {
			return n.decision(Suppress, n.set(i)[0])
		}
		if n.wlIP {
			if d, ok := n.warned(k, v); ok {
				return d
			}
		}
		if !n.ip.OverlapsPrefix(p) {
			return keep()
		}
		var first int32 = -1
		var b netipx.IPSetBuilder
		b.AddPrefix(p)
		for sub, i := range n.ip.Subnets(p) {
			if first < 0 {
				first = n.set(i)[0]
				if n.mode == ModeRefuse {
					break
				}
			}
			b.RemovePrefix(sub)
		}
		if n.mode == ModeRefuse {
			return n.decision(Refuse, first)
		}
		// The parts are computed even when the caller does not want
		// them: a network covered by several protected ranges (224/3:
		// multicast and reserved) leaves nothing and is suppressed.
		set, err := b.IPSet()
		if err != nil || len(set.Prefixes()) == 0 {
			return n.decision(Suppress, first)
		}
		d := n.decision(Cut, first)
		if parts {
			d.Parts = set.Prefixes()
		}
		return d
	case observable.Domain:
		if r, ok := n.domain(v); ok {
			return n.decision(Suppress, r)
		}
	case observable.URL:
		if r, ok := n.exactRule(k, v); ok {
			return n.decision(Suppress, r)
		}
		if host := urlHost(v); host != "" {
			if d := n.host(host); d.Action != Keep {
				return d
			}
		}
	case observable.Email:
		if r, ok := n.exactRule(k, v); ok {
			return n.decision(Suppress, r)
		}
		if i := strings.LastIndexByte(v, '@'); i >= 0 {
			if r, ok := n.domain(v[i+1:]); ok {
				return n.decision(Suppress, r)
			}
		}
	default:
		if r, ok := n.exactRule(k, v); ok {
			return n.decision(Suppress, r)
		}
	}
	if d, ok := n.warned(k, v); ok {
		return d
	}
	return keep()
}

// host decides for the host of a URL: an address, or a domain.
func (n *Net) host(h string) Decision {
	if a, err := netip.ParseAddr(h); err == nil {
		if i, ok := n.ip.Lookup(a.Unmap()); ok {
			return n.decision(Suppress, n.set(i)[0])
		}
		return keep()
	}
	if r, ok := n.domain(h); ok {
		return n.decision(Suppress, r)
	}
	return keep()
}

// warned looks v up in the warninglists that are not lists of networks.
func (n *Net) warned(k observable.Kind, v string) (Decision, bool) {
	if n.wl.Len() == 0 {
		return Decision{}, false
	}
	names := n.wl.Match(k, v)
	if len(names) == 0 {
		return Decision{}, false
	}
	return n.decision(Suppress, n.wlRule[names[0]]), true
}

// domain walks d and its parent domains through the protected domains.
func (n *Net) domain(d string) (int32, bool) {
	if len(n.domains) == 0 {
		return 0, false
	}
	for h := d; h != ""; {
		if rs := n.domains[h]; len(rs) > 0 {
			return rs[0], true
		}
		i := strings.IndexByte(h, '.')
		if i < 0 {
			break
		}
		h = h[i+1:]
	}
	return 0, false
}

func (n *Net) exactRule(k observable.Kind, v string) (int32, bool) {
	if len(n.exact) == 0 {
		return 0, false
	}
	rs := n.exact[string(k)+"\x00"+v]
	if len(rs) == 0 {
		return 0, false
	}
	return rs[0], true
}

// urlHost returns the host of a normalised URL ("scheme://host[:port]/…"):
// a domain, or an address (IPv6 without its brackets).
func urlHost(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return ""
	}
	rest := u[i+3:]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		rest = rest[:j]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	if strings.HasPrefix(rest, "[") {
		if j := strings.IndexByte(rest, ']'); j > 0 {
			return rest[1:j]
		}
		return ""
	}
	if j := strings.LastIndexByte(rest, ':'); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// count counts one suppression by rule r in output o.
func (n *Net) count(o Output, r int32) {
	if r >= 0 && o < numOutputs {
		n.counts[int(r)*int(numOutputs)+int(o)].Add(1)
	}
}

// Guard is the net as one output applies it: it decides and counts. The
// zero Guard (or one of a nil Net) keeps everything.
type Guard struct {
	n   *Net
	out Output
}

// Generation is the net's (see [Net.Generation]): what the guard
// decided before it changed may be decided differently now.
func (g Guard) Generation() uint64 { return g.n.Generation() }

// Guard returns the net as output o applies it.
func (n *Net) Guard(o Output) Guard { return Guard{n: n, out: o} }

// Admit reports whether value (normalised, of kind k) may be acted on as
// it is. When it may not, the suppression is counted, and parts are what
// of it may be acted on: the networks and addresses that remain of a cut
// network (canonical, see internal/observable), none otherwise.
func (g Guard) Admit(k observable.Kind, value string) (whole bool, parts []string) {
	if g.n == nil {
		return true, nil
	}
	d := g.n.decide(k, value, true)
	if d.Action == Keep {
		return true, nil
	}
	d.layer.count(g.out, d.rule)
	if len(d.Parts) > 0 {
		parts = make([]string, len(d.Parts))
		for i, p := range d.Parts {
			if p.IsSingleIP() {
				parts[i] = p.Addr().String()
			} else {
				parts[i] = p.String()
			}
		}
	}
	return false, parts
}

// Touches reports whether value is protected, inside or around protected
// space, or refused: whether the net would not act on it whole. It
// counts nothing (callers that leave out what touches protected space
// count it with [Guard.Count]).
func (g Guard) Touches(k observable.Kind, value string) (bool, Rule) {
	if g.n == nil {
		return false, Rule{}
	}
	d := g.n.decide(k, value, false)
	if d.Action == Keep {
		return false, Rule{}
	}
	return true, d.layer.rules[d.rule]
}

// Count counts one suppression of value by the net in g's output (for
// callers that leave out a whole object because one of its values
// touches protected space).
func (g Guard) Count(k observable.Kind, value string) {
	if g.n == nil {
		return
	}
	if d := g.n.decide(k, value, false); d.Action != Keep {
		d.layer.count(g.out, d.rule)
	}
}

// Count is how many values one rule kept out of one output.
type Count struct {
	Rule   Rule
	Output Output
	N      int64
}

// Counts returns the non-zero suppression counts, by rule and output, in
// the order of the rules.
func (n *Net) Counts() []Count {
	if n == nil {
		return nil
	}
	var out []Count
	for r := range n.rules {
		for o := range numOutputs {
			if c := n.counts[r*int(numOutputs)+int(o)].Load(); c > 0 {
				out = append(out, Count{Rule: n.rules[r], Output: o, N: c})
			}
		}
	}
	if p := n.partners.Load(); p != nil {
		out = append(out, p.Counts()...)
	}
	return out
}

// SetPartners protects the constituencies the node's partners declared
// (networks, addresses, domains; see policy.Party), replacing those set
// before, as rules of kind RulePartner: what the node's own rules keep
// is decided by them, and what remains of a network the node's rules
// cut is cut around them too. It is safe to call while the net decides;
// the counts of the partners' rules start again at each call. It refuses
// an entry that is not a network, an address or a domain, naming it.
func (n *Net) SetPartners(entries []Entry) error {
	if n == nil {
		return fmt.Errorf("safety: no net to protect partners' constituencies in")
	}
	if len(entries) == 0 {
		n.partners.Store(nil)
		n.gen.Add(1)
		return nil
	}
	p := &Net{ip: new(bart.Table[uint32]), domains: map[string][]int32{}, exact: map[string][]int32{}, wlRule: map[string]int32{},
		mode: n.mode, broad: [2]int32{-1, -1}, wl: warninglist.New()}
	for _, e := range entries {
		if asnEntry.MatchString(strings.TrimSpace(e.Value)) {
			return fmt.Errorf("partner constituency entry %q (%s): give the autonomous system's prefixes", e.Value, e.Where)
		}
		if err := p.addEntry(RulePartner, e, false, ""); err != nil {
			return err
		}
	}
	p.counts = make([]atomic.Int64, len(p.rules)*int(numOutputs))
	n.partners.Store(p)
	n.gen.Add(1)
	return nil
}

// CheckPartner reports the first entry of a partner's declared
// constituency that [Net.SetPartners] would refuse, naming it.
func CheckPartner(entries []Entry) error {
	scratch := &Net{ip: new(bart.Table[uint32]), domains: map[string][]int32{}, exact: map[string][]int32{}}
	for _, e := range entries {
		if asnEntry.MatchString(strings.TrimSpace(e.Value)) {
			return fmt.Errorf("partner constituency entry %q (%s): give the autonomous system's prefixes", e.Value, e.Where)
		}
		if err := scratch.addEntry(RulePartner, e, false, ""); err != nil {
			return err
		}
	}
	return nil
}

// Generation changes whenever what the net protects changes (the
// partners' constituencies), for caches of what it decided.
func (n *Net) Generation() uint64 {
	if n == nil {
		return 0
	}
	return n.gen.Load()
}

// Enabled reports whether the net has any rule.
func (n *Net) Enabled() bool { return n != nil && (len(n.rules) > 0 || n.partners.Load() != nil) }

// Default returns the net a node starts with when its configuration says
// nothing: the IANA special-purpose registries and the shipped
// warninglists, networks cut around protected space and never wider than
// /8 (IPv4) or /16 (IPv6).
func Default() (*Net, error) {
	lists, err := ShippedWarninglists()
	if err != nil {
		return nil, err
	}
	return New(Config{IANA: true, Warninglists: lists, WidestIPv4: 8, WidestIPv6: 16})
}
