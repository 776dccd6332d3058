package sqlite

import (
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/storetest"
)

// TestQueryPlans checks that the page queries walk an index in
// (date_added, seq) order instead of sorting: a sort would make a page's
// cost grow with the collection.
func TestQueryPlans(t *testing.T) {
	s, err := Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cases := []struct {
		name string
		q    entente.ObjectQuery
		// walks are the indexes walked, merged in order when two
		// (versions other than the latest, migration 1810).
		walks []string
	}{
		{"latest", entente.ObjectQuery{}, []string{"objects_latest"}},
		{"latest added after", entente.ObjectQuery{AddedAfter: time.Now()}, []string{"objects_latest"}},
		{"latest after cursor", entente.ObjectQuery{Next: "x"}, []string{"objects_latest"}},
		{"latest with type and added_after", entente.ObjectQuery{Next: "x", Types: []string{"indicator"}, AddedAfter: time.Now()}, []string{"objects_latest"}},
		{"last", entente.ObjectQuery{Next: "x", Versions: entente.VersionFilter{Last: true}}, []string{"objects_latest"}},
		{"all versions", entente.ObjectQuery{Next: "x", Versions: entente.VersionFilter{All: true}}, []string{"objects_latest", "objects_superseded"}},
		{"first", entente.ObjectQuery{Next: "x", Versions: entente.VersionFilter{First: true}}, []string{"objects_latest", "objects_superseded"}},
		{"first and last", entente.ObjectQuery{Versions: entente.VersionFilter{First: true, Last: true}}, []string{"objects_latest", "objects_superseded"}},
		{"some versions", entente.ObjectQuery{AddedAfter: time.Now(), Versions: entente.VersionFilter{At: []time.Time{time.Now()}}}, []string{"objects_latest", "objects_superseded"}},
		{"metadata", entente.ObjectQuery{Next: "x", MetadataOnly: true, Versions: entente.VersionFilter{All: true}}, []string{"objects_latest", "objects_superseded"}},
		{"relationships", entente.ObjectQuery{Types: []string{"relationship"}, AddedAfter: time.Now()}, []string{"objects_relationships"}},
		{"sightings after cursor", entente.ObjectQuery{Next: "x", Types: []string{"sighting"}, Versions: entente.VersionFilter{All: true}}, []string{"objects_sightings"}},
	}
	for _, tc := range cases {
		query, args, err := pageQuery(1, store.Cursor{DateAdded: 5, Seq: 9}, tc.q, 100)
		if err != nil {
			t.Fatal(err)
		}
		text := explain(t, s, query, args...)
		for _, index := range tc.walks {
			if !strings.Contains(text, "USING INDEX "+index) {
				t.Errorf("%s: plan %q does not walk index %s", tc.name, text, index)
			}
		}
		if strings.Contains(text, "TEMP B-TREE") || strings.Contains(text, "SCAN") || strings.Contains(text, "MERGE") != (len(tc.walks) == 2) {
			t.Errorf("%s: plan %q, want a walk of %v without a sort", tc.name, text, tc.walks)
		}
		if tc.q.Next != "" && !strings.Contains(text, "(date_added,pos)>(?,?)") {
			t.Errorf("%s: plan %q does not seek to the cursor", tc.name, text)
		}
		t.Logf("%s: %s", tc.name, text)
	}
}

// TestIDQueryPlan checks that a query naming a few ids (GET of one object,
// its versions) seeks them in the id index instead of walking the
// collection: its cost must not grow with the collection.
func TestIDQueryPlan(t *testing.T) {
	s, err := Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, v := range []entente.VersionFilter{{}, {All: true}} {
		query, args, err := pageQuery(1, store.Cursor{}, entente.ObjectQuery{IDs: []string{"indicator--x"}, Versions: v}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if plan := explain(t, s, query, args...); !strings.Contains(plan, "USING INDEX objects_id_hash (id_hash=? AND collection=?)") {
			t.Errorf("versions %+v: plan %q does not seek the id", v, plan)
		}
	}
}

// TestLookupPlan checks that AddObjects finds stored versions through the
// (id_hash, collection, version) index, not by scanning the collection.
func TestLookupPlan(t *testing.T) {
	s, err := Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	plan := explain(t, s, lookupSQL, 1, `[1,2]`)
	if !strings.Contains(plan, "USING INDEX objects_id_hash (id_hash=? AND collection=?)") {
		t.Errorf("lookup plan %q does not probe objects_id_hash", plan)
	}
}

func explain(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.read.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

// TestPageQueryTextsRepeat checks that object queries of one shape have
// one text whatever their ids and cursors, so that the read connections'
// kept statements serve them (gatedConn), and that none binds its LIMIT:
// SQLite prepares a statement again each time a bound LIMIT is bound,
// which parsed every object GET's query twice. And that the answers stay
// right.
func TestPageQueryTextsRepeat(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateCollection(ctx, entente.Collection{ID: "c1", Title: "One", ReadRoles: []entente.Role{entente.RoleAnalyst}}); err != nil {
		t.Fatal(err)
	}
	objs := storetest.Indicators(t, 0, 40)
	if _, err := s.AddObjects(ctx, "c1", objs); err != nil {
		t.Fatal(err)
	}
	shapes := map[string]func(i int) entente.ObjectQuery{
		"GET by id": func(i int) entente.ObjectQuery { return entente.ObjectQuery{IDs: []string{objs[i].ID}} },
		"two ids":   func(i int) entente.ObjectQuery { return entente.ObjectQuery{IDs: []string{objs[i].ID, objs[39-i].ID}} },
		"next page": func(i int) entente.ObjectQuery { return entente.ObjectQuery{Next: "x", Limit: 7} },
		"added after": func(i int) entente.ObjectQuery {
			return entente.ObjectQuery{AddedAfter: time.Unix(int64(i), 0), Limit: 7}
		},
		"all versions": func(i int) entente.ObjectQuery {
			return entente.ObjectQuery{IDs: []string{objs[i].ID}, Versions: entente.VersionFilter{All: true}}
		},
	}
	for name, shape := range shapes {
		texts := map[string]bool{}
		for i := range objs {
			query, args, err := pageQuery(1, store.Cursor{DateAdded: int64(i), Seq: int64(i)}, shape(i), 100)
			if err != nil {
				t.Fatal(err)
			}
			texts[query] = true
			if strings.Contains(query, "LIMIT ?") {
				t.Errorf("%s: the LIMIT is bound: %s", name, query)
			}
			if n := strings.Count(query, "?"); n != len(args) {
				t.Errorf("%s: %d parameters, %d arguments: %s", name, n, len(args), query)
			}
		}
		if len(texts) != 1 {
			t.Errorf("%s: %d texts for 40 queries, want 1", name, len(texts))
		}
	}
	for _, o := range objs {
		p, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: "c1", IDs: []string{o.ID}})
		if err != nil || len(p.Entries) != 1 || p.Entries[0].ID != o.ID {
			t.Fatalf("GET %s: %+v, %v", o.ID, p.Entries, err)
		}
	}
	var seen int
	for q := (entente.ObjectQuery{Collection: "c1", Limit: 7}); ; {
		p, err := s.QueryObjects(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		seen += len(p.Entries)
		if !p.More {
			break
		}
		q.Next = p.Next
	}
	if seen != len(objs) {
		t.Errorf("paging by 7: %d objects, want %d", seen, len(objs))
	}
}

// TestIDSetPlan checks that the writer reads a collection's id hashes
// (idSet) from the id index alone, not from the table's rows: since
// migration 1800 the index leads with the hash, so this is a scan of the
// whole index, about 25 bytes per object of the node.
func TestIDSetPlan(t *testing.T) {
	s, err := Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if plan := explain(t, s, idSetSQL, 1, -1); !strings.Contains(plan, "USING COVERING INDEX objects_id_hash") {
		t.Errorf("id set plan %q does not read objects_id_hash alone", plan)
	}
}

// TestLatestAddedPlan checks that LatestAdded seeks the end of the
// collection's two date_added indexes rather than reading its entries.
func TestLatestAddedPlan(t *testing.T) {
	s, err := Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	plan := explain(t, s, newReaderStmts().latestAdded.sql, "c")
	for _, index := range []string{"objects_latest (collection=?)", "objects_superseded (collection=?)"} {
		if !strings.Contains(plan, "INDEX "+index) {
			t.Errorf("plan %q does not seek %s", plan, index)
		}
	}
	if strings.Contains(plan, "SCAN objects") {
		t.Errorf("plan %q reads the collection's entries", plan)
	}
	t.Log(plan)
}
