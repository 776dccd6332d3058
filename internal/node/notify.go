package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/notify"
)

// settingSigningKey is the setting that holds the seed of the node's
// Ed25519 signing key (base64). It is a secret: never log it.
const settingSigningKey = "node.signing_key"

// NotifyOptions configures the notification of alert changes.
type NotifyOptions struct {
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
	Queue notify.Queue
	// Syslog, when set, receives one RFC 5424 message per alert change.
	Syslog *notify.Syslog
	// Hostname names the node in syslog messages.
	Hostname string
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
	// Change is what happened: created, escalated, updated, superseded.
	Change string `json:"change"`
	// Status is the alert's status on the node after the change.
	Status string `json:"status"`
	// Alert is the STIX alert object, as the policy gate released it.
	Alert json.RawMessage `json:"alert"`
}

// SigningKey returns the node's Ed25519 signing key, generating and
// storing it the first time.
func (s *Service) SigningKey(ctx context.Context) (ed25519.PrivateKey, error) {
	b, err := s.st.Setting(ctx, settingSigningKey)
	if err == nil {
		seed, err := base64.StdEncoding.DecodeString(string(b))
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("setting %s does not hold an Ed25519 seed", settingSigningKey)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if entente.ErrorCode(err) != entente.ENOTFOUND {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	if err := s.st.PutSetting(ctx, settingSigningKey, []byte(base64.StdEncoding.EncodeToString(seed))); err != nil {
		return nil, fmt.Errorf("store signing key: %w", err)
	}
	s.log.InfoContext(ctx, "node signing key generated")
	return ed25519.NewKeyFromSeed(seed), nil
}

// PublicKey returns the public half of the node's signing key, which
// webhook receivers verify signatures with.
func (s *Service) PublicKey(ctx context.Context) (ed25519.PublicKey, error) {
	k, err := s.SigningKey(ctx)
	if err != nil {
		return nil, err
	}
	return k.Public().(ed25519.PublicKey), nil
}

// EnableNotify makes every later alert change notified as opt says and
// returns the dispatcher of webhook deliveries (nil without webhooks),
// which the caller runs (Dispatcher.Run) until shutdown. EINVALID names
// a webhook URL that is not absolute http(s).
func (s *Service) EnableNotify(ctx context.Context, opt NotifyOptions) (*notify.Dispatcher, error) {
	urls := slices.Clone(opt.Webhooks)
	for _, pw := range opt.PartnerWebhooks {
		if !strings.HasPrefix(pw.Partner, "identity--") {
			return nil, entente.Errorf(entente.EINVALID, "webhook %q: partner %q is not an identity id", pw.URL, pw.Partner)
		}
		urls = append(urls, pw.URL)
	}
	for _, w := range urls {
		u, err := url.Parse(w)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, entente.Errorf(entente.EINVALID, "webhook %q: not an absolute http or https URL", w)
		}
	}
	if len(urls) > 0 && opt.Queue == nil {
		return nil, entente.Errorf(entente.EINVALID, "webhooks need a delivery queue")
	}
	self, err := s.Identity(ctx)
	if err != nil {
		return nil, err
	}
	var d *notify.Dispatcher
	if len(urls) > 0 {
		key, err := s.SigningKey(ctx)
		if err != nil {
			return nil, err
		}
		d = &notify.Dispatcher{
			Queue:     opt.Queue,
			Deliverer: &notify.Webhook{Signer: notify.NewSigner(key), Now: s.cfg.Now},
			Backoff:   notify.DefaultBackoff(),
			Now:       s.cfg.Now,
			Logger:    s.log,
			OnDrop: func(dl notify.Delivery, err error) {
				s.log.Warn("alert notification dropped", "target", dl.Target, "delivery", dl.ID, "attempts", dl.Attempts, "err", err)
			},
		}
	}
	send := func(ctx context.Context, ev AlertEvent) {
		now := s.now()
		if opt.Syslog != nil {
			if err := opt.Syslog.Send(notify.AlertMessage(ev.Alert, opt.Hostname, now)); err != nil {
				s.log.WarnContext(ctx, "syslog notification failed", "alert", ev.Alert.ID, "err", err)
			}
		}
		if d == nil {
			return
		}
		enqueue := func(target string, object json.RawMessage) {
			body, err := json.Marshal(AlertPayload{Type: "entente.alert", Node: self.ID, Time: now,
				Change: string(ev.Change), Status: string(ev.Status), Alert: object})
			if err != nil {
				s.log.ErrorContext(ctx, "encode alert notification", "alert", ev.Alert.ID, "err", err)
				return
			}
			if err := opt.Queue.Enqueue(ctx, notify.Delivery{Target: target, Body: body, Created: now, NextAt: now}); err != nil {
				s.log.ErrorContext(ctx, "enqueue alert notification", "alert", ev.Alert.ID, "target", target, "err", err)
			}
		}
		for _, w := range opt.Webhooks {
			enqueue(w, ev.Object)
		}
		for _, pw := range opt.PartnerWebhooks {
			// The partner receives what its agreement allows, as the
			// gate releases it (redacted, audited), or nothing.
			object, err := s.releaseAlertTo(ctx, pw, ev)
			if err != nil {
				s.log.ErrorContext(ctx, "alert notification to a partner not released", "alert", ev.Alert.ID, "partner", pw.Partner, "err", err)
				continue
			}
			if object == nil {
				s.log.DebugContext(ctx, "alert notification withheld by the partner's agreement", "alert", ev.Alert.ID, "partner", pw.Partner)
				continue
			}
			enqueue(pw.URL, object)
		}
		d.Wake()
	}
	s.alerts.mu.Lock()
	s.alerts.notify = send
	s.alerts.mu.Unlock()
	return d, nil
}

// releaseAlertTo releases the alert of ev to the partner of a partner
// webhook through the policy gate, as a TAXII read by that partner would
// (the release is audited, with the webhook as actor). It returns nil
// when the gate withholds it: the partner's agreement does not cover the
// alert, or the partner has none.
func (s *Service) releaseAlertTo(ctx context.Context, pw PartnerWebhook, ev AlertEvent) (json.RawMessage, error) {
	collection := ev.Collection
	if collection == "" {
		collection = CollectionAlerts
	}
	c, err := s.collection(ctx, collection)
	if err != nil {
		return nil, err
	}
	p := entente.Principal{KeyID: "webhook " + pw.URL, Role: entente.RolePartner, Org: pw.Partner}
	if !c.CanRead(p.Role) {
		// The collection is closed to partners: nothing leaves.
		return nil, nil
	}
	page, err := s.releaseOn(ctx, p, "webhook", c.ID, entente.ObjectQuery{IDs: []string{ev.Alert.ID}, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(page.Entries) == 0 {
		return nil, nil
	}
	return page.Entries[0].Raw, nil
}
