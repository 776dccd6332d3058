// Package snapshots compiles the indicator snapshots that sensors match
// their logs against (see internal/match), from the indicators an
// audience may receive, through the node's one policy gate: the gate
// releases every indicator, caches the compiled snapshot under the terms
// in force and the collections' content, and audits every snapshot it
// serves to a partner.
package snapshots

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/egress"
	"github.com/entente-cti/entente/internal/match"
)

// StaleFor is how long a snapshot compiled for the node's own roles is
// served without a rebuild after indicators were added; past it, the
// next request starts a rebuild in the background and is served the
// previous snapshot until the new one is swapped in. Partners always get
// one compiled under the terms and content in force.
const StaleFor = 30 * time.Second

// Gate is what snapshots need of the policy gate.
type Gate interface {
	Release(ctx context.Context, p entente.Principal, q egress.Query) (*egress.Released, error)
}

// Service compiles and serves snapshots. It is safe for concurrent use.
type Service struct {
	gate  Gate
	log   *slog.Logger
	guard match.Guard
}

// Option configures a Service.
type Option func(*Service)

// WithGuard makes every snapshot compiled through g, the node's safety
// net (internal/safety): sensors then never match protected values, and
// networks around protected space are cut before they are compiled.
func WithGuard(g match.Guard) Option { return func(s *Service) { s.guard = g } }

// New returns the snapshot service of a node; logger may be nil.
func New(gate Gate, logger *slog.Logger, opts ...Option) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{gate: gate, log: logger}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Snapshot is a compiled snapshot as served, or the news that the
// client's is current.
type Snapshot struct {
	// Data is the encoded snapshot (empty when NotModified).
	Data []byte
	// ETag is its entity tag.
	ETag string
	// NotModified is set when the client's entity tag is current.
	NotModified bool
}

// Snapshot returns the compiled indicator snapshot for p: the indicators
// of every collection p may read, revoked and expired ones left out,
// encoded with its ETag. ifNoneMatch is the client's entity tag ("" for
// none).
func (s *Service) Snapshot(ctx context.Context, p entente.Principal, ifNoneMatch string) (*Snapshot, error) {
	rel, err := s.gate.Release(ctx, p, egress.Query{Channel: "snapshot", Render: renderer{s}, IfNoneMatch: ifNoneMatch})
	if err != nil {
		return nil, err
	}
	if rel.NotModified {
		return &Snapshot{ETag: rel.ETag, NotModified: true}, nil
	}
	return &Snapshot{Data: rel.Artifact.Files[0].Data, ETag: rel.Artifact.ETag}, nil
}

// renderer compiles a snapshot for the gate.
type renderer struct{ s *Service }

// Key implements egress.Renderer: a change of what the guard protects
// (partners' constituencies) is a new rendering.
func (r renderer) Key() string {
	if g, ok := r.s.guard.(interface{ Generation() uint64 }); ok && g.Generation() > 0 {
		return fmt.Sprintf("snapshot %d", g.Generation())
	}
	return "snapshot"
}

// StaleFor implements egress.Staler.
func (renderer) StaleFor() time.Duration { return StaleFor }

// Render implements egress.Renderer.
func (r renderer) Render(ctx context.Context, src *egress.Source) (*egress.Artifact, error) {
	now := src.Now()
	snap, stats, err := match.BuildGuarded(indicators(ctx, src), now, r.s.guard)
	if err != nil {
		return nil, fmt.Errorf("compile snapshot: %w", err)
	}
	data, etag, err := snap.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	p := src.Audience()
	r.s.log.InfoContext(ctx, "snapshot compiled", "audience", p.Org+"|"+string(p.Role), "indicators", snap.Indicators(),
		"bytes", len(data), "etag", etag, "revoked", stats.Revoked, "expired", stats.Expired, "uncompiled", stats.Uncompiled, "invalid", stats.Invalid, "protected", stats.Protected)
	return &egress.Artifact{Files: []egress.File{{Name: "snapshot", Data: data}}, ETag: etag, Items: snap.Indicators()}, nil
}

// indicators yields the latest version of every indicator src releases.
func indicators(ctx context.Context, src *egress.Source) iter.Seq2[json.RawMessage, error] {
	return func(yield func(json.RawMessage, error) bool) {
		for _, c := range src.Collections() {
			for e, err := range src.Read(ctx, c, entente.ObjectQuery{Types: []string{"indicator"}, Limit: 5000}) {
				if !yield(e.Raw, err) || err != nil {
					return
				}
			}
		}
	}
}
