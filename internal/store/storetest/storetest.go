// Package storetest is the conformance suite that every [store.Store]
// backend passes: one set of tests, run by each backend's own tests
// against fresh stores.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// Opener returns a new, empty store for one test. It registers the
// store's closing (and any clean-up) with t.Cleanup.
type Opener func(t *testing.T) store.Store

// Run runs the whole conformance suite against stores made by open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Collections", testCollections},
		{"AddAndDuplicates", testAddAndDuplicates},
		{"ObjectWithoutVersion", testObjectWithoutVersion},
		{"InvalidObjects", testInvalidObjects},
		{"VersionFilters", testVersionFilters},
		{"Filters", testFilters},
		{"AddedAfterIsStrict", testAddedAfter},
		{"LatestAdded", testLatestAdded},
		{"DateAddedIncreases", testDateAddedIncreases},
		{"MetadataOnly", testMetadataOnly},
		{"PagingSharedDateAdded", testPagingSharedDateAdded},
		{"PagingWithFilters", testPagingWithFilters},
		{"PagingWhileAdding", testPagingWhileAdding},
		{"ConcurrentAdds", testConcurrentAdds},
		{"CursorTampering", testCursorTampering},
		{"Delete", testDelete},
		{"Status", testStatus},
		{"Keys", testKeys},
		{"Settings", testSettings},
		{"NotFound", testNotFound},
		{"CancelledAdd", testCancelledAdd},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// ctx returns a context for one test, cancelled when it ends.
func ctx(t *testing.T) context.Context { return t.Context() }

// base is a fixed instant for versions, so tests are deterministic.
var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// v returns the n-th test version: base plus n milliseconds and a few
// nanoseconds, so nanosecond precision is exercised.
func v(n int) time.Time { return base.Add(time.Duration(n)*time.Millisecond + 7) }

// Object returns a decoded indicator (or another type) with the given id
// and version (modified; created is one hour earlier).
func Object(t testing.TB, typ, id string, version time.Time) *stix.Object {
	t.Helper()
	m := map[string]any{
		"type":         typ,
		"id":           id,
		"spec_version": "2.1",
		"created":      stix.FormatTimestamp(version.Add(-time.Hour)),
		"modified":     stix.FormatTimestamp(version),
		"name":         "test " + id,
	}
	if typ == "indicator" {
		m["pattern"] = "[ipv4-addr:value = '198.51.100.1']"
		m["pattern_type"] = "stix"
		m["valid_from"] = stix.FormatTimestamp(version.Add(-time.Hour))
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	o, err := stix.Decode(raw)
	if err != nil {
		t.Fatalf("decode test object %s: %v", id, err)
	}
	return o
}

func indicatorID(n int) string {
	return fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", n)
}

// Indicators returns n indicators with distinct ids (from first on), all
// at version v(0).
func Indicators(t testing.TB, first, n int) []*stix.Object {
	objs := make([]*stix.Object, n)
	for i := range objs {
		objs[i] = Object(t, "indicator", indicatorID(first+i), v(0))
	}
	return objs
}

func newCollection(t *testing.T, s store.Store, id string) {
	t.Helper()
	err := s.CreateCollection(ctx(t), entente.Collection{
		ID: id, Title: "Collection " + id,
		ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RoleAnalyst},
		Created: time.Now(),
	})
	if err != nil {
		t.Fatalf("create collection %s: %v", id, err)
	}
}

const coll = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"

func add(t *testing.T, s store.Store, collection string, objs ...*stix.Object) []entente.AddOutcome {
	t.Helper()
	out, err := s.AddObjects(ctx(t), collection, objs)
	if err != nil {
		t.Fatalf("AddObjects: %v", err)
	}
	if len(out) != len(objs) {
		t.Fatalf("AddObjects returned %d outcomes for %d objects", len(out), len(objs))
	}
	return out
}

func query(t *testing.T, s store.Store, q entente.ObjectQuery) entente.Page {
	t.Helper()
	p, err := s.QueryObjects(ctx(t), q)
	if err != nil {
		t.Fatalf("QueryObjects(%+v): %v", q, err)
	}
	return p
}

// all pages through q with page size limit and returns every entry.
func all(t *testing.T, s store.Store, q entente.ObjectQuery, limit int) []entente.ObjectEntry {
	t.Helper()
	q.Limit = limit
	var got []entente.ObjectEntry
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatal("paging does not end")
		}
		p := query(t, s, q)
		if len(p.Entries) > limit {
			t.Fatalf("page of %d entries for limit %d", len(p.Entries), limit)
		}
		got = append(got, p.Entries...)
		if !p.More {
			if p.Next != "" {
				t.Errorf("last page has Next %q", p.Next)
			}
			return got
		}
		if p.Next == "" {
			t.Fatal("More without Next")
		}
		if len(p.Entries) != limit {
			t.Fatalf("non-final page has %d entries, want %d", len(p.Entries), limit)
		}
		q.Next = p.Next
	}
}

type idv struct {
	ID      string
	Version time.Time
}

func idvs(es []entente.ObjectEntry) []idv {
	if len(es) == 0 {
		return nil
	}
	out := make([]idv, len(es))
	for i, e := range es {
		out[i] = idv{e.ID, e.Version}
	}
	return out
}

func sortIDV(s []idv) []idv {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b idv) int {
		if a.ID != b.ID {
			if a.ID < b.ID {
				return -1
			}
			return 1
		}
		return a.Version.Compare(b.Version)
	})
	return s
}

func wantCode(t *testing.T, err error, code entente.Code, what string) {
	t.Helper()
	if got := entente.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func testCollections(t *testing.T, s store.Store) {
	c1 := entente.Collection{
		ID: "4f2e7a4c-46b9-4d3b-9a8e-1b7c1d1f0a01", Alias: "intel", Title: "Intel", Description: "All intel",
		DefaultMarking: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
		ReadRoles:      []entente.Role{entente.RoleAnalyst, entente.RolePartner},
		WriteRoles:     []entente.Role{entente.RoleAnalyst},
		Created:        base.Add(123456789),
	}
	c2 := entente.Collection{ID: "4f2e7a4c-46b9-4d3b-9a8e-1b7c1d1f0a02", Title: "Second", Created: base.Add(time.Hour)}
	for _, c := range []entente.Collection{c1, c2} {
		if err := s.CreateCollection(ctx(t), c); err != nil {
			t.Fatalf("CreateCollection(%s): %v", c.ID, err)
		}
	}
	for _, key := range []string{c1.ID, "intel"} {
		got, err := s.Collection(ctx(t), key)
		if err != nil {
			t.Fatalf("Collection(%s): %v", key, err)
		}
		if d := cmp.Diff(c1, got); d != "" {
			t.Errorf("Collection(%s) (-want +got):\n%s", key, d)
		}
	}
	list, err := s.Collections(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]entente.Collection{c1, c2}, list); d != "" {
		t.Errorf("Collections (-want +got):\n%s", d)
	}

	conflicts := []entente.Collection{
		{ID: c1.ID, Title: "same id"},
		{ID: "4f2e7a4c-46b9-4d3b-9a8e-1b7c1d1f0a03", Alias: "intel", Title: "same alias"},
		{ID: "4f2e7a4c-46b9-4d3b-9a8e-1b7c1d1f0a04", Alias: c2.ID, Title: "alias is another's id"},
		{ID: "intel", Title: "id is another's alias"},
	}
	for _, c := range conflicts {
		wantCode(t, s.CreateCollection(ctx(t), c), entente.ECONFLICT, "CreateCollection "+c.Title)
	}

	c1.Title, c1.Description, c1.DefaultMarking = "Renamed", "", ""
	c1.ReadRoles = []entente.Role{entente.RoleSensor}
	c1.WriteRoles = nil
	if err := s.UpdateCollection(ctx(t), c1); err != nil {
		t.Fatalf("UpdateCollection: %v", err)
	}
	got, err := s.Collection(ctx(t), c1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(c1, got); d != "" {
		t.Errorf("after UpdateCollection (-want +got):\n%s", d)
	}
	wantCode(t, s.UpdateCollection(ctx(t), entente.Collection{ID: "nope", Title: "x"}), entente.ENOTFOUND, "UpdateCollection missing")
	_, err = s.Collection(ctx(t), "nope")
	wantCode(t, err, entente.ENOTFOUND, "Collection missing")
}

func testAddAndDuplicates(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	a1 := Object(t, "indicator", indicatorID(1), v(1))
	b1 := Object(t, "malware", "malware--00000000-0000-4000-8000-000000000002", v(1))
	out := add(t, s, coll, a1, b1)
	for i, o := range out {
		if o.Duplicate {
			t.Errorf("outcome %d: Duplicate on first add", i)
		}
		if !o.Version.Equal(v(1)) {
			t.Errorf("outcome %d: Version %v, want %v", i, o.Version, v(1))
		}
		if o.DateAdded.IsZero() || !o.DateAdded.Equal(out[0].DateAdded) {
			t.Errorf("outcome %d: DateAdded %v, want one shared non-zero date_added (%v)", i, o.DateAdded, out[0].DateAdded)
		}
	}
	if out[0].ID != a1.ID || out[1].ID != b1.ID {
		t.Errorf("outcomes not in input order: %+v", out)
	}
	first := out[0].DateAdded

	// Re-adding the same versions writes nothing; a new version of a is
	// a new entry, and a version repeated within one call is a duplicate.
	a2 := Object(t, "indicator", a1.ID, v(2))
	out = add(t, s, coll, a1, b1, a2, a2)
	want := []bool{true, true, false, true}
	for i, o := range out {
		if o.Duplicate != want[i] {
			t.Errorf("second add, outcome %d (%s %v): Duplicate %v, want %v", i, o.ID, o.Version, o.Duplicate, want[i])
		}
	}
	if !out[0].DateAdded.Equal(first) {
		t.Errorf("duplicate's DateAdded %v, want the stored %v", out[0].DateAdded, first)
	}
	if !out[2].DateAdded.After(first) {
		t.Errorf("new version's DateAdded %v not after %v", out[2].DateAdded, first)
	}

	p := query(t, s, entente.ObjectQuery{Collection: coll})
	if p.More || p.Next != "" {
		t.Errorf("single page has More %v Next %q", p.More, p.Next)
	}
	// Latest versions, in date_added order: b1 (first call), then a2.
	wantEntries := []entente.ObjectEntry{
		{ID: b1.ID, Type: "malware", SpecVersion: "2.1", Version: v(1), DateAdded: first, Raw: b1.Raw},
		{ID: a1.ID, Type: "indicator", SpecVersion: "2.1", Version: v(2), DateAdded: out[2].DateAdded, Raw: a2.Raw},
	}
	if d := cmp.Diff(wantEntries, p.Entries); d != "" {
		t.Errorf("latest entries (-want +got):\n%s", d)
	}
	p = query(t, s, entente.ObjectQuery{Collection: coll, Versions: entente.VersionFilter{All: true}})
	if got, want := len(p.Entries), 3; got != want {
		t.Errorf("all versions: %d entries, want %d", got, want)
	}
	// Adding to an empty call succeeds with no outcomes.
	if out := add(t, s, coll); len(out) != 0 {
		t.Errorf("empty add: %v", out)
	}
}

func testObjectWithoutVersion(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	raw := `{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd","value":"198.51.100.3"}`
	o, err := stix.Decode([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	out := add(t, s, coll, o)
	if !out[0].Version.Equal(out[0].DateAdded) {
		t.Errorf("object without created/modified: Version %v, want its DateAdded %v", out[0].Version, out[0].DateAdded)
	}
	p := query(t, s, entente.ObjectQuery{Collection: coll})
	if len(p.Entries) != 1 || !p.Entries[0].Version.Equal(out[0].DateAdded) || string(p.Entries[0].Raw) != raw {
		t.Errorf("stored entry %+v, want version = date_added %v and raw kept", p.Entries, out[0].DateAdded)
	}
}

func testInvalidObjects(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	far := Object(t, "indicator", indicatorID(2), v(0))
	far.Modified = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	cases := map[string][]*stix.Object{
		"no id":             {Object(t, "indicator", indicatorID(1), v(0)), {Type: "indicator", Raw: json.RawMessage(`{}`)}},
		"no type":           {{ID: indicatorID(3), Raw: json.RawMessage(`{}`)}},
		"version too large": {Object(t, "indicator", indicatorID(1), v(0)), far},
		"nil object":        {nil},
	}
	for name, objs := range cases {
		_, err := s.AddObjects(ctx(t), coll, objs)
		wantCode(t, err, entente.EINVALID, name)
	}
	p := query(t, s, entente.ObjectQuery{Collection: coll, Versions: entente.VersionFilter{All: true}})
	if len(p.Entries) != 0 {
		t.Errorf("rejected batches wrote %d entries", len(p.Entries))
	}
}

func testVersionFilters(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	a, b := indicatorID(1), indicatorID(2)
	// a gets versions 2, 1, 3 (added in that order); b only version 5.
	add(t, s, coll, Object(t, "indicator", a, v(2)))
	add(t, s, coll, Object(t, "indicator", a, v(1)), Object(t, "indicator", b, v(5)))
	add(t, s, coll, Object(t, "indicator", a, v(3)))

	cases := []struct {
		name string
		f    entente.VersionFilter
		want []idv
	}{
		{"default is latest", entente.VersionFilter{}, []idv{{a, v(3)}, {b, v(5)}}},
		{"last", entente.VersionFilter{Last: true}, []idv{{a, v(3)}, {b, v(5)}}},
		{"first", entente.VersionFilter{First: true}, []idv{{a, v(1)}, {b, v(5)}}},
		{"all", entente.VersionFilter{All: true}, []idv{{a, v(1)}, {a, v(2)}, {a, v(3)}, {b, v(5)}}},
		{"all wins", entente.VersionFilter{All: true, First: true}, []idv{{a, v(1)}, {a, v(2)}, {a, v(3)}, {b, v(5)}}},
		{"first and last", entente.VersionFilter{First: true, Last: true}, []idv{{a, v(1)}, {a, v(3)}, {b, v(5)}}},
		{"at", entente.VersionFilter{At: []time.Time{v(2)}}, []idv{{a, v(2)}}},
		{"at several", entente.VersionFilter{At: []time.Time{v(1), v(5), v(9)}}, []idv{{a, v(1)}, {b, v(5)}}},
		{"at or first", entente.VersionFilter{First: true, At: []time.Time{v(2)}}, []idv{{a, v(1)}, {a, v(2)}, {b, v(5)}}},
		{"at misses by a nanosecond", entente.VersionFilter{At: []time.Time{v(2).Add(1)}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := all(t, s, entente.ObjectQuery{Collection: coll, Versions: tc.f}, 2)
			if d := cmp.Diff(sortIDV(tc.want), sortIDV(idvs(got))); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	// Entries come in date_added order: a@2 was added first.
	got := query(t, s, entente.ObjectQuery{Collection: coll, Versions: entente.VersionFilter{All: true}})
	order := []idv{{a, v(2)}, {a, v(1)}, {b, v(5)}, {a, v(3)}}
	if d := cmp.Diff(order, idvs(got.Entries)); d != "" {
		t.Errorf("date_added order (-want +got):\n%s", d)
	}
}

func testFilters(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	i1, i2 := indicatorID(1), indicatorID(2)
	m1 := "malware--00000000-0000-4000-8000-000000000003"
	old := Object(t, "indicator", indicatorID(4), v(1))
	old.SpecVersion = "2.0"
	add(t, s, coll,
		Object(t, "indicator", i1, v(1)), Object(t, "indicator", i1, v(2)),
		Object(t, "indicator", i2, v(1)), Object(t, "malware", m1, v(1)), old)

	cases := []struct {
		name string
		q    entente.ObjectQuery
		want []idv
	}{
		{"type", entente.ObjectQuery{Types: []string{"malware"}}, []idv{{m1, v(1)}}},
		{"types or-ed", entente.ObjectQuery{Types: []string{"malware", "indicator"}}, []idv{{i1, v(2)}, {i2, v(1)}, {m1, v(1)}, {old.ID, v(1)}}},
		{"ids", entente.ObjectQuery{IDs: []string{i1, m1}}, []idv{{i1, v(2)}, {m1, v(1)}}},
		{"ids and type", entente.ObjectQuery{IDs: []string{i1, m1}, Types: []string{"indicator"}}, []idv{{i1, v(2)}}},
		{"ids and all versions", entente.ObjectQuery{IDs: []string{i1}, Versions: entente.VersionFilter{All: true}}, []idv{{i1, v(1)}, {i1, v(2)}}},
		{"spec version", entente.ObjectQuery{SpecVersions: []string{"2.0"}}, []idv{{old.ID, v(1)}}},
		{"spec version and type", entente.ObjectQuery{SpecVersions: []string{"2.1"}, Types: []string{"indicator"}}, []idv{{i1, v(2)}, {i2, v(1)}}},
		{"no match", entente.ObjectQuery{IDs: []string{i1}, Types: []string{"malware"}}, nil},
		{"unknown id", entente.ObjectQuery{IDs: []string{"indicator--nope"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Collection = coll
			got := all(t, s, tc.q, 1)
			if d := cmp.Diff(sortIDV(tc.want), sortIDV(idvs(got))); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func testAddedAfter(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	first := add(t, s, coll, Indicators(t, 0, 3)...)
	second := add(t, s, coll, Indicators(t, 3, 2)...)
	cases := []struct {
		name  string
		after time.Time
		want  int
	}{
		{"before everything", first[0].DateAdded.Add(-1), 5},
		{"equal to first batch is excluded", first[0].DateAdded, 2},
		{"between batches", second[0].DateAdded.Add(-1), 2},
		{"equal to last batch", second[0].DateAdded, 0},
		{"far future", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{"far past", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), 5},
	}
	for _, tc := range cases {
		got := all(t, s, entente.ObjectQuery{Collection: coll, AddedAfter: tc.after}, 2)
		if len(got) != tc.want {
			t.Errorf("%s: %d entries, want %d", tc.name, len(got), tc.want)
		}
		for _, e := range got {
			if !e.DateAdded.After(tc.after) {
				t.Errorf("%s: entry %s added %v, not after %v", tc.name, e.ID, e.DateAdded, tc.after)
			}
		}
	}
}

func testDateAddedIncreases(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	var last time.Time
	for i := range 20 {
		out := add(t, s, coll, Indicators(t, i, 1)...)
		if !out[0].DateAdded.After(last) {
			t.Fatalf("add %d: date_added %v not after the previous %v", i, out[0].DateAdded, last)
		}
		last = out[0].DateAdded
	}
}

func testMetadataOnly(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	objs := Indicators(t, 0, 3)
	add(t, s, coll, objs...)
	p := query(t, s, entente.ObjectQuery{Collection: coll, MetadataOnly: true, Limit: 2})
	if len(p.Entries) != 2 || !p.More {
		t.Fatalf("metadata page: %d entries, More %v; want 2, true", len(p.Entries), p.More)
	}
	for _, e := range p.Entries {
		if e.Raw != nil {
			t.Errorf("MetadataOnly entry %s has Raw", e.ID)
		}
		if e.Type != "indicator" || e.SpecVersion != "2.1" || !e.Version.Equal(v(0)) {
			t.Errorf("MetadataOnly entry %+v lacks metadata", e)
		}
	}
	// The cursor of a metadata query continues a full query, and back.
	p2 := query(t, s, entente.ObjectQuery{Collection: coll, Next: p.Next})
	if len(p2.Entries) != 1 || p2.Entries[0].ID != objs[2].ID || string(p2.Entries[0].Raw) != string(objs[2].Raw) {
		t.Errorf("page after metadata page: %+v", p2.Entries)
	}
	// Limit 0 means the store's maximum.
	if p := query(t, s, entente.ObjectQuery{Collection: coll}); len(p.Entries) != 3 {
		t.Errorf("limit 0: %d entries, want 3", len(p.Entries))
	}
}

func testPagingSharedDateAdded(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	objs := Indicators(t, 0, 500)
	out := add(t, s, coll, objs...)
	for _, o := range out {
		if !o.DateAdded.Equal(out[0].DateAdded) {
			t.Fatalf("objects of one call do not share a date_added: %v vs %v", o.DateAdded, out[0].DateAdded)
		}
	}
	want := make([]string, len(objs))
	for i, o := range objs {
		want[i] = o.ID
	}
	for _, limit := range []int{1, 2, 3, 7, 64, 100, 499, 500, 501} {
		got := all(t, s, entente.ObjectQuery{Collection: coll}, limit)
		ids := make([]string, len(got))
		for i, e := range got {
			ids[i] = e.ID
		}
		if d := cmp.Diff(want, ids); d != "" {
			t.Errorf("limit %d: entries differ from insertion order (-want +got):\n%s", limit, d)
		}
	}
}

func testPagingWithFilters(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	var objs []*stix.Object
	for i := range 60 {
		typ := "indicator"
		if i%3 == 0 {
			typ = "malware"
		}
		objs = append(objs, Object(t, typ, fmt.Sprintf("%s--00000000-0000-4000-8000-%012d", typ, i), v(1)))
	}
	add(t, s, coll, objs...)
	// New versions of every fourth object move them to the end.
	var again []*stix.Object
	for i := 0; i < 60; i += 4 {
		again = append(again, Object(t, objs[i].Type, objs[i].ID, v(2)))
	}
	add(t, s, coll, again...)
	for _, f := range []entente.VersionFilter{{}, {All: true}, {First: true}} {
		q := entente.ObjectQuery{Collection: coll, Types: []string{"malware"}, Versions: f}
		want := query(t, s, q).Entries
		for _, limit := range []int{1, 4, 19} {
			got := all(t, s, q, limit)
			if d := cmp.Diff(idvs(want), idvs(got)); d != "" {
				t.Errorf("versions %+v, limit %d: paged result differs from one page (-want +got):\n%s", f, limit, d)
			}
		}
	}
}

func testPagingWhileAdding(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	const before = 300
	add(t, s, coll, Indicators(t, 0, before)...)

	ctx, cancel := context.WithCancel(ctx(t))
	var (
		wg    sync.WaitGroup
		added = before
		err   error
	)
	wg.Go(func() {
		for n := before; ctx.Err() == nil && n < before+5000; n += 10 {
			if _, e := s.AddObjects(ctx, coll, Indicators(t, n, 10)); e != nil {
				if ctx.Err() == nil {
					err = e
				}
				return
			}
			added = n + 10
		}
	})
	seen := map[string]int{}
	q := entente.ObjectQuery{Collection: coll, Limit: 7}
	var pages int
	for {
		p := query(t, s, q)
		pages++
		for _, e := range p.Entries {
			seen[e.ID]++
		}
		// Stop once every original object has been seen and the writer
		// has had a chance to append behind the reader.
		if !p.More || (pages > 60 && len(seen) > before) {
			break
		}
		q.Next = p.Next
	}
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("concurrent AddObjects: %v", err)
	}
	for i := range before {
		if n := seen[indicatorID(i)]; n != 1 {
			t.Errorf("object %s present before paging was seen %d times", indicatorID(i), n)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("object %s seen %d times", id, n)
		}
	}
	t.Logf("paged %d pages, saw %d objects while %d existed at the end", pages, len(seen), added)
}

func testCursorTampering(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	other := "91a7b528-80eb-42ed-a74d-c6fbd5a26117"
	newCollection(t, s, other)
	add(t, s, coll, Indicators(t, 0, 5)...)
	add(t, s, other, Indicators(t, 0, 5)...)
	q := entente.ObjectQuery{Collection: coll, Limit: 2}
	p := query(t, s, q)
	if p.Next == "" {
		t.Fatal("no cursor")
	}
	flip := []byte(p.Next)
	if mid := len(flip) / 2; flip[mid] == 'A' {
		flip[mid] = 'B'
	} else {
		flip[mid] = 'A'
	}
	cases := map[string]entente.ObjectQuery{
		"garbage":            {Collection: coll, Next: "not a cursor!"},
		"empty base64":       {Collection: coll, Next: "AAAA"},
		"one character off":  {Collection: coll, Next: string(flip)},
		"truncated":          {Collection: coll, Next: p.Next[:len(p.Next)-2]},
		"extended":           {Collection: coll, Next: p.Next + "AA"},
		"other collection":   {Collection: other, Next: p.Next},
		"other type filter":  {Collection: coll, Next: p.Next, Types: []string{"indicator"}},
		"other version":      {Collection: coll, Next: p.Next, Versions: entente.VersionFilter{All: true}},
		"other added after":  {Collection: coll, Next: p.Next, AddedAfter: base},
		"other spec version": {Collection: coll, Next: p.Next, SpecVersions: []string{"2.1"}},
	}
	for name, q := range cases {
		_, err := s.QueryObjects(ctx(t), q)
		wantCode(t, err, entente.EINVALID, name)
	}
	// The untouched cursor works, also with another limit.
	if p2 := query(t, s, entente.ObjectQuery{Collection: coll, Next: p.Next, Limit: 10}); len(p2.Entries) != 3 {
		t.Errorf("valid cursor: %d entries, want 3", len(p2.Entries))
	}
}

func testDelete(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	a, b := indicatorID(1), indicatorID(2)
	for i := 1; i <= 4; i++ {
		add(t, s, coll, Object(t, "indicator", a, v(i)))
	}
	add(t, s, coll, Object(t, "indicator", b, v(1)))
	versionsOf := func(f entente.VersionFilter) []idv {
		return idvs(query(t, s, entente.ObjectQuery{Collection: coll, IDs: []string{a}, Versions: f}).Entries)
	}
	del := func(f entente.VersionFilter, specs []string, want int) {
		t.Helper()
		n, err := s.DeleteObjects(ctx(t), coll, a, f, specs)
		if err != nil {
			t.Fatalf("DeleteObjects(%+v): %v", f, err)
		}
		if n != want {
			t.Errorf("DeleteObjects(%+v) deleted %d, want %d", f, n, want)
		}
	}
	// Deleting the latest (the default) makes the previous one latest.
	del(entente.VersionFilter{}, nil, 1)
	if d := cmp.Diff([]idv{{a, v(3)}}, versionsOf(entente.VersionFilter{})); d != "" {
		t.Errorf("latest after deleting latest (-want +got):\n%s", d)
	}
	// Deleting the first makes the second one first.
	del(entente.VersionFilter{First: true}, nil, 1)
	if d := cmp.Diff([]idv{{a, v(2)}}, versionsOf(entente.VersionFilter{First: true})); d != "" {
		t.Errorf("first after deleting first (-want +got):\n%s", d)
	}
	// A spec version that no version has deletes nothing.
	_, err := s.DeleteObjects(ctx(t), coll, a, entente.VersionFilter{All: true}, []string{"2.0"})
	wantCode(t, err, entente.ENOTFOUND, "delete with unmatched spec version")
	_, err = s.DeleteObjects(ctx(t), coll, a, entente.VersionFilter{At: []time.Time{v(4)}}, nil)
	wantCode(t, err, entente.ENOTFOUND, "delete of an already deleted version")
	// An exact version, leaving one version that is both first and last.
	del(entente.VersionFilter{At: []time.Time{v(3)}}, []string{"2.1"}, 1)
	for _, f := range []entente.VersionFilter{{}, {First: true}, {All: true}} {
		if d := cmp.Diff([]idv{{a, v(2)}}, versionsOf(f)); d != "" {
			t.Errorf("versions %+v after deleting v3 (-want +got):\n%s", f, d)
		}
	}
	del(entente.VersionFilter{All: true}, nil, 1)
	if got := versionsOf(entente.VersionFilter{All: true}); len(got) != 0 {
		t.Errorf("after deleting all versions: %v", got)
	}
	_, err = s.DeleteObjects(ctx(t), coll, a, entente.VersionFilter{All: true}, nil)
	wantCode(t, err, entente.ENOTFOUND, "delete of a deleted object")
	// Other objects are untouched.
	if got := query(t, s, entente.ObjectQuery{Collection: coll}).Entries; len(got) != 1 || got[0].ID != b {
		t.Errorf("remaining entries %v, want only %s", idvs(got), b)
	}
	// Re-adding a deleted version stores it again, with a new date_added.
	out := add(t, s, coll, Object(t, "indicator", a, v(4)))
	if out[0].Duplicate {
		t.Error("re-adding a deleted version reported Duplicate")
	}
	if d := cmp.Diff([]idv{{a, v(4)}}, versionsOf(entente.VersionFilter{First: true, Last: true})); d != "" {
		t.Errorf("after re-adding (-want +got):\n%s", d)
	}
}

func testStatus(t *testing.T, s store.Store) {
	id := "2d086da7-4bdc-4f91-900e-d77486753710"
	_, err := s.Status(ctx(t), id)
	wantCode(t, err, entente.ENOTFOUND, "Status before PutStatus")
	for _, body := range []string{`{"status":"pending"}`, `{"status":"complete","total_count":3}`} {
		if err := s.PutStatus(ctx(t), id, []byte(body)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Status(ctx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != body {
			t.Errorf("Status = %s, want %s", got, body)
		}
	}
}

func testKeys(t *testing.T, s store.Store) {
	k1 := entente.Key{ID: "k1", Hash: []byte("hash-one-32-bytes-long-000000000"), Name: "admin key", Org: "identity--1", Role: entente.RoleAdmin, Created: base.Add(5)}
	k2 := entente.Key{ID: "k2", Hash: []byte("hash-two-32-bytes-long-000000000"), Name: "sensor", Org: "identity--2", Role: entente.RoleSensor, Created: base.Add(time.Second)}
	for _, k := range []entente.Key{k1, k2} {
		if err := s.CreateKey(ctx(t), k); err != nil {
			t.Fatalf("CreateKey(%s): %v", k.ID, err)
		}
	}
	wantCode(t, s.CreateKey(ctx(t), entente.Key{ID: "k1", Hash: []byte("other"), Role: entente.RoleAdmin, Created: base}), entente.ECONFLICT, "CreateKey same id")
	wantCode(t, s.CreateKey(ctx(t), entente.Key{ID: "k3", Hash: k2.Hash, Role: entente.RoleAdmin, Created: base}), entente.ECONFLICT, "CreateKey same hash")

	got, err := s.KeyByHash(ctx(t), k2.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(k2, got); d != "" {
		t.Errorf("KeyByHash (-want +got):\n%s", d)
	}
	_, err = s.KeyByHash(ctx(t), []byte("unknown"))
	wantCode(t, err, entente.ENOTFOUND, "KeyByHash unknown")

	at := base.Add(time.Hour + 3)
	if err := s.RevokeKey(ctx(t), "k1", at); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.RevokeKey(ctx(t), "nope", at), entente.ENOTFOUND, "RevokeKey unknown")
	k1.Revoked = &at
	got, err = s.KeyByHash(ctx(t), k1.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(k1, got); d != "" {
		t.Errorf("revoked key (-want +got):\n%s", d)
	}
	list, err := s.Keys(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]entente.Key{k1, k2}, list); d != "" {
		t.Errorf("Keys (-want +got):\n%s", d)
	}
}

func testSettings(t *testing.T, s store.Store) {
	_, err := s.Setting(ctx(t), "node.name")
	wantCode(t, err, entente.ENOTFOUND, "Setting unset")
	for _, v := range []string{"alpha", "", `{"x":1}`} {
		if err := s.PutSetting(ctx(t), "node.name", []byte(v)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Setting(ctx(t), "node.name")
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != v {
			t.Errorf("Setting = %q, want %q", got, v)
		}
	}
	if err := s.Ping(ctx(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testNotFound(t *testing.T, s store.Store) {
	_, err := s.AddObjects(ctx(t), "missing", Indicators(t, 0, 1))
	wantCode(t, err, entente.ENOTFOUND, "AddObjects to a missing collection")
	_, err = s.QueryObjects(ctx(t), entente.ObjectQuery{Collection: "missing"})
	wantCode(t, err, entente.ENOTFOUND, "QueryObjects of a missing collection")
	_, err = s.DeleteObjects(ctx(t), "missing", indicatorID(0), entente.VersionFilter{All: true}, nil)
	wantCode(t, err, entente.ENOTFOUND, "DeleteObjects in a missing collection")
	newCollection(t, s, coll)
	_, err = s.DeleteObjects(ctx(t), coll, indicatorID(0), entente.VersionFilter{All: true}, nil)
	wantCode(t, err, entente.ENOTFOUND, "DeleteObjects of a missing object")
	if p := query(t, s, entente.ObjectQuery{Collection: coll}); len(p.Entries) != 0 || p.More {
		t.Errorf("empty collection: %+v", p)
	}
}

func testCancelledAdd(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	cancelled, cancel := context.WithCancel(ctx(t))
	cancel()
	if _, err := s.AddObjects(cancelled, coll, Indicators(t, 0, 10)); err == nil {
		t.Fatal("AddObjects with a cancelled context succeeded")
	} else if !errors.Is(err, context.Canceled) {
		t.Errorf("AddObjects with a cancelled context: %v, want context.Canceled", err)
	}
	count := func() int {
		return len(all(t, s, entente.ObjectQuery{Collection: coll, Versions: entente.VersionFilter{All: true}, MetadataOnly: true}, store.MaxPageSize))
	}
	if n := count(); n != 0 {
		t.Fatalf("cancelled AddObjects wrote %d entries", n)
	}
	// Cancel while a large addition runs: it is all or nothing.
	objs := Indicators(t, 100, 3000)
	for _, delay := range []time.Duration{0, 200 * time.Microsecond, time.Millisecond, 5 * time.Millisecond} {
		before := count()
		c, cancel := context.WithCancel(ctx(t))
		time.AfterFunc(delay, cancel)
		_, err := s.AddObjects(c, coll, objs)
		cancel()
		after := count()
		switch {
		case err != nil && after != before:
			t.Errorf("delay %v: AddObjects failed (%v) but %d entries were written", delay, err, after-before)
		case err == nil && before == 0 && after != len(objs):
			t.Errorf("delay %v: AddObjects succeeded but %d of %d entries are there", delay, after, len(objs))
		}
	}
}

// testConcurrentAdds runs writers at once, some of whose calls fail: the
// failures write nothing and do not disturb the other calls.
func testConcurrentAdds(t *testing.T, s store.Store) {
	newCollection(t, s, coll)
	const writers, calls, size = 6, 15, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*calls)
	for w := range writers {
		wg.Go(func() {
			for c := range calls {
				first := (w*calls + c) * size
				objs := Indicators(t, first, size)
				switch c % 5 {
				case 3: // an invalid object fails the whole call
					objs[size-1] = &stix.Object{ID: "indicator--bad", Raw: json.RawMessage(`{}`)}
				case 4: // a missing collection
					if _, err := s.AddObjects(ctx(t), "missing", objs); entente.ErrorCode(err) != entente.ENOTFOUND {
						errs <- fmt.Errorf("writer %d call %d to a missing collection: %v", w, c, err)
					}
					continue
				}
				out, err := s.AddObjects(ctx(t), coll, objs)
				if c%5 == 3 {
					if entente.ErrorCode(err) != entente.EINVALID {
						errs <- fmt.Errorf("writer %d call %d with an invalid object: %v", w, c, err)
					}
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d call %d: %v", w, c, err)
					continue
				}
				for _, o := range out {
					if o.Duplicate {
						errs <- fmt.Errorf("writer %d call %d: %s reported duplicate", w, c, o.ID)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := all(t, s, entente.ObjectQuery{Collection: coll, Versions: entente.VersionFilter{All: true}}, 33)
	seen := map[string]bool{}
	var last time.Time
	for _, e := range got {
		if seen[e.ID] {
			t.Errorf("%s stored twice", e.ID)
		}
		seen[e.ID] = true
		if e.DateAdded.Before(last) {
			t.Errorf("%s: date_added %v before the previous entry's %v", e.ID, e.DateAdded, last)
		}
		last = e.DateAdded
	}
	for w := range writers {
		for c := range calls {
			want := c%5 < 3
			for i := range size {
				id := indicatorID((w*calls+c)*size + i)
				if seen[id] != want {
					t.Errorf("writer %d call %d: %s stored %v, want %v", w, c, id, seen[id], want)
				}
			}
		}
	}
}
