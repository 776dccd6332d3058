package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

var _ store.FeedStore = (*Store)(nil)

// PutFeed creates a feed or replaces its configuration, keeping its poll
// state.
func (s *Store) PutFeed(ctx context.Context, f store.Feed) error {
	if f.ID == "" {
		return entente.Errorf(entente.EINVALID, "a feed needs an id")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		old, err := feedIn(ctx, tx.QueryRowContext(ctx, `SELECT body FROM feeds WHERE id = ?`, f.ID), f.ID)
		switch {
		case err == nil:
			f = store.ApplyFeedState(f, store.FeedState{ETag: old.ETag, LastModified: old.LastModified, LastRun: old.LastRun, LastError: old.LastError, Stats: old.Stats})
			if f.Created.IsZero() {
				f.Created = old.Created
			}
		case entente.ErrorCode(err) != entente.ENOTFOUND:
			return err
		}
		body, err := json.Marshal(f)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO feeds (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body`, f.ID, string(body))
		return err
	})
	if err != nil {
		return fmt.Errorf("put feed %s: %w", f.ID, err)
	}
	return nil
}

// Feed returns one feed. ENOTFOUND if none.
func (s *Store) Feed(ctx context.Context, id string) (store.Feed, error) {
	return feedIn(ctx, s.read.QueryRowContext(ctx, `SELECT body FROM feeds WHERE id = ?`, id), id)
}

func feedIn(_ context.Context, row *sql.Row, id string) (store.Feed, error) {
	var body string
	if err := row.Scan(&body); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return store.Feed{}, entente.Errorf(entente.ENOTFOUND, "there is no feed %q", id)
		}
		return store.Feed{}, fmt.Errorf("read feed %s: %w", id, err)
	}
	var f store.Feed
	if err := json.Unmarshal([]byte(body), &f); err != nil {
		return store.Feed{}, fmt.Errorf("read feed %s: %w", id, err)
	}
	return f, nil
}

// Feeds lists the feeds, ordered by creation.
func (s *Store) Feeds(ctx context.Context) ([]store.Feed, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT body FROM feeds ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("list feeds: %w", err)
	}
	defer rows.Close()
	var out []store.Feed
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("list feeds: %w", err)
		}
		var f store.Feed
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			return nil, fmt.Errorf("list feeds: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// DeleteFeed removes a feed. ENOTFOUND if none.
func (s *Store) DeleteFeed(ctx context.Context, id string) error {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM feeds WHERE id = ?`, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("delete feed %s: %w", id, err)
	}
	if n == 0 {
		return entente.Errorf(entente.ENOTFOUND, "there is no feed %q", id)
	}
	return nil
}

// UpdateFeedState records the outcome of a poll. ENOTFOUND if no such
// feed.
func (s *Store) UpdateFeedState(ctx context.Context, id string, st store.FeedState) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		f, err := feedIn(ctx, tx.QueryRowContext(ctx, `SELECT body FROM feeds WHERE id = ?`, id), id)
		if err != nil {
			return err
		}
		body, err := json.Marshal(store.ApplyFeedState(f, st))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE feeds SET body = ? WHERE id = ?`, string(body), id)
		return err
	})
	if err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			return err
		}
		return fmt.Errorf("update feed %s: %w", id, err)
	}
	return nil
}
