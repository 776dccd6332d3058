package sqlite

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/storetest"
)

// TestMigrateObjectIndexes takes a store back to the object indexes
// before migrations 1800 and 1810 ((collection, id_hash, version), and
// objects_order over every version), reopens it, and checks that the
// migrations rebuild them as the new schema has them and that every
// version filter, paged, reads what it read before.
func TestMigrateObjectIndexes(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCollection(ctx, entente.Collection{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for round := range 3 {
		// Versions of the same objects in three additions, a later
		// addition sometimes holding an older version.
		var objs []*stix.Object
		for i := range 40 {
			if i%(round+1) == 0 {
				v := base.Add(time.Duration((round*7+i)%5) * time.Second)
				objs = append(objs, storetest.Object(t, "indicator", fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i), v))
			}
		}
		if _, err := s.AddObjects(ctx, "c", objs); err != nil {
			t.Fatal(err)
		}
	}
	filters := []entente.VersionFilter{{}, {All: true}, {First: true}, {Last: true}, {First: true, Last: true},
		{At: []time.Time{base.Add(2 * time.Second), base.Add(4 * time.Second)}}}
	read := func(s *Store) [][]string {
		var out [][]string
		for _, f := range filters {
			var got []string
			q := entente.ObjectQuery{Collection: "c", Versions: f, Limit: 7}
			for {
				page, err := s.QueryObjects(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range page.Entries {
					got = append(got, e.ID+"@"+e.Version.Format(time.RFC3339Nano)+"+"+e.DateAdded.Format(time.RFC3339Nano))
				}
				if !page.More {
					break
				}
				q.Next = page.Next
			}
			out = append(out, got)
		}
		return out
	}
	want := read(s)
	if len(want[1]) <= len(want[0]) {
		t.Fatalf("%d versions in all, %d latest: the test stores no superseded version", len(want[1]), len(want[0]))
	}
	s = reopenAtOldSchema(t, s, dir,
		`DROP INDEX objects_id_hash`,
		`CREATE INDEX objects_id_hash ON objects (collection, id_hash, version)`,
		`DROP INDEX objects_superseded`,
		`CREATE INDEX objects_order ON objects (collection, date_added, pos)`,
		`DELETE FROM schema_migrations WHERE name LIKE '1800%' OR name LIKE '1810%'`,
	)
	indexes := map[string]string{}
	rows, err := s.read.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'objects' AND sql IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, text string
		if err := rows.Scan(&name, &text); err != nil {
			t.Fatal(err)
		}
		indexes[name] = text
	}
	rows.Close()
	for name, text := range map[string]string{
		"objects_id_hash":    "CREATE INDEX objects_id_hash ON objects (id_hash, collection, version)",
		"objects_superseded": "CREATE INDEX objects_superseded ON objects (collection, date_added, pos) WHERE is_latest = 0",
		"objects_order":      "",
	} {
		if indexes[name] != text {
			t.Errorf("index %s after the migrations: %q, want %q", name, indexes[name], text)
		}
	}
	got := read(s)
	for i, f := range filters {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("versions %+v after the migrations: %d entries\n%v\nwant %d\n%v", f, len(got[i]), got[i], len(want[i]), want[i])
		}
		if len(want[i]) == 0 {
			t.Errorf("versions %+v: no entry, the test reads nothing", f)
		}
	}
}
