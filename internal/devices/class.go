package devices

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
)

// attrs is what class rules look at of a device.
type attrs struct {
	mac         MAC
	addrs       [2]netip.Addr // IPv4 and IPv6, when known
	hostname    string
	fingerprint string
	software    []string
}

// match reports whether the class takes the device, and the rule that
// did.
func (c *Class) match(a *attrs) (bool, string) {
	if !a.mac.IsZero() {
		for _, p := range c.MACPrefixes {
			if p.Contains(a.mac) {
				return true, "MAC vendor prefix " + p.String()
			}
		}
	}
	if a.hostname != "" {
		for _, g := range c.Hostnames {
			if globMatch(g, a.hostname) {
				return true, fmt.Sprintf("DHCP host name matches %q", g)
			}
		}
	}
	if a.fingerprint != "" {
		for _, g := range c.Fingerprints {
			if globMatch(g, a.fingerprint) {
				return true, fmt.Sprintf("DHCP fingerprint matches %q", g)
			}
		}
	}
	for _, addr := range a.addrs {
		if !addr.IsValid() {
			continue
		}
		for _, p := range c.Networks {
			if p.Contains(addr) {
				return true, "address in " + p.String()
			}
		}
	}
	for _, s := range a.software {
		for _, g := range c.Software {
			if globMatch(g, s) {
				return true, fmt.Sprintf("software %q matches %q", s, g)
			}
		}
	}
	return false, ""
}

// globMatch matches s against a path.Match pattern, ignoring case.
func globMatch(pattern, s string) bool {
	ok, _ := path.Match(strings.ToLower(pattern), strings.ToLower(s))
	return ok
}

// domainPermitted reports whether name matches one of the class's
// permitted domains ("*.vendor.example" also permits vendor.example).
func (c *Class) domainPermitted(name string) (string, bool) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name == "" {
		return "", false
	}
	for _, g := range c.AllowDomains {
		if globMatch(g, name) {
			return g, true
		}
		if base, ok := strings.CutPrefix(strings.ToLower(g), "*."); ok && name == base {
			return g, true
		}
	}
	return "", false
}

// Verdict is what a class policy says of a destination.
type Verdict struct {
	Permitted bool
	// Reason says why, naming the rule: the permitted or denied
	// countries, a permitted network or domain, or the country unknown.
	Reason string
}

// Judge applies the class policy to a destination at addr, located in
// country cc ("" when the geo data cannot place it), that the device
// resolved from name ("" when unknown). A class without a policy
// permits everything.
func (c *Class) Judge(addr netip.Addr, cc, name string) Verdict {
	for _, p := range c.AllowNetworks {
		if p.Contains(addr) {
			return Verdict{true, fmt.Sprintf("%s is in the permitted network %s of class %s", addr, p, c.Name)}
		}
	}
	if g, ok := c.domainPermitted(name); ok {
		return Verdict{true, fmt.Sprintf("%s was resolved from %s, a permitted domain (%s) of class %s", addr, name, g, c.Name)}
	}
	return c.judgeCountry(addr.String()+" is", cc)
}

// judgeCountry applies the country policy to what (a subject and its
// verb: "203.0.113.5 is") located in cc.
func (c *Class) judgeCountry(what, cc string) Verdict {
	subject, _, _ := strings.Cut(what, " ")
	list := func(l []string) string { return strings.Join(l, ", ") }
	switch {
	case len(c.Countries) > 0:
		if cc == "" {
			if c.AllowUnknownCountry {
				return Verdict{true, fmt.Sprintf("the geo data cannot place %s and class %s permits unknown countries", subject, c.Name)}
			}
			return Verdict{false, fmt.Sprintf("the geo data cannot place %s; class %s permits only %s", subject, c.Name, list(c.Countries))}
		}
		if slices.Contains(c.Countries, cc) {
			return Verdict{true, fmt.Sprintf("%s in %s, permitted by class %s (%s)", what, cc, c.Name, list(c.Countries))}
		}
		return Verdict{false, fmt.Sprintf("%s in %s; class %s permits only %s", what, cc, c.Name, list(c.Countries))}
	case len(c.DenyCountries) > 0:
		if cc == "" {
			if c.AllowUnknownCountry {
				return Verdict{true, fmt.Sprintf("the geo data cannot place %s and class %s permits unknown countries", subject, c.Name)}
			}
			return Verdict{false, fmt.Sprintf("the geo data cannot place %s; class %s denies %s and unknown countries", subject, c.Name, list(c.DenyCountries))}
		}
		if slices.Contains(c.DenyCountries, cc) {
			return Verdict{false, fmt.Sprintf("%s in %s, denied by class %s (%s)", what, cc, c.Name, list(c.DenyCountries))}
		}
		return Verdict{true, fmt.Sprintf("%s in %s, not denied by class %s (%s)", what, cc, c.Name, list(c.DenyCountries))}
	}
	return Verdict{true, fmt.Sprintf("class %s has no country policy", c.Name)}
}
