package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/entente-cti/entente/internal/stix"
)

// The writer keeps, for a collection that received a large addition, the
// set of the id hashes it holds, so that the next additions look up
// stored versions only of the ids whose hash is in it: for a bulk import
// of new objects, none. The set may hold hashes the collection no longer
// holds (deleted or rolled back: then a look-up finds nothing, as
// without the set) but never lacks one it holds: it is built from the
// collection inside a write transaction, the writer adds every hash it
// inserts, and all sets are dropped when another connection (another
// process) has committed since, as PRAGMA data_version says.
const (
	// idSetFrom is the size of an addition from which the writer builds
	// the set of a collection that has none.
	idSetFrom = 10000
	// maxIDSet bounds a set's size (about 40 bytes per hash); a larger
	// collection has none.
	maxIDSet = 4 << 20
)

// idSets are the writer's sets; only the writer goroutine uses them.
type idSets struct {
	dataVersion int64
	byColl      map[int64]map[int64]struct{}
}

// idSet returns the set of id hashes of collection coll, building it for
// an addition of n objects, or nil.
func (s *Store) idSet(ctx context.Context, tx *sql.Tx, coll int64, n int) (map[int64]struct{}, error) {
	var dv int64
	if err := tx.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&dv); err != nil {
		return nil, fmt.Errorf("read data version: %w", err)
	}
	if dv != s.ids.dataVersion || s.ids.byColl == nil {
		s.ids = idSets{dataVersion: dv, byColl: map[int64]map[int64]struct{}{}}
	}
	if set, ok := s.ids.byColl[coll]; ok || n < idSetFrom {
		return set, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id_hash FROM objects INDEXED BY objects_id_hash WHERE collection = ?`, coll)
	if err != nil {
		return nil, fmt.Errorf("read id hashes: %w", err)
	}
	defer rows.Close()
	set := map[int64]struct{}{}
	for rows.Next() {
		var h int64
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("read id hashes: %w", err)
		}
		set[h] = struct{}{}
		if len(set) > maxIDSet {
			return nil, rows.Close()
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read id hashes: %w", err)
	}
	s.ids.byColl[coll] = set
	return set, nil
}

// maybeStored returns those of objs whose id hash set holds: only they
// can have stored versions.
func maybeStored(set map[int64]struct{}, objs []*stix.Object) []*stix.Object {
	var out []*stix.Object
	for _, o := range objs {
		if _, ok := set[idHash(o.ID)]; ok {
			out = append(out, o)
		}
	}
	return out
}
