package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/feedfetch"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/pin"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/postgres"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

// openStore opens the node's store: PostgreSQL when url is set, else the
// embedded SQLite store in dir. oneShot says the process writes and
// exits (an offline command, not serve): see [sqlite.OpenOneShot].
func openStore(ctx context.Context, dir, url string, oneShot bool) (store.Store, error) {
	if url != "" {
		st, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return st, nil
	}
	if dir == "" {
		return nil, usagef("--data DIR (or --store postgres://…) is required")
	}
	open := sqlite.Open
	if oneShot {
		open = sqlite.OpenOneShot
	}
	st, err := open(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	return st, nil
}

// storeExists reports whether dir already holds an embedded store, so that
// offline commands do not silently create an empty node in a mistyped
// directory.
func storeExists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "entente.db"))
	return err == nil
}

// openNode opens the store and the node service over it, for commands that
// work offline on --data (or directly on --store).
func openNode(ctx context.Context, cfg config.Config, logger *slog.Logger) (*node.Service, store.Store, error) {
	return openNodeConfig(ctx, cfg, "", logger)
}

// openNodeConfig is openNode with the configuration file cfg was read
// from ("" for none), for the safety net's relative paths and lines.
func openNodeConfig(ctx context.Context, cfg config.Config, cfgFile string, logger *slog.Logger) (*node.Service, store.Store, error) {
	if cfg.Store == "" && !storeExists(cfg.Data) {
		return nil, nil, fmt.Errorf("%s holds no node (run 'entente init --data %s' first)", cfg.Data, cfg.Data)
	}
	net, err := safetyNet(cfg, cfgFile)
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, cfg.Data, cfg.Store, true)
	if err != nil {
		return nil, nil, err
	}
	// A command's node does not outlive the command: no background
	// warming (node.Config.OneShot).
	nc := nodeConfig(cfg, net, 0)
	nc.OneShot = true
	id, err := node.New(st, nc, logger).Identity(ctx)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	nc.Org = id.ID
	return node.New(st, nc, logger), st, nil
}

// peerKeyMismatches counts the handshakes refused because a pinned peer
// presented another key (serve registers it as a metric).
var peerKeyMismatches = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "entente_peer_key_mismatch_total",
	Help: "TLS handshakes with a pinned peer refused because it presented another key than the one pinned (each is logged at error level and audited as peer.key_mismatch).",
})

// newService returns the node service over st; net is its safety net
// (nil: none, for commands that act on nothing).
func newService(st store.Store, cfg config.Config, net *safety.Net, logger *slog.Logger, org ...string) *node.Service {
	return newServiceSkewed(st, cfg, net, logger, 0, org...)
}

// newServiceSkewed is newService with the node's clock moved by skew
// (serve --test-clock-skew: drills run nodes whose clocks are wrong).
func newServiceSkewed(st store.Store, cfg config.Config, net *safety.Net, logger *slog.Logger, skew time.Duration, org ...string) *node.Service {
	return node.New(st, nodeConfig(cfg, net, skew, org...), logger)
}

// nodeConfig is the node service's configuration from cfg (see
// newServiceSkewed).
func nodeConfig(cfg config.Config, net *safety.Net, skew time.Duration, org ...string) node.Config {
	nc := node.Config{
		Title:            cfg.Title,
		Description:      cfg.Description,
		Contact:          cfg.Contact,
		APIRoot:          cfg.APIRoot,
		MaxContentLength: cfg.MaxContentLength,
		// Peers are reached over TAXII 2.1; pinned peers over TLS with
		// their pinned key alone. A request's retries back off to 4 s at
		// most, so that a peer back from a partition is reached within
		// seconds.
		Dial: taxiiclient.Dialer(nil, taxiiclient.Limits{MaxBackoff: 4 * time.Second},
			taxiiclient.OnKeyMismatch(func(*pin.MismatchError) { peerKeyMismatches.Inc() })),
		// Feeds are fetched over HTTP(S).
		FetchFeed: feedfetch.Fetch,
		Safety:    net,
		// Partners' blind access is reached over HTTP(S); pinned peers'
		// over TLS with their pinned key alone, like their TAXII.
		DialBlind: dialBlind,
	}
	// Validated when the configuration was loaded.
	nc.BlindSecret, _ = cfg.Blind.BlindSecret()
	if skew != 0 {
		nc.Now = func() time.Time { return time.Now().Add(skew) }
	}
	if len(org) > 0 {
		nc.Org = org[0]
	}
	return nc
}

// newLogger returns the structured logger of the process, on stderr: text
// for people (format "text", or "auto" on a terminal), else one JSON
// object per line, for log collectors.
func newLogger(env *Env, level, format string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	if format == "text" || format == "auto" && isTerminal(env.Stderr) {
		return slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: l, ReplaceAttr: shortTime}))
	}
	return slog.New(slog.NewJSONHandler(env.Stderr, &slog.HandlerOptions{Level: l}))
}

// shortTime writes a text log record's time as the local time of day, to
// the millisecond: a person reading a terminal knows the day.
func shortTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 && a.Value.Kind() == slog.KindTime {
		return slog.String(slog.TimeKey, a.Value.Time().Local().Format("15:04:05.000"))
	}
	return a
}

// quietLogger logs only warnings and errors, for CLI commands whose
// stderr is meant for people.
func quietLogger(env *Env) *slog.Logger {
	return slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
