package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/entente-cti/entente/internal/store"
)

// LatestAdded returns the greatest date_added of the collection's entries
// (the zero time when it holds none): one seek at the end of the
// collection's date_added index.
func (s *Store) LatestAdded(ctx context.Context, collection string) (time.Time, error) {
	coll, _, err := s.readCollectionSeq(ctx, collection)
	if err != nil {
		return time.Time{}, err
	}
	var n sql.NullInt64
	if err := s.read.QueryRowContext(ctx, `SELECT max(date_added) FROM objects WHERE collection = ?`, coll).Scan(&n); err != nil {
		return time.Time{}, fmt.Errorf("latest addition to collection %s: %w", collection, err)
	}
	if !n.Valid {
		return time.Time{}, nil
	}
	return store.FromUnixNano(n.Int64), nil
}
