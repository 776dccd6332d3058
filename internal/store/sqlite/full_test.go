package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// bigObjects returns n indicators of about 2 KiB each, ids from first.
func bigObjects(t *testing.T, first, n int) []*stix.Object {
	t.Helper()
	out := make([]*stix.Object, n)
	for i := range out {
		raw, _ := json.Marshal(map[string]any{"type": "indicator", "spec_version": "2.1",
			"id":      fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", first+i),
			"created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
			"pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
			"description": strings.Repeat(fmt.Sprintf("padding %d ", first+i), 150)})
		o, err := stix.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = o
	}
	return out
}

// checkFull checks that err is the storage-full error: EUNAVAILABLE with
// the message that says so.
func checkFull(t *testing.T, what string, err error) {
	t.Helper()
	if entente.ErrorCode(err) != entente.EUNAVAILABLE || entente.ErrorMessage(err) != ErrStorageFull {
		t.Fatalf("%s on a full store: %v (code %q, message %q), want EUNAVAILABLE %q", what, err, entente.ErrorCode(err), entente.ErrorMessage(err), ErrStorageFull)
	}
}

// fullStoreChecks runs the checks of a store that has just become full:
// every kind of write is refused with the storage-full error, and reads
// are still served.
func fullStoreChecks(t *testing.T, s *Store, stored int) {
	t.Helper()
	ctx := t.Context()
	_, err := s.AddObjects(ctx, "c", bigObjects(t, 900000, 200))
	checkFull(t, "AddObjects", err)
	_, err = s.AddReceived(ctx, store.Received{Collection: "c", Objects: bigObjects(t, 910000, 200), Origin: "identity--00000000-0000-4000-8000-00000000000a",
		Peer: "p", ReceivedAt: time.Now(), StatusID: "st", Status: func([]entente.AddOutcome) []byte { return []byte("{}") }})
	checkFull(t, "AddReceived", err)
	if _, err := s.Status(ctx, "st"); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Errorf("the status of a refused addition was kept: %v", err)
	}
	checkFull(t, "PutStatus", s.PutStatus(ctx, "big", []byte(strings.Repeat("x", 4<<20))))
	// Reads go on.
	n, next := 0, ""
	for {
		page, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: "c", Limit: 1000, Next: next})
		if err != nil {
			t.Fatalf("read from a full store: %v", err)
		}
		n += len(page.Entries)
		if !page.More {
			break
		}
		next = page.Next
	}
	if n != stored {
		t.Fatalf("a full store reads %d objects, want the %d stored before", n, stored)
	}
}

// fillUp adds objects until the store refuses them and returns how many
// it holds.
func fillUp(t *testing.T, s *Store) int {
	t.Helper()
	stored := 0
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("the store never became full")
		}
		_, err := s.AddObjects(t.Context(), "c", bigObjects(t, stored, 50))
		if err != nil {
			checkFull(t, "AddObjects", err)
			return stored
		}
		stored += 50
	}
}

// TestStorageFullPageLimit makes the database full with SQLite's page
// limit (which fails writes with the same SQLITE_FULL as a full disk):
// writes are refused with a clear error, reads are served, and writes
// succeed again once the limit is raised.
func TestStorageFullPageLimit(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateCollection(ctx, entente.Collection{ID: "c", Title: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddObjects(ctx, "c", bigObjects(t, 0, 100)); err != nil {
		t.Fatal(err)
	}
	var pages int
	if err := s.write.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+40)); err != nil {
		t.Fatal(err)
	}
	stored := fillUp(t, s)
	if stored < 100 {
		t.Fatalf("only %d objects before the limit", stored)
	}
	fullStoreChecks(t, s, stored)
	if _, err := s.write.ExecContext(ctx, `PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddObjects(ctx, "c", bigObjects(t, 900000, 200)); err != nil {
		t.Fatalf("after space returned: %v", err)
	}
}

// TestStorageFullTmpfs puts the store on a small tmpfs (it needs root, or
// CAP_SYS_ADMIN, to mount one; it is skipped otherwise): once the file
// system is full, writes are refused with a clear error, the process
// keeps running and serving reads, and writes succeed again when the
// file system grows.
func TestStorageFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=3m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): %v", err)
	}
	defer func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	}()
	ctx := t.Context()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	if err := s.CreateCollection(ctx, entente.Collection{ID: "c", Title: "c"}); err != nil {
		t.Fatal(err)
	}
	stored := fillUp(t, s)
	fullStoreChecks(t, s, stored)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatalf("grow the tmpfs: %v", err)
	}
	if _, err := s.AddObjects(ctx, "c", bigObjects(t, 900000, 200)); err != nil {
		t.Fatalf("after space returned: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	closed = true
	// What was acknowledged is there after reopening.
	s2, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	page, err := s2.QueryObjects(ctx, entente.ObjectQuery{Collection: "c", IDs: []string{"indicator--00000000-0000-4000-8000-000000900199"}})
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("after reopening: %d entries (%v)", len(page.Entries), err)
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}
