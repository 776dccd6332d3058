package sqlite

import (
	"fmt"
	"os"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/storetest"
)

// TestWriterKeepsVersionsUnique checks what no index has enforced since
// migration 0400 replaced the unique index on (collection, id, version)
// with the id hash's, and the single writer keeps instead: a
// version of an object is stored once in a collection, whatever the
// additions (repeated versions within a call and across calls, through
// the group commit's Submit and through AddObjects), deletions, writes
// by another connection to the same file (another process, which the
// writer's set of id hashes must notice), and ids whose hashes collide.
// After each step the stored rows match a model, each version is stored
// once, and each object has one latest and one first version: the
// greatest and the least.
func TestWriterKeepsVersionsUnique(t *testing.T) {
	const ids, versions = 6, 4
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var pool [ids][versions]*stix.Object
	for i := range ids {
		for v := range versions {
			pool[i][v] = storetest.Object(t, "indicator", fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i), base.Add(time.Duration(v)*time.Hour))
		}
	}
	colls := []string{"a", "b"}
	for _, collide := range []bool{false, true} {
		name := map[bool]string{false: "fnv1a", true: "colliding"}[collide]
		t.Run(name, func(t *testing.T) {
			if collide {
				hashID = func(id string) int64 { return int64(len(id) % 2) }
				t.Cleanup(func() { hashID = fnv1a })
			}
			rapid.Check(t, func(rt *rapid.T) {
				dir, err := os.MkdirTemp(t.TempDir(), "unique")
				if err != nil {
					rt.Fatal(err)
				}
				ctx := t.Context()
				var handles [2]*Store
				for h := range handles {
					s, err := Open(ctx, dir)
					if err != nil {
						rt.Fatal(err)
					}
					defer s.Close()
					handles[h] = s
				}
				for _, c := range colls {
					if err := handles[0].CreateCollection(ctx, entente.Collection{ID: c, Title: c, Created: base}); err != nil {
						rt.Fatal(err)
					}
				}
				// model: collection → object index → stored versions.
				model := map[string]map[int]map[int]bool{"a": {}, "b": {}}
				steps := rapid.IntRange(1, 12).Draw(rt, "steps")
				for step := range steps {
					s := handles[rapid.IntRange(0, 1).Draw(rt, "handle")]
					c := rapid.SampledFrom(colls).Draw(rt, "collection")
					if rapid.IntRange(0, 4).Draw(rt, "op") == 0 {
						i := rapid.IntRange(0, ids-1).Draw(rt, "delete")
						n, err := s.DeleteObjects(ctx, c, pool[i][0].ID, entente.VersionFilter{All: true}, nil)
						if err != nil && entente.ErrorCode(err) != entente.ENOTFOUND {
							rt.Fatalf("step %d: delete: %v", step, err)
						}
						if n != len(model[c][i]) {
							rt.Fatalf("step %d: deleted %d versions of object %d in %s, model holds %d", step, n, i, c, len(model[c][i]))
						}
						delete(model[c], i)
						continue
					}
					type pick struct{ i, v int }
					picks := rapid.SliceOfN(rapid.Custom(func(rt *rapid.T) pick {
						return pick{rapid.IntRange(0, ids-1).Draw(rt, "id"), rapid.IntRange(0, versions-1).Draw(rt, "version")}
					}), 1, 12).Draw(rt, "objects")
					objs := make([]*stix.Object, len(picks))
					for k, p := range picks {
						objs[k] = pool[p.i][p.v]
					}
					var out []entente.AddOutcome
					if rapid.Bool().Draw(rt, "submit") {
						done := make(chan error, 1)
						err = s.Submit(ctx, store.Submission{
							Collection: c, Objects: objs, StatusID: fmt.Sprintf("st%d", step),
							Status: func([]entente.AddOutcome, error) []byte { return []byte(`{}`) },
							Done: func(o []entente.AddOutcome, err error) {
								out = o
								done <- err
							},
						})
						if err == nil {
							err = <-done
						}
					} else {
						out, err = s.AddObjects(ctx, c, objs)
					}
					if err != nil {
						rt.Fatalf("step %d: add: %v", step, err)
					}
					if len(out) != len(objs) {
						rt.Fatalf("step %d: %d outcomes for %d objects", step, len(out), len(objs))
					}
					for k, p := range picks {
						if model[c][p.i] == nil {
							model[c][p.i] = map[int]bool{}
						}
						if want := model[c][p.i][p.v]; out[k].Duplicate != want {
							rt.Fatalf("step %d: object %d version %d in %s: Duplicate %v, model says stored %v", step, p.i, p.v, c, out[k].Duplicate, want)
						}
						model[c][p.i][p.v] = true
					}
					checkUnique(rt, handles[0], model, pool[:], base)
				}
			})
		})
	}
}

// checkUnique compares the rows of objects with the model, and checks
// that no version is stored twice and that each object's latest and
// first flags mark its greatest and least version.
func checkUnique(rt *rapid.T, s *Store, model map[string]map[int]map[int]bool, pool [][4]*stix.Object, base time.Time) {
	rows, err := s.read.QueryContext(rt.Context(), `SELECT c.id, o.id, o.version, o.is_latest, o.is_first FROM objects o JOIN collections c ON c.seq = o.collection`)
	if err != nil {
		rt.Fatal(err)
	}
	defer rows.Close()
	type key struct {
		coll, id string
		version  int64
	}
	seen := map[key]bool{}
	latest, first := map[[2]string]int64{}, map[[2]string]int64{}
	want := 0
	for _, objs := range model {
		for _, vs := range objs {
			want += len(vs)
		}
	}
	n := 0
	for rows.Next() {
		var k key
		var isLatest, isFirst bool
		if err := rows.Scan(&k.coll, &k.id, &k.version, &isLatest, &isFirst); err != nil {
			rt.Fatal(err)
		}
		n++
		if seen[k] {
			rt.Fatalf("%s version %d stored twice in %s", k.id, k.version, k.coll)
		}
		seen[k] = true
		o := [2]string{k.coll, k.id}
		if isLatest {
			if _, dup := latest[o]; dup {
				rt.Fatalf("%s has two latest versions in %s", k.id, k.coll)
			}
			latest[o] = k.version
		}
		if isFirst {
			if _, dup := first[o]; dup {
				rt.Fatalf("%s has two first versions in %s", k.id, k.coll)
			}
			first[o] = k.version
		}
	}
	if err := rows.Err(); err != nil {
		rt.Fatal(err)
	}
	if n != want {
		rt.Fatalf("%d rows stored, the model holds %d versions", n, want)
	}
	for c, objs := range model {
		for i, vs := range objs {
			if len(vs) == 0 {
				continue
			}
			lo, hi := len(pool[i]), -1
			for v := range vs {
				lo, hi = min(lo, v), max(hi, v)
			}
			o := [2]string{c, pool[i][0].ID}
			if got, want := latest[o], base.Add(time.Duration(hi)*time.Hour).UnixNano(); got != want {
				rt.Fatalf("%s in %s: latest version %d, want %d", o[1], c, got, want)
			}
			if got, want := first[o], base.Add(time.Duration(lo)*time.Hour).UnixNano(); got != want {
				rt.Fatalf("%s in %s: first version %d, want %d", o[1], c, got, want)
			}
		}
	}
}
