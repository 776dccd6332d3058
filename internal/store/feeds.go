package store

import (
	"context"
	"encoding/json"
	"time"
)

// Feed is a threat-intelligence feed the node polls over HTTP: its
// configuration and the state of its last poll.
type Feed struct {
	// ID identifies the feed (a UUID).
	ID string `json:"id"`
	// Name is the feed's name, recorded as the source of its indicators.
	Name string `json:"name"`
	// URL is where the feed is fetched (http or https).
	URL string `json:"url"`
	// Format is the feed's format as the import command names it (auto,
	// misp-event, csv, urlhaus, threatfox, feodo, plain).
	Format string `json:"format"`
	// Interval is how often the feed is polled.
	Interval time.Duration `json:"interval"`
	// TLP is the marking of indicators the feed does not mark ("" for
	// none).
	TLP string `json:"tlp,omitempty"`
	// Confidence is the confidence of indicators the feed does not rate.
	Confidence int `json:"confidence,omitempty"`
	// ValidFor is how long the feed's indicators stay valid (0: the
	// defaults per observable type).
	ValidFor time.Duration `json:"valid_for,omitempty"`
	// Collection is the id or alias of the collection the feed fills.
	Collection string `json:"collection"`
	// Created is when the feed was added.
	Created time.Time `json:"created"`

	// State of the last poll, kept by UpdateFeedState.
	// ETag and LastModified are the validators of the last answer, sent
	// back as If-None-Match and If-Modified-Since.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// LastRun is when the feed was last polled; LastError what went
	// wrong then ("" after a success).
	LastRun   time.Time `json:"last_run,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// Stats are the statistics of the last import, as JSON.
	Stats json.RawMessage `json:"stats,omitempty"`
}

// FeedState is what a poll records about a feed.
type FeedState struct {
	ETag         string
	LastModified string
	LastRun      time.Time
	LastError    string
	// Stats replaces the stored statistics when not nil.
	Stats json.RawMessage
}

// FeedStore stores the feeds a node polls. Backends implement it
// alongside [Store]; the node service obtains it by type assertion.
// Errors follow the conventions of [Store].
type FeedStore interface {
	// PutFeed creates a feed or replaces its configuration, keeping its
	// poll state.
	PutFeed(ctx context.Context, f Feed) error
	// Feed returns one feed. ENOTFOUND if none.
	Feed(ctx context.Context, id string) (Feed, error)
	// Feeds lists the feeds, ordered by creation.
	Feeds(ctx context.Context) ([]Feed, error)
	// DeleteFeed removes a feed. ENOTFOUND if none.
	DeleteFeed(ctx context.Context, id string) error
	// UpdateFeedState records the outcome of a poll. ENOTFOUND if no such
	// feed.
	UpdateFeedState(ctx context.Context, id string, st FeedState) error
}

// ApplyFeedState returns f with the poll state st.
func ApplyFeedState(f Feed, st FeedState) Feed {
	f.ETag, f.LastModified, f.LastRun, f.LastError = st.ETag, st.LastModified, st.LastRun, st.LastError
	if st.Stats != nil {
		f.Stats = st.Stats
	}
	return f
}
