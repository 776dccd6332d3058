package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"modernc.org/sqlite"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

var _ store.SearchStore = (*Store)(nil)

// searchMemo is the last object the search triggers extracted: each
// trigger asks for several fields of one object in a row, and they are
// read from one decoding.
var searchMemo struct {
	sync.Mutex
	raw []byte
	doc store.SearchDoc
}

// searchField returns one field of store.SearchDocOf(raw): "t" title,
// "n" names, "b" body, "l" TLP, "s" source.
func searchField(raw []byte, field string) string {
	searchMemo.Lock()
	defer searchMemo.Unlock()
	if searchMemo.raw == nil || !bytes.Equal(searchMemo.raw, raw) {
		searchMemo.raw = append(searchMemo.raw[:0], raw...)
		searchMemo.doc = store.SearchDocOf(raw)
	}
	d := searchMemo.doc
	switch field {
	case "t":
		return d.Title
	case "n":
		return d.Names
	case "b":
		return d.Body
	case "l":
		return d.TLP
	case "s":
		return d.Source
	case "k":
		return d.Keys
	case "K":
		return keysJSON(d.Keys)
	}
	return ""
}

// searchKeys returns the distinct keys of a SearchDoc's Keys, in order.
func searchKeys(keys string) []string {
	var list []string
	for k := range strings.SplitSeq(strings.Trim(keys, "|"), "|") {
		if k != "" && !slices.Contains(list, k) {
			list = append(list, k)
		}
	}
	return list
}

// keysJSON returns the keys of a SearchDoc's Keys as a JSON array.
func keysJSON(keys string) string {
	list := searchKeys(keys)
	if list == nil {
		return "[]"
	}
	b, _ := json.Marshal(list)
	return string(b)
}

// The search triggers and their migration (1710_search.sql) extract what
// they index in Go.
func init() {
	err := sqlite.RegisterDeterministicScalarFunction("entente_search", 2, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		var raw []byte
		switch v := args[0].(type) {
		case []byte:
			raw = v
		case string:
			raw = []byte(v)
		default:
			return nil, fmt.Errorf("entente_search: want the object's JSON, got %T", v)
		}
		field, _ := args[1].(string)
		return searchField(raw, field), nil
	})
	if err != nil {
		panic(fmt.Sprintf("register entente_search: %v", err))
	}
}

// ftsQuery returns the FTS5 query of words: each word a phrase of the
// tokens the tokenizer makes of it, all required, the last one a prefix
// when prefix is true.
func ftsQuery(words []string, prefix bool) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(w, `"`, `""`))
		b.WriteByte('"')
		if prefix && i == len(words)-1 {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// searchCandidates bounds the matches a search ranks (see SearchObjects).
const searchCandidates = 1000

// SearchObjects searches or browses the latest object versions; see
// [store.SearchStore.SearchObjects].
func (s *Store) SearchObjects(ctx context.Context, q store.SearchQuery) (store.SearchPage, error) {
	if err := s.catchUpSearch(ctx); err != nil {
		return store.SearchPage{}, err
	}
	return s.searchOn(ctx, s.search, q)
}

// querier is what a search reads through: the search pool, or one of
// its connections (warmReaders).
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// searchOn is SearchObjects on the index as it stands, through db.
func (s *Store) searchOn(ctx context.Context, db querier, q store.SearchQuery) (store.SearchPage, error) {
	var after store.SearchCursor
	if q.Next != "" {
		var err error
		if after, err = store.DecodeSearchCursor(q.Next, q); err != nil {
			return store.SearchPage{}, err
		}
	}
	limit := store.SearchLimit(q.Limit)
	var w where
	var from, order, score, match string
	var words []string
	var scoreArgs []any
	if q.Text != "" {
		words = store.SearchWords(q.Text)
		if len(words) == 0 {
			return store.SearchPage{}, entente.Errorf(entente.EINVALID, "q: %q has no word to search for", q.Text)
		}
		from = `search_fts JOIN search_docs d ON d.seq = search_fts.rowid`
		match = ftsQuery(words, true)
		// An object one of whose names or values is the whole text comes
		// first, then the others by BM25 (names weigh ten times more).
		score = `bm25(search_fts, 10.0, 1.0) - 1000.0 * (instr(d.keys, ?) > 0)`
		scoreArgs = append(scoreArgs, store.SearchKey(strings.Join(words, " ")))
		order = `ORDER BY 9, d.seq`
	} else {
		from = `search_docs d`
		score = `0.0`
		order = `ORDER BY d.modified DESC, d.seq DESC`
		if q.Next != "" {
			w.add(`(d.modified, d.seq) < (?, ?)`, after.Modified, after.Seq)
		}
		if len(q.Types) == 1 {
			from = `search_docs d INDEXED BY search_docs_type`
		}
	}
	if len(q.Collections) > 0 {
		var seqs []string
		for _, c := range q.Collections {
			seq, _, err := s.readCollectionSeq(ctx, c)
			if entente.ErrorCode(err) == entente.ENOTFOUND {
				continue
			}
			if err != nil {
				return store.SearchPage{}, err
			}
			seqs = append(seqs, fmt.Sprint(seq))
		}
		if len(seqs) == 0 {
			return store.SearchPage{Hits: []store.SearchHit{}}, nil
		}
		w.conds = append(w.conds, `d.collection IN (`+strings.Join(seqs, ",")+`)`)
	}
	w.in("d.type", q.Types)
	w.in("d.tlp", q.TLPs)
	w.in("d.source", q.Sources)
	since, until := store.SearchRange(q)
	if !q.Since.IsZero() {
		w.add(`d.modified >= ?`, since)
	}
	if !q.Until.IsZero() {
		w.add(`d.modified < ?`, until)
	}
	type row struct {
		seq, modified int64
		hit           store.SearchHit
		rank          float64
	}
	// run selects up to n rows (all when n < 0) from offset, with the
	// extra condition cond.
	run := func(cond string, n, offset int) ([]row, error) {
		conds, args := w.conds, w.args
		if match != "" {
			conds = append([]string{`search_fts MATCH ?`}, conds...)
			args = append([]any{match}, args...)
		}
		if cond != "" {
			conds = append(conds, cond)
		}
		query := `SELECT d.seq, c.id, d.id, d.type, d.modified, d.title, d.tlp, d.source, ` + score + ` FROM ` + from +
			` JOIN collections c ON c.seq = d.collection`
		if len(conds) > 0 {
			query += ` WHERE ` + strings.Join(conds, " AND ")
		}
		query += ` ` + order
		args = append(slices.Clone(scoreArgs), args...)
		if n >= 0 {
			// Written out: a bound LIMIT makes SQLite prepare the
			// statement again when it runs.
			query += ` LIMIT ` + strconv.Itoa(n) + ` OFFSET ` + strconv.Itoa(offset)
		}
		rows, err := db.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		defer rows.Close()
		var out []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.seq, &r.hit.Collection, &r.hit.ID, &r.hit.Type, &r.modified, &r.hit.Title, &r.hit.TLP, &r.hit.Source, &r.rank); err != nil {
				return nil, fmt.Errorf("search: %w", err)
			}
			r.hit.Modified = store.FromUnixNano(r.modified)
			r.hit.Score = -r.rank
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		return out, nil
	}
	var got []row
	var err error
	switch {
	case match == "":
		got, err = run("", limit+1, 0)
	default:
		// Ranking every match of a word that a tenth of a large store
		// holds would cost seconds: objects are ranked among the newest
		// searchCandidates matches (FTS5 walks its index newest first,
		// and a range of rowids is cheap to it), and those whose exact
		// name or value the text is, found by index, are ranked with
		// them.
		// An address or a network is a value, not words: its numbers
		// are in most of a million addresses' tokens, and a phrase
		// query over them costs hundreds of milliseconds. The objects
		// that hold the value are found by index; the others that
		// merely mention it are searched for only when none does.
		if isAddress(q.Text) {
			var exact []string
			if exact, err = s.candidates(ctx, db, `SELECT seq FROM search_keys WHERE key = ? LIMIT 100`, []any{strings.Trim(store.SearchKey(strings.Join(words, " ")), "|")}); err != nil {
				break
			}
			if len(exact) > 0 {
				// The exact holders, without the phrase query: each
				// ranks as an exact match.
				match, from, score, scoreArgs, order = "", `search_docs d`, `-1000.0`, nil, `ORDER BY d.seq`
				if got, err = run(`d.seq IN (`+strings.Join(exact, ",")+`)`, -1, 0); err != nil {
					break
				}
				slices.SortFunc(got, func(a, b row) int {
					if c := cmp.Compare(a.rank, b.rank); c != 0 {
						return c
					}
					return cmp.Compare(a.seq, b.seq)
				})
				got = got[min(after.Offset, len(got)):]
				break
			}
		}
		// The last word is a prefix, so that a search finds as one
		// types; but FTS5 answers a prefix by merging the whole lists of
		// every word it begins, a cost that grows with the store. When
		// the words as typed already match more than the candidates, the
		// candidates are those exact matches (a word that merely begins
		// with the last one would rank below them anyway), which FTS5
		// walks from the newest without reading the rest.
		//
		// The candidates are the newest matches that pass the filters:
		// the newest matches of a word that a filter mostly excludes
		// would leave out older ones it keeps. The filters are then
		// checked as FTS5 walks its matches, newest first, until
		// searchCandidates pass.
		boundSQL, boundArgs := `SELECT rowid FROM search_fts WHERE search_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?`, []any(nil)
		if len(w.conds) > 0 {
			boundSQL = `SELECT search_fts.rowid FROM search_fts CROSS JOIN search_docs d ON d.seq = search_fts.rowid WHERE search_fts MATCH ? AND ` +
				strings.Join(w.conds, " AND ") + ` ORDER BY search_fts.rowid DESC LIMIT 1 OFFSET ?`
			boundArgs = w.args
		}
		boundOf := func(m string) (sql.NullInt64, error) {
			var b sql.NullInt64
			args := append(append([]any{m}, boundArgs...), searchCandidates-1)
			if err := db.QueryRowContext(ctx, boundSQL, args...).Scan(&b); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return b, fmt.Errorf("search: %w", err)
			}
			return b, nil
		}
		var bound sql.NullInt64
		if exact := ftsQuery(words, false); exact != match {
			if bound, err = boundOf(exact); err != nil {
				return store.SearchPage{}, err
			}
			if bound.Valid {
				match = exact
			}
		}
		if !bound.Valid {
			if bound, err = boundOf(match); err != nil {
				return store.SearchPage{}, err
			}
		}
		if !bound.Valid {
			got, err = run("", limit+1, after.Offset)
			break
		}
		if got, err = run(`search_fts.rowid >= `+strconv.FormatInt(bound.Int64, 10), after.Offset+limit+1, 0); err != nil {
			break
		}
		var exact []string
		exact, err = s.candidates(ctx, db, `SELECT seq FROM search_keys WHERE key = ? LIMIT 100`, []any{strings.Trim(store.SearchKey(strings.Join(words, " ")), "|")})
		if err != nil || len(exact) == 0 {
			break
		}
		var more []row
		if more, err = run(`search_fts.rowid IN (`+strings.Join(exact, ",")+`)`, -1, 0); err != nil {
			break
		}
		for _, r := range more {
			if !slices.ContainsFunc(got, func(g row) bool { return g.seq == r.seq }) {
				got = append(got, r)
			}
		}
		slices.SortFunc(got, func(a, b row) int {
			if c := cmp.Compare(a.rank, b.rank); c != 0 {
				return c
			}
			return cmp.Compare(a.seq, b.seq)
		})
		got = got[min(after.Offset, len(got)):]
	}
	if err != nil {
		return store.SearchPage{}, err
	}
	page := store.SearchPage{Hits: []store.SearchHit{}}
	for _, r := range got[:min(limit, len(got))] {
		page.Hits = append(page.Hits, r.hit)
	}
	if len(got) > limit {
		last := store.SearchCursor{Modified: got[limit-1].modified, Seq: got[limit-1].seq, Offset: after.Offset + limit}
		if q.Text == "" || last.Offset <= store.MaxSearchOffset {
			page.Next = store.EncodeSearchCursor(last, q)
		}
	}
	return page, nil
}

// candidates returns the seqs a candidates query selects, as SQL
// literals.
func (s *Store) candidates(ctx context.Context, db querier, query string, args []any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		out = append(out, strconv.FormatInt(seq, 10))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	return out, nil
}

// isAddress reports whether text is one IP address or network.
func isAddress(text string) bool {
	text = strings.TrimSpace(text)
	if _, err := netip.ParseAddr(text); err == nil {
		return true
	}
	_, err := netip.ParsePrefix(text)
	return err == nil
}
