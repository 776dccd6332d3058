package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"time"

	"github.com/entente-cti/entente/internal/store/sqlite"
	"testing"

	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/storetest"
)

func TestPolicyConformance(t *testing.T) {
	storetest.RunPolicy(t, func(t *testing.T) store.Store {
		s := open(t, t.TempDir())
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}

// TestAuditIsAppendOnly checks that the database itself refuses to
// change or remove an audit record, whatever code runs against it.
func TestAuditIsAppendOnly(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	storetest.AppendOneAudit(t, s)
	storetest.AppendOneRelease(t, s)
	// Closed, the store has written the release's index by object too.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, dir, sqlite.AuditFileName)
	var n, idx int
	if err := db.QueryRow(`SELECT count(*), (SELECT count(*) FROM audit_objects) FROM audit`).Scan(&n, &idx); err != nil || n != 2 || idx == 0 {
		t.Fatalf("the audit database holds %d rows and %d index rows (%v), want 2 and some", n, idx, err)
	}
	for _, q := range []string{`UPDATE audit SET rule = 'forged'`, `DELETE FROM audit`,
		`UPDATE audit SET versions = NULL`, `UPDATE audit_objects SET hashes = x''`, `DELETE FROM audit_objects`} {
		if _, err := db.Exec(q); err == nil {
			t.Errorf("%s: succeeded on the append-only audit log", q)
		}
	}
}

// rawDB opens one of the store's database files directly.
func rawDB(t *testing.T, dir, file string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestBlindConformance(t *testing.T) {
	storetest.RunBlind(t, func(t *testing.T) store.Store {
		s := open(t, t.TempDir())
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}

// TestBlindBudgetSurvivesRestart: a partner's spending is read back by
// the store opened again on the same directory.
func TestBlindBudgetSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	period := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s := open(t, dir)
	if _, ok, err := s.SpendBlind(context.Background(), "p", period, 90, 100); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, err := s.AddBlindBatch(context.Background(), "p", 7, [32]byte{9}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if used, ok, err := s.SpendBlind(context.Background(), "p", period, 20, 100); err != nil || ok || used != 90 {
		t.Fatalf("after a restart: used %d ok %v (%v), want 90 and a refusal", used, ok, err)
	}
	if seen, err := s.SeenBlindBatch(context.Background(), "p", 7, [32]byte{9}); err != nil || !seen {
		t.Fatalf("after a restart the batch is forgotten: %v %v", seen, err)
	}
}
