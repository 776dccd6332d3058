package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/google/uuid"
)

// Feed polling limits.
const (
	// FeedTimeout bounds one poll's HTTP exchange.
	FeedTimeout = 2 * time.Minute
	// MaxFeedBytes bounds a feed's body.
	MaxFeedBytes = 512 << 20
	// MinFeedInterval is the shortest polling interval accepted.
	MinFeedInterval = time.Minute
	// feedTick is how often the poll loop looks for feeds that are due.
	feedTick = 30 * time.Second
)

// Feed is a feed configured on the node, as the node API shows it. It is
// the store's record: packages that serve the API name it through the node,
// never through the store.
type Feed = store.Feed

// FeedStats is what the last poll of a feed imported (store.Feed.Stats).
type FeedStats struct {
	Records    int           `json:"records"`
	Indicators int           `json:"indicators"`
	Stored     int           `json:"stored"`
	Merged     int           `json:"merged"`
	Rejected   int           `json:"rejected"`
	Rejects    []feed.Reject `json:"rejects,omitempty"` // the first ones
	NotChanged bool          `json:"not_modified,omitempty"`
}

func (s *Service) feedStore() (store.FeedStore, error) {
	fs, ok := s.st.(store.FeedStore)
	if !ok {
		return nil, entente.Errorf(entente.EUNSUPPORTED, "this node's store does not keep feeds")
	}
	return fs, nil
}

// FeedOptions returns the import options of a configured feed.
func FeedOptions(f store.Feed) (feed.Options, error) {
	o := feed.Options{Source: f.Name, SourceURL: f.URL, Confidence: f.Confidence}
	switch f.Format {
	case "urlhaus", "threatfox", "feodo":
		o.Format, o.CSV = feed.FormatCSV, f.Format
	default:
		ff, err := feed.ParseFormat(f.Format)
		if err != nil {
			return o, entente.Errorf(entente.EINVALID, "format: %v", err)
		}
		if ff == feed.FormatMISPFeed {
			return o, entente.Errorf(entente.EINVALID, "format: a MISP feed is a directory; poll its events' URLs as misp-event feeds")
		}
		o.Format = ff
	}
	if f.TLP != "" {
		t, err := stix.ParseTLP(f.TLP)
		if err != nil {
			return o, entente.Errorf(entente.EINVALID, "tlp: %v", err)
		}
		o.TLP = &t
	}
	if f.ValidFor > 0 {
		o.DefaultValidFor = map[observable.Kind]time.Duration{}
		for k := range feed.DefaultValidFor {
			o.DefaultValidFor[k] = f.ValidFor
		}
		for _, k := range []observable.Kind{observable.MD5, observable.SHA1, observable.SHA256, observable.SHA512} {
			o.DefaultValidFor[k] = f.ValidFor
		}
	}
	return o, nil
}

// AddFeed configures a feed for the node to poll (admins only). Its id is
// set when empty; the collection must exist.
func (s *Service) AddFeed(ctx context.Context, p entente.Principal, f store.Feed) (store.Feed, error) {
	if err := requireAdmin(p, "configuring feeds"); err != nil {
		return f, err
	}
	fs, err := s.feedStore()
	if err != nil {
		return f, err
	}
	if f.ID == "" {
		f.ID = uuid.NewString()
	}
	if err := s.checkFeed(ctx, &f); err != nil {
		return f, err
	}
	f.Created = s.now()
	f.ETag, f.LastModified, f.LastRun, f.LastError, f.Stats = "", "", time.Time{}, "", nil
	if err := fs.PutFeed(ctx, f); err != nil {
		return f, err
	}
	s.log.InfoContext(ctx, "feed added", "feed", f.ID, "name", f.Name, "url", f.URL, "key_id", p.KeyID)
	return f, nil
}

// checkFeed checks a feed's configuration and fills its defaults.
func (s *Service) checkFeed(ctx context.Context, f *store.Feed) error {
	if f.Name == "" {
		return entente.Errorf(entente.EINVALID, "name: a feed needs a name")
	}
	u, err := url.Parse(f.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return entente.Errorf(entente.EINVALID, "url: %q is not an http or https URL", f.URL)
	}
	if f.Format == "" {
		f.Format = "auto"
	}
	if _, err := FeedOptions(*f); err != nil {
		return err
	}
	if f.Interval == 0 {
		f.Interval = time.Hour
	}
	if f.Interval < MinFeedInterval {
		return entente.Errorf(entente.EINVALID, "interval: %s is shorter than %s", f.Interval, MinFeedInterval)
	}
	if f.Confidence < 0 || f.Confidence > 100 {
		return entente.Errorf(entente.EINVALID, "confidence: %d is not between 0 and 100", f.Confidence)
	}
	if f.Collection == "" {
		f.Collection = s.cfg.DefaultFeedCollection
	}
	if _, err := s.cfg.Collection(ctx, f.Collection); err != nil {
		return err
	}
	return nil
}

// CheckFeedUpdate checks a new configuration of the feed f.ID without
// saving it (admins only): the feed as it is (before) and as it would be
// saved (after: its id, creation time and poll state kept). ENOTFOUND if
// there is no such feed; EINVALID names the field at fault.
func (s *Service) CheckFeedUpdate(ctx context.Context, p entente.Principal, f store.Feed) (before, after store.Feed, err error) {
	if err := requireAdmin(p, "configuring feeds"); err != nil {
		return before, f, err
	}
	fs, err := s.feedStore()
	if err != nil {
		return before, f, err
	}
	if before, err = fs.Feed(ctx, f.ID); err != nil {
		return before, f, err
	}
	if err := s.checkFeed(ctx, &f); err != nil {
		return before, f, err
	}
	f.Created = before.Created
	f.ETag, f.LastModified, f.LastRun, f.LastError, f.Stats = before.ETag, before.LastModified, before.LastRun, before.LastError, before.Stats
	if f.URL != before.URL || f.Format != before.Format {
		// The validators are the old source's: the next poll fetches
		// the new one whole.
		f.ETag, f.LastModified = "", ""
	}
	return before, f, nil
}

// UpdateFeed replaces the configuration of the feed f.ID (admins only),
// checked as CheckFeedUpdate checks it, keeping its poll state (but for
// the validators of the last answer when its URL or format changes); the
// next poll uses it.
func (s *Service) UpdateFeed(ctx context.Context, p entente.Principal, f store.Feed) (store.Feed, error) {
	before, f, err := s.CheckFeedUpdate(ctx, p, f)
	if err != nil {
		return f, err
	}
	fs, err := s.feedStore()
	if err != nil {
		return f, err
	}
	if err := fs.PutFeed(ctx, f); err != nil {
		return f, fmt.Errorf("update feed %s: %w", f.ID, err)
	}
	if f.ETag != before.ETag || f.LastModified != before.LastModified {
		st := store.FeedState{ETag: f.ETag, LastModified: f.LastModified, LastRun: f.LastRun, LastError: f.LastError, Stats: f.Stats}
		if err := fs.UpdateFeedState(ctx, f.ID, st); err != nil {
			return f, fmt.Errorf("update feed %s: %w", f.ID, err)
		}
	}
	s.log.InfoContext(ctx, "feed updated", "feed", f.ID, "name", f.Name, "url", f.URL, "key_id", p.KeyID)
	return f, nil
}

// Feeds lists the configured feeds (admins only).
func (s *Service) Feeds(ctx context.Context, p entente.Principal) ([]store.Feed, error) {
	if err := requireAdmin(p, "listing feeds"); err != nil {
		return nil, err
	}
	fs, err := s.feedStore()
	if err != nil {
		return nil, err
	}
	return fs.Feeds(ctx)
}

// RemoveFeed stops polling a feed (admins only); what it imported stays.
func (s *Service) RemoveFeed(ctx context.Context, p entente.Principal, id string) error {
	if err := requireAdmin(p, "removing feeds"); err != nil {
		return err
	}
	fs, err := s.feedStore()
	if err != nil {
		return err
	}
	return fs.DeleteFeed(ctx, id)
}

// PollFeed fetches a feed now (admins only), with If-None-Match and
// If-Modified-Since from the last answer, imports what it holds into its
// collection through ImportObjects, and records the outcome. A 304 imports
// nothing. A failure (timeout, HTTP error, an HTML page or anything that
// is not a feed) is recorded as the feed's LastError and returned.
func (s *Service) PollFeed(ctx context.Context, p entente.Principal, id string) (store.Feed, error) {
	if err := requireAdmin(p, "polling feeds"); err != nil {
		return store.Feed{}, err
	}
	fs, err := s.feedStore()
	if err != nil {
		return store.Feed{}, err
	}
	f, err := fs.Feed(ctx, id)
	if err != nil {
		return f, err
	}
	st := store.FeedState{ETag: f.ETag, LastModified: f.LastModified, LastRun: s.now()}
	stats, err := s.pollFeed(ctx, p, f, &st)
	if err != nil {
		st.LastError = err.Error()
	}
	if stats != nil {
		b, _ := json.Marshal(stats)
		st.Stats = b
	}
	if uerr := fs.UpdateFeedState(context.WithoutCancel(ctx), id, st); uerr != nil {
		return f, fmt.Errorf("record poll of feed %s: %w", id, uerr)
	}
	f = store.ApplyFeedState(f, st)
	s.log.InfoContext(ctx, "feed polled", "feed", f.ID, "name", f.Name, "error", st.LastError)
	if err != nil {
		return f, fmt.Errorf("poll feed %s (%s): %w", f.Name, f.URL, err)
	}
	return f, nil
}

func (s *Service) pollFeed(ctx context.Context, p entente.Principal, f store.Feed, st *store.FeedState) (*FeedStats, error) {
	opts, err := FeedOptions(f)
	if err != nil {
		return nil, err
	}
	opts.Now = s.now()
	if l := s.cfg.Geo(); l != nil {
		opts.Geo = l
	}
	ctx, cancel := context.WithTimeout(ctx, FeedTimeout)
	defer cancel()
	if s.cfg.Fetch == nil {
		return nil, fmt.Errorf("this node has no way to fetch feeds (no Fetch configured)")
	}
	got, err := s.cfg.Fetch(ctx, f.URL, f.ETag, f.LastModified, MaxFeedBytes)
	if err != nil {
		return nil, err
	}
	if got.NotModified {
		return &FeedStats{NotChanged: true}, nil
	}
	body := got.Body
	res, err := feed.Import(bytes.NewReader(body), f.Name, opts)
	if err != nil {
		return nil, err
	}
	stats := &FeedStats{Records: res.Stats.Records, Indicators: res.Stats.Indicators, Rejected: len(res.Rejected)}
	stats.Rejects = res.Rejected[:min(len(res.Rejected), 20)]
	if res.Stats.Records > 0 && res.Stats.Indicators == 0 && len(res.Objects) == 0 {
		return stats, fmt.Errorf("nothing in the answer is a feed record (%d records, %d rejected)", res.Stats.Records, len(res.Rejected))
	}
	is, err := s.ImportObjects(ctx, p, f.Collection, res.Objects)
	stats.Stored, stats.Merged = is.Stored, is.Merged
	if err != nil {
		return stats, err
	}
	if len(is.Failures) > 0 {
		return stats, fmt.Errorf("the node refused %d objects: %s", len(is.Failures), is.Failures[0].Message)
	}
	// Validators are kept only after a successful import, so that a
	// failed one is fetched whole again.
	st.ETag, st.LastModified = got.ETag, got.LastModified
	return stats, nil
}

// Fetched is a feed's answer to a conditional fetch.
type Fetched struct {
	// NotModified is set when the feed did not change since the
	// validators given; Body is then empty.
	NotModified bool
	Body        []byte
	// ETag and LastModified are the answer's validators.
	ETag, LastModified string
}

// Fetcher fetches a feed (the HTTP adapter, wired by the caller):
// conditionally on etag and lastModified, at most maxBytes of it.
type Fetcher func(ctx context.Context, url, etag, lastModified string, maxBytes int64) (Fetched, error)

// RunFeeds polls every configured feed when its interval has passed
// since its last poll, as the node's admin, until ctx ends. Errors are
// recorded on each feed and logged.
func (s *Service) RunFeeds(ctx context.Context) {
	fs, err := s.feedStore()
	if err != nil {
		return
	}
	admin := localAdmin(s.cfg.Org)
	t := time.NewTicker(feedTick)
	defer t.Stop()
	for {
		feeds, err := fs.Feeds(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "list feeds", "err", err)
		}
		for _, f := range feeds {
			if ctx.Err() != nil {
				return
			}
			if !f.LastRun.IsZero() && s.now().Sub(f.LastRun) < f.Interval {
				continue
			}
			if _, err := s.PollFeed(ctx, admin, f.ID); err != nil {
				s.log.WarnContext(ctx, "feed poll failed", "feed", f.ID, "name", f.Name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
