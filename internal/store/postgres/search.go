package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

var _ store.SearchStore = (*Store)(nil)

// goMigrations are steps some migrations take in Go, after their SQL, in
// their transaction.
var goMigrations = map[string]func(ctx context.Context, tx pgx.Tx) error{
	"1710_search.sql": backfillSearch,
}

// searchRow is one row of search_docs to write.
type searchRow struct {
	seq, coll, modified int64
	id, typ             string
	raw                 []byte
}

// insertSearchDocs writes the search rows of latest versions.
func insertSearchDocs(ctx context.Context, tx pgx.Tx, rows []searchRow) error {
	for len(rows) > 0 {
		n := min(len(rows), insertChunk)
		var (
			seqs, colls, mods                 = make([]int64, n), make([]int64, n), make([]int64, n)
			ids, types, tlps, sources, titles = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			keys, names, bodies               = make([]string, n), make([]string, n), make([]string, n)
		)
		for i, r := range rows[:n] {
			d := store.SearchDocOf(r.raw)
			seqs[i], colls[i], mods[i], ids[i], types[i] = r.seq, r.coll, r.modified, r.id, r.typ
			tlps[i], sources[i], titles[i], keys[i], names[i], bodies[i] = d.TLP, d.Source, d.Title, d.Keys, d.Names, d.Body
		}
		_, err := tx.Exec(ctx, `INSERT INTO search_docs (seq, collection, id, type, modified, tlp, source, title, keys, doc)
			SELECT seq, coll, id, type, modified, tlp, source, title, array_remove(string_to_array(trim(both '|' from keys), '|'), ''),
				setweight(to_tsvector('simple', names), 'A') || setweight(to_tsvector('simple', body), 'B')
			FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
				AS u (seq, coll, id, type, modified, tlp, source, title, keys, names, body)
			ON CONFLICT (seq) DO NOTHING`,
			seqs, colls, ids, types, mods, tlps, sources, titles, keys, names, bodies)
		if err != nil {
			return fmt.Errorf("index %s..%s for search: %w", rows[0].id, rows[n-1].id, err)
		}
		rows = rows[n:]
	}
	return nil
}

// indexLatest writes the search rows of the latest versions among the
// objects selected by cond (a condition on objects o) that have none.
func indexLatest(ctx context.Context, tx pgx.Tx, cond string, args ...any) error {
	var after int64 = -1 << 63
	for {
		rows, err := tx.Query(ctx, `SELECT o.seq, o.collection, o.id, o.type, o.version, o.raw FROM objects o
			WHERE o.is_latest AND `+cond+` AND o.seq > $`+fmt.Sprint(len(args)+1)+`
			AND NOT EXISTS (SELECT 1 FROM search_docs d WHERE d.seq = o.seq)
			ORDER BY o.seq LIMIT 5000`, append(args, after)...)
		if err != nil {
			return fmt.Errorf("read objects to index: %w", err)
		}
		var batch []searchRow
		for rows.Next() {
			var r searchRow
			if err := rows.Scan(&r.seq, &r.coll, &r.id, &r.typ, &r.modified, &r.raw); err != nil {
				rows.Close()
				return fmt.Errorf("read objects to index: %w", err)
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read objects to index: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		if err := insertSearchDocs(ctx, tx, batch); err != nil {
			return err
		}
		after = batch[len(batch)-1].seq
	}
}

// backfillSearch indexes every object stored before search existed.
func backfillSearch(ctx context.Context, tx pgx.Tx) error {
	return indexLatest(ctx, tx, `true`)
}

// tsQuery returns the tsquery expression of words, with its arguments
// numbered from w's: each word a phrase of the lexemes the parser makes
// of it, all required, the last one a prefix.
func tsQuery(w *where, words []string) string {
	parts := make([]string, len(words))
	for i, word := range words {
		p := `phraseto_tsquery('simple', ` + w.arg(word) + `)`
		if i == len(words)-1 {
			p = `(` + p + `::text || ':*')::tsquery`
		}
		parts[i] = p
	}
	return strings.Join(parts, " && ")
}

// searchCandidates bounds the matches a search ranks (see SearchObjects).
const searchCandidates = 1000

// The newest rows a search tests in order first (see searchCandidates),
// and how much more it reads at each step.
const (
	searchProbe  = 2 * searchCandidates
	searchGrowth = 4
	// searchVisitCost is what a match found through the GIN index costs
	// (a heap visit and a recheck), in rows tested in order.
	searchVisitCost = 5
)

// candidates returns the seqs of the objects a text search ranks:
// the newest searchCandidates matches of tsq under w's conditions, and up
// to 100 whose exact name or value is key.
//
// PostgreSQL cannot read a GIN index in seq order. Planned as one query,
// "newest matches first, stop at 1,000" walks the primary key backwards
// and tests every row: fast for a common word, the whole table for a
// rare one (APT28: 1.2 s on a million objects), because the planner
// guesses a prefix query's selectivity. Asked of the GIN index instead,
// a common word costs a heap visit per match (Emotet, in a tenth of a
// million objects: 1.3 s). So the search tests the newest rows in
// order, searchProbe first and searchGrowth times more at each step,
// until it has its candidates or the share of the rows it last added
// that matched says that the GIN index would visit fewer matches (each
// worth searchVisitCost rows) than the next step would test.
func candidates(ctx context.Context, db searcher, w *where, tsq, key string) ([]int64, error) {
	filters := ``
	if len(w.conds) > 0 {
		filters = ` AND ` + strings.Join(w.conds, " AND ")
	}
	join := ` JOIN collections c ON c.seq = d.collection`
	// Every query uses every argument (PostgreSQL must know each one's
	// type), so each also finds the exact matches. OFFSET 0 keeps the
	// planner from also asking the GIN index of words for them (a
	// BitmapAnd that reads every posting of a common word).
	exactArm := `ARRAY(SELECT d.seq FROM (SELECT d.seq, d.doc FROM search_docs d` + join + ` WHERE d.keys @> ARRAY[` + key + `::text]` + filters + ` OFFSET 0) d
		WHERE d.doc @@ ` + tsq + ` LIMIT 100)`
	var (
		recent, exact []int64
		rows          int64 // the planner's count of search_docs
		found, walked int64 // matches and rows of the previous window
	)
	for window := int64(searchProbe); ; window *= searchGrowth {
		// The window is written into the statement, not passed as an
		// argument: a generic plan would not know how far it reaches.
		err := db.QueryRow(ctx, `SELECT
			ARRAY(SELECT d.seq FROM (SELECT seq, collection, type, modified, tlp, source, doc FROM search_docs ORDER BY seq DESC LIMIT `+strconv.FormatInt(window, 10)+`) d`+join+`
				WHERE d.doc @@ `+tsq+filters+` ORDER BY d.seq DESC LIMIT `+strconv.Itoa(searchCandidates)+`), `+exactArm+`,
			(SELECT reltuples::bigint FROM pg_class WHERE oid = 'search_docs'::regclass)`,
			w.args...).Scan(&recent, &exact, &rows)
		if err != nil {
			return nil, fmt.Errorf("search: the newest %d objects: %w", window, err)
		}
		if len(recent) == searchCandidates {
			return append(recent, exact...), nil
		}
		// The matches the GIN index would visit, from the share of the
		// rows this window added that matched (not of the whole window:
		// a word of the last import, such as ATT&CK's, is dense in the
		// newest rows and absent from the older ones). Once the window
		// holds every row (or the planner has not counted them yet),
		// that is what the window found, so the index is asked.
		expected := int64(len(recent)) + (int64(len(recent))-found)*(max(rows, window)-window)/(window-walked)
		if expected*searchVisitCost < window*(searchGrowth-1) {
			break
		}
		found, walked = int64(len(recent)), window
	}
	// MATERIALIZED keeps the planner from walking the primary key for
	// the ORDER BY: the matches come from the GIN index.
	err := db.QueryRow(ctx, `WITH m AS MATERIALIZED (SELECT d.seq FROM search_docs d`+join+`
		WHERE d.doc @@ `+tsq+filters+`)
		SELECT ARRAY(SELECT seq FROM m ORDER BY seq DESC LIMIT `+strconv.Itoa(searchCandidates)+`), `+exactArm, w.args...).Scan(&recent, &exact)
	if err != nil {
		return nil, fmt.Errorf("search: matches: %w", err)
	}
	return append(recent, exact...), nil
}

// SearchObjects searches or browses the latest object versions; see
// [store.SearchStore.SearchObjects].
func (s *Store) SearchObjects(ctx context.Context, q store.SearchQuery) (store.SearchPage, error) {
	return searchObjects(ctx, s.pool, q)
}

// searcher is what a search asks of a pool or of one connection.
type searcher interface {
	querier
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// searchObjects is SearchObjects on db.
func searchObjects(ctx context.Context, db searcher, q store.SearchQuery) (store.SearchPage, error) {
	var after store.SearchCursor
	if q.Next != "" {
		var err error
		if after, err = store.DecodeSearchCursor(q.Next, q); err != nil {
			return store.SearchPage{}, err
		}
	}
	limit := store.SearchLimit(q.Limit)
	var w where
	var from, score, order, tsq, key string
	if q.Text != "" {
		words := store.SearchWords(q.Text)
		if len(words) == 0 {
			return store.SearchPage{}, entente.Errorf(entente.EINVALID, "q: %q has no word to search for", q.Text)
		}
		tsq = `(` + tsQuery(&w, words) + `)`
		key = w.arg(strings.Trim(store.SearchKey(strings.Join(words, " ")), "|"))
		from = `search_docs d`
		// An object one of whose names or values is the whole text comes
		// first, then the others by rank (names weigh more).
		score = `ts_rank(d.doc, ` + tsq + `) + CASE WHEN d.keys @> ARRAY[` + key + `::text] THEN 1000 ELSE 0 END`
		order = `ORDER BY 9 DESC, d.seq`
	} else {
		from = `search_docs d`
		score = `0::float8`
		order = `ORDER BY d.modified DESC, d.seq DESC`
		if q.Next != "" {
			w.add(`(d.modified, d.seq) < (` + w.arg(after.Modified) + `, ` + w.arg(after.Seq) + `)`)
		}
	}
	if len(q.Collections) > 0 {
		w.add(`c.id = ANY(` + w.arg(q.Collections) + `) OR c.alias = ANY(` + w.arg(q.Collections) + `)`)
		w.conds[len(w.conds)-1] = `(` + w.conds[len(w.conds)-1] + `)`
	}
	switch len(q.Types) {
	case 0:
	case 1:
		// Equality, not = ANY: the browse list of one type then walks
		// search_docs_type in order and stops at the page's end.
		w.add(`d.type = ` + w.arg(q.Types[0]))
	default:
		w.add(`d.type = ANY(` + w.arg(q.Types) + `)`)
	}
	if len(q.TLPs) > 0 {
		w.add(`d.tlp = ANY(` + w.arg(q.TLPs) + `)`)
	}
	if len(q.Sources) > 0 {
		w.add(`d.source = ANY(` + w.arg(q.Sources) + `)`)
	}
	since, until := store.SearchRange(q)
	if !q.Since.IsZero() {
		w.add(`d.modified >= ` + w.arg(since))
	}
	if !q.Until.IsZero() {
		w.add(`d.modified < ` + w.arg(until))
	}
	if tsq != "" {
		cands, err := candidates(ctx, db, &w, tsq, key)
		if err != nil {
			return store.SearchPage{}, err
		}
		// Every candidate matches tsq and the filters (kept, so that every
		// argument is used); the rows are read by their seqs.
		w.add(`d.seq = ANY(` + w.arg(cands) + `::bigint[])`)
	}
	query := `SELECT d.seq, c.id, d.id, d.type, d.modified, d.title, d.tlp, d.source, ` + score + ` FROM ` + from +
		` JOIN collections c ON c.seq = d.collection`
	if len(w.conds) > 0 {
		query += ` WHERE ` + strings.Join(w.conds, " AND ")
	}
	query += ` ` + order + ` LIMIT ` + w.arg(limit+1)
	if q.Text != "" {
		query += ` OFFSET ` + w.arg(after.Offset)
	}
	rows, err := db.Query(ctx, query, w.args...)
	if err != nil {
		return store.SearchPage{}, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	page := store.SearchPage{Hits: []store.SearchHit{}}
	var last store.SearchCursor
	more := false
	for rows.Next() {
		if len(page.Hits) == limit {
			more = true
			break
		}
		var (
			h             store.SearchHit
			seq, modified int64
		)
		if err := rows.Scan(&seq, &h.Collection, &h.ID, &h.Type, &modified, &h.Title, &h.TLP, &h.Source, &h.Score); err != nil {
			return store.SearchPage{}, fmt.Errorf("search: %w", err)
		}
		h.Modified = store.FromUnixNano(modified)
		last = store.SearchCursor{Modified: modified, Seq: seq}
		page.Hits = append(page.Hits, h)
	}
	if err := rows.Err(); err != nil {
		return store.SearchPage{}, fmt.Errorf("search: %w", err)
	}
	if more {
		last.Offset = after.Offset + limit
		if q.Text == "" || last.Offset <= store.MaxSearchOffset {
			page.Next = store.EncodeSearchCursor(last, q)
		}
	}
	return page, nil
}
