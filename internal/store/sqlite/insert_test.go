package sqlite

import (
	"fmt"
	"strings"
	"testing"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// TestInsertSQLParameters checks that insertArgs lists as many values as
// insertSQL has parameters: insertShared numbered ones, then insertCols
// anonymous ones a row (SQLite numbers an anonymous parameter after the
// greatest number used before it).
func TestInsertSQLParameters(t *testing.T) {
	for _, rows := range []int{1, 2, 7, insertChunk} {
		q := insertSQL(rows)
		if got := strings.Count(q, "?"); got != rows*(insertCols+4) {
			t.Errorf("%d rows: %d parameter references, want %d", rows, got, rows*(insertCols+4))
		}
		for _, p := range []string{"?1", "?2", "?3"} {
			if got := strings.Count(q, p+",") + strings.Count(q, p+"+"); got < rows {
				t.Errorf("%d rows: %s referenced %d times", rows, p, got)
			}
		}
		entries := make([]store.NewEntry, rows)
		for i := range entries {
			entries[i].Obj = &stix.Object{ID: "x", Type: "indicator", SpecVersion: "2.1"}
		}
		if n := len(insertArgs(nil, 1, 2, 3, entries)); n != insertShared+rows*insertCols {
			t.Errorf("%d rows: %d arguments, want %d", rows, n, insertShared+rows*insertCols)
		}
	}
}

// TestInsertRows checks what one call's bulk insert stores, across full
// chunks (inserted on the driver's connection, rawInsert) and the last,
// partial one: every row's seq and pos are consecutive from the greatest
// seq in use, its collection and date_added the call's, and its id, type,
// spec_version and JSON its object's, in the call's order.
func TestInsertRows(t *testing.T) {
	ctx := t.Context()
	s, err := OpenOneShot(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []string{"a", "b"} {
		if err := s.CreateCollection(ctx, entente.Collection{ID: c, Title: c}); err != nil {
			t.Fatal(err)
		}
	}
	gen := func(first, n int) []*stix.Object {
		objs := make([]*stix.Object, n)
		for i := range objs {
			k := first + i
			o, err := stix.Decode(fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012x","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.2.%d.%d']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}`,
				k, k>>8&255, k&255))
			if err != nil {
				t.Fatal(err)
			}
			objs[i] = o
		}
		return objs
	}
	calls := []struct {
		coll string
		objs []*stix.Object
	}{
		{"a", gen(0, 3)},
		{"b", gen(1000, 2*insertChunk+17)},
		{"a", gen(2000, insertChunk)},
	}
	var want []*stix.Object
	var wantColl []string
	for _, c := range calls {
		if _, err := s.AddObjects(ctx, c.coll, c.objs); err != nil {
			t.Fatal(err)
		}
		for _, o := range c.objs {
			want = append(want, o)
			wantColl = append(wantColl, c.coll)
		}
	}
	rows, err := s.write.QueryContext(ctx, `SELECT o.seq, o.pos, c.id, o.id, o.id_hash, o.type, o.spec_version, o.date_added, o.is_latest, o.is_first, o.raw
		FROM objects o JOIN collections c ON c.seq = o.collection ORDER BY o.seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	var lastDate int64
	dates := map[int64]bool{}
	for ; rows.Next(); i++ {
		var seq, pos, idHashV, date int64
		var coll, id, typ, spec string
		var latest, first bool
		var raw []byte
		if err := rows.Scan(&seq, &pos, &coll, &id, &idHashV, &typ, &spec, &date, &latest, &first, &raw); err != nil {
			t.Fatal(err)
		}
		if i >= len(want) {
			continue
		}
		o := want[i]
		if seq != int64(i+1) || pos != seq {
			t.Errorf("row %d: seq %d pos %d, want %d", i, seq, pos, i+1)
		}
		if coll != wantColl[i] || id != o.ID || idHashV != idHash(o.ID) || typ != o.Type || spec != o.SpecVersion || string(raw) != string(o.Raw) || !latest || !first {
			t.Errorf("row %d: %s %s %d %s %s %v %v %s, want %s %s", i, coll, id, idHashV, typ, spec, latest, first, raw, wantColl[i], o.ID)
		}
		if date < lastDate {
			t.Errorf("row %d: date_added %d before %d", i, date, lastDate)
		}
		lastDate = date
		dates[date] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(want) {
		t.Errorf("%d rows, want %d", i, len(want))
	}
	if len(dates) != len(calls) {
		t.Errorf("%d distinct date_added, want one per call (%d)", len(dates), len(calls))
	}
}
