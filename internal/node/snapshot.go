package node

import (
	"context"
	"encoding/json"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/snapshots"
)

// IndicatorSnapshot returns the compiled indicator snapshot for p (see
// [snapshots.Service.Snapshot]), through the policy gate.
func (s *Service) IndicatorSnapshot(ctx context.Context, p entente.Principal) ([]byte, string, error) {
	snap, err := s.snaps.Snapshot(ctx, p, "")
	if err != nil {
		return nil, "", err
	}
	return snap.Data, snap.ETag, nil
}

// Snapshot returns the compiled indicator snapshot for p, or that the
// one the client holds (its entity tag ifNoneMatch) is current.
func (s *Service) Snapshot(ctx context.Context, p entente.Principal, ifNoneMatch string) (*snapshots.Snapshot, error) {
	return s.snaps.Snapshot(ctx, p, ifNoneMatch)
}

// AddSightings stores sightings a sensor reports (the objects of a STIX
// bundle: sightings and what they reference) in the node's sightings
// collection (AddObjects on that collection), then correlates the
// sightings stored into coordinated alerts (see [Service.ListAlerts]).
// A failure to correlate is logged: the sightings are stored and will be
// correlated again when the node restarts.
func (s *Service) AddSightings(ctx context.Context, p entente.Principal, objects []json.RawMessage) (*entente.Status, error) {
	st, err := s.AddObjects(ctx, p, CollectionSightings, objects)
	if err != nil {
		return st, err
	}
	if err := s.correlateStored(ctx, st, objects); err != nil {
		s.log.ErrorContext(ctx, "correlation failed", "status", st.ID, "err", err)
	}
	return st, nil
}
