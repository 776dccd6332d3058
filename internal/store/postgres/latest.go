package postgres

import (
	"context"
	"time"

	"github.com/entente-cti/entente/internal/store"
)

// LatestAdded returns the greatest date_added ever given in the
// collection (the zero time when it never received an object), which the
// collection row keeps.
func (s *Store) LatestAdded(ctx context.Context, collection string) (time.Time, error) {
	_, _, last, err := collectionSeq(ctx, s.pool, collection, false)
	if err != nil || last == 0 {
		return time.Time{}, err
	}
	return store.FromUnixNano(last), nil
}
