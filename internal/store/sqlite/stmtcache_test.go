package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestGatedConnKeepsStatements: a read connection keeps the queries it
// runs twice prepared, at most stmtCacheSize of them, and gives the same
// answers as before: a query run again while its first rows are open (in
// a transaction) gets its own statement, a failing query leaves nothing
// kept, a long query is not kept, and a kept statement holds no snapshot
// (a TRUNCATE checkpoint completes while the connection stays open with
// its statements).
func TestGatedConnKeepsStatements(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.ExecContext(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	for k := range 100 {
		if _, err := w.ExecContext(ctx, `INSERT INTO t VALUES (?, ?)`, k, fmt.Sprint("v", k)); err != nil {
			t.Fatal(err)
		}
	}
	db, err := gatedDB("file:"+path+"?mode=ro", newReadGate(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection: its cache is the one looked at
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kept := func() (n int) {
		conn.Raw(func(dc any) error {
			n = len(dc.(*gatedConn).stmts)
			return nil
		})
		return n
	}
	value := func(q *sql.Conn, k int) string {
		var v string
		if err := q.QueryRowContext(ctx, `SELECT v FROM t WHERE k = ?`, k).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
		kept int // statements kept afterwards
	}{
		{"a query run once is not kept", func(t *testing.T) {
			if got := value(conn, 5); got != "v5" {
				t.Fatalf("k=5: %q", got)
			}
		}, 0},
		{"run again: kept, the answers right", func(t *testing.T) {
			for _, k := range []int{3, 77} {
				if got, want := value(conn, k), fmt.Sprint("v", k); got != want {
					t.Fatalf("k=%d: %q, want %q", k, got, want)
				}
			}
		}, 1},
		{"no row: sql.ErrNoRows, statement kept", func(t *testing.T) {
			var v string
			if err := conn.QueryRowContext(ctx, `SELECT v FROM t WHERE k = ?`, 1000).Scan(&v); err != sql.ErrNoRows {
				t.Fatalf("got %v, want sql.ErrNoRows", err)
			}
		}, 1},
		{"run again while its rows are open (transaction)", func(t *testing.T) {
			tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			const q = `SELECT k FROM t WHERE k < ? ORDER BY k`
			for range 2 { // kept from the second run
				rows, err := tx.QueryContext(ctx, q, 1)
				if err != nil {
					t.Fatal(err)
				}
				rows.Close()
			}
			outer, err := tx.QueryContext(ctx, q, 10)
			if err != nil {
				t.Fatal(err)
			}
			sum := 0
			for outer.Next() {
				var k int
				if err := outer.Scan(&k); err != nil {
					t.Fatal(err)
				}
				inner, err := tx.QueryContext(ctx, q, k)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for inner.Next() {
					n++
				}
				inner.Close()
				if n != k {
					t.Fatalf("inner query below %d: %d rows, want %d", k, n, k)
				}
				sum += k
			}
			if err := outer.Err(); err != nil {
				t.Fatal(err)
			}
			outer.Close()
			if sum != 45 {
				t.Fatalf("outer rows sum to %d, want 45", sum)
			}
		}, 2},
		{"a failing query is not kept", func(t *testing.T) {
			for range 3 {
				if _, err := conn.QueryContext(ctx, `SELECT nope FROM t`); err == nil {
					t.Fatal("a query of a missing column passed")
				}
			}
		}, 2},
		{"a long query is not kept", func(t *testing.T) {
			q := `SELECT count(*) FROM t WHERE k NOT IN (-1`
			for i := 0; len(q) <= maxCachedQuery; i++ {
				q += fmt.Sprintf(", %d", -2-i)
			}
			for range 2 {
				var n int
				if err := conn.QueryRowContext(ctx, q+`)`).Scan(&n); err != nil || n != 100 {
					t.Fatalf("count %d, %v; want 100", n, err)
				}
			}
		}, 2},
		{"bounded: the least recently used make room", func(t *testing.T) {
			for i := range 2 * stmtCacheSize {
				for range 2 {
					var n int
					if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) + %d FROM t`, i)).Scan(&n); err != nil || n != 100+i {
						t.Fatalf("query %d: %d, %v", i, n, err)
					}
				}
			}
		}, stmtCacheSize},
		{"kept statements hold no snapshot: a TRUNCATE checkpoint completes", func(t *testing.T) {
			if _, err := w.ExecContext(ctx, `INSERT INTO t VALUES (1000, 'new')`); err != nil {
				t.Fatal(err)
			}
			if got := value(conn, 1000); got != "new" {
				t.Fatalf("a kept statement read %q after a write, want new", got)
			}
			var busy, logged, done int
			if err := w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &done); err != nil || busy != 0 {
				t.Fatalf("checkpoint: busy %d, %v", busy, err)
			}
		}, stmtCacheSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t)
			if got := kept(); got != tt.kept {
				t.Fatalf("%d statements kept, want %d", got, tt.kept)
			}
		})
	}
}
