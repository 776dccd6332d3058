package node

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/taxii"
)

// SnapshotMaxAge is how old a compiled snapshot may grow before a request
// for it starts a rebuild in the background. The old snapshot is served
// until the new one is swapped in.
const SnapshotMaxAge = 30 * time.Second

// compiled is one encoded snapshot and its ETag.
type compiled struct {
	data  []byte
	etag  string
	built time.Time
}

// snapshots caches compiled snapshots per audience (organisation and
// role): each audience may read different collections.
type snapshots struct {
	mu       sync.Mutex
	byKey    map[string]*compiled
	building map[string]bool
}

// IndicatorSnapshot returns the compiled indicator snapshot for p: the
// indicators of every collection p may read, revoked and expired ones left
// out, encoded for download with its ETag. The first request builds it;
// later requests get the cached one, and one older than SnapshotMaxAge is
// rebuilt in the background and swapped in atomically.
func (s *Service) IndicatorSnapshot(ctx context.Context, p entente.Principal) ([]byte, string, error) {
	key := p.Org + "|" + string(p.Role)
	s.snap.mu.Lock()
	if s.snap.byKey == nil {
		s.snap.byKey = map[string]*compiled{}
		s.snap.building = map[string]bool{}
	}
	c := s.snap.byKey[key]
	stale := c != nil && s.now().Sub(c.built) > SnapshotMaxAge
	if stale && !s.snap.building[key] {
		s.snap.building[key] = true
		go func() {
			bctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if _, err := s.rebuildSnapshot(bctx, p, key); err != nil {
				s.log.Warn("snapshot rebuild failed", "audience", key, "err", err)
			}
		}()
	}
	s.snap.mu.Unlock()
	if c != nil {
		return c.data, c.etag, nil
	}
	c, err := s.rebuildSnapshot(ctx, p, key)
	if err != nil {
		return nil, "", err
	}
	return c.data, c.etag, nil
}

func (s *Service) rebuildSnapshot(ctx context.Context, p entente.Principal, key string) (*compiled, error) {
	defer func() {
		s.snap.mu.Lock()
		delete(s.snap.building, key)
		s.snap.mu.Unlock()
	}()
	now := s.now()
	snap, stats, err := match.BuildFromObjects(s.readableIndicators(ctx, p), now)
	if err != nil {
		return nil, err
	}
	data, etag, err := snap.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	c := &compiled{data: data, etag: etag, built: now}
	s.snap.mu.Lock()
	s.snap.byKey[key] = c
	s.snap.mu.Unlock()
	s.log.InfoContext(ctx, "snapshot compiled", "audience", key, "indicators", snap.Indicators(),
		"bytes", len(data), "etag", etag, "revoked", stats.Revoked, "expired", stats.Expired, "uncompiled", stats.Uncompiled, "invalid", stats.Invalid)
	return c, nil
}

// readableIndicators yields the latest version of every indicator in the
// collections p may read, through release (the one egress path).
func (s *Service) readableIndicators(ctx context.Context, p entente.Principal) iter.Seq2[json.RawMessage, error] {
	return func(yield func(json.RawMessage, error) bool) {
		colls, err := s.Collections(ctx, p)
		if err != nil {
			yield(nil, err)
			return
		}
		for _, c := range colls {
			if !c.CanRead(p.Role) {
				continue
			}
			for e, err := range s.released(ctx, p, c.ID, entente.ObjectQuery{Types: []string{"indicator"}, Limit: 5000}) {
				if !yield(e.Raw, err) || err != nil {
					return
				}
			}
		}
	}
}

// AddSightings stores sightings a sensor reports (the objects of a STIX
// bundle: sightings and what they reference) in the node's sightings
// collection (AddObjects on that collection), then correlates the
// sightings stored into coordinated alerts (see [Service.ListAlerts]).
// A failure to correlate is logged: the sightings are stored and will be
// correlated again when the node restarts.
func (s *Service) AddSightings(ctx context.Context, p entente.Principal, objects []json.RawMessage) (*taxii.Status, error) {
	st, err := s.AddObjects(ctx, p, CollectionSightings, objects)
	if err != nil {
		return st, err
	}
	if err := s.correlateStored(ctx, st, objects); err != nil {
		s.log.ErrorContext(ctx, "correlation failed", "status", st.ID, "err", err)
	}
	return st, nil
}
