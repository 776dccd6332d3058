package devices

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"go4.org/netipx"

	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/geo"
)

// specialRanges are reachable whatever a class policy says: traffic to
// them does not leave the local network (private-use, link-local,
// loopback, multicast, limited broadcast).
var specialRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("255.255.255.255/32"), netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("ff00::/8"),
}

// LocalRanges returns what a class policy always permits: the
// constituency and the special-purpose ranges.
func (c *Config) LocalRanges() []netip.Prefix {
	d := c.withDefaults()
	return export.Aggregate(append(slices.Clone(d.Constituency), specialRanges...))
}

// ClassPolicy builds the policy of class name for rendering (see
// export.RenderClassPolicy): its members are its networks and MAC vendor
// prefixes and, when profiles are given, the addresses and MACs of the
// devices they assign to the class (the only way a firewall can know
// devices classed by DHCP host name, fingerprint or software); its
// targets are the address space of its countries in the geo data.
func ClassPolicy(cfg *Config, name string, loc geo.Locator, profiles *Watcher) (*export.ClassPolicy, error) {
	cl, ok := cfg.Class(name)
	if !ok {
		return nil, fmt.Errorf("no class %q in the configuration (classes: %s)", name, orNone(classNames(cfg)))
	}
	if !cl.HasPolicy() {
		return nil, fmt.Errorf("class %s has no country policy (countries or deny_countries)", name)
	}
	if loc == nil {
		return nil, errors.New("the class policy needs geolocation data (--geo) to turn countries into networks")
	}
	p := &export.ClassPolicy{Class: cl.Name, MemberNets: slices.Clone(cl.Networks), Local: cfg.LocalRanges(),
		Allow: slices.Clone(cl.AllowNetworks), Domains: slices.Clone(cl.AllowDomains)}
	for _, m := range cl.MACPrefixes {
		p.MemberMACs = append(p.MemberMACs, export.MACRange{From: m.MAC, To: m.Last()})
	}
	if profiles != nil {
		for _, d := range profiles.all() {
			if profiles.className(d) != cl.Name {
				continue
			}
			if !d.mac.IsZero() && !slices.ContainsFunc(cl.MACPrefixes, func(m MACPrefix) bool { return m.Contains(d.mac) }) {
				p.MemberMACs = append(p.MemberMACs, export.MACRange{From: d.mac, To: d.mac})
			}
			for _, a := range []netip.Addr{d.addr, d.addr6} {
				if a.IsValid() && !slices.ContainsFunc(cl.Networks, func(n netip.Prefix) bool { return n.Contains(a) }) {
					p.MemberNets = append(p.MemberNets, netip.PrefixFrom(a, a.BitLen()))
				}
			}
		}
	}
	slices.SortFunc(p.MemberMACs, func(a, b export.MACRange) int { return slices.Compare(a.From[:], b.From[:]) })
	p.MemberMACs = slices.Compact(p.MemberMACs)
	if len(cl.Countries) > 0 {
		p.Countries = slices.Clone(cl.Countries)
	} else {
		p.Deny, p.Countries = true, slices.Clone(cl.DenyCountries)
	}
	p.Targets = loc.CountryPrefixes(p.Countries...)
	return p, nil
}

func classNames(cfg *Config) []string {
	var out []string
	for _, c := range cfg.Classes {
		out = append(out, c.Name)
	}
	return out
}

// addresses counts the addresses of prefixes (IPv6 in units of /64).
func addresses(ps []netip.Prefix) (v4 uint64, v6 *big.Int) {
	v6 = new(big.Int)
	for _, p := range ps {
		if p.Addr().Is4() {
			v4 += 1 << (32 - p.Bits())
			continue
		}
		if p.Bits() <= 64 {
			v6.Add(v6, new(big.Int).Lsh(big.NewInt(1), uint(64-p.Bits())))
		}
	}
	return v4, v6
}

func ipSet(ps ...[]netip.Prefix) *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, l := range ps {
		for _, p := range l {
			b.AddPrefix(p)
		}
	}
	s, _ := b.IPSet()
	return s
}

// Explain says why something is in or out of a class policy. query is
// an address, a network, a country code, or "" for the whole policy.
func Explain(cfg *Config, name string, loc geo.Locator, query string) ([]string, error) {
	cl, ok := cfg.Class(name)
	if !ok {
		return nil, fmt.Errorf("no class %q in the configuration (classes: %s)", name, orNone(classNames(cfg)))
	}
	if loc == nil {
		return nil, errors.New("explaining a class policy needs geolocation data (--geo)")
	}
	local := cfg.LocalRanges()
	query = strings.TrimSpace(query)
	var out []string
	say := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	switch {
	case query == "":
		say("class %s: %s", cl.Name, membersText(cl))
		if !cl.HasPolicy() {
			say("class %s has no country policy: every destination is in", cl.Name)
			return out, nil
		}
		countries, verb := cl.Countries, "in (permitted)"
		if len(countries) == 0 {
			countries, verb = cl.DenyCountries, "out (denied)"
		}
		for _, cc := range countries {
			ps := loc.CountryPrefixes(cc)
			v4, v6 := addresses(ps)
			say("%s: %s: %d networks in the geo data, %d IPv4 addresses and %s IPv6 /64s", cc, verb, len(ps), v4, v6)
		}
		if len(cl.Countries) > 0 {
			say("every other country: out (not permitted)")
			if cl.AllowUnknownCountry {
				say("addresses the geo data cannot place: in (allow_unknown_country)")
			} else {
				say("addresses the geo data cannot place: out")
			}
		} else {
			say("every other country: in (not denied)")
		}
		for _, n := range cl.AllowNetworks {
			say("%s: in (allow_networks), whatever its country", n)
		}
		for _, d := range cl.AllowDomains {
			say("names matching %s: in by name (allow_domains; enforced by the RPZ export and the watch, not by the address sets)", d)
		}
		say("local networks, always in (not egress): %s", prefixesText(local))
	case isCountry(query):
		cc := strings.ToUpper(query)
		ps := loc.CountryPrefixes(cc)
		var state, why string
		switch {
		case len(cl.Countries) > 0 && slices.Contains(cl.Countries, cc):
			state, why = "in", fmt.Sprintf("permitted by class %s (%s)", cl.Name, strings.Join(cl.Countries, ", "))
		case len(cl.Countries) > 0:
			state, why = "out", fmt.Sprintf("class %s permits only %s", cl.Name, strings.Join(cl.Countries, ", "))
		case slices.Contains(cl.DenyCountries, cc):
			state, why = "out", fmt.Sprintf("denied by class %s (%s)", cl.Name, strings.Join(cl.DenyCountries, ", "))
		case len(cl.DenyCountries) > 0:
			state, why = "in", fmt.Sprintf("not denied by class %s (%s)", cl.Name, strings.Join(cl.DenyCountries, ", "))
		default:
			state, why = "in", fmt.Sprintf("class %s has no country policy", cl.Name)
		}
		if len(cl.AllowNetworks) > 0 && state == "out" {
			why += "; its parts inside allow_networks are in"
		}
		say("%s (%d networks in the geo data): %s: %s", cc, len(ps), state, why)
	default:
		var p netip.Prefix
		if a, err := netip.ParseAddr(query); err == nil {
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		} else if p, err = netip.ParsePrefix(query); err != nil {
			return nil, fmt.Errorf("explain %q: want an address, a network, a country code or nothing", query)
		}
		p = p.Masked()
		if ipSet(local).ContainsPrefix(p) {
			say("%s: in: local (the constituency or a special-purpose range), traffic there is not egress", p)
			return out, nil
		}
		for _, n := range cl.AllowNetworks {
			if n.Overlaps(p) && n.Bits() <= p.Bits() {
				say("%s: in: inside %s, a permitted network (allow_networks) of class %s", p, n, cl.Name)
				return out, nil
			}
		}
		first := p.Addr()
		last := netipx.PrefixLastIP(p)
		c1, ok1 := loc.Lookup(first)
		c2, ok2 := loc.Lookup(last)
		if p.IsSingleIP() || (ok1 && ok2 && c1 == c2 && ipSet(loc.CountryPrefixes(c1)).ContainsPrefix(p)) {
			cc := ""
			if ok1 {
				cc = c1
			}
			v := cl.judgeCountry(p.String()+" is", cc)
			if p.IsSingleIP() {
				v = cl.judgeCountry(first.String()+" is", cc)
			}
			state := "out"
			if v.Permitted {
				state = "in"
			}
			where := "the geo data cannot place it"
			if cc != "" {
				for _, cp := range loc.CountryPrefixes(cc) {
					if cp.Overlaps(p) && cp.Bits() <= p.Bits() {
						where = fmt.Sprintf("it lies in %s, part of %s's address space in the geo data", cp, cc)
						break
					}
				}
			}
			subject := p.String()
			if p.IsSingleIP() {
				subject = first.String()
			}
			say("%s: %s: %s (%s)", subject, state, v.Reason, where)
			return out, nil
		}
		if !cl.HasPolicy() {
			say("%s: in: class %s has no country policy", p, cl.Name)
			return out, nil
		}
		targets := loc.CountryPrefixes(append(slices.Clone(cl.Countries), cl.DenyCountries...)...)
		set := ipSet(targets)
		switch {
		case set.ContainsPrefix(p) == (len(cl.Countries) > 0):
			say("%s: in: all of it lies in %s", p, orNone(cl.Countries))
		case !set.OverlapsPrefix(p) && len(cl.Countries) > 0:
			say("%s: out: none of it lies in %s (it starts in %s)", p, strings.Join(cl.Countries, ", "), orUnknown(c1, ok1))
		default:
			say("%s: partly in: it spans several countries (from %s to %s); the ruleset permits only the parts in %s",
				p, orUnknown(c1, ok1), orUnknown(c2, ok2), orNone(cl.Countries))
		}
	}
	return out, nil
}

func orUnknown(cc string, ok bool) string {
	if !ok {
		return "a range the geo data cannot place"
	}
	return cc
}

func membersText(cl *Class) string {
	var parts []string
	for _, m := range cl.MACPrefixes {
		parts = append(parts, "MAC prefix "+m.String())
	}
	for _, h := range cl.Hostnames {
		parts = append(parts, "DHCP host name "+h)
	}
	for _, f := range cl.Fingerprints {
		parts = append(parts, "DHCP fingerprint "+f)
	}
	for _, n := range cl.Networks {
		parts = append(parts, "network "+n.String())
	}
	for _, s := range cl.Software {
		parts = append(parts, "software "+s)
	}
	return "devices with " + strings.Join(parts, " or ")
}

func prefixesText(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
