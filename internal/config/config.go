// Package config reads a node's configuration: a TOML file whose values
// flags may override, with ${ENV} expansion so secrets need not be written
// in the file. Default returns a configuration that runs a node on the
// embedded store; Validate names the setting at fault.
package config

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

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
		LogLevel:         "info",
		LogFormat:        "auto",
		ShutdownGrace:    Duration{10 * time.Second},
		GCPercent:        DefaultGCPercent,
	}
}

// DefaultGCPercent is the default GCPercent.
const DefaultGCPercent = 400

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
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

var apiRootName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Validate checks every setting and names the first one at fault.
func (c Config) Validate() error {
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
	return nil
}
