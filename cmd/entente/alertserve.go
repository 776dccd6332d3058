package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/notify"
)

// alertServeFlags are serve's flags for alert notifications.
type alertServeFlags struct {
	webhooks        []string
	partnerWebhooks []notify.PartnerWebhook
	syslog          string
}

// register adds --webhook (repeatable) and --syslog to fs.
func (a *alertServeFlags) register(fs *flag.FlagSet) *alertServeFlags {
	fs.Func("webhook", "URL every alert change is POSTed to, signed with the node's key (repeatable); `PARTNER=URL`, with PARTNER a partner's identity id,\n"+
		"names a partner's endpoint: it gets only what the partner's agreement lets the policy gate release, audited", func(v string) error {
		if partner, u, ok := strings.Cut(v, "="); ok && strings.HasPrefix(partner, "identity--") {
			a.partnerWebhooks = append(a.partnerWebhooks, notify.PartnerWebhook{Partner: partner, URL: u})
			return nil
		}
		a.webhooks = append(a.webhooks, v)
		return nil
	})
	fs.StringVar(&a.syslog, "syslog", "", "send alert changes to syslog (RFC 5424): udp://host:port, tcp://host:port or unix:///path")
	return a
}

// queueFile is the name of the webhook delivery queue in the data
// directory.
const queueFile = "notify-queue.jsonl"

// alertScanInterval is how often a serving node correlates sightings
// that arrived by other paths than POST /api/v1/sightings and sweeps
// the correlation engine.
const alertScanInterval = 30 * time.Second

// startAlertNotify wires coordinated alerts into a serving node: the
// notifications (the durable delivery queue in the data directory, or in
// a temporary directory, with a warning, on PostgreSQL; the webhook
// dispatcher; syslog) and the background correlation scan, all running
// until ctx ends. It returns what to call at shutdown.
func startAlertNotify(ctx context.Context, svc *node.Service, a *alertServeFlags, cfg config.Config, logger *slog.Logger) (func(), error) {
	var closers []func()
	stop := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if len(a.webhooks) > 0 || len(a.partnerWebhooks) > 0 || a.syslog != "" {
		if err := enableNotify(ctx, svc, a, cfg, logger, &closers); err != nil {
			stop()
			return nil, err
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.RunAlerts(sctx, alertScanInterval) }()
	closers = append(closers, func() { cancel(); <-done })
	return stop, nil
}

// enableNotify opens what notifications need and enables them, adding
// what to close at shutdown to closers.
func enableNotify(ctx context.Context, svc *node.Service, a *alertServeFlags, cfg config.Config, logger *slog.Logger, closers *[]func()) error {
	opt := notify.AlertOptions{Webhooks: a.webhooks, PartnerWebhooks: a.partnerWebhooks, Logger: logger}
	if host, err := os.Hostname(); err == nil {
		opt.Hostname = host
	}
	if a.syslog != "" {
		sl, err := dialSyslogURL(a.syslog)
		if err != nil {
			return err
		}
		opt.Syslog = sl
		*closers = append(*closers, func() { sl.Close() })
	}
	if len(a.webhooks)+len(a.partnerWebhooks) > 0 {
		dir := cfg.Data
		if cfg.Store != "" {
			tmp, err := os.MkdirTemp("", "entente-notify-")
			if err != nil {
				return fmt.Errorf("create notification queue directory: %w", err)
			}
			logger.Warn("webhook deliveries are queued in a temporary directory: they do not survive this host", "dir", tmp)
			dir = tmp
		}
		q, err := notify.OpenFileQueue(filepath.Join(dir, queueFile))
		if err != nil {
			return fmt.Errorf("open notification queue: %w", err)
		}
		if q.Skipped > 0 {
			logger.Warn("notification queue: unreadable journal lines skipped", "lines", q.Skipped)
		}
		opt.Queue = q
		*closers = append(*closers, func() { q.Close() })
	}
	d, err := enableAlertNotifier(ctx, svc, opt)
	if err != nil {
		return err
	}
	if d != nil {
		dctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); d.Run(dctx) }()
		*closers = append(*closers, func() { cancel(); <-done })
	}
	logger.Info("alert notifications enabled", "webhooks", len(a.webhooks), "partner_webhooks", len(a.partnerWebhooks), "syslog", a.syslog != "")
	return nil
}

// dialSyslogURL connects to the syslog receiver named by u:
// udp://host:port, tcp://host:port or unix:///path.
func dialSyslogURL(u string) (*notify.Syslog, error) {
	p, err := url.Parse(u)
	if err != nil {
		return nil, usagef("--syslog %q: %v", u, err)
	}
	const timeout = 5 * time.Second
	switch p.Scheme {
	case "udp", "tcp":
		if p.Host == "" {
			return nil, usagef("--syslog %q: host:port is required", u)
		}
		return notify.DialSyslog(p.Scheme, p.Host, timeout)
	case "unix":
		if p.Path == "" {
			return nil, usagef("--syslog %q: a socket path is required", u)
		}
		s, err := notify.DialSyslog("unixgram", p.Path, timeout)
		if err != nil {
			return notify.DialSyslog("unix", p.Path, timeout)
		}
		return s, nil
	default:
		return nil, usagef("--syslog %q: use udp://host:port, tcp://host:port or unix:///path", u)
	}
}

// enableAlertNotifier makes every later alert change of svc notified as
// opt says (the node's identity, signing key and policy gate filled in)
// and returns the dispatcher of webhook deliveries (nil without
// webhooks), which the caller runs until shutdown.
func enableAlertNotifier(ctx context.Context, svc *node.Service, opt notify.AlertOptions) (*notify.Dispatcher, error) {
	id, err := svc.Identity(ctx)
	if err != nil {
		return nil, err
	}
	opt.Node = id.ID
	if len(opt.Webhooks)+len(opt.PartnerWebhooks) > 0 {
		if opt.Key, err = svc.SigningKey(ctx); err != nil {
			return nil, err
		}
	}
	opt.Release = svc.ReleaseAlertToPartner
	if opt.Now == nil {
		opt.Now = svc.Config().Now
	}
	n, d, err := notify.NewAlertNotifier(opt)
	if err != nil {
		return nil, err
	}
	svc.SetAlertNotifier(n)
	return d, nil
}
