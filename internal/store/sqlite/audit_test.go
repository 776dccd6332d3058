package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/google/go-cmp/cmp"
)

// legacyStore makes, in dir, the objects' database of a store from before
// the audit database: every migration of the objects' file applied, and
// an audit log in its tables (an administrative record, then a release
// of 300 versions indexed by the first-generation hash, as stores wrote
// it). It returns the records of that log, in order.
func legacyStore(t *testing.T, dir string) []audit.Record {
	t.Helper()
	ctx := t.Context()
	db, err := sql.Open("sqlite", dsnOf(filepath.Join(dir, FileName)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := migrate(ctx, db, migrations, "migrations"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	admin := audit.Record{Time: at, Actor: "admin-key", Action: audit.Admin, Partner: "identity--0000000b-0000-4000-8000-000000000000", Rule: "agreement.put", Detail: "collections intel"}
	if _, err := db.ExecContext(ctx, `INSERT INTO audit (time, actor, action, partner, object_id, version, rule, detail) VALUES (?, ?, ?, ?, '', 0, ?, ?)`,
		at.UnixNano(), admin.Actor, admin.Action, admin.Partner, admin.Rule, admin.Detail); err != nil {
		t.Fatal(err)
	}
	rel := audit.Release{Time: at.Add(time.Minute), Actor: "partner-key", Partner: admin.Partner, Detail: "objects intel"}
	for i := range 300 {
		rel.Versions = append(rel.Versions, audit.ReleasedVersion{ObjectID: fmt.Sprintf("indicator--8e2e2d2b-17d4-4cbf-938f-%012x", i), Version: at, Rule: "agreement"})
	}
	var seq int64
	if err := db.QueryRowContext(ctx, `INSERT INTO audit (time, actor, action, partner, object_id, version, rule, detail, versions) VALUES (?, ?, ?, ?, '', 0, '', ?, ?) RETURNING seq`,
		rel.Time.UnixNano(), rel.Actor, audit.Egress, rel.Partner, rel.Detail, audit.PackRelease(rel.Versions)).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	// The first generation's index: FNV-1a, buckets 0–31, sorted.
	byBucket := map[int][]uint32{}
	for _, v := range rel.Versions {
		h := audit.ObjectHash(v.ObjectID)
		byBucket[int(h%audit.Buckets)] = append(byBucket[int(h%audit.Buckets)], uint32(h>>32))
	}
	for b, hs := range byBucket {
		slices.Sort(hs)
		var buf []byte
		for _, h := range hs {
			buf = binary.BigEndian.AppendUint32(buf, h)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO audit_objects (bucket, seq, hashes) VALUES (?, ?, ?)`, b, seq, buf); err != nil {
			t.Fatal(err)
		}
	}
	admin.Seq = audit.Seq(1, 0)
	out := []audit.Record{admin}
	for i, r := range rel.Records() {
		r.Seq = audit.Seq(seq, i)
		out = append(out, r)
	}
	return out
}

// auditT is what allAudit needs of a test: a *testing.T or a *rapid.T.
type auditT interface {
	Helper()
	Context() context.Context
	Fatal(args ...any)
}

// allAudit returns every record of q, following the pages.
func allAudit(t auditT, s *Store, q audit.Query) []audit.Record {
	t.Helper()
	var out []audit.Record
	for range 1000 {
		page, err := s.QueryAudit(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Records...)
		if page.Next == "" {
			return out
		}
		q.Next = page.Next
	}
	t.Fatal("audit paging does not end")
	return nil
}

// TestMoveLegacyAudit checks that a store made before the audit database
// had its own file keeps its whole audit log, with the same sequence
// numbers, found by object through the old index; that the old tables
// are gone; that new records follow the old ones; and that opening again
// copies nothing twice.
func TestMoveLegacyAudit(t *testing.T) {
	dir := t.TempDir()
	want := legacyStore(t, dir)
	s, err := Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, allAudit(t, s, audit.Query{})); diff != "" {
		t.Fatalf("moved log (-want +got):\n%s", diff)
	}
	obj := want[200].ObjectID
	if got := allAudit(t, s, audit.Query{ObjectID: obj}); len(got) != 1 || got[0] != want[200] {
		t.Errorf("query by object %s through the old index: %+v", obj, got)
	}
	var n int
	if err := s.write.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name LIKE 'audit%'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the objects' file still has %d audit tables or indexes (%v)", n, err)
	}
	next := audit.Release{Time: time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC), Actor: "partner-key", Partner: want[0].Partner, Detail: "objects intel",
		Versions: []audit.ReleasedVersion{{ObjectID: obj, Version: want[200].Version, Rule: "agreement"}}}
	if err := s.AppendRelease(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	got := allAudit(t, s, audit.Query{ObjectID: obj})
	if len(got) != 2 || got[0] != want[200] || got[1].Seq <= want[len(want)-1].Seq {
		t.Errorf("query by object across both index generations: %+v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := allAudit(t, s, audit.Query{}); len(got) != len(want)+1 {
		t.Errorf("after reopening: %d records, want %d", len(got), len(want)+1)
	}
}

// TestMoveLegacyAuditAfterCrash checks the move when a crash came after
// the copy was committed but before the old tables were dropped: the
// records are not copied twice.
func TestMoveLegacyAuditAfterCrash(t *testing.T) {
	dir := t.TempDir()
	want := legacyStore(t, dir)
	a, err := openAudit(t.Context(), dir, defaultWAL)
	if err != nil {
		t.Fatal(err)
	}
	half := &Store{path: filepath.Join(dir, FileName), audit: a}
	if err := half.copyLegacyAudit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if diff := cmp.Diff(want, allAudit(t, s, audit.Query{})); diff != "" {
		t.Fatalf("moved log (-want +got):\n%s", diff)
	}
}

// TestAppendReleaseGroupCommit: releases and administrative records
// appended at the same time share commits of the audit database (before,
// one commit each), each release is found by its object once its
// AppendRelease returned, and an invalid release or record fails alone.
func TestAppendReleaseGroupCommit(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The index batches of the checkpointer's ticks are commits too:
	// held, so that the count below is the appends' alone.
	s.audit.idxHold.Store(true)
	const n, m = 48, 8
	release := func(i int) audit.Release {
		return audit.Release{Time: time.Date(2026, 12, 7, 0, 0, i, 0, time.UTC), Actor: fmt.Sprint("peer-", i), Partner: fmt.Sprintf("identity--%08d-0000-4000-8000-000000000000", i),
			Detail: "push reports", Versions: []audit.ReleasedVersion{{ObjectID: fmt.Sprintf("sighting--%08d-0000-4000-8000-000000000000", i),
				Version: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), Rule: "agreement"}}}
	}
	// Hold the audit file's one write connection, so that the appends
	// queue behind the first, as behind a slow fsync.
	held, err := s.audit.write.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, beforeAll := s.audit.releaseCommits.Load(), s.audit.commits.Load()
	errs := make(chan error, n+1+m+1)
	for i := range n {
		go func() { errs <- s.AppendRelease(ctx, release(i)) }()
	}
	bad := release(n)
	bad.Time = time.Time{} // no time: invalid
	go func() { errs <- s.AppendRelease(ctx, bad) }()
	// Administrative records appended meanwhile share the commits too;
	// an invalid one fails alone.
	admin := func(i int) []audit.Record {
		return []audit.Record{audit.AdminRecord(time.Date(2026, 12, 7, 1, 0, i, 0, time.UTC), fmt.Sprint("admin-", i), "alert.new", "", fmt.Sprint("x-entente-alert--", i), nil)}
	}
	for i := range m {
		go func() { errs <- s.AppendAudit(ctx, admin(i)) }()
	}
	go func() { errs <- s.AppendAudit(ctx, []audit.Record{{Actor: "admin-bad", Action: "alert.new"}}) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.audit.relMu.Lock()
		queued := len(s.audit.relQueue)
		s.audit.relMu.Unlock()
		if queued >= n+m-1 || time.Now().After(deadline) {
			break
		}
	}
	held.Close()
	failed := 0
	for range n + 1 + m + 1 {
		if err := <-errs; err != nil {
			failed++
			if entente.ErrorCode(err) != entente.EINVALID {
				t.Errorf("append: %v", err)
			}
		}
	}
	if failed != 2 {
		t.Errorf("%d appends failed, want the two invalid ones alone", failed)
	}
	if commits := s.audit.releaseCommits.Load() - before; commits > 3 {
		t.Errorf("%d releases and %d appends in %d commits, want them to share at most 3", n, m, commits)
	}
	if commits := s.audit.commits.Load() - beforeAll; commits > 3 {
		t.Errorf("%d commits of the audit file for %d releases and %d appends, want at most 3", commits, n, m)
	}
	actors := map[string]int{}
	for _, r := range allAudit(t, s, audit.Query{Action: audit.Admin}) {
		actors[r.Actor]++
	}
	for i := range m {
		if actors[fmt.Sprint("admin-", i)] != 1 {
			t.Errorf("administrative record %d appended %d times, want once", i, actors[fmt.Sprint("admin-", i)])
		}
	}
	if actors["admin-bad"] != 0 {
		t.Errorf("the invalid administrative record was appended")
	}
	for i := range n {
		if got := allAudit(t, s, audit.Query{ObjectID: release(i).Versions[0].ObjectID}); len(got) != 1 || got[0].Actor != release(i).Actor {
			t.Errorf("release %d: found %+v", i, got)
		}
	}
}
