package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// TestOneShotWriterCache checks the one-shot writer's cache and that it
// changes nothing that is written: a transaction dirtying 24 MiB of
// pages, more than the one-shot cache holds, writes nothing to the
// write-ahead log before it commits (no page spills mid-way, as with the
// serving writer's cache), and an addition is read back whole.
func TestOneShotWriterCache(t *testing.T) {
	ctx := t.Context()
	objs := make([]*stix.Object, 3000)
	for i := range objs {
		o, err := stix.Decode(fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012x","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"one-shot %d","pattern":"[ipv4-addr:value = '10.1.%d.%d']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}`,
			i, i, i>>8&255, i&255))
		if err != nil {
			t.Fatal(err)
		}
		objs[i] = o
	}
	tests := []struct {
		name      string
		open      func(context.Context, string) (*Store, error)
		cacheSize int
	}{
		{"serve", Open, -262144},
		{"one-shot", OpenOneShot, -16384},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.open(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// (Only the size: reading cache_spill resets its threshold.)
			var size int
			if err := s.write.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&size); err != nil {
				t.Fatal(err)
			}
			if size != tt.cacheSize {
				t.Errorf("writer cache_size %d, want %d", size, tt.cacheSize)
			}

			if _, err := s.write.ExecContext(ctx, "CREATE TABLE spill_test (b BLOB)"); err != nil {
				t.Fatal(err)
			}
			wal := s.path + "-wal"
			err = s.enqueueWrite(ctx, func(ctx context.Context, tx *sql.Tx, _ []entente.AddOutcome) error {
				before, err := os.Stat(wal)
				if err != nil {
					return err
				}
				for range 3000 {
					if _, err := tx.ExecContext(ctx, "INSERT INTO spill_test VALUES (randomblob(8000))"); err != nil {
						return err
					}
				}
				after, err := os.Stat(wal)
				if err != nil {
					return err
				}
				if after.Size() != before.Size() {
					return fmt.Errorf("the log grew from %d to %d bytes before the commit: pages spilled", before.Size(), after.Size())
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}

			if err := s.CreateCollection(ctx, entente.Collection{ID: "intel", Title: "Intel", Created: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AddObjects(ctx, "intel", objs); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM objects").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != len(objs) {
				t.Errorf("%d objects stored, want %d", n, len(objs))
			}
		})
	}
}

// TestOneShotWriterLeavesSearchIndex checks that a one-shot store's
// writer does not index for search while it waits (the process exits
// before a search could use it: an import paid for it with CPU it
// needed), that a serving store's writer does, and that a search on the
// one-shot store still finds what was stored (it brings the index up to
// date first), as does the next serving store to open it.
func TestOneShotWriterLeavesSearchIndex(t *testing.T) {
	ctx := t.Context()
	objs := make([]*stix.Object, 300)
	for i := range objs {
		o, err := stix.Decode(fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012x","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"oneshotword %d","pattern":"[ipv4-addr:value = '10.2.%d.%d']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}`,
			i, i, i>>8&255, i&255))
		if err != nil {
			t.Fatal(err)
		}
		objs[i] = o
	}
	indexed := func(s *Store) int64 {
		t.Helper()
		var seq int64
		if err := s.read.QueryRowContext(ctx, `SELECT seq FROM search_state WHERE id = 1`).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		return seq
	}
	for _, tt := range []struct {
		name    string
		open    func(context.Context, string) (*Store, error)
		indexed bool
	}{
		{"serve", Open, true},
		{"one-shot", OpenOneShot, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := tt.open(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Close() }()
			if err := s.CreateCollection(ctx, entente.Collection{ID: "intel", Title: "Intel", Created: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AddObjects(ctx, "intel", objs); err != nil {
				t.Fatal(err)
			}
			// Idle for several times searchIdle (a serving writer may
			// take longer on a loaded machine: up to 20 s).
			wait := 4 * searchIdle
			if tt.indexed {
				wait = 20 * time.Second
			}
			deadline := time.Now().Add(wait)
			for time.Now().Before(deadline) && indexed(s) == 0 {
				time.Sleep(20 * time.Millisecond)
			}
			if got := indexed(s) > 0; got != tt.indexed {
				t.Fatalf("indexed while idle: %v, want %v", got, tt.indexed)
			}
			if !tt.indexed {
				// The next store to open it indexes when idle.
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if s, err = Open(ctx, dir); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(20 * time.Second)
				for time.Now().Before(deadline) && indexed(s) == 0 {
					time.Sleep(20 * time.Millisecond)
				}
				if indexed(s) == 0 {
					t.Fatal("the serving store opened after the one-shot one did not index what it stored")
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if s, err = OpenOneShot(ctx, dir); err != nil {
					t.Fatal(err)
				}
			}
			page, err := s.SearchObjects(ctx, store.SearchQuery{Text: "oneshotword", Limit: 500})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Hits) != len(objs) {
				t.Errorf("search found %d objects, want %d", len(page.Hits), len(objs))
			}
		})
	}
}
