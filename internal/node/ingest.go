package node

import (
	"context"
	"encoding/json"
	"iter"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/ingest"
)

// The node's additions are made by internal/ingest; these are its names
// as the node's adapters use them.
type (
	// ImportStats counts what an import did.
	ImportStats = ingest.ImportStats
	// Feed is a feed the node polls.
	Feed = ingest.Feed
	// FeedStats counts what one poll of a feed did.
	FeedStats = ingest.FeedStats
)

// ImportBatch is how many objects an import stores per transaction.
const ImportBatch = ingest.ImportBatch

// PrepareImport merges imported objects with what is stored (see
// [ingest.PrepareImport]).
var PrepareImport = ingest.PrepareImport

// SortedHits lists warninglist hit counts, most hits first.
var SortedHits = ingest.SortedHits

// newIngest wires the node's ingest.
func (s *Service) newIngest() *ingest.Service {
	return ingest.New(ingest.Config{
		Store:      s.st,
		Release:    s.releaseOn,
		Collection: s.collection,
		Stored:     s.stored,
		Imported:   s.imported,
		Admit:      s.admitPushed,
		Added:      s.exports.Added,
		Deleted: func(ctx context.Context, c entente.Collection, id string) error {
			s.exports.Dropped(c.ID)
			s.alerting.Deleted(c.ID)
			return s.termsChanged(ctx, "object "+id+" deleted from collection "+c.ID)
		},
		Fetch:                 s.cfg.FetchFeed,
		Geo:                   s.geoLocator,
		Org:                   s.cfg.Org,
		DefaultFeedCollection: CollectionIntel,
		Now:                   s.cfg.Now,
		Logger:                s.log,
	})
}

// AddObjects validates and stores objects in a collection (see
// [ingest.Service.AddObjects]).
func (s *Service) AddObjects(ctx context.Context, p entente.Principal, collection string, objects []json.RawMessage) (*entente.Status, error) {
	return s.ingest.AddObjects(ctx, p, collection, objects)
}

// SubmitObjects is AddObjects for TAXII clients: a pending status at once
// (see [ingest.Service.SubmitObjects]).
func (s *Service) SubmitObjects(ctx context.Context, p entente.Principal, collection string, objects []json.RawMessage) (*entente.Status, error) {
	return s.ingest.SubmitObjects(ctx, p, collection, objects)
}

// Status returns the status of an addition (its key's and admins' only).
func (s *Service) Status(ctx context.Context, p entente.Principal, id string) (*entente.Status, error) {
	return s.ingest.Status(ctx, p, id)
}

// OnComplete registers f to be called with every complete status (for
// metrics and memory accounting). Call it before serving requests.
func (s *Service) OnComplete(f func(*entente.Status)) { s.ingest.OnComplete(f) }

// DeleteObject deletes versions of an object (see
// [ingest.Service.DeleteObject]).
func (s *Service) DeleteObject(ctx context.Context, p entente.Principal, collection, id string, versions entente.VersionFilter, specVersions []string) error {
	defer s.deletions.Add(1)
	return s.ingest.DeleteObject(ctx, p, collection, id, versions, specVersions)
}

// ImportObjects imports objects converted from feeds and files (see
// [ingest.Service.ImportObjects]).
func (s *Service) ImportObjects(ctx context.Context, p entente.Principal, collection string, objs []json.RawMessage) (ImportStats, error) {
	return s.ingest.ImportObjects(ctx, p, collection, objs)
}

// ImportStream imports batches of objects as they come (see
// [ingest.Service.ImportStream]).
func (s *Service) ImportStream(ctx context.Context, p entente.Principal, collection string, batches iter.Seq[[]feed.Object]) (ImportStats, error) {
	return s.ingest.ImportStream(ctx, p, collection, batches)
}

// AddFeed records a feed to poll (admin only).
func (s *Service) AddFeed(ctx context.Context, p entente.Principal, f Feed) (Feed, error) {
	return s.ingest.AddFeed(ctx, p, f)
}

// CheckFeedUpdate checks a feed's new configuration without saving it
// (admin only; see [ingest.Service.CheckFeedUpdate]).
func (s *Service) CheckFeedUpdate(ctx context.Context, p entente.Principal, f Feed) (before, after Feed, err error) {
	return s.ingest.CheckFeedUpdate(ctx, p, f)
}

// UpdateFeed replaces a feed's configuration, keeping its poll state
// (admin only).
func (s *Service) UpdateFeed(ctx context.Context, p entente.Principal, f Feed) (Feed, error) {
	return s.ingest.UpdateFeed(ctx, p, f)
}

// Feeds lists the feeds (admin only).
func (s *Service) Feeds(ctx context.Context, p entente.Principal) ([]Feed, error) {
	return s.ingest.Feeds(ctx, p)
}

// RemoveFeed removes a feed (admin only).
func (s *Service) RemoveFeed(ctx context.Context, p entente.Principal, id string) error {
	return s.ingest.RemoveFeed(ctx, p, id)
}

// PollFeed polls one feed now (admin only).
func (s *Service) PollFeed(ctx context.Context, p entente.Principal, id string) (Feed, error) {
	return s.ingest.PollFeed(ctx, p, id)
}

// RunFeeds polls every feed on its schedule until ctx ends.
func (s *Service) RunFeeds(ctx context.Context) { s.ingest.RunFeeds(ctx) }
