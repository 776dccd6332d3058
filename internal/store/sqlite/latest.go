package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

// LatestAdded returns the greatest date_added of the collection's entries
// (the zero time when it holds none): one prepared statement that finds
// the collection and seeks the end of its two date_added indexes (the
// latest versions and the others, migration 1810).
func (s *Store) LatestAdded(ctx context.Context, collection string) (time.Time, error) {
	var (
		seq int64
		n   sql.NullInt64
	)
	err := s.r.latestAdded.QueryRowContext(ctx, collection).Scan(&seq, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, entente.Errorf(entente.ENOTFOUND, "collection %q not found", collection)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("latest addition to collection %s: %w", collection, err)
	}
	if !n.Valid {
		return time.Time{}, nil
	}
	return store.FromUnixNano(n.Int64), nil
}
