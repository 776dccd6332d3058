package sqlite

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/audit"
	"pgregory.net/rapid"
)

// TestAuditIndexFollowsReleases is a model test of the index of releases
// by object, written after the releases in batches: whatever the
// interleaving of releases, index batches, crashes (the pending batch
// lost) and reopenings, a query by object returns exactly the versions of
// that object released, in order; every release up to the sequence
// marked indexed has its index rows, and they are those of its versions;
// and no release is indexed twice.
func TestAuditIndexFollowsReleases(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ids := make([]string, 12)
	for i := range ids {
		if i%4 == 3 {
			ids[i] = fmt.Sprintf("x-local-object-%d", i) // not a STIX id: hashed byte by byte
		} else {
			ids[i] = fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", i*7919, i)
		}
	}
	partners := []string{"identity--0000000a-0000-4000-8000-000000000000", "identity--0000000b-0000-4000-8000-000000000000"}
	// model: the partner of every version released, by object, in order.
	model := map[string][]string{}
	at := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	rapid.Check(t, func(rt *rapid.T) {
		// Every check starts from what the last one left: the log only
		// grows, as it does in a node.
		s.audit.idxHold.Store(true) // batches only when the test says
		for range rapid.IntRange(1, 25).Draw(rt, "steps") {
			switch rapid.IntRange(0, 9).Draw(rt, "action") {
			case 0, 1, 2, 3, 4:
				partner := rapid.SampledFrom(partners).Draw(rt, "partner")
				n := rapid.IntRange(1, 40).Draw(rt, "versions")
				rel := audit.Release{Time: at, Actor: "key-1", Partner: partner, Detail: "objects intel"}
				for range n {
					id := rapid.SampledFrom(ids).Draw(rt, "id")
					at = at.Add(time.Millisecond)
					rel.Versions = append(rel.Versions, audit.ReleasedVersion{ObjectID: id, Version: at, Rule: "agreement"})
				}
				if err := s.AppendRelease(rt.Context(), rel); err != nil {
					rt.Fatal(err)
				}
				for _, v := range rel.Versions {
					model[v.ObjectID] = append(model[v.ObjectID], partner)
				}
			case 5, 6:
				if err := s.audit.indexPending(rt.Context()); err != nil {
					rt.Fatal(err)
				}
			case 7:
				// A crash: the pending batch is lost with the process.
				s.audit.idxMu.Lock()
				s.audit.idxPending = nil
				s.audit.idxMu.Unlock()
				if err := s.Close(); err != nil {
					rt.Fatal(err)
				}
				if s, err = Open(rt.Context(), dir); err != nil {
					rt.Fatal(err)
				}
				s.audit.idxHold.Store(true)
			case 8:
				// A clean close indexes what is pending.
				s.audit.idxHold.Store(false)
				if err := s.Close(); err != nil {
					rt.Fatal(err)
				}
				if s, err = Open(rt.Context(), dir); err != nil {
					rt.Fatal(err)
				}
				s.audit.idxHold.Store(true)
				if n := pendingReleases(s); n != 0 {
					rt.Fatalf("%d releases pending after a clean close and an open", n)
				}
			case 9:
				id := rapid.SampledFrom(ids).Draw(rt, "query")
				var got []string
				for _, r := range allAudit(rt, s, audit.Query{ObjectID: id}) {
					if r.ObjectID != id {
						rt.Fatalf("a query for %s returned a record of %s", id, r.ObjectID)
					}
					got = append(got, r.Partner)
				}
				if !slices.Equal(got, model[id]) {
					rt.Fatalf("releases of %s: got %d versions, want %d", id, len(got), len(model[id]))
				}
			}
		}
		checkAuditIndex(rt, s)
	})
}

// pendingReleases returns how many releases wait for their index rows.
func pendingReleases(s *Store) int {
	s.audit.idxMu.Lock()
	defer s.audit.idxMu.Unlock()
	return len(s.audit.idxPending)
}

// checkAuditIndex checks that every release up to the sequence marked
// indexed has index rows, exactly those of its versions, that none after
// it has any, and that the pending releases are those after it.
func checkAuditIndex(t *rapid.T, s *Store) {
	indexed := s.audit.indexed.Load()
	rows, err := s.audit.write.QueryContext(t.Context(), `SELECT seq, versions FROM audit WHERE versions IS NOT NULL ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	type rel struct {
		seq int64
		vs  []audit.ReleasedVersion
	}
	var rels []rel
	for rows.Next() {
		var r rel
		var packed []byte
		if err := rows.Scan(&r.seq, &packed); err != nil {
			t.Fatal(err)
		}
		if r.vs, err = audit.UnpackRelease(packed); err != nil {
			t.Fatal(err)
		}
		rels = append(rels, r)
	}
	rows.Close()
	var after []int64
	for _, r := range rels {
		idx, err := s.audit.write.QueryContext(t.Context(), `SELECT bucket, hashes FROM audit_objects WHERE seq = ? ORDER BY bucket`, r.seq)
		if err != nil {
			t.Fatal(err)
		}
		var got []audit.IndexRow
		for idx.Next() {
			var ir audit.IndexRow
			if err := idx.Scan(&ir.Bucket, &ir.Hashes); err != nil {
				t.Fatal(err)
			}
			got = append(got, ir)
		}
		idx.Close()
		if r.seq > indexed {
			after = append(after, r.seq)
			if len(got) > 0 {
				t.Fatalf("release %d, after the %d marked indexed, has %d index rows", r.seq, indexed, len(got))
			}
			continue
		}
		want := audit.ReleaseIndex(r.vs)
		if len(got) != len(want) {
			t.Fatalf("release %d (indexed up to %d): %d index rows, want %d", r.seq, indexed, len(got), len(want))
		}
		for i := range want {
			if got[i].Bucket != want[i].Bucket || string(got[i].Hashes) != string(want[i].Hashes) {
				t.Fatalf("release %d: index row %d is bucket %d %x, want %d %x", r.seq, i, got[i].Bucket, got[i].Hashes, want[i].Bucket, want[i].Hashes)
			}
		}
	}
	s.audit.idxMu.Lock()
	var pending []int64
	for _, p := range s.audit.idxPending {
		pending = append(pending, p.seq)
	}
	s.audit.idxMu.Unlock()
	// A crash loses pending batches, which the next open indexes: the
	// releases after indexed are pending, unless a crash since left
	// them to that open.
	if len(pending) > len(after) || !slices.Equal(pending, after[len(after)-len(pending):]) {
		t.Fatalf("pending releases %v, want the last of those after %d: %v", pending, indexed, after)
	}
}
