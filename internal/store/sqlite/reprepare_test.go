package sqlite

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/storetest"
)

// reprepared returns, for every statement prepared on the writer's
// connection, how many times SQLite prepared it again since it was first
// prepared (sqlite3_stmt_status SQLITE_STMTSTATUS_REPREPARE), keyed by
// its text. The driver keeps the connection's handle unexported; the test
// reads it through reflection.
func reprepared(t *testing.T, s *Store) map[string]int {
	t.Helper()
	c, err := s.write.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := map[string]int{}
	err = c.Raw(func(dc any) error {
		v := reflect.ValueOf(dc).Elem()
		db, tlsField := v.FieldByName("db"), v.FieldByName("tls")
		if !db.IsValid() || !tlsField.IsValid() {
			return fmt.Errorf("the driver's connection %T has no db and tls fields", dc)
		}
		h := uintptr(db.Uint())
		tls := (*libc.TLS)(unsafe.Pointer(tlsField.Pointer()))
		for p := sqlite3.Xsqlite3_next_stmt(tls, h, 0); p != 0; p = sqlite3.Xsqlite3_next_stmt(tls, h, p) {
			out[libc.GoString(sqlite3.Xsqlite3_sql(tls, p))] += int(sqlite3.Xsqlite3_stmt_status(tls, p, sqlite3.SQLITE_STMTSTATUS_REPREPARE, 0))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWriterKeepsStatementsPrepared checks that the writer's group commits
// leave its prepared statements valid: it used to turn foreign-key checks
// off and on around each transaction, and a flag pragma expires every
// statement of the connection, so each commit re-prepared all of them.
// It also checks that the schema's foreign key holds without the checks:
// after grouped additions, received pushes and peer-state saves,
// foreign_key_check finds no violation, and an addition to a collection
// that does not exist is refused and writes nothing.
func TestWriterKeepsStatementsPrepared(t *testing.T) {
	ctx := t.Context()
	s := newIDSetStore(t, t.TempDir())
	for _, c := range []string{"a", "b"} {
		if err := s.CreateCollection(ctx, entente.Collection{ID: c, Title: c, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutPeer(ctx, store.Peer{ID: "p", APIRoot: "http://127.0.0.1:1/", Collection: "c", LocalCollection: "a", Direction: store.DirectionPull}); err != nil {
		t.Fatal(err)
	}
	// One transaction first, so that every statement the writer runs
	// has been prepared and run once.
	write := func(round int) {
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				coll := []string{"a", "b"}[i%2]
				first := (round*4 + i) * 10
				if i == 3 {
					if _, err := s.AddReceived(ctx, store.Received{Collection: coll, Objects: storetest.Indicators(t, first, 10),
						Origin: "identity--0a6ea5a0-2b7e-4d43-9a1b-7d1b1b7b7b7b", Peer: "p", ReceivedAt: time.Now()}); err != nil {
						t.Error(err)
					}
					return
				}
				if _, err := s.AddObjects(ctx, coll, storetest.Indicators(t, first, 10)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Go(func() {
			if err := s.UpdatePeerSync(ctx, "p", json.RawMessage(fmt.Sprintf(`{"round":%d}`, round)), time.Now(), ""); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
	}
	write(0)
	before := reprepared(t, s)
	if len(before) == 0 {
		t.Fatal("no statement prepared on the writer's connection")
	}
	commits := s.writes.Load()
	for round := 1; round <= 10; round++ {
		write(round)
	}
	if s.writes.Load()-commits < 5 {
		t.Fatalf("%d commits in 10 rounds of writes, want at least 5", s.writes.Load()-commits)
	}
	after := reprepared(t, s)
	for q, n := range after {
		if n > before[q] {
			t.Errorf("statement re-prepared %d times by %d commits: %s", n-before[q], s.writes.Load()-commits, q)
		}
	}

	var missing int
	if _, err := s.AddObjects(ctx, "no-such-collection", storetest.Indicators(t, 1000, 3)); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Errorf("addition to a collection that does not exist: %v, want ENOTFOUND", err)
	}
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM objects WHERE collection NOT IN (SELECT seq FROM collections)`).Scan(&missing); err != nil || missing != 0 {
		t.Errorf("%d objects of no collection (%v)", missing, err)
	}
	rows, err := s.write.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var table, parent string
		var rowid, fkid any
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			t.Fatal(err)
		}
		t.Errorf("foreign key violated: %s row %v refers to no %s", table, rowid, parent)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM objects`).Scan(&n); err != nil || n != 440 {
		t.Errorf("%d objects stored (%v), want 440", n, err)
	}
}
