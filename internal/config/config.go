// Package config reads a node's configuration: a TOML file whose values
// flags may override, with ${ENV} expansion so secrets need not be written
// in the file. Default returns a configuration that runs a node on the
// embedded store; Validate names the setting at fault.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/correlate"

	"github.com/BurntSushi/toml"
)

// Config is a node's configuration. Each field's doc comment is its
// documentation: docs/configuration.md and the comments of
// [WriteTOML] are generated from them (see keys_gen.go), and a test
// fails when a field has none.
type Config struct {
	// Listen is the address (host:port) the HTTP server binds.
	Listen string `toml:"listen"`
	// Data is the node's data directory: the embedded SQLite store
	// (entente.db, audit.db) and the webhook delivery queue live there.
	Data string `toml:"data"`
	// Devices is the device-watch configuration file (TOML, the format
	// of `entente watch`: constituency, learning period, beacon scoring,
	// device classes and their country policies; docs/devices.md), a
	// path relative to this file's directory. When set, or when
	// DATA/devices.toml exists, the node keeps a device watch: sensors
	// post their logs to /api/v1/devices/events, its findings become
	// sightings, and its profiles persist in the data directory. The
	// --devices-config flag of serve overrides it.
	Devices string `toml:"devices"`
	// Store is a PostgreSQL URL (postgres://user:password@host/db); empty
	// means the embedded SQLite store in data. Several replicas may
	// share one PostgreSQL store. Its password is redacted when the
	// configuration is printed.
	Store string `toml:"store" secret:"url"`
	// Title is the node's title in TAXII discovery.
	Title string `toml:"title"`
	// Description is the node's description in TAXII discovery.
	Description string `toml:"description"`
	// Contact is the contact information in TAXII discovery (e-mail,
	// URL); empty leaves it out.
	Contact string `toml:"contact"`
	// APIRoot is the name of the node's TAXII API root: /taxii2/NAME/.
	APIRoot string `toml:"api_root"`
	// MaxContentLength is the largest request body accepted, in bytes
	// (TAXII's max_content_length).
	MaxContentLength int64 `toml:"max_content_length"`
	// MaxJSONDepth is the deepest JSON nesting accepted in a request.
	MaxJSONDepth int `toml:"max_json_depth"`
	// RatePerSecond is how many requests per second each API key may
	// make on average.
	RatePerSecond float64 `toml:"rate_per_second"`
	// Burst is how many requests an API key may make at once above
	// rate_per_second.
	Burst int `toml:"burst"`
	// BodyMemoryPerKey bounds, in bytes, the memory that the bodies of
	// one API key's TAXII Add Objects and sightings requests hold while
	// they are read, decoded, validated and stored; past it, 429 with
	// Retry-After. A body is charged twice its size plus 1 KiB per
	// object; a request is always admitted when nothing else is charged
	// to its key, so no body within max_content_length is refused for
	// its size alone. Default 256 MiB (three 32 MiB envelopes of
	// ATT&CK-sized objects at once).
	BodyMemoryPerKey int64 `toml:"body_memory_per_key"`
	// BodyMemoryTotal bounds, in bytes, that memory for the whole node;
	// past it, 503 with Retry-After. Default 1 GiB; with memory_limit
	// set, keep it well below it.
	BodyMemoryTotal int64 `toml:"body_memory_total"`
	// TLS serves HTTPS when cert and key are set, or node_key.
	TLS TLS `toml:"tls"`
	// LogLevel is the least severe log level written: debug, info, warn
	// or error.
	LogLevel string `toml:"log_level"`
	// LogFormat is how logs are written on stderr: text (for people),
	// json (one object per line, for collectors) or auto (text on a
	// terminal, json otherwise).
	LogFormat string `toml:"log_format"`
	// ShutdownGrace is how long in-flight requests may run on shutdown
	// (a Go duration: 10s, 1m).
	ShutdownGrace Duration `toml:"shutdown_grace"`
	// GCPercent is how far, in percent, the heap may grow over live data
	// before the garbage collector runs (Go's GOGC). A node's live heap
	// is small, so a high value trades a little memory for much less
	// collection work on the write path. The GOGC environment variable,
	// when set, wins.
	GCPercent int `toml:"gc_percent"`
	// MemoryLimit, in bytes, when positive, is a soft limit on the
	// process's memory (Go's GOMEMLIMIT): the collector runs more often
	// as the heap nears it. 0 means none. The GOMEMLIMIT environment
	// variable, when set, wins.
	MemoryLimit int64 `toml:"memory_limit"`
	// Safety is the safety net: what the node never acts on. Every
	// export format, the snapshot sensors match against, offline
	// matching and correlation leave out what it protects, cut networks
	// around protected space, and count each suppression
	// (entente_safety_suppressed_total); `entente export --explain VALUE`
	// and GET /api/v1/explain?value= say which rule keeps a value out.
	Safety Safety `toml:"safety"`
	// Blind configures blind access: partners whose agreement grants it
	// test values from their own logs against indicators they may not
	// receive (docs/blind.md).
	Blind Blind `toml:"blind"`
	// Correlation configures coordinated alerts: the window sightings
	// are counted in, the thresholds of each tier and how far sources
	// are trusted. Every alert's evidence names the tier's rule.
	Correlation Correlation `toml:"correlation"`
}

// Correlation configures coordinated alerts (internal/correlate).
type Correlation struct {
	// Window is the sliding window sightings are counted together in
	// (a Go duration: 24h).
	Window Duration `toml:"window"`
	// FederationCountries is the number of countries in the federation,
	// for the global tier's min_country_share; 0 when unknown (the
	// share is then not used). The --federation-countries flag of serve
	// overrides it.
	FederationCountries int `toml:"federation_countries"`
	// DefaultWeight is what a source (an origin node that vouches for
	// sightings: a partner, or this node) counts for towards a tier's
	// min_sources, unless its trust says otherwise (entente partner
	// trust).
	DefaultWeight float64 `toml:"default_weight"`
	// DefaultQuota is how many sightings a partner may add per window
	// unless its trust says otherwise; past it they are refused. 0 is no
	// quota. The node's own sensors have none.
	DefaultQuota int `toml:"default_quota"`
	// NationalMinOrgs is the national tier's threshold: distinct
	// organisations in one country. One source may vouch for any number
	// of organisations in its own country but for one in any other, so
	// no single origin raises another country's national tier.
	NationalMinOrgs int `toml:"national_min_orgs"`
	// NationalMinSources is the independent sources (each counted by its
	// trust weight) the national tier needs.
	NationalMinSources float64 `toml:"national_min_sources"`
	// RegionalMinCountries is the regional tier's threshold: distinct
	// countries.
	RegionalMinCountries int `toml:"regional_min_countries"`
	// RegionalMinSources is the independent sources the regional tier
	// needs: with 2, no single origin raises it, however many
	// pseudonyms in however many countries it sends.
	RegionalMinSources float64 `toml:"regional_min_sources"`
	// GlobalMinCountries is the global tier's threshold: distinct
	// countries (or global_min_country_share of the federation's).
	GlobalMinCountries int `toml:"global_min_countries"`
	// GlobalMinCountryShare is the share (0 to 1) of the federation's
	// countries that also meets the global tier; 0 disables it.
	GlobalMinCountryShare float64 `toml:"global_min_country_share"`
	// GlobalMinSources is the independent sources the global tier
	// needs.
	GlobalMinSources float64 `toml:"global_min_sources"`
}

// Blind configures blind access (internal/blind).
type Blind struct {
	// Secret is the node's blind-access secret, base64 of at least 32
	// random bytes: every partner's key of every epoch is derived from
	// it, so every replica sharing a PostgreSQL store needs the same one,
	// and a new secret starts a new series of sets. Empty: one is
	// generated the first time blind access is used and kept in the
	// store. Give it through the environment rather than in the file; it
	// is redacted when the configuration is printed and never logged.
	Secret string `toml:"secret" secret:"key"`
}

// BlindSecret returns the decoded blind-access secret (nil when none is
// configured).
func (b Blind) BlindSecret() ([]byte, error) {
	if b.Secret == "" {
		return nil, nil
	}
	s, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b.Secret))
	if err != nil {
		return nil, errors.New("blind.secret: not base64")
	}
	if len(s) < 32 {
		return nil, fmt.Errorf("blind.secret: %d bytes, at least 32 random bytes are needed", len(s))
	}
	return s, nil
}

// Safety configures the safety net (internal/safety).
type Safety struct {
	// IANA protects what the IANA IPv4 and IPv6 special-purpose address
	// registries (RFC 6890, RFC 8190) say is not globally reachable
	// (10.0.0.0/8, 127.0.0.0/8, 192.0.2.0/24, fc00::/7…), and the
	// multicast blocks 224.0.0.0/4 and ff00::/8. The registries are
	// embedded in the binary; their source, date and the decision for
	// each entry are in internal/safety/data/README.md.
	IANA bool `toml:"iana"`
	// ShippedWarninglists protects the values of the MISP warninglists
	// shipped with the node: RFC 1918, RFC 3849, RFC 5735, RFC 6598,
	// RFC 6761 special-use names, IPv6 link-local, multicast, hashes of
	// empty files.
	ShippedWarninglists bool `toml:"shipped_warninglists"`
	// Warninglists is a directory of MISP warninglists (a checkout of
	// the misp-warninglists repository: lists/NAME/list.json) whose
	// values are protected too; empty for none.
	Warninglists string `toml:"warninglists"`
	// Allowlist is a file of values the node never acts on, one per
	// line: addresses, networks, domains (each with its subdomains),
	// URLs, e-mail addresses, hashes; '#' starts a comment. A malformed
	// line stops the node at start, naming the file and the line.
	Allowlist string `toml:"allowlist"`
	// ConstituencyNetworks are the node's own networks and addresses
	// (CIDR), never blocked nor alerted on.
	ConstituencyNetworks []string `toml:"constituency_networks"`
	// ConstituencyDomains are the node's own domains; each protects its
	// subdomains too.
	ConstituencyDomains []string `toml:"constituency_domains"`
	// ConstituencyASNs are the node's autonomous systems ("AS64500"):
	// their prefixes are protected, read from asn_prefixes (an AS
	// without prefixes there is an error).
	ConstituencyASNs []string `toml:"constituency_asns"`
	// ConstituencyFile is a file of more constituency entries, one per
	// line: networks, addresses, domains, "AS64500"; '#' starts a
	// comment.
	ConstituencyFile string `toml:"constituency_file"`
	// ASNPrefixes is a file of the prefixes of the constituency's
	// autonomous systems, one "AS64500 192.0.2.0/24" pair per line
	// (also "64500,192.0.2.0/24"). Entente has no routing data of its
	// own: export the pairs from your RIR or routing registry.
	ASNPrefixes string `toml:"asn_prefixes"`
	// Networks is what happens to a network indicator that contains
	// protected space: cut (it is replaced by the prefixes that remain
	// once the protected ranges are cut out) or refuse (it is left out
	// whole). A network inside protected space is always left out.
	Networks string `toml:"networks"`
	// WidestIPv4 is the shortest prefix length an IPv4 network
	// indicator may have: a wider one (0.0.0.0/0, 128.0.0.0/1…) is
	// refused whole. 0 accepts any.
	WidestIPv4 int `toml:"widest_ipv4"`
	// WidestIPv6 is the shortest prefix length an IPv6 network
	// indicator may have: a wider one (::/0, 2000::/3…) is refused
	// whole. 0 accepts any.
	WidestIPv6 int `toml:"widest_ipv6"`
}

// TLS configures HTTPS.
type TLS struct {
	// Cert is the server's certificate file (PEM), chain included.
	Cert string `toml:"cert"`
	// Key is the private key file (PEM) of cert.
	Key string `toml:"key"`
	// ClientCA is a CA file (PEM): clients that present a certificate
	// must have one it signed (API keys still authenticate requests).
	ClientCA string `toml:"client_ca"`
	// NodeKey serves HTTPS with the node's own key pair, kept in the
	// data directory (node-key.pem, node-cert.pem; made by 'entente init'
	// or by the first start): its peers pin the key's fingerprint (peer
	// add --pin), which the node prints when it starts. Not with cert
	// and key.
	NodeKey bool `toml:"node_key"`
}

// Duration is a time.Duration written as "10s" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Default returns the configuration of a node on the embedded store,
// listening on the loopback interface.
func Default() Config {
	return Config{
		Listen:           "127.0.0.1:8470",
		Data:             "entente-data",
		Title:            "Entente node",
		Description:      "A sovereign, federated exchange for cyber-threat intelligence",
		APIRoot:          "api1",
		MaxContentLength: 32 << 20,
		MaxJSONDepth:     64,
		RatePerSecond:    1000,
		Burst:            2000,
		BodyMemoryPerKey: DefaultBodyMemoryPerKey,
		BodyMemoryTotal:  DefaultBodyMemoryTotal,
		LogLevel:         "info",
		LogFormat:        "auto",
		ShutdownGrace:    Duration{10 * time.Second},
		GCPercent:        DefaultGCPercent,
		Correlation: Correlation{
			Window:          Duration{24 * time.Hour},
			DefaultWeight:   1,
			NationalMinOrgs: 2, NationalMinSources: 1,
			RegionalMinCountries: 3, RegionalMinSources: 2,
			GlobalMinCountries: 10, GlobalMinCountryShare: 0.5, GlobalMinSources: 3,
		},
		Safety: Safety{
			IANA:                 true,
			ShippedWarninglists:  true,
			ConstituencyNetworks: []string{},
			ConstituencyDomains:  []string{},
			ConstituencyASNs:     []string{},
			Networks:             "cut",
			WidestIPv4:           8,
			WidestIPv6:           16,
		},
	}
}

// DefaultGCPercent is the default GCPercent.
const DefaultGCPercent = 400

// The defaults of BodyMemoryPerKey and BodyMemoryTotal.
const (
	DefaultBodyMemoryPerKey = 256 << 20
	DefaultBodyMemoryTotal  = 1 << 30
)

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Load reads the TOML file at path over the defaults, expanding ${VAR}
// references from the environment, and validates the result.
func Load(path string, getenv func(string) string) (Config, error) {
	c := Default()
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	var missing []string
	text := envRef.ReplaceAllStringFunc(string(b), func(m string) string {
		name := envRef.FindStringSubmatch(m)[1]
		v := getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return c, fmt.Errorf("config %s: environment variables not set: %s", path, strings.Join(missing, ", "))
	}
	md, err := toml.Decode(text, &c)
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return c, fmt.Errorf("config %s: unknown setting %q", path, und[0].String())
	}
	if err := c.Validate(); err != nil {
		var ee *EntryError
		if errors.As(err, &ee) {
			table, key, _ := strings.Cut(ee.Key, ".")
			if line := EntryLine(text, table, key, ee.Value); line > 0 {
				return c, fmt.Errorf("config %s line %d: %w", path, line, err)
			}
		}
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

var apiRootName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Validate checks every setting and names the first one at fault.
func (c Config) Validate() error {
	if _, err := c.Blind.BlindSecret(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port: %v", c.Listen, err)
	}
	if c.Store == "" && c.Data == "" {
		return fmt.Errorf("data: a data directory is required for the embedded store")
	}
	if c.Store != "" && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") {
		return fmt.Errorf("store: %q is not a postgres:// URL", c.Store)
	}
	if !apiRootName.MatchString(c.APIRoot) {
		return fmt.Errorf("api_root: %q must be 1-64 letters, digits, '-' or '_'", c.APIRoot)
	}
	if c.MaxContentLength < 1024 {
		return fmt.Errorf("max_content_length: %d is below 1024 bytes", c.MaxContentLength)
	}
	if c.MaxJSONDepth < 8 {
		return fmt.Errorf("max_json_depth: %d is below 8", c.MaxJSONDepth)
	}
	if c.GCPercent < 25 {
		return fmt.Errorf("gc_percent: %d is below 25", c.GCPercent)
	}
	if c.MemoryLimit < 0 {
		return fmt.Errorf("memory_limit: %d is negative", c.MemoryLimit)
	}
	if c.RatePerSecond <= 0 || c.Burst <= 0 {
		return fmt.Errorf("rate_per_second and burst must be positive")
	}
	if c.BodyMemoryPerKey < 1<<20 {
		return fmt.Errorf("body_memory_per_key: %d is below 1 MiB", c.BodyMemoryPerKey)
	}
	if c.BodyMemoryTotal < c.BodyMemoryPerKey {
		return fmt.Errorf("body_memory_total: %d is below body_memory_per_key (%d)", c.BodyMemoryTotal, c.BodyMemoryPerKey)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return fmt.Errorf("tls: cert and key must be given together")
	}
	if c.TLS.NodeKey && c.TLS.Cert != "" {
		return fmt.Errorf("tls.node_key: serves the node's own key pair; it cannot be set with tls.cert and tls.key")
	}
	if c.TLS.ClientCA != "" && c.TLS.Cert == "" && !c.TLS.NodeKey {
		return fmt.Errorf("tls.client_ca: needs tls.cert and tls.key, or tls.node_key")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		return fmt.Errorf("log_format: %q is not auto, text or json", c.LogFormat)
	}
	if err := c.Correlation.Engine().Validate(); err != nil {
		return fmt.Errorf("correlation: %v", err)
	}
	return c.Safety.validate()
}

// Engine returns the correlation engine's configuration: the default
// window resolution and clock skew, with c's window, tiers and trust
// defaults.
func (c Correlation) Engine() correlate.Config {
	return correlate.Config{
		Window: c.Window.Duration, Slots: 8, MaxSkew: 5 * time.Minute, MaxAge: c.Window.Duration,
		Tiers: []correlate.Tier{
			{Name: "national", MinOrgsInOneCountry: c.NationalMinOrgs, MinSources: c.NationalMinSources},
			{Name: "regional", MinCountries: c.RegionalMinCountries, MinSources: c.RegionalMinSources},
			{Name: "global", MinCountries: c.GlobalMinCountries, MinCountryShare: c.GlobalMinCountryShare, MinSources: c.GlobalMinSources},
		},
		FederationCountries: c.FederationCountries, DefaultWeight: c.DefaultWeight, DefaultQuota: c.DefaultQuota,
	}
}

// validate checks the safety settings that need no file: the files are
// read, and their lines checked, when the node builds its net.
func (s Safety) validate() error {
	if s.Networks != "cut" && s.Networks != "refuse" {
		return fmt.Errorf("safety.networks: %q is not cut or refuse", s.Networks)
	}
	if s.WidestIPv4 < 0 || s.WidestIPv4 > 32 {
		return fmt.Errorf("safety.widest_ipv4: %d is not a prefix length from 0 to 32", s.WidestIPv4)
	}
	if s.WidestIPv6 < 0 || s.WidestIPv6 > 128 {
		return fmt.Errorf("safety.widest_ipv6: %d is not a prefix length from 0 to 128", s.WidestIPv6)
	}
	for _, l := range []struct {
		key    string
		values []string
		check  func(string) error
	}{
		{"constituency_networks", s.ConstituencyNetworks, checkNetwork},
		{"constituency_domains", s.ConstituencyDomains, checkDomain},
		{"constituency_asns", s.ConstituencyASNs, checkASN},
	} {
		for i, v := range l.values {
			if err := l.check(v); err != nil {
				return &EntryError{Key: "safety." + l.key, Index: i, Value: v, Err: err}
			}
		}
	}
	if len(s.ConstituencyASNs) > 0 && s.ASNPrefixes == "" {
		return fmt.Errorf("safety.constituency_asns: autonomous systems need safety.asn_prefixes, a file of their prefixes")
	}
	return nil
}

// EntryError is a malformed entry of a list setting.
type EntryError struct {
	Key   string // "safety.constituency_networks"
	Index int
	Value string
	Err   error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("%s: entry %d %q: %v", e.Key, e.Index+1, e.Value, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

func checkNetwork(v string) error {
	v = strings.TrimSpace(v)
	if strings.Contains(v, "/") {
		if _, err := netip.ParsePrefix(v); err != nil {
			return fmt.Errorf("not a network (CIDR)")
		}
		return nil
	}
	if _, err := netip.ParseAddr(v); err != nil {
		return fmt.Errorf("not a network (CIDR) or an address")
	}
	return nil
}

var domainName = regexp.MustCompile(`^(?i)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?$`)

func checkDomain(v string) error {
	v = strings.TrimSpace(v)
	if _, err := netip.ParseAddr(v); err == nil {
		return fmt.Errorf("an address, not a domain (put it in constituency_networks)")
	}
	if len(v) > 253 || !domainName.MatchString(v) || !strings.Contains(strings.TrimSuffix(v, "."), ".") || numeric.MatchString(v) {
		return fmt.Errorf("not a domain name")
	}
	return nil
}

var numeric = regexp.MustCompile(`^[0-9.]+$`)

var asnName = regexp.MustCompile(`^(?i)AS[0-9]{1,10}$`)

func checkASN(v string) error {
	v = strings.TrimSpace(v)
	if !asnName.MatchString(v) {
		return fmt.Errorf("not an autonomous system (AS64500)")
	}
	if _, err := strconv.ParseUint(v[2:], 10, 32); err != nil {
		return fmt.Errorf("AS number out of range")
	}
	return nil
}

// EntryLine returns the line of the configuration text on which value is
// written as an element of the array key (in [table]), or 0 when it
// cannot be found: errors and the safety net's rules name it.
func EntryLine(text, table, key, value string) int {
	inTable, inKey := table == "", false
	keyRe := regexp.MustCompile(`^\s*` + regexp.QuoteMeta(key) + `\s*=`)
	for i, l := range strings.Split(text, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") && !inKey {
			inTable = t == "["+table+"]"
			continue
		}
		if !inTable {
			continue
		}
		if keyRe.MatchString(l) {
			inKey = true
		}
		if inKey {
			if strings.Contains(l, `"`+value+`"`) || strings.Contains(l, `'`+value+`'`) {
				return i + 1
			}
			if strings.Contains(l, "]") && !strings.HasPrefix(t, "[") {
				inKey = false
			}
		}
	}
	return 0
}
