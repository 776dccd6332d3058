package postgres

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/testutil"
)

// TestQueryPlans checks, on an analysed collection of 30,000 entries,
// that page queries walk an index in (date_added, seq) order, seeking to
// the cursor, instead of sorting: a sort would make a page's cost grow
// with the collection.
func TestQueryPlans(t *testing.T) {
	ctx := t.Context()
	base := testutil.PostgresURL(t)
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	schema := fmt.Sprintf("entente_plan_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
	u, _ := url.Parse(base)
	v := u.Query()
	v.Set("search_path", schema)
	u.RawQuery = v.Encode()
	s, err := Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateCollection(ctx, entente.Collection{ID: "c", Title: "C"}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	for batch := range 3 {
		objs := make([]*stix.Object, 10000)
		for i := range objs {
			n := batch*10000 + i
			id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", n)
			objs[i] = &stix.Object{Type: "indicator", ID: id, SpecVersion: "2.1", Modified: at, Raw: []byte(`{"id":"` + id + `"}`)}
		}
		if _, err := s.AddObjects(ctx, "c", objs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE objects`); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		q         entente.ObjectQuery
		wantIndex string
	}{
		{"latest", entente.ObjectQuery{}, "objects_latest"},
		{"latest added after", entente.ObjectQuery{AddedAfter: at.Add(-time.Hour)}, "objects_latest"},
		{"latest after cursor", entente.ObjectQuery{Next: "x"}, "objects_latest"},
		{"latest with type after cursor", entente.ObjectQuery{Next: "x", Types: []string{"indicator"}}, "objects_latest"},
		{"all versions after cursor", entente.ObjectQuery{Next: "x", Versions: entente.VersionFilter{All: true}}, "objects_order"},
		{"metadata after cursor", entente.ObjectQuery{Next: "x", MetadataOnly: true, Versions: entente.VersionFilter{All: true}}, "objects_order"},
		{"relationships", entente.ObjectQuery{Types: []string{"relationship"}, AddedAfter: at.Add(-time.Hour)}, "objects_relationships"},
		{"sightings after cursor", entente.ObjectQuery{Next: "x", Types: []string{"sighting"}, Versions: entente.VersionFilter{All: true}}, "objects_sightings"},
	}
	var first int64
	if err := s.pool.QueryRow(ctx, `SELECT min(date_added) FROM objects`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		query, args, err := pageQuery(1, store.Cursor{DateAdded: first, Seq: 5000}, tc.q, 100)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.pool.Query(ctx, "EXPLAIN "+query, args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		if !strings.Contains(plan, "Index Scan using "+tc.wantIndex) || strings.Contains(plan, "Sort") {
			t.Errorf("%s: want an index scan of %s without a sort; plan:\n%s", tc.name, tc.wantIndex, plan)
		}
		if tc.q.Next != "" && !strings.Contains(plan, "ROW(date_added, seq) >") {
			t.Errorf("%s: plan does not seek to the cursor:\n%s", tc.name, plan)
		}
		t.Logf("%s:\n%s", tc.name, plan)
	}
}
