package sqlite_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/storetest"
)

// TestQueryCollection checks that QueryCollection's one lookup gives what
// Collection then QueryObjects give: the same collection (by id or
// alias, roles decoded alike), the same page, the same errors, and that
// a check's refusal reads nothing.
func TestQueryCollection(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir())
	defer s.Close()
	var _ store.CollectionPager = s
	colls := []entente.Collection{
		{ID: "c1", Alias: "one", Title: "One", ReadRoles: []entente.Role{entente.RoleAnalyst, entente.RolePartner}, WriteRoles: []entente.Role{entente.RoleAnalyst}},
		{ID: "c2", Title: "Two"}, // no roles: nil, not empty
		{ID: "c3", Title: "Three", ReadRoles: []entente.Role{"x\"y", "é"}}, // roles json.Marshal escapes or that are not ASCII
	}
	for _, c := range colls {
		if err := s.CreateCollection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddObjects(ctx, "c1", storetest.Indicators(t, 0, 30)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		q    entente.ObjectQuery
	}{
		{"by id", entente.ObjectQuery{Collection: "c1", Limit: 10}},
		{"by alias", entente.ObjectQuery{Collection: "one", Limit: 10}},
		{"one object", entente.ObjectQuery{Collection: "c1", IDs: []string{storetest.Indicators(t, 7, 1)[0].ID}}},
		{"empty collection", entente.ObjectQuery{Collection: "c2"}},
		{"escaped roles", entente.ObjectQuery{Collection: "c3"}},
		{"unknown collection", entente.ObjectQuery{Collection: "nope"}},
		{"bad cursor", entente.ObjectQuery{Collection: "c1", Next: "not-a-cursor"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantC, wantLookupErr := s.Collection(ctx, tc.q.Collection)
			var checked int
			var gotC entente.Collection
			var gotLookupErr error
			c, page, err := s.QueryCollection(ctx, tc.q, func(c entente.Collection, err error) error {
				checked++
				gotC, gotLookupErr = c, err
				return err
			})
			if checked != 1 {
				t.Fatalf("check called %d times, want 1", checked)
			}
			if diff := cmp.Diff(wantC, gotC); diff != "" {
				t.Errorf("check's collection (-Collection +QueryCollection):\n%s", diff)
			}
			if errString(wantLookupErr) != errString(gotLookupErr) || entente.ErrorCode(wantLookupErr) != entente.ErrorCode(gotLookupErr) {
				t.Errorf("check's lookup error %v, want Collection's %v", gotLookupErr, wantLookupErr)
			}
			if wantLookupErr != nil {
				if err != gotLookupErr {
					t.Errorf("QueryCollection returned %v, want the check's error unchanged", err)
				}
				return
			}
			q := tc.q
			q.Collection = wantC.ID
			wantPage, wantErr := s.QueryObjects(ctx, q)
			if errString(wantErr) != errString(err) || entente.ErrorCode(wantErr) != entente.ErrorCode(err) {
				t.Fatalf("error %v, want QueryObjects' %v", err, wantErr)
			}
			if diff := cmp.Diff(wantC, c); diff != "" {
				t.Errorf("collection (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantPage, page); diff != "" {
				t.Errorf("page (-QueryObjects +QueryCollection):\n%s", diff)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		refusal := entente.Errorf(entente.EFORBIDDEN, "no")
		_, page, err := s.QueryCollection(ctx, entente.ObjectQuery{Collection: "c1"}, func(entente.Collection, error) error { return refusal })
		if !errors.Is(err, refusal) || len(page.Entries) != 0 {
			t.Errorf("refused: %d entries, error %v; want none and the refusal", len(page.Entries), err)
		}
	})
	t.Run("roles", func(t *testing.T) {
		for _, want := range colls {
			got, err := s.Collection(ctx, want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.ReadRoles, got.ReadRoles); diff != "" {
				t.Errorf("%s read roles (-want +got):\n%s", want.ID, diff)
			}
			if diff := cmp.Diff(want.WriteRoles, got.WriteRoles); diff != "" {
				t.Errorf("%s write roles (-want +got):\n%s", want.ID, diff)
			}
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestCollectionCached checks the collections kept in memory: a lookup
// after UpdateCollection sees the update (by id and by alias), a caller
// changing the roles it was given changes nothing for the next, an
// unknown name stays unknown until the collection is created, and a
// collection another store on the same file creates is found.
func TestCollectionCached(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	c := entente.Collection{ID: "c1", Alias: "one", Title: "One", ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RoleAnalyst}}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"c1", "one"} {
		got, err := s.Collection(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		got.WriteRoles[0] = entente.RolePartner // the caller's copy
	}
	c.Title, c.WriteRoles = "Renamed", []entente.Role{entente.RoleSensor}
	if err := s.UpdateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"c1", "one", "c1"} {
		got, err := s.Collection(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got.Title != "Renamed" || !got.CanWrite(entente.RoleSensor) || got.CanWrite(entente.RoleAnalyst) || got.CanWrite(entente.RolePartner) {
			t.Errorf("Collection(%q) after the update = %+v", name, got)
		}
	}
	if _, err := s.Collection(ctx, "c2"); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Fatalf("unknown collection: %v, want ENOTFOUND", err)
	}
	other := open(t, dir)
	if err := other.CreateCollection(ctx, entente.Collection{ID: "c2", Title: "Two"}); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if got, err := s.Collection(ctx, "c2"); err != nil || got.Title != "Two" {
		t.Fatalf("collection created by another store: %+v, %v", got, err)
	}
}

// TestQueryObjectsRemembersCollections checks that reads of objects
// resolve a collection's id or alias once (it never changes): a read by
// a name already resolved still finds the collection after its title,
// marking and roles changed, a name not found is not remembered (a
// collection created under it afterwards is found), and an alias names
// its own collection, not another's.
func TestQueryObjectsRemembersCollections(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir())
	defer s.Close()
	if _, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: "later"}); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Fatalf("a read of an unknown collection: %v, want ENOTFOUND", err)
	}
	for _, c := range []entente.Collection{{ID: "c1", Alias: "one", Title: "One"}, {ID: "c2", Alias: "later", Title: "Later"}} {
		if err := s.CreateCollection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddObjects(ctx, "c1", storetest.Indicators(t, 0, 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddObjects(ctx, "c2", storetest.Indicators(t, 10, 2)); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		if round == 1 {
			if err := s.UpdateCollection(ctx, entente.Collection{ID: "c1", Title: "One, renamed", ReadRoles: []entente.Role{entente.RoleAnalyst}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name string
			want int
		}{{"c1", 3}, {"one", 3}, {"later", 2}, {"c2", 2}} {
			page, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: tc.name})
			if err != nil || len(page.Entries) != tc.want {
				t.Errorf("round %d: %s holds %d objects (%v), want %d", round, tc.name, len(page.Entries), err, tc.want)
			}
		}
	}
}

// TestQueryObjectsInto checks that QueryObjectsInto returns what
// QueryObjects returns (entries, more, next; metadata only too; errors),
// in the array of the entries it is given when they have the room, in
// a new one when they have not, and that nothing of what the entries
// held before shows.
func TestQueryObjectsInto(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir())
	defer s.Close()
	var _ store.PageReader = s
	if err := s.CreateCollection(ctx, entente.Collection{ID: "c1", Title: "One"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddObjects(ctx, "c1", storetest.Indicators(t, 0, 30)); err != nil {
		t.Fatal(err)
	}
	stale := entente.ObjectEntry{ID: "indicator--stale", Raw: []byte(`{"stale":true}`)}
	for _, tc := range []struct {
		name string
		q    entente.ObjectQuery
		cap  int
	}{
		{"room", entente.ObjectQuery{Collection: "c1", Limit: 10}, 10},
		{"more room", entente.ObjectQuery{Collection: "c1", Limit: 10}, 50},
		{"too little room", entente.ObjectQuery{Collection: "c1", Limit: 25}, 4},
		{"all, metadata only", entente.ObjectQuery{Collection: "c1", Limit: 100, MetadataOnly: true}, 100},
		{"by type", entente.ObjectQuery{Collection: "c1", Limit: 100, Types: []string{"indicator"}}, 100},
		{"none", entente.ObjectQuery{Collection: "c1", Limit: 10, Types: []string{"malware"}}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := s.QueryObjects(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]entente.ObjectEntry, tc.cap)
			for i := range buf {
				buf[i] = stale
			}
			got, err := s.QueryObjectsInto(ctx, tc.q, buf[:3])
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("QueryObjectsInto differs from QueryObjects (-want +got):\n%s", diff)
			}
			inBuf := len(got.Entries) > 0 && &got.Entries[0] == &buf[0]
			if fits := len(want.Entries) <= tc.cap; len(got.Entries) > 0 && inBuf != fits {
				t.Errorf("%d entries in %d entries' room: read into the room given %v, want %v", len(got.Entries), tc.cap, inBuf, fits)
			}
		})
	}
	t.Run("unknown collection", func(t *testing.T) {
		_, want := s.QueryObjects(ctx, entente.ObjectQuery{Collection: "nope"})
		_, got := s.QueryObjectsInto(ctx, entente.ObjectQuery{Collection: "nope"}, make([]entente.ObjectEntry, 0, 8))
		if want == nil || got == nil || entente.ErrorCode(got) != entente.ErrorCode(want) {
			t.Errorf("unknown collection: %v, want %v", got, want)
		}
	})
}
