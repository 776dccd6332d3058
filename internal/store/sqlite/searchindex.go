package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

// The search index (search_docs, search_fts, search_keys) of objects
// inserted since search_state.seq is written by the writer goroutine in
// batches when no addition has waited for searchIdle, at least every
// searchMaxLag under a constant load, and before a search
// (SearchObjects) when at most maxSearchCatchUp objects wait: a POST pays
// for storing its objects, not for indexing them, and a search sees every
// object stored before it except in the seconds after a bulk addition.
const (
	// searchIdle is how long the writer waits without additions before
	// it indexes.
	searchIdle = 250 * time.Millisecond
	// searchMaxLag bounds how long the index lags a constant load.
	searchMaxLag = 5 * time.Second
	// searchBatch is the objects the writer indexes in one transaction
	// when it is idle, so that an addition arriving then waits little.
	searchBatch = 2000
)

// searchInline is the objects of a group up to which the writer indexes
// them in the group's own transaction when the index held every object
// before (indexInline): a received push of a few sightings, an alert.
const searchInline = 64

// indexInline indexes, in tx, the objects a group of at most searchInline
// objects just inserted, when the index held every object before it; it
// reports whether the index now holds every object of tx. Before, every
// small group was followed, once the writer had been idle for
// searchIdle, by a transaction of its own that indexed it: a second
// commit, and a second fsync, for each received push or alert of a node
// that stores a few objects at a time (a CERT of a large federation
// during an outbreak, issue 16). The indexing runs in a savepoint: should
// it fail, it is undone alone, the group's calls commit, and the idle
// writer indexes later as before.
func (s *Store) indexInline(ctx context.Context, tx *sql.Tx, objects int) bool {
	if !s.searchCurrent || objects == 0 || objects > searchInline {
		return false
	}
	if _, err := tx.StmtContext(ctx, s.w.savepoint.Stmt).ExecContext(ctx); err != nil {
		return false
	}
	done, err := indexSearchTx(ctx, tx, 2*searchInline)
	if err != nil {
		if _, err := tx.StmtContext(ctx, s.w.rollbackTo.Stmt).ExecContext(ctx); err != nil {
			return false
		}
		done = false
	}
	if _, err := tx.StmtContext(ctx, s.w.release.Stmt).ExecContext(ctx); err != nil {
		return false
	}
	return done
}

// indexChunk is how many objects' rows one round of reading and inserting
// covers: their JSON is decoded once, in Go, and each of the three tables
// gets one multi-row INSERT (one INSERT … SELECT per table calling
// entente_search per field decoded each object three times, and cost a
// TAXII POST more CPU than storing its objects).
const indexChunk = 512

// maxBound bounds the values one INSERT binds (SQLite allows 32,766).
const maxBound = 30000

// indexSearchTx indexes, in tx, the objects inserted since the index was
// last brought up to date: at most limit of them (all with limit <= 0).
// It reports whether the index is now up to date. The latest versions
// that a trigger indexed already (a version made latest again) are
// skipped.
func indexSearchTx(ctx context.Context, tx *sql.Tx, limit int64) (bool, error) {
	var from, upto int64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM search_state WHERE id = 1`).Scan(&from); err != nil {
		return false, fmt.Errorf("search index: read its state: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM objects`).Scan(&upto); err != nil {
		return false, fmt.Errorf("search index: read the last object: %w", err)
	}
	if upto <= from {
		return true, nil
	}
	done := true
	if limit > 0 && upto-from > limit {
		upto, done = from+limit, false
	}
	var ix searchIndexer
	defer ix.close()
	for lo := from; lo < upto; lo += indexChunk {
		hi := min(lo+indexChunk, upto)
		if err := ix.index(ctx, tx, lo, hi); err != nil {
			return false, fmt.Errorf("search index: objects %d to %d: %w", lo+1, hi, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE search_state SET seq = ?1 WHERE id = 1`, upto); err != nil {
		return false, fmt.Errorf("search index: record objects up to %d: %w", upto, err)
	}
	return done, nil
}

// searchIndexer holds the bound values of one chunk's inserts, reused
// from chunk to chunk, and the inserts prepared in the transaction (a
// full chunk's statements are parsed once: their thousands of
// placeholders took a sixth of the indexing's CPU to parse each time).
type searchIndexer struct {
	docs, fts, keys []any
	sql             strings.Builder
	stmts           map[string]*sql.Stmt
}

// close closes the prepared inserts.
func (ix *searchIndexer) close() {
	for _, st := range ix.stmts {
		st.Close()
	}
}

// index writes the search rows of the latest versions with seq in
// (lo, hi] that no trigger indexed.
func (ix *searchIndexer) index(ctx context.Context, tx *sql.Tx, lo, hi int64) error {
	ix.docs, ix.fts, ix.keys = ix.docs[:0], ix.fts[:0], ix.keys[:0]
	rows, err := tx.QueryContext(ctx, `SELECT seq, collection, id, type, version, raw FROM objects
		WHERE seq > ?1 AND seq <= ?2 AND is_latest = 1 AND seq NOT IN (SELECT seq FROM search_docs WHERE seq > ?1 AND seq <= ?2)`, lo, hi)
	if err != nil {
		return fmt.Errorf("read the objects: %w", err)
	}
	for rows.Next() {
		var (
			seq, coll, modified int64
			id, typ             string
			raw                 sql.RawBytes
		)
		if err := rows.Scan(&seq, &coll, &id, &typ, &modified, &raw); err != nil {
			rows.Close()
			return fmt.Errorf("read the objects: %w", err)
		}
		d := store.SearchDocOf(raw)
		ix.docs = append(ix.docs, seq, coll, id, typ, modified, d.TLP, d.Source, d.Title, d.Keys)
		ix.fts = append(ix.fts, seq, d.Names, d.Body)
		for _, k := range searchKeys(d.Keys) {
			ix.keys = append(ix.keys, k, seq)
		}
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("read the objects: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the objects: %w", err)
	}
	for _, t := range []struct {
		head  string
		width int
		args  []any
	}{
		{"INSERT INTO search_docs (seq, collection, id, type, modified, tlp, source, title, keys) VALUES ", 9, ix.docs},
		{"INSERT INTO search_fts (rowid, names, body) VALUES ", 3, ix.fts},
		{"INSERT INTO search_keys (key, seq) VALUES ", 2, ix.keys},
	} {
		if err := ix.insert(ctx, tx, t.head, t.width, t.args); err != nil {
			return err
		}
	}
	return nil
}

// insert runs head followed by one row of width values per width args,
// in as few statements as the bound on values allows.
func (ix *searchIndexer) insert(ctx context.Context, tx *sql.Tx, head string, width int, args []any) error {
	per := maxBound / width * width
	for len(args) > 0 {
		n := min(len(args), per)
		ix.sql.Reset()
		ix.sql.WriteString(head)
		for r := 0; r < n/width; r++ {
			if r > 0 {
				ix.sql.WriteByte(',')
			}
			ix.sql.WriteByte('(')
			for c := 0; c < width; c++ {
				if c > 0 {
					ix.sql.WriteByte(',')
				}
				ix.sql.WriteByte('?')
			}
			ix.sql.WriteByte(')')
		}
		q := ix.sql.String()
		st := ix.stmts[q]
		if st == nil {
			var err error
			if st, err = tx.PrepareContext(ctx, q); err != nil {
				return fmt.Errorf("%s…: %w", strings.TrimSuffix(head, " VALUES "), err)
			}
			if ix.stmts == nil {
				ix.stmts = map[string]*sql.Stmt{}
			}
			ix.stmts[q] = st
		}
		if _, err := st.ExecContext(ctx, args[:n]...); err != nil {
			return fmt.Errorf("%s…: %w", strings.TrimSuffix(head, " VALUES "), err)
		}
		args = args[n:]
	}
	return nil
}

// indexSearchBatch indexes one batch in its own transaction (the writer
// goroutine calls it when idle). It reports whether the index is up to
// date.
func (s *Store) indexSearchBatch() bool {
	done := true
	err := inTx(context.Background(), s.write, func(tx *sql.Tx) error {
		var err error
		done, err = indexSearchTx(context.Background(), tx, searchBatch)
		return err
	})
	if err != nil {
		// A search brings the index up to date itself, and says why not.
		return true
	}
	s.searchAt = time.Now()
	s.searchCurrent = done
	return done
}

// maxSearchCatchUp bounds what a search indexes before it answers (a few
// seconds of work: ATT&CK Enterprise, 24,772 objects, takes about one):
// past a bulk addition of more, it answers from the index as it stands
// while the writer indexes the rest when idle, rather than keep the
// analyst waiting for all of it.
const maxSearchCatchUp = 100_000

// catchUpSearch brings the search index up to date with every object
// stored before the call, through the writer, unless more than
// maxSearchCatchUp objects wait.
func (s *Store) catchUpSearch(ctx context.Context) error {
	return s.indexSearch(ctx, maxSearchCatchUp)
}

// IndexSearch brings the search index up to date with every object stored
// before the call, however many (benchmarks and tools that must not
// search a partial index; a node need not call it).
func (s *Store) IndexSearch(ctx context.Context) error {
	return s.indexSearch(ctx, 0)
}

// indexSearch indexes every object not yet indexed, unless more than
// bound (> 0) wait.
func (s *Store) indexSearch(ctx context.Context, bound int64) error {
	var from, upto int64
	if err := s.read.QueryRowContext(ctx, `SELECT (SELECT seq FROM search_state WHERE id = 1), (SELECT coalesce(max(seq), 0) FROM objects)`).Scan(&from, &upto); err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	if upto <= from || (bound > 0 && upto-from > bound) {
		return nil
	}
	err := s.enqueueWrite(ctx, func(ctx context.Context, tx *sql.Tx, _ []entente.AddOutcome) error {
		_, err := indexSearchTx(ctx, tx, 0)
		return err
	})
	if err != nil {
		return fmt.Errorf("search index: bring it up to date: %w", err)
	}
	return nil
}
