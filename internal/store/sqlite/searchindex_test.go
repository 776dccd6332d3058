package sqlite_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/store/storetest"
	"github.com/entente-cti/entente/internal/testutil"
)

// TestSearchIndexEqualsSQLBackfill checks that the writer's search
// indexing (each object decoded once in Go, multi-row inserts) writes
// exactly the rows the SQL form writes (one entente_search call per field,
// as the migration's backfill and the triggers do): every search_docs and
// search_keys row and every word instance of search_fts, on a third of the
// ATT&CK Enterprise bundle (every type it holds), indicators and
// superseded versions.
func TestSearchIndexEqualsSQLBackfill(t *testing.T) {
	ctx := t.Context()
	var bundle struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(testutil.SharedGzip(t, "attack", "enterprise-attack-18.1.json.gz"), &bundle); err != nil {
		t.Fatal(err)
	}
	var objs []*stix.Object
	for i, raw := range bundle.Objects {
		if i%3 != 0 {
			continue
		}
		o, err := stix.Decode(raw)
		if err != nil {
			t.Fatalf("ATT&CK object %d: %v", i, err)
		}
		objs = append(objs, o)
	}
	dir := t.TempDir()
	s := open(t, dir)
	c := entente.Collection{ID: "c1", Title: "One", ReadRoles: []entente.Role{entente.RoleAnalyst}}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Indicators at a first version, then newer versions of 200 of them
	// (the first rows superseded) and of part of the ATT&CK subset.
	var newer []*stix.Object
	for i := range 200 {
		newer = append(newer, storetest.Object(t, "indicator", fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i*3), time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)))
	}
	for _, o := range storetest.ATTACKSubset(t)[:60] {
		var m map[string]any
		if err := json.Unmarshal(o.Raw, &m); err != nil {
			t.Fatal(err)
		}
		m["modified"] = "2030-01-01T00:00:00.000Z"
		m["description"] = "A newer version."
		raw, _ := json.Marshal(m)
		n, err := stix.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		newer = append(newer, n)
	}
	for _, batch := range [][]*stix.Object{objs, storetest.Indicators(t, 0, 700), newer} {
		if _, err := s.AddObjects(ctx, "c1", batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.IndexSearch(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE VIRTUAL TABLE temp.search_vocab USING fts5vocab(main, search_fts, instance)`); err != nil {
		t.Fatal(err)
	}
	dump := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for name, q := range map[string]string{
			"search_docs": `SELECT seq, collection, id, type, modified, tlp, source, title, keys FROM search_docs ORDER BY seq`,
			"search_keys": `SELECT key, seq FROM search_keys ORDER BY key, seq`,
			"search_fts":  `SELECT term, doc, col, offset FROM temp.search_vocab ORDER BY term, doc, col, offset`,
		} {
			rows, err := db.QueryContext(ctx, q)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			cols, _ := rows.Columns()
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			h, n := sha256.New(), 0
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				fmt.Fprintf(h, "%q\n", vals)
				n++
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			rows.Close()
			out[name] = fmt.Sprintf("%d rows, sha256 %x", n, h.Sum(nil))
		}
		return out
	}
	written := dump()
	for _, stmt := range []string{
		`DELETE FROM search_docs`, `DELETE FROM search_keys`, `INSERT INTO search_fts (search_fts) VALUES ('delete-all')`,
		`INSERT INTO search_docs (seq, collection, id, type, modified, tlp, source, title, keys)
			SELECT seq, collection, id, type, version, entente_search(raw, 'l'), entente_search(raw, 's'), entente_search(raw, 't'), entente_search(raw, 'k')
			FROM objects WHERE is_latest = 1`,
		`INSERT INTO search_fts (rowid, names, body)
			SELECT seq, entente_search(raw, 'n'), entente_search(raw, 'b') FROM objects WHERE is_latest = 1`,
		`INSERT INTO search_keys (key, seq)
			SELECT DISTINCT j.value, o.seq FROM objects o, json_each(entente_search(o.raw, 'K')) j WHERE o.is_latest = 1`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	backfilled := dump()
	var docs int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM objects WHERE is_latest = 1`).Scan(&docs); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d rows,", docs); written["search_docs"][:len(want)] != want {
		t.Errorf("search_docs: %s, want one row per latest version (%d)", written["search_docs"], docs)
	}
	for name, w := range backfilled {
		if written[name] != w {
			t.Errorf("%s: the writer wrote %s, the SQL backfill %s", name, written[name], w)
		}
	}
}
