package match

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"time"
)

// SnapshotPath and SightingsPath are the node API endpoints a sensor uses.
const (
	SnapshotPath  = "/api/v1/snapshot"
	SightingsPath = "/api/v1/sightings"
	// SnapshotMediaType is the media type of a serialised snapshot.
	SnapshotMediaType = "application/vnd.entente.snapshot"
)

// BuildFromObjects compiles the indicators among objects (raw STIX JSON,
// as a node's store yields them) into a snapshot, leaving out revoked
// and expired ones; the indicators whose STIX patterns are for the
// evaluator travel with it ([Snapshot.Patterns]). It is what a node calls to serve
// GET /api/v1/snapshot.
func BuildFromObjects(objects iter.Seq2[json.RawMessage, error], now time.Time) (*Snapshot, LoadStats, error) {
	return BuildGuarded(objects, now, nil)
}

// BuildGuarded is [BuildFromObjects] through a guard (the safety net):
// what g protects is never compiled (see [Builder.Guard]); nil guards
// nothing.
func BuildGuarded(objects iter.Seq2[json.RawMessage, error], now time.Time, g Guard) (*Snapshot, LoadStats, error) {
	b := NewBuilder()
	if g != nil {
		b.Guard(g)
	}
	b.CollectPatterns(NewPatternSet())
	var st LoadStats
	i := 0
	for raw, err := range objects {
		if err != nil {
			return nil, st, fmt.Errorf("build snapshot: object %d: %w", i, err)
		}
		AddObject(b, raw, now, &st, fmt.Sprintf("object %d", i))
		i++
	}
	return b.Snapshot(), st, nil
}

// Refresh rebuilds the snapshot with build every interval and publishes
// each new one in h, until ctx is done. Build errors go to onErr (when
// set) and keep the current snapshot.
func Refresh(ctx context.Context, h *Holder, interval time.Duration, build func(context.Context) (*Snapshot, error), onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, err := build(ctx)
		if err != nil {
			if onErr != nil {
				onErr(err)
			}
			continue
		}
		if s != nil {
			h.Store(s)
		}
	}
}
