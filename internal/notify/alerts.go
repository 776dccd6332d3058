package notify

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/alerting"
)

// AlertOptions configures the notification of alert changes.
type AlertOptions struct {
	// Webhooks are the URLs every alert change is POSTed to, signed with
	// the node's key: the node's own endpoints (its SOAR, its chat).
	Webhooks []string
	// PartnerWebhooks are endpoints that belong to partners: each alert
	// change is released to the partner through the policy gate (its
	// agreement's collections, types, TLP, residency; audited like any
	// egress) and delivered only if the gate lets it go.
	PartnerWebhooks []PartnerWebhook
	// Queue keeps webhook deliveries until they succeed; required when
	// there are webhooks.
	Queue Queue
	// Syslog, when set, receives one RFC 5424 message per alert change.
	Syslog *Syslog
	// Hostname names the node in syslog messages.
	Hostname string
	// Node is the identity id of the notifying node.
	Node string
	// Key signs webhook deliveries (the node's signing key); required
	// when there are webhooks.
	Key ed25519.PrivateKey
	// Release releases an alert to a partner through the policy gate
	// (nil when the gate withholds it); required for partner webhooks.
	Release func(ctx context.Context, partner, actor string, ev alerting.AlertEvent) (json.RawMessage, error)
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// Logger receives the log; nothing is logged when nil.
	Logger *slog.Logger
}

// PartnerWebhook is a webhook endpoint of a partner organisation.
type PartnerWebhook struct {
	// Partner is the partner's identity id.
	Partner string
	// URL is the endpoint.
	URL string
}

// AlertPayload is the JSON body of an alert notification.
type AlertPayload struct {
	// Type is always "entente.alert".
	Type string `json:"type"`
	// Node is the identity id of the notifying node.
	Node string `json:"node"`
	// Time is when the change happened on the node.
	Time time.Time `json:"time"`
	// Change is what happened: created, escalated, updated, superseded,
	// lowered (evidence retracted, a source quarantined) or withdrawn
	// (nothing supports it any more).
	Change string `json:"change"`
	// Status is the alert's status on the node after the change.
	Status string `json:"status"`
	// Alert is the STIX alert object, as the policy gate released it.
	Alert json.RawMessage `json:"alert"`
	// Info is the alert as the node's people read it: the threat's name
	// and observable values, the tier's rule, each source's evidence and
	// what the safety net suppressed. Only the node's own webhooks
	// receive it; partners' receive the released object alone.
	Info *alerting.AlertInfo `json:"info,omitempty"`
}

// AlertNotifier notifies alert changes to webhooks (signed, through a
// durable queue) and syslog. It implements alerting.Notifier.
type AlertNotifier struct {
	opt AlertOptions
	d   *Dispatcher
	log *slog.Logger
}

// NewAlertNotifier returns the notifier that opt describes and the
// dispatcher of its webhook deliveries (nil without webhooks), which the
// caller runs (Dispatcher.Run) until shutdown. EINVALID names a webhook
// URL that is not absolute http(s), a partner that is not an identity
// id, or what webhooks lack (a queue, a key, a way to release).
func NewAlertNotifier(opt AlertOptions) (*AlertNotifier, *Dispatcher, error) {
	urls := slices.Clone(opt.Webhooks)
	for _, pw := range opt.PartnerWebhooks {
		if !strings.HasPrefix(pw.Partner, "identity--") {
			return nil, nil, entente.Errorf(entente.EINVALID, "webhook %q: partner %q is not an identity id", pw.URL, pw.Partner)
		}
		urls = append(urls, pw.URL)
	}
	for _, w := range urls {
		u, err := url.Parse(w)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, nil, entente.Errorf(entente.EINVALID, "webhook %q: not an absolute http or https URL", w)
		}
	}
	if len(urls) > 0 && opt.Queue == nil {
		return nil, nil, entente.Errorf(entente.EINVALID, "webhooks need a delivery queue")
	}
	if len(urls) > 0 && len(opt.Key) != ed25519.PrivateKeySize {
		return nil, nil, entente.Errorf(entente.EINVALID, "webhooks need the node's signing key")
	}
	if len(opt.PartnerWebhooks) > 0 && opt.Release == nil {
		return nil, nil, entente.Errorf(entente.EINVALID, "partner webhooks need the policy gate to release alerts")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &AlertNotifier{opt: opt, log: log}
	if len(urls) > 0 {
		n.d = &Dispatcher{
			Queue:     opt.Queue,
			Deliverer: &Webhook{Signer: NewSigner(opt.Key), Now: opt.Now},
			Backoff:   DefaultBackoff(),
			Now:       opt.Now,
			Logger:    log,
			OnDrop: func(dl Delivery, err error) {
				log.Warn("alert notification dropped", "target", dl.Target, "delivery", dl.ID, "attempts", dl.Attempts, "err", err)
			},
		}
	}
	return n, n.d, nil
}

// Notify implements alerting.Notifier: the change goes to syslog, to the
// node's own webhooks as the gate released it to the node, and to each
// partner's webhook as the gate releases it to that partner (redacted,
// audited), or not at all.
func (n *AlertNotifier) Notify(ctx context.Context, ev alerting.AlertEvent) {
	opt := n.opt
	now := opt.Now().UTC()
	if opt.Syslog != nil {
		if err := opt.Syslog.Send(AlertMessage(ev.Alert, opt.Hostname, now)); err != nil {
			n.log.WarnContext(ctx, "syslog notification failed", "alert", ev.Alert.ID, "err", err)
		}
	}
	if n.d == nil {
		return
	}
	enqueue := func(target string, object json.RawMessage, info *alerting.AlertInfo) {
		body, err := json.Marshal(AlertPayload{Type: "entente.alert", Node: opt.Node, Time: now,
			Change: string(ev.Change), Status: string(ev.Status), Alert: object, Info: info})
		if err != nil {
			n.log.ErrorContext(ctx, "encode alert notification", "alert", ev.Alert.ID, "err", err)
			return
		}
		if err := opt.Queue.Enqueue(ctx, Delivery{Target: target, Body: body, Created: now, NextAt: now}); err != nil {
			n.log.ErrorContext(ctx, "enqueue alert notification", "alert", ev.Alert.ID, "target", target, "err", err)
		}
	}
	for _, w := range opt.Webhooks {
		enqueue(w, ev.Object, ev.Info)
	}
	for _, pw := range opt.PartnerWebhooks {
		// The partner receives what its agreement allows, as the gate
		// releases it (redacted, audited), or nothing.
		object, err := opt.Release(ctx, pw.Partner, "webhook "+pw.URL, ev)
		if err != nil {
			n.log.ErrorContext(ctx, "alert notification to a partner not released", "alert", ev.Alert.ID, "partner", pw.Partner, "err", err)
			continue
		}
		if object == nil {
			n.log.DebugContext(ctx, "alert notification withheld by the partner's agreement", "alert", ev.Alert.ID, "partner", pw.Partner)
			continue
		}
		enqueue(pw.URL, object, nil)
	}
	n.d.Wake()
}
