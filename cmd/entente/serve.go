package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/dashboard"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/nodekey"
	"github.com/entente-cti/entente/internal/pin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func cmdServe(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "serve", "serve [--data DIR | --store URL] [--listen ADDR] [--config FILE]",
		"Run a node: TAXII 2.1 under /taxii2/, the node API under /api/v1/, the\n"+
			"analysts' dashboard under /ui/ (sign in with an analyst or admin key), /healthz,\n"+
			"/readyz and /metrics. On an empty data directory the node is created first\n"+
			"(see 'entente init'); its admin key is then printed once on stderr.\n"+
			"Flags override the settings of --config.")
	cfgFile := fs.String("config", "", "TOML configuration file (every key, with its default: docs/configuration.md, or --print-config)")
	var fl config.Config
	fs.StringVar(&fl.Data, "data", "", "data directory of the embedded store (default \"entente-data\")")
	fs.StringVar(&fl.Store, "store", "", "PostgreSQL URL (postgres://…): several replicas may share it")
	fs.StringVar(&fl.Listen, "listen", "", "address to listen on (default \"127.0.0.1:8470\")")
	fs.StringVar(&fl.TLS.Cert, "tls-cert", "", "certificate file (PEM): serve HTTPS")
	fs.StringVar(&fl.TLS.Key, "tls-key", "", "private key file (PEM) for --tls-cert")
	fs.StringVar(&fl.TLS.ClientCA, "client-ca", "", "CA file (PEM) whose client certificates are requested")
	fs.BoolVar(&fl.TLS.NodeKey, "tls", false, "serve HTTPS with the node's own key pair from the data directory (made if missing); peers pin its fingerprint, printed at start")
	fedCountries := fs.Int("federation-countries", 0, "the number of countries in the federation, for the global alert tier's share of them (0: unknown, the tier needs its minimum of countries)")
	clockSkew := fs.Duration("test-clock-skew", 0, "for drills and tests: run the node with its clock this far off (e.g. 5m, -5m)")
	fs.StringVar(&fl.LogLevel, "log-level", "", "debug, info, warn or error (default \"info\")")
	fs.StringVar(&fl.LogFormat, "log-format", "", "text (for people), json (for log collectors) or auto: text on a terminal, json otherwise (default \"auto\")")
	printConfig := fs.Bool("print-config", false, "print the configuration in effect (defaults, then --config, then flags) as TOML, secrets redacted, and exit")
	org := fs.String("org", "Entente node", "organisation name, when the node is created by this start")
	country := fs.String("country", "", "ISO 3166-1 alpha-2 country, when the node is created by this start")
	sector := fs.String("sector", "", "industry sector, when the node is created by this start")
	var geoFiles multiFlag
	fs.Var(&geoFiles, "geo", "geolocation data for exports: range CSV, CIDR directory or .mmdb (repeatable)")
	devicesConfig := fs.String("devices-config", "", "device-watch configuration (TOML; default the configuration's devices, else DATA/devices.toml when it exists): sensors then post logs to /api/v1/devices/events (docs/devices.md)")
	syncEvery := fs.Duration("sync-interval", 5*time.Minute, "how often every federation peer is synced (0: only on request)")
	alertFl := new(alertServeFlags).register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg := config.Default()
	if *cfgFile != "" {
		var err error
		if cfg, err = config.Load(*cfgFile, env.Getenv); err != nil {
			return err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "data":
			cfg.Data = fl.Data
		case "store":
			cfg.Store = fl.Store
		case "listen":
			cfg.Listen = fl.Listen
		case "tls-cert":
			cfg.TLS.Cert = fl.TLS.Cert
		case "tls-key":
			cfg.TLS.Key = fl.TLS.Key
		case "client-ca":
			cfg.TLS.ClientCA = fl.TLS.ClientCA
		case "tls":
			cfg.TLS.NodeKey = fl.TLS.NodeKey
		case "log-level":
			cfg.LogLevel = fl.LogLevel
		case "log-format":
			cfg.LogFormat = fl.LogFormat
		}
	})
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	if *printConfig {
		return config.WriteTOML(env.Stdout, cfg)
	}
	// The safety net first: a malformed allowlist or constituency stops
	// the node before it serves anything.
	guard, err := safetyNet(cfg, *cfgFile)
	if err != nil {
		return err
	}
	tuneRuntime(env, cfg)
	warmHeap()
	logger := newLogger(env, cfg.LogLevel, cfg.LogFormat)
	logger.Info("safety net", "rules", len(guard.Rules()), "iana", cfg.Safety.IANA, "networks", cfg.Safety.Networks)

	st, err := openStore(ctx, cfg.Data, cfg.Store, false)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := newService(st, cfg, guard, logger)
	id, err := svc.Identity(ctx)
	if entente.ErrorCode(err) == entente.ENOTFOUND {
		if *country == "" {
			return usagef("this node is new: give --org NAME and --country CC (or run 'entente init')")
		}
		var secret string
		if id, secret, err = svc.Init(ctx, *org, *country, *sector); err != nil {
			return err
		}
		writeFramed(env.Stderr, fmt.Sprintf("Created the node of %s (%s), %s.", id.Name, id.Country, id.ID),
			"Its admin key, shown only this once; keep it safe:", "", "  "+secret, "",
			"Use it as --token, or export ENTENTE_TOKEN=<key>.")
	} else if err != nil {
		return err
	}
	svc = newServiceSkewed(st, cfg, guard, logger, *clockSkew, id.ID)
	if *clockSkew != 0 {
		logger.Warn("the node's clock is skewed (test hook)", "skew", clockSkew.String())
	}
	if *fedCountries < 0 {
		return usagef("--federation-countries %d: not negative", *fedCountries)
	}
	// Correlation as configured ([correlation]), the flag giving the
	// federation's size.
	corr := cfg.Correlation.Engine()
	if *fedCountries > 0 {
		corr.FederationCountries = *fedCountries
	}
	if err := svc.EnableAlerts(corr); err != nil {
		return err
	}
	// The partners' declared constituencies join the safety net.
	if err := svc.ProtectPartners(ctx); err != nil {
		return err
	}
	// Before the store closes: background pushes and correlation end.
	defer svc.Close()
	var loc geo.Locator
	if len(geoFiles) > 0 {
		if loc, err = loadGeo(geoFiles); err != nil {
			return err
		}
		svc.SetGeo(loc)
	}
	// The device watch, when configured: its profiles are saved
	// periodically and, after the server stopped, a last time.
	devCfg := *devicesConfig
	if devCfg == "" && cfg.Devices != "" {
		devCfg = cfg.Devices
		if !filepath.IsAbs(devCfg) && *cfgFile != "" {
			devCfg = filepath.Join(filepath.Dir(*cfgFile), devCfg)
		}
	}
	stopDevices, err := startDeviceWatch(ctx, env, svc, cfg.Data, devCfg, loc, id.ID, logger)
	if err != nil {
		return err
	}
	defer stopDevices()
	stopNotify, err := startAlertNotify(ctx, svc, alertFl, cfg, logger)
	if err != nil {
		return err
	}
	defer stopNotify()

	dash := dashboard.New(svc, dashboard.Options{Secure: cfg.TLS.Cert != "" || cfg.TLS.NodeKey, Logger: logger})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), peerKeyMismatches)
	if w, ok := st.(entente.WALReporter); ok {
		if err := httpapi.RegisterWALMetrics(reg, w); err != nil {
			return err
		}
	}
	h := httpapi.New(svc, httpapi.Options{
		MaxJSONDepth:     cfg.MaxJSONDepth,
		RatePerSecond:    cfg.RatePerSecond,
		Burst:            cfg.Burst,
		BodyMemoryPerKey: cfg.BodyMemoryPerKey,
		BodyMemoryTotal:  cfg.BodyMemoryTotal,
		BodyPressure:     bodyPressure(env, cfg),
		Dashboard:        dash,
		Safety:           guard,
	}, logger, reg)
	// The dashboard's pages call the same API as scripts, in-process.
	dash.SetAPI(h)
	srv := httpapi.NewServer(cfg.Listen, h)
	srv.ErrorLog = nil
	srv.RegisterOnShutdown(dash.Close)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	scheme, keyNote := "http", ""
	if cfg.TLS.Cert != "" || cfg.TLS.NodeKey {
		tc, fingerprint, err := tlsConfig(cfg.TLS, cfg.Data, id.Name, logger)
		if err != nil {
			ln.Close()
			return err
		}
		srv.TLSConfig = tc
		ln = tls.NewListener(ln, tc)
		scheme = "https"
		keyNote = " (TLS key " + fingerprint + ")"
		logger.Info("serving TLS", "key_fingerprint", fingerprint)
	}
	logger.Info("serving", "url", scheme+"://"+ln.Addr().String(), "org", id.ID, "store", storeKind(cfg))
	fmt.Fprintf(env.Stderr, "Entente node %q listening on %s://%s%s\n", id.Name, scheme, ln.Addr(), keyNote)

	// Federation: every peer syncs on its own, in the background.
	syncCtx, stopSync := context.WithCancel(ctx)
	syncDone := make(chan struct{})
	if *syncEvery > 0 {
		go func() { defer close(syncDone); svc.RunPeerSync(syncCtx, *syncEvery) }()
	} else {
		close(syncDone)
	}
	defer func() { stopSync(); <-syncDone }()

	go svc.RunFeeds(ctx) // polls the configured feeds until shutdown
	// Export indexes are built now, so that the first export after a
	// start is as fast as the next.
	go func() {
		if err := svc.WarmExportIndexes(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("export indexes not built at start; the first export builds them", "err", err)
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), max(cfg.ShutdownGrace.Duration, time.Second))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// writeFramed writes lines in a frame, in one write, so that the block
// stands out from log lines and no concurrent log line splits it.
func writeFramed(w io.Writer, lines ...string) {
	width := 0
	for _, l := range lines {
		width = max(width, utf8.RuneCountInString(l))
	}
	bar := strings.Repeat("=", width+4)
	var b strings.Builder
	b.WriteString("\n" + bar + "\n")
	for _, l := range lines {
		b.WriteString("| " + l + strings.Repeat(" ", width-utf8.RuneCountInString(l)) + " |\n")
	}
	b.WriteString(bar + "\n\n")
	io.WriteString(w, b.String())
}

func storeKind(cfg config.Config) string {
	if cfg.Store != "" {
		return "postgres"
	}
	return "sqlite:" + cfg.Data
}

// tlsConfig builds the server's TLS configuration: from the given
// certificate, or from the node's own key pair in data directory dir
// (made now if there is none, for organisation org); with a client CA it
// verifies client certificates that are presented (keys still
// authenticate requests). It returns the fingerprint of the key served,
// which peers pin.
func tlsConfig(t config.TLS, dir, org string, logger *slog.Logger) (*tls.Config, string, error) {
	var tc *tls.Config
	var fingerprint string
	if t.NodeKey {
		pair, err := nodekey.Ensure(dir, org)
		if err != nil {
			return nil, "", err
		}
		if pair.Created {
			logger.Info("made the node's TLS key pair", "dir", dir, "key_fingerprint", pair.Fingerprint)
		}
		tc, fingerprint = pair.ServerConfig(), pair.Fingerprint
	} else {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, "", fmt.Errorf("load TLS certificate %s: %w", t.Cert, err)
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, "", fmt.Errorf("TLS certificate %s: %w", t.Cert, err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		fingerprint = pin.Of(leaf.RawSubjectPublicKeyInfo)
	}
	if t.ClientCA != "" {
		pem, err := os.ReadFile(t.ClientCA)
		if err != nil {
			return nil, "", fmt.Errorf("read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("client CA %s holds no PEM certificate", t.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return tc, fingerprint, nil
}
