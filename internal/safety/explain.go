package safety

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/entente-cti/entente/internal/observable"
)

// Explanation says what the net does with a value and why.
type Explanation struct {
	// Value is the value in its canonical form, Kind its kind.
	Value string          `json:"value"`
	Kind  observable.Kind `json:"kind"`
	// Protected is set when the net does not act on the value as given.
	Protected bool `json:"protected"`
	// Action is what happens to it.
	Action Action `json:"action"`
	// Rule is the rule that decided, as text ("" when kept).
	Rule string `json:"rule,omitempty"`
	// Rules are every rule that bears on the value: for an address, each
	// protected range it lies in; for a network, those it lies in and
	// those it contains; for a domain, its protected parent domains.
	Rules []Match `json:"rules,omitempty"`
	// Remaining are, for a cut network, the prefixes that remain.
	Remaining []string `json:"remaining,omitempty"`
	// Outputs are the outputs the decision applies to.
	Outputs []string `json:"outputs"`
	// Summary says it in a sentence.
	Summary string `json:"summary"`
}

// Explain tells what the net does with value (any observable: it is
// recognised and normalised first) in every output, and which rules
// decide it, with how many values each rule kept out of each output so
// far. An error says why value is not an observable.
func (n *Net) Explain(value string) (Explanation, error) {
	k, v, err := observable.Detect(value)
	if err != nil {
		return Explanation{}, fmt.Errorf("explain %q: %w", strings.TrimSpace(value), err)
	}
	d := n.Decide(k, v)
	ex := Explanation{Value: v, Kind: k, Action: d.Action, Protected: d.Action != Keep}
	for _, o := range Outputs {
		ex.Outputs = append(ex.Outputs, o.String())
	}
	if n != nil {
		ex.Rules = n.matches(k, v)
		if p := n.partners.Load(); p != nil {
			ex.Rules = append(ex.Rules, p.matches(k, v)...)
		}
	}
	if d.Action != Keep {
		ex.Rule = d.Rule.String()
	}
	for _, p := range d.Parts {
		if p.IsSingleIP() {
			ex.Remaining = append(ex.Remaining, p.Addr().String())
		} else {
			ex.Remaining = append(ex.Remaining, p.String())
		}
	}
	const everywhere = "every export format, the sensor snapshot, offline matching (entente match) and correlation"
	switch d.Action {
	case Keep:
		ex.Summary = fmt.Sprintf("%s is not protected: it is exported, matched and correlated as given", v)
	case Suppress:
		ex.Summary = fmt.Sprintf("%s is protected by %s: it is left out of %s", v, ex.Rule, everywhere)
	case Refuse:
		ex.Summary = fmt.Sprintf("%s is refused by %s: it is left out, whole, of %s", v, ex.Rule, everywhere)
	case Cut:
		ex.Summary = fmt.Sprintf("%s contains protected space (%s): every export format, the sensor snapshot and offline matching carry only the %d prefixes that remain once it is cut out; a sighting of it still counts towards alerts",
			v, ex.Rule, len(ex.Remaining))
	}
	return ex, nil
}

// matches gathers every rule that bears on v, with its counts.
func (n *Net) matches(k observable.Kind, v string) []Match {
	var out []Match
	seen := map[string]bool{}
	add := func(r int32, p netip.Prefix) {
		key := fmt.Sprint(r, p)
		if r < 0 || seen[key] {
			return
		}
		seen[key] = true
		m := Match{Rule: n.rules[r], Text: n.rules[r].String(), Prefix: prefixString(p)}
		for o := range numOutputs {
			if c := n.counts[int(r)*int(numOutputs)+int(o)].Load(); c > 0 {
				if m.Suppressed == nil {
					m.Suppressed = map[string]int64{}
				}
				m.Suppressed[o.String()] = c
			}
		}
		out = append(out, m)
	}
	ipRules := func(p netip.Prefix, inside bool) {
		for sp, i := range n.ip.Supernets(p) {
			for _, r := range n.set(i) {
				add(r, sp)
			}
		}
		if inside {
			// The protected ranges inside a network: the first of each
			// rule (a /0 holds every range of every list).
			ruled := map[int32]bool{}
			for sp, i := range n.ip.Subnets(p) {
				for _, r := range n.set(i) {
					if !ruled[r] {
						ruled[r] = true
						add(r, sp)
					}
				}
			}
		}
	}
	domainRules := func(d string) {
		for h := d; h != ""; {
			for _, r := range n.domains[h] {
				add(r, netip.Prefix{})
			}
			i := strings.IndexByte(h, '.')
			if i < 0 {
				break
			}
			h = h[i+1:]
		}
	}
	switch k {
	case observable.IPv4, observable.IPv6:
		if a, err := netip.ParseAddr(v); err == nil {
			ipRules(netip.PrefixFrom(a, a.BitLen()), false)
		}
	case observable.CIDR4, observable.CIDR6:
		if p, err := netip.ParsePrefix(v); err == nil {
			fam := 0
			if p.Addr().Is6() {
				fam = 1
			}
			if n.widest[fam] > 0 && p.Bits() < n.widest[fam] {
				add(n.broad[fam], netip.Prefix{})
			}
			ipRules(p.Masked(), true)
		}
	case observable.Domain:
		domainRules(v)
	case observable.URL, observable.Email:
		for _, r := range n.exact[string(k)+"\x00"+v] {
			add(r, netip.Prefix{})
		}
		host := urlHost(v)
		if k == observable.Email {
			host = v[strings.LastIndexByte(v, '@')+1:]
		}
		if a, err := netip.ParseAddr(host); err == nil {
			ipRules(netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), false)
		} else if host != "" {
			domainRules(host)
		}
	default:
		for _, r := range n.exact[string(k)+"\x00"+v] {
			add(r, netip.Prefix{})
		}
	}
	for _, name := range n.wl.Match(k, v) {
		add(n.wlRule[name], netip.Prefix{})
	}
	return out
}
