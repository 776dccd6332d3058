package devices

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config configures the device watch. The zero value of a field means its
// default (see [Config.withDefaults]); [ParseConfig] reads it from TOML.
type Config struct {
	// Constituency lists the internal networks: devices live there, and
	// traffic that stays inside is not egress. Default: the private-use
	// ranges (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7).
	Constituency []netip.Prefix
	// Learn is how long after a device is first seen its new countries
	// and networks are learnt silently (default 7 days).
	Learn time.Duration
	// MaxDevices bounds the devices kept; when full, the least recently
	// seen hundredth is forgotten (default 200,000).
	MaxDevices int
	// TopDestinations is how many destinations each device keeps, by a
	// space-saving sketch (default 32, at most 1024).
	TopDestinations int
	// MaxNetworks is how many distinct networks a device remembers for
	// first contacts; a device that talks to more is promiscuous and
	// raises no new-network findings (default 256, at most 65536).
	MaxNetworks int
	// NetworkBits4 and NetworkBits6 are the prefix lengths of the
	// networks of first contacts (default /24 and /48).
	NetworkBits4, NetworkBits6 int
	// Beacon configures beacon detection.
	Beacon BeaconConfig
	// LongConnection is the duration from which a connection out of the
	// constituency is a finding (default 1 hour, RITA's base).
	LongConnection time.Duration
	// LargeBytes is the number of bytes a device sends in one connection
	// from which the connection is a finding (default 100 MB).
	LargeBytes uint64
	// ReportEvery is how often, at most, one kind of finding is repeated
	// for one device and destination (default 24 hours, in log time).
	ReportEvery time.Duration
	// MaxFindingsPerDay bounds a device's findings per day of log time;
	// the others are counted as suppressed (default 100).
	MaxFindingsPerDay int
	// Classes assign device classes, in order: the first that matches
	// a device is its class.
	Classes []Class
}

// BeaconConfig configures beacon detection (see docs/devices.md for the
// score).
type BeaconConfig struct {
	// Window is how many of its latest connections each destination keeps
	// (default 32, at most 255).
	Window int
	// MinEvents is the fewest events (connections more than MinGap apart)
	// a destination needs to be scored (default 6).
	MinEvents int
	// FullEvents is the number of events from which the score is not
	// discounted for lack of evidence (default 16).
	FullEvents int
	// Threshold is the score from which a destination is a beacon
	// (default 0.7).
	Threshold float64
	// MaxJitter is the median deviation from the period, as a fraction
	// of it, at which the interval score falls to 0 (default 0.25).
	MaxJitter float64
	// MinGap merges connections closer than this into one event
	// (default 1 second).
	MinGap time.Duration
}

// Class is a device class: which devices belong to it and which
// destinations it permits.
type Class struct {
	Name string
	// Devices belong to the class when any of these match.
	MACPrefixes  []MACPrefix    // vendor prefixes of the device's MAC
	Hostnames    []string       // globs of the DHCP host name (case-insensitive)
	Fingerprints []string       // globs of the DHCP fingerprint or vendor class
	Networks     []netip.Prefix // the device's address is in one
	Software     []string       // globs of software seen on the device
	// The class policy: Countries permits only these countries,
	// DenyCountries denies these (give one or neither); AllowNetworks and
	// AllowDomains are permitted whatever their country.
	Countries           []string
	DenyCountries       []string
	AllowNetworks       []netip.Prefix
	AllowDomains        []string // globs of DNS names ("*.vendor.example")
	AllowUnknownCountry bool     // destinations the geo data cannot place
}

// HasPolicy reports whether the class restricts destinations.
func (c *Class) HasPolicy() bool { return len(c.Countries) > 0 || len(c.DenyCountries) > 0 }

// Defaults.
const (
	defaultLearn        = 7 * 24 * time.Hour
	defaultMaxDevices   = 200_000
	defaultTop          = 32
	defaultMaxNetworks  = 256
	defaultWindow       = 32
	defaultMinEvents    = 6
	defaultFullEvents   = 16
	defaultThreshold    = 0.7
	defaultMaxJitter    = 0.25
	defaultLong         = time.Hour
	defaultLarge        = 100_000_000
	defaultReportEvery  = 24 * time.Hour
	defaultFindingsDay  = 100
	maxTopDestinations  = 1024
	maxWindow           = 255
	maxNetworksLimit    = 65536
	maxClasses          = 256
	maxPatternsPerClass = 4096
)

// PrivateRanges are the default constituency.
var PrivateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("fc00::/7"),
}

// withDefaults returns c with defaults in place of zero values.
func (c Config) withDefaults() Config {
	if len(c.Constituency) == 0 {
		c.Constituency = PrivateRanges
	}
	if c.Learn == 0 {
		c.Learn = defaultLearn
	}
	if c.Learn < 0 {
		c.Learn = 0
	}
	if c.MaxDevices == 0 {
		c.MaxDevices = defaultMaxDevices
	}
	if c.TopDestinations == 0 {
		c.TopDestinations = defaultTop
	}
	if c.MaxNetworks == 0 {
		c.MaxNetworks = defaultMaxNetworks
	}
	if c.NetworkBits4 == 0 {
		c.NetworkBits4 = 24
	}
	if c.NetworkBits6 == 0 {
		c.NetworkBits6 = 48
	}
	b := &c.Beacon
	if b.Window == 0 {
		b.Window = defaultWindow
	}
	if b.MinEvents == 0 {
		b.MinEvents = defaultMinEvents
	}
	if b.FullEvents == 0 {
		b.FullEvents = defaultFullEvents
	}
	if b.Threshold == 0 {
		b.Threshold = defaultThreshold
	}
	if b.MaxJitter == 0 {
		b.MaxJitter = defaultMaxJitter
	}
	if b.MinGap == 0 {
		b.MinGap = time.Second
	}
	if c.LongConnection == 0 {
		c.LongConnection = defaultLong
	}
	if c.LargeBytes == 0 {
		c.LargeBytes = defaultLarge
	}
	if c.ReportEvery == 0 {
		c.ReportEvery = defaultReportEvery
	}
	if c.MaxFindingsPerDay == 0 {
		c.MaxFindingsPerDay = defaultFindingsDay
	}
	return c
}

// Validate checks a configuration (after defaults), naming the setting
// at fault.
func (c *Config) Validate() error {
	d := c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, p := range d.Constituency {
		if !p.IsValid() {
			bad("constituency: invalid network %v", p)
		}
	}
	if d.MaxDevices < 1 {
		bad("max_devices: %d is not positive", d.MaxDevices)
	}
	if d.TopDestinations < 1 || d.TopDestinations > maxTopDestinations {
		bad("top_destinations: %d is not between 1 and %d", d.TopDestinations, maxTopDestinations)
	}
	if d.MaxNetworks < 1 || d.MaxNetworks > maxNetworksLimit {
		bad("max_networks: %d is not between 1 and %d", d.MaxNetworks, maxNetworksLimit)
	}
	if d.NetworkBits4 < 1 || d.NetworkBits4 > 32 {
		bad("network_bits_v4: %d is not between 1 and 32", d.NetworkBits4)
	}
	if d.NetworkBits6 < 1 || d.NetworkBits6 > 128 {
		bad("network_bits_v6: %d is not between 1 and 128", d.NetworkBits6)
	}
	b := d.Beacon
	if b.Window < 4 || b.Window > maxWindow {
		bad("beacon.window: %d is not between 4 and %d", b.Window, maxWindow)
	}
	if b.MinEvents < 4 || b.MinEvents > b.Window {
		bad("beacon.min_events: %d is not between 4 and the window (%d)", b.MinEvents, b.Window)
	}
	if b.FullEvents < b.MinEvents || b.FullEvents > b.Window {
		bad("beacon.full_events: %d is not between min_events (%d) and the window (%d)", b.FullEvents, b.MinEvents, b.Window)
	}
	if !(b.Threshold > 0 && b.Threshold <= 1) {
		bad("beacon.threshold: %v is not in (0, 1]", b.Threshold)
	}
	if !(b.MaxJitter > 0 && b.MaxJitter <= 0.5) {
		bad("beacon.max_jitter: %v is not in (0, 0.5]", b.MaxJitter)
	}
	if b.MinGap < 0 {
		bad("beacon.min_gap: %v is negative", b.MinGap)
	}
	if d.LongConnection < 0 || d.ReportEvery < 0 {
		bad("long_connection and report_every must not be negative")
	}
	if d.MaxFindingsPerDay < 1 {
		bad("max_findings_per_day: %d is not positive", d.MaxFindingsPerDay)
	}
	if len(d.Classes) > maxClasses {
		bad("class: %d classes, at most %d", len(d.Classes), maxClasses)
	}
	seen := map[string]bool{}
	for i, cl := range d.Classes {
		where := fmt.Sprintf("class %d (%q)", i+1, cl.Name)
		if cl.Name == "" || strings.TrimFunc(cl.Name, func(r rune) bool {
			return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
		}) != "" || len(cl.Name) > 64 {
			bad("%s: name must be 1 to 64 letters, digits, '-' or '_'", where)
		}
		if seen[cl.Name] {
			bad("%s: the name is used twice", where)
		}
		seen[cl.Name] = true
		if len(cl.Countries) > 0 && len(cl.DenyCountries) > 0 {
			bad("%s: give countries (permitted) or deny_countries, not both", where)
		}
		for _, cc := range append(append([]string(nil), cl.Countries...), cl.DenyCountries...) {
			if !isCountry(cc) {
				bad("%s: %q is not an ISO 3166-1 alpha-2 country code", where, cc)
			}
		}
		for _, g := range append(append(append(append([]string(nil), cl.Hostnames...), cl.Fingerprints...), cl.Software...), cl.AllowDomains...) {
			if _, err := path.Match(g, ""); err != nil {
				bad("%s: pattern %q: %v", where, g, err)
			}
		}
		n := len(cl.MACPrefixes) + len(cl.Hostnames) + len(cl.Fingerprints) + len(cl.Networks) + len(cl.Software) + len(cl.AllowNetworks) + len(cl.AllowDomains)
		if n > maxPatternsPerClass {
			bad("%s: %d patterns, at most %d", where, n, maxPatternsPerClass)
		}
		if len(cl.MACPrefixes)+len(cl.Hostnames)+len(cl.Fingerprints)+len(cl.Networks)+len(cl.Software) == 0 {
			bad("%s: no rule assigns devices to it (mac_prefixes, hostnames, dhcp_fingerprints, networks or software)", where)
		}
	}
	return errors.Join(errs...)
}

// isCountry reports whether s is two ASCII letters.
func isCountry(s string) bool {
	return len(s) == 2 && (s[0]|0x20) >= 'a' && (s[0]|0x20) <= 'z' && (s[1]|0x20) >= 'a' && (s[1]|0x20) <= 'z'
}

// Duration is a duration written as Go does ("90m", "36h") or in days
// ("7d").
type Duration time.Duration

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// ParseDuration parses a Go duration or a number of days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || days < 0 || days > 36500 {
			return 0, fmt.Errorf("duration %q: want a number of days (7d) or a Go duration (36h)", s)
		}
		return time.Duration(days * 24 * float64(time.Hour)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a number of days (7d) or a Go duration (36h)", s)
	}
	return v, nil
}

// fileConfig is the TOML form of a Config.
type fileConfig struct {
	Constituency      []string    `toml:"constituency"`
	Learn             *Duration   `toml:"learn"`
	MaxDevices        int         `toml:"max_devices"`
	TopDestinations   int         `toml:"top_destinations"`
	MaxNetworks       int         `toml:"max_networks"`
	NetworkBits4      int         `toml:"network_bits_v4"`
	NetworkBits6      int         `toml:"network_bits_v6"`
	LongConnection    Duration    `toml:"long_connection"`
	LargeBytes        uint64      `toml:"large_bytes"`
	ReportEvery       Duration    `toml:"report_every"`
	MaxFindingsPerDay int         `toml:"max_findings_per_day"`
	Beacon            fileBeacon  `toml:"beacon"`
	Class             []fileClass `toml:"class"`
}

type fileBeacon struct {
	Window     int      `toml:"window"`
	MinEvents  int      `toml:"min_events"`
	FullEvents int      `toml:"full_events"`
	Threshold  float64  `toml:"threshold"`
	MaxJitter  float64  `toml:"max_jitter"`
	MinGap     Duration `toml:"min_gap"`
}

type fileClass struct {
	Name                string   `toml:"name"`
	MACPrefixes         []string `toml:"mac_prefixes"`
	Hostnames           []string `toml:"hostnames"`
	Fingerprints        []string `toml:"dhcp_fingerprints"`
	Networks            []string `toml:"networks"`
	Software            []string `toml:"software"`
	Countries           []string `toml:"countries"`
	DenyCountries       []string `toml:"deny_countries"`
	AllowNetworks       []string `toml:"allow_networks"`
	AllowDomains        []string `toml:"allow_domains"`
	AllowUnknownCountry bool     `toml:"allow_unknown_country"`
}

func parsePrefixes(where string, ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			a, err2 := netip.ParseAddr(strings.TrimSpace(s))
			if err2 != nil {
				return nil, fmt.Errorf("%s: %q is neither a network nor an address", where, s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ParseConfig reads a device-watch configuration from TOML (see
// docs/devices.md). name is used in errors; unknown keys are errors, so
// that a misspelt setting is not silently ignored. The result is
// validated.
func ParseConfig(data []byte, name string) (*Config, error) {
	var fc fileConfig
	md, err := toml.Decode(string(data), &fc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown setting %s", name, strings.Join(keys, ", "))
	}
	c := &Config{
		MaxDevices: fc.MaxDevices, TopDestinations: fc.TopDestinations, MaxNetworks: fc.MaxNetworks,
		NetworkBits4: fc.NetworkBits4, NetworkBits6: fc.NetworkBits6, LongConnection: time.Duration(fc.LongConnection),
		LargeBytes: fc.LargeBytes, ReportEvery: time.Duration(fc.ReportEvery), MaxFindingsPerDay: fc.MaxFindingsPerDay,
		Beacon: BeaconConfig{Window: fc.Beacon.Window, MinEvents: fc.Beacon.MinEvents, FullEvents: fc.Beacon.FullEvents,
			Threshold: fc.Beacon.Threshold, MaxJitter: fc.Beacon.MaxJitter, MinGap: time.Duration(fc.Beacon.MinGap)},
	}
	if fc.Learn != nil {
		c.Learn = time.Duration(*fc.Learn)
		if c.Learn == 0 {
			c.Learn = -1 // "0": no learning period (the zero value means the default)
		}
	}
	if c.Constituency, err = parsePrefixes("constituency", fc.Constituency); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for i, f := range fc.Class {
		where := fmt.Sprintf("class %d (%q)", i+1, f.Name)
		cl := Class{Name: f.Name, Hostnames: f.Hostnames, Fingerprints: f.Fingerprints, Software: f.Software,
			AllowDomains: f.AllowDomains, AllowUnknownCountry: f.AllowUnknownCountry}
		for _, s := range f.MACPrefixes {
			p, err := ParseMACPrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: mac_prefixes: %w", name, where, err)
			}
			cl.MACPrefixes = append(cl.MACPrefixes, p)
		}
		if cl.Networks, err = parsePrefixes(where+": networks", f.Networks); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if cl.AllowNetworks, err = parsePrefixes(where+": allow_networks", f.AllowNetworks); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, l := range []struct {
			in  []string
			out *[]string
			key string
		}{{f.Countries, &cl.Countries, "countries"}, {f.DenyCountries, &cl.DenyCountries, "deny_countries"}} {
			for _, cc := range l.in {
				if !isCountry(strings.TrimSpace(cc)) {
					return nil, fmt.Errorf("%s: %s: %s: %q is not an ISO 3166-1 alpha-2 country code", name, where, l.key, cc)
				}
				*l.out = append(*l.out, strings.ToUpper(strings.TrimSpace(cc)))
			}
		}
		c.Classes = append(c.Classes, cl)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// Class returns the class named name.
func (c *Config) Class(name string) (*Class, bool) {
	for i := range c.Classes {
		if c.Classes[i].Name == name {
			return &c.Classes[i], true
		}
	}
	return nil, false
}
