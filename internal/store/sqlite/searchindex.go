package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/entente-cti/entente"
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

// indexSearchSQL index the latest versions with seq in (?1, ?2] that no
// trigger indexed already.
var indexSearchSQL = []string{
	`INSERT INTO search_fts (rowid, names, body)
		SELECT seq, entente_search(raw, 'n'), entente_search(raw, 'b') FROM objects
		WHERE seq > ?1 AND seq <= ?2 AND is_latest = 1 AND seq NOT IN (SELECT seq FROM search_docs WHERE seq > ?1)`,
	`INSERT INTO search_keys (key, seq)
		SELECT DISTINCT j.value, o.seq FROM objects o, json_each(entente_search(o.raw, 'K')) j
		WHERE o.seq > ?1 AND o.seq <= ?2 AND o.is_latest = 1 AND o.seq NOT IN (SELECT seq FROM search_docs WHERE seq > ?1)`,
	`INSERT INTO search_docs (seq, collection, id, type, modified, tlp, source, title, keys)
		SELECT seq, collection, id, type, version, entente_search(raw, 'l'), entente_search(raw, 's'), entente_search(raw, 't'), entente_search(raw, 'k')
		FROM objects WHERE seq > ?1 AND seq <= ?2 AND is_latest = 1 AND seq NOT IN (SELECT seq FROM search_docs WHERE seq > ?1)`,
	`UPDATE search_state SET seq = ?2 WHERE id = 1`,
}

// indexSearchTx indexes, in tx, the objects inserted since the index was
// last brought up to date: at most limit of them (all with limit <= 0).
// It reports whether the index is now up to date.
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
	for _, q := range indexSearchSQL {
		if _, err := tx.ExecContext(ctx, q, from, upto); err != nil {
			return false, fmt.Errorf("search index: objects %d to %d: %w", from+1, upto, err)
		}
	}
	return done, nil
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
