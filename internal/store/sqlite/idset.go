package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/entente-cti/entente/internal/stix"
)

// The writer keeps, for a collection that received a large addition or
// that is small, the set of the id hashes it holds, so that the next
// additions look up stored versions only of the ids whose hash is in it:
// for a bulk import of new objects, or TAXII POSTs of new objects to a
// collection that started small, none. The set may hold hashes the
// collection no longer holds (deleted or rolled back: then a look-up
// finds nothing, as without the set) but never lacks one it holds: it is
// built from the collection inside a write transaction, the writer adds
// every hash it inserts, and all sets are dropped when another connection
// (another process) has committed since, as PRAGMA data_version says.
const (
	// idSetFrom is the size of an addition from which the writer builds
	// the set of a collection that has none, however large.
	idSetFrom = 10000
	// idSetSmall is the most rows a collection may hold for the writer
	// to build its set for a smaller addition (reading them once costs
	// about what looking up that many ids does), and idSetSmallMax the
	// size at which a set so built is dropped: a collection that grows
	// by small additions keeps the lookups it had, not a large set.
	idSetSmall    = 1 << 16
	idSetSmallMax = 1 << 18
	// maxIDSet bounds a set's size (about 40 bytes per hash); a larger
	// collection has none.
	maxIDSet = 4 << 20
)

// idSetSQL reads the id hashes of a collection (?1), at most ?2 (-1: all),
// from the id index alone. The index leads with the hash (migration
// 1800: a cheaper insert), so this scans the whole index, every
// collection's entries (about 25 bytes per object of the node), once per
// process and collection; a read of the collection's rows would cost
// about 600 bytes per object of the collection instead.
const idSetSQL = `SELECT id_hash FROM objects INDEXED BY objects_id_hash WHERE collection = ? LIMIT ?`

// idSets are the writer's sets; only the writer goroutine uses them.
type idSets struct {
	dataVersion int64
	byColl      map[int64]map[int64]struct{}
	// bound is the size past which a collection's set is dropped (absent:
	// maxIDSet); large marks the collections found too large for a set
	// for small additions.
	bound map[int64]int
	large map[int64]bool
}

// boundOf is the size past which the set of collection coll is dropped.
func (ids *idSets) boundOf(coll int64) int {
	if b, ok := ids.bound[coll]; ok {
		return b
	}
	return maxIDSet
}

// drop forgets the set of collection coll, too large to keep.
func (ids *idSets) drop(coll int64) {
	delete(ids.byColl, coll)
	delete(ids.bound, coll)
	ids.large[coll] = true
}

// idSet returns the set of id hashes of collection coll, building it for
// an addition of n objects, or nil.
func (s *Store) idSet(ctx context.Context, tx *sql.Tx, coll int64, n int) (map[int64]struct{}, error) {
	var dv int64
	if err := tx.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&dv); err != nil {
		return nil, fmt.Errorf("read data version: %w", err)
	}
	if dv != s.ids.dataVersion || s.ids.byColl == nil {
		s.ids = idSets{dataVersion: dv, byColl: map[int64]map[int64]struct{}{}, bound: map[int64]int{}, large: map[int64]bool{}}
	}
	if set, ok := s.ids.byColl[coll]; ok {
		return set, nil
	}
	// -1: no limit.
	limit, bound := -1, maxIDSet
	if n < idSetFrom {
		if s.ids.large[coll] {
			return nil, nil
		}
		limit, bound = idSetSmall, idSetSmallMax
	}
	rows, err := tx.QueryContext(ctx, idSetSQL, coll, limit)
	if err != nil {
		return nil, fmt.Errorf("read id hashes: %w", err)
	}
	defer rows.Close()
	set := map[int64]struct{}{}
	read := 0
	for rows.Next() {
		var h int64
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("read id hashes: %w", err)
		}
		set[h] = struct{}{}
		read++
		if len(set) > maxIDSet || read == limit {
			s.ids.large[coll] = true
			return nil, rows.Close()
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read id hashes: %w", err)
	}
	s.ids.byColl[coll] = set
	if bound != maxIDSet {
		s.ids.bound[coll] = bound
	}
	return set, nil
}

// maybeStored returns those of objs whose id hash set holds: only they
// can have stored versions (a nil object has none).
func maybeStored(set map[int64]struct{}, objs []*stix.Object) []*stix.Object {
	var out []*stix.Object
	for _, o := range objs {
		if o == nil {
			continue
		}
		if _, ok := set[idHash(o.ID)]; ok {
			out = append(out, o)
		}
	}
	return out
}
