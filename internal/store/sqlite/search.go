package sqlite

import (
	"bytes"
	"context"
	"database/sql/driver"
	"fmt"
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
	}
	return ""
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
// tokens the tokenizer makes of it, all required, the last one a prefix.
func ftsQuery(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(w, `"`, `""`))
		b.WriteByte('"')
		if i == len(words)-1 {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// SearchObjects searches or browses the latest object versions; see
// [store.SearchStore.SearchObjects].
func (s *Store) SearchObjects(ctx context.Context, q store.SearchQuery) (store.SearchPage, error) {
	var after store.SearchCursor
	if q.Next != "" {
		var err error
		if after, err = store.DecodeSearchCursor(q.Next, q); err != nil {
			return store.SearchPage{}, err
		}
	}
	limit := store.SearchLimit(q.Limit)
	var w where
	var from, order, score string
	var scoreArgs []any
	if q.Text != "" {
		words := store.SearchWords(q.Text)
		if len(words) == 0 {
			return store.SearchPage{}, entente.Errorf(entente.EINVALID, "q: %q has no word to search for", q.Text)
		}
		from = `search_fts JOIN search_docs d ON d.seq = search_fts.rowid`
		w.add(`search_fts MATCH ?`, ftsQuery(words))
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
			seq, _, err := collectionSeq(ctx, s.read, c)
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
	query := `SELECT d.seq, c.id, d.id, d.type, d.modified, d.title, d.tlp, d.source, ` + score + ` FROM ` + from +
		` JOIN collections c ON c.seq = d.collection`
	if len(w.conds) > 0 {
		query += ` WHERE ` + strings.Join(w.conds, " AND ")
	}
	query += ` ` + order + ` LIMIT ?`
	args := append(append(scoreArgs, w.args...), limit+1)
	if q.Text != "" {
		query += ` OFFSET ?`
		args = append(args, after.Offset)
	}
	rows, err := s.read.QueryContext(ctx, query, args...)
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
			rank          float64
		)
		if err := rows.Scan(&seq, &h.Collection, &h.ID, &h.Type, &modified, &h.Title, &h.TLP, &h.Source, &rank); err != nil {
			return store.SearchPage{}, fmt.Errorf("search: %w", err)
		}
		h.Modified = store.FromUnixNano(modified)
		h.Score = -rank
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
