package node

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/alerting"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/store"
)

// The node's coordinated alerts are kept by internal/alerting; these are
// its names as the node's adapters use them.
type (
	// AlertInfo is an alert as the node shows it.
	AlertInfo = alerting.AlertInfo
	// AlertFilter selects alerts in ListAlerts.
	AlertFilter = alerting.AlertFilter
	// AlertEvent is one change of an alert, as notified.
	AlertEvent = alerting.AlertEvent
	// AlertStats counts what correlation did.
	AlertStats = alerting.AlertStats
	// AlertDetail is an alert with what is behind it.
	AlertDetail = alerting.AlertDetail
	// AlertSighting is one sighting behind an alert.
	AlertSighting = alerting.AlertSighting
	// Edge is a relationship or a sighting that refers to an object.
	Edge = alerting.Edge
	// Event is one change the node reports live to subscribers.
	Event = alerting.Event
	// Subscription receives the node's live events.
	Subscription = alerting.Subscription
	// Overview is what the dashboard's first screen shows.
	Overview = alerting.Overview
	// CountryActivity is one country's counts in an Overview.
	CountryActivity = alerting.CountryActivity
	// TimeBucket is one interval of an Overview's timeline.
	TimeBucket = alerting.TimeBucket
)

// Event kinds and overview bounds.
const (
	EventSighting     = alerting.EventSighting
	EventAlert        = alerting.EventAlert
	MinOverviewWindow = alerting.MinOverviewWindow
	MaxOverviewWindow = alerting.MaxOverviewWindow
)

// newAlerting wires the node's alerting to its store and gate.
func (s *Service) newAlerting() *alerting.Service {
	ps, _ := s.st.(store.PolicyStore)
	as, _ := s.st.(store.AlertStore)
	var states alerting.States
	if as != nil {
		states = as
	}
	return alerting.New(alerting.Config{
		Objects: s.st,
		States:  states,
		Release: s.releaseOn,
		Store: func(ctx context.Context, collection string, objs []json.RawMessage, states []correlate.State) error {
			self, err := s.selfParty(ctx)
			if err != nil {
				return err
			}
			st, err := s.ingest.AddObjectsWith(ctx, LocalAdmin(self.ID), collection, objs, states)
			if err != nil {
				return err
			}
			if st.FailureCount > 0 {
				return fmt.Errorf("%s", st.Failures[0].Message)
			}
			return nil
		},
		Collection: s.collection,
		Self: func(ctx context.Context) (alerting.Self, error) {
			id, err := s.Identity(ctx)
			return alerting.Self{ID: id.ID, Country: id.Country}, err
		},
		Party: func(ctx context.Context, id string) (policy.Party, error) {
			if ps == nil {
				return policy.Party{}, entente.Errorf(entente.ENOTFOUND, "no partner %q", id)
			}
			return ps.Party(ctx, id)
		},
		Parties: func(ctx context.Context) ([]policy.Party, error) {
			if ps == nil {
				return nil, nil
			}
			return ps.Parties(ctx)
		},
		Retractions: s.retractionsForCorrelation,
		Origins: func(ctx context.Context, collection string, ids []string) (map[string]string, error) {
			out := map[string]string{}
			if ps == nil {
				return out, nil
			}
			prov, err := ps.Provenance(ctx, collection, ids)
			if err != nil {
				return nil, err
			}
			for k, p := range prov {
				out[k.ID] = cmp.Or(out[k.ID], p.Origin)
			}
			return out, nil
		},
		Audit: func(ctx context.Context, recs []audit.Record) error {
			if ps == nil {
				return fmt.Errorf("the store %T keeps no audit log", s.st)
			}
			return ps.AppendAudit(ctx, recs)
		},
		AlertsCollection: CollectionAlerts,
		Protected:        s.cfg.Safety.Guard(safety.OutputCorrelation).ProtectedIndicator,
		Now:              s.cfg.Now,
		Logger:           s.log,
	})
}

// EnableAlerts configures correlation before first use (from serve).
// EINVALID if cfg is invalid.
func (s *Service) EnableAlerts(cfg correlate.Config) error {
	if err := s.alerting.Configure(cfg); err != nil {
		return err
	}
	// A partner's quota bounds what it pushes too (see admitPushed).
	window := cfg.Window
	if window == 0 {
		window = 24 * time.Hour
	}
	s.quota.configure(window, cfg.DefaultQuota)
	return nil
}

// SetAlertNotifier makes every later alert change notified to n (see
// notify.AlertNotifier, wired by cmd/entente).
func (s *Service) SetAlertNotifier(n alerting.Notifier) { s.alerting.SetNotifier(n) }

// ReleaseAlertToPartner releases an alert change to a partner through the
// policy gate (audited; nil when withheld), for partners' webhooks.
func (s *Service) ReleaseAlertToPartner(ctx context.Context, partner, actor string, ev AlertEvent) (json.RawMessage, error) {
	return s.alerting.ReleaseToPartner(ctx, partner, actor, ev)
}

// AlertStats returns the correlation counters (analyst or admin).
func (s *Service) AlertStats(ctx context.Context, p entente.Principal) (AlertStats, error) {
	return s.alerting.Stats(ctx, p)
}

// RunAlerts keeps correlation current until ctx ends.
func (s *Service) RunAlerts(ctx context.Context, interval time.Duration) {
	s.alerting.Run(ctx, interval)
}

// ListAlerts lists the alerts of this node matching f (analyst or admin).
func (s *Service) ListAlerts(ctx context.Context, p entente.Principal, f AlertFilter) ([]AlertInfo, error) {
	return s.alerting.List(ctx, p, f)
}

// Alert returns one alert with its object and history (analyst or admin).
func (s *Service) Alert(ctx context.Context, p entente.Principal, id string) (AlertInfo, error) {
	return s.alerting.Alert(ctx, p, id)
}

// AlertDetail returns an alert with the sightings behind it (analyst or
// admin).
func (s *Service) AlertDetail(ctx context.Context, p entente.Principal, id string) (AlertDetail, error) {
	return s.alerting.Detail(ctx, p, id)
}

// AckAlert acknowledges an alert (analyst or admin).
func (s *Service) AckAlert(ctx context.Context, p entente.Principal, id, note string) (AlertInfo, error) {
	return s.alerting.Ack(ctx, p, id, note)
}

// ResolveAlert closes an alert (analyst or admin).
func (s *Service) ResolveAlert(ctx context.Context, p entente.Principal, id, note string) (AlertInfo, error) {
	return s.alerting.Resolve(ctx, p, id, note)
}

// Subscribe returns a subscription to the node's live events (analyst or
// admin).
func (s *Service) Subscribe(p entente.Principal) (*Subscription, error) {
	return s.alerting.Subscribe(p)
}

// Overview summarises the sightings and alerts of a window ending at
// until, or now when zero (analyst or admin).
func (s *Service) Overview(ctx context.Context, p entente.Principal, window time.Duration, buckets int, until time.Time) (Overview, error) {
	return s.alerting.Overview(ctx, p, window, buckets, until)
}

// correlateStored correlates the sightings of a request whose status st
// reports as stored, leaving out the failed ones.
func (s *Service) correlateStored(ctx context.Context, st *entente.Status, objects []json.RawMessage) error {
	if st == nil || st.SuccessCount == 0 {
		return nil
	}
	failed := map[string]bool{}
	for _, f := range st.Failures {
		failed[f.ID] = true
	}
	kept := objects[:0:0]
	for _, raw := range objects {
		var head struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(raw, &head) == nil && !failed[head.ID] {
			kept = append(kept, raw)
		}
	}
	return s.alerting.SightingsAdded(ctx, kept)
}

func cmpOr(a, b string) string { return cmp.Or(a, b) }

// requireAnalyst refuses principals that are neither analysts nor admins.
func requireAnalyst(p entente.Principal, action string) error {
	if p.Role != entente.RoleAdmin && p.Role != entente.RoleAnalyst {
		return entente.Errorf(entente.EFORBIDDEN, "%s requires the analyst or admin role; this key's role is %q", action, p.Role)
	}
	return nil
}
