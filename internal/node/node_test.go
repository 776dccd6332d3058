package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/federation"
	"github.com/entente-cti/entente/internal/feedfetch"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/taxii"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

const org = "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01"

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newService(t *testing.T) (*node.Service, *sqlite.Store, *clock) {
	t.Helper()
	return newServiceDial(t, dial)
}

// newServiceDial is newService with a way of reaching peers of its own.
func newServiceDial(t *testing.T, dial federation.Dialer) (*node.Service, *sqlite.Store, *clock) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return node.New(st, node.Config{Org: org, KeyCacheTTL: 10 * time.Second, Now: c.now, Dial: dial, FetchFeed: feedfetch.Fetch}, nil), st, c
}

var admin = node.LocalAdmin(org)

func key(t *testing.T, s *node.Service, role entente.Role) (string, entente.Principal) {
	t.Helper()
	secret, k, err := s.CreateKey(context.Background(), admin, node.NewKey{Name: "k", Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return secret, entente.Principal{KeyID: k.ID, Org: k.Org, Role: k.Role}
}

func wantCode(t *testing.T, err error, code entente.Code) {
	t.Helper()
	if got := entente.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func TestAuthenticate(t *testing.T) {
	s, st, clk := newService(t)
	ctx := context.Background()
	secret, p := key(t, s, entente.RoleSensor)
	got, err := s.Authenticate(ctx, secret)
	if err != nil || got != p {
		t.Fatalf("Authenticate = %+v, %v; want %+v", got, err, p)
	}
	for _, bad := range []string{"", "ent_x_y", secret + "x"} {
		_, err := s.Authenticate(ctx, bad)
		wantCode(t, err, entente.EUNAUTHORIZED)
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("error %q shows the key", err)
		}
	}
	// Revoked through the service: refused at once.
	if err := s.RevokeKey(ctx, admin, p.KeyID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Authenticate(ctx, secret)
	wantCode(t, err, entente.EUNAUTHORIZED)

	// Revoked behind the service's back (another replica): refused once
	// the cached lookup expires.
	secret2, p2 := key(t, s, entente.RoleAnalyst)
	if _, err := s.Authenticate(ctx, secret2); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeKey(ctx, p2.KeyID, clk.now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret2); err != nil {
		t.Fatalf("within the cache TTL: %v", err)
	}
	clk.add(11 * time.Second)
	_, err = s.Authenticate(ctx, secret2)
	wantCode(t, err, entente.EUNAUTHORIZED)
}

func TestKeysAdminOnly(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	_, analyst := key(t, s, entente.RoleAnalyst)
	_, _, err := s.CreateKey(ctx, analyst, node.NewKey{Role: entente.RoleAdmin})
	wantCode(t, err, entente.EFORBIDDEN)
	_, err = s.Keys(ctx, analyst)
	wantCode(t, err, entente.EFORBIDDEN)
	wantCode(t, s.RevokeKey(ctx, analyst, analyst.KeyID), entente.EFORBIDDEN)
	_, _, err = s.CreateKey(ctx, admin, node.NewKey{Role: "root"})
	wantCode(t, err, entente.EINVALID)
	_, _, err = s.CreateKey(ctx, admin, node.NewKey{Role: entente.RolePartner, Org: "ACME"})
	wantCode(t, err, entente.EINVALID)
	wantCode(t, s.RevokeKey(ctx, admin, "nope"), entente.ENOTFOUND)
	ks, err := s.Keys(ctx, admin)
	if err != nil || len(ks) != 1 || ks[0].Org != org || ks[0].Role != entente.RoleAnalyst {
		t.Errorf("Keys = %+v, %v", ks, err)
	}
}

func TestCreateCollection(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	c, err := s.CreateCollection(ctx, admin, entente.Collection{Title: "T", Alias: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ID) != 36 || c.ReadRoles[0] != entente.RoleAnalyst || c.WriteRoles[0] != entente.RoleAnalyst || c.Created.IsZero() {
		t.Errorf("defaults not applied: %+v", c)
	}
	tests := []struct {
		c    entente.Collection
		code entente.Code
	}{
		{entente.Collection{}, entente.EINVALID},
		{entente.Collection{Title: "x", ID: "not-a-uuid"}, entente.EINVALID},
		{entente.Collection{Title: "x", Alias: "Has Space"}, entente.EINVALID},
		{entente.Collection{Title: "x", Alias: "8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}, entente.EINVALID},
		{entente.Collection{Title: "x", ReadRoles: []entente.Role{"guest"}}, entente.EINVALID},
		{entente.Collection{Title: "x", Alias: "t"}, entente.ECONFLICT},
		{entente.Collection{Title: "x", ID: c.ID}, entente.ECONFLICT},
	}
	for _, tt := range tests {
		_, err := s.CreateCollection(ctx, admin, tt.c)
		wantCode(t, err, tt.code)
	}
	_, analyst := key(t, s, entente.RoleAnalyst)
	_, err = s.CreateCollection(ctx, analyst, entente.Collection{Title: "x"})
	wantCode(t, err, entente.EFORBIDDEN)
	_, err = s.AllCollections(ctx, analyst)
	wantCode(t, err, entente.EFORBIDDEN)
}

func indicator(n int, modified string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-%012x",`+
		`"created":"2024-01-01T00:00:00.000Z","modified":%q,"pattern":"[ipv4-addr:value = '198.51.100.1']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}`, n, modified))
}

func TestAddObjectsAndStatus(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	// CLEAR by default: the partner, which has no agreement, may read it.
	c, err := s.CreateCollection(ctx, admin, entente.Collection{Title: "T", DefaultMarking: stix.TLPClear.MarkingID(),
		ReadRoles: []entente.Role{entente.RoleAnalyst, entente.RolePartner}, WriteRoles: []entente.Role{entente.RoleSensor}})
	if err != nil {
		t.Fatal(err)
	}
	_, sensor := key(t, s, entente.RoleSensor)
	_, partner := key(t, s, entente.RolePartner)
	_, sensor2 := key(t, s, entente.RoleSensor)

	_, err = s.AddObjects(ctx, partner, c.ID, []json.RawMessage{indicator(1, "2024-01-01T00:00:00.000Z")})
	wantCode(t, err, entente.EFORBIDDEN)
	_, err = s.AddObjects(ctx, sensor, "nope", nil)
	wantCode(t, err, entente.ENOTFOUND)
	wantCode(t, s.CheckWrite(ctx, partner, c.ID), entente.EFORBIDDEN)
	if err := s.CheckWrite(ctx, sensor, c.ID); err != nil {
		t.Fatal(err)
	}

	// All invalid: a status, nothing stored.
	st, err := s.AddObjects(ctx, sensor, c.ID, []json.RawMessage{json.RawMessage(`{"type":"indicator"}`), json.RawMessage(`[]`)})
	if err != nil || st.FailureCount != 2 || st.SuccessCount != 0 || st.Status != taxii.StatusComplete {
		t.Fatalf("AddObjects = %+v, %v", st, err)
	}
	page, err := s.Objects(ctx, partner, c.ID, entente.ObjectQuery{})
	if err != nil || len(page.Entries) != 0 {
		t.Fatalf("Objects = %+v, %v", page, err)
	}

	st, err = s.AddObjects(ctx, sensor, c.ID, []json.RawMessage{indicator(1, "2024-01-01T00:00:00.000Z"), indicator(1, "2024-02-01T00:00:00.500Z")})
	if err != nil || st.SuccessCount != 2 || st.Successes[1].Version != "2024-02-01T00:00:00.500Z" {
		t.Fatalf("AddObjects = %+v, %v", st, err)
	}
	// The sensor may write but not read.
	_, err = s.Objects(ctx, sensor, c.ID, entente.ObjectQuery{})
	wantCode(t, err, entente.EFORBIDDEN)
	page, err = s.Objects(ctx, partner, c.ID, entente.ObjectQuery{})
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("latest versions: %+v, %v", page, err)
	}
	// The status: its creator and admins only.
	if got, err := s.Status(ctx, sensor, st.ID); err != nil || got.ID != st.ID || got.SuccessCount != 2 {
		t.Errorf("Status by creator = %+v, %v", got, err)
	}
	if _, err := s.Status(ctx, admin, st.ID); err != nil {
		t.Errorf("Status by admin: %v", err)
	}
	_, err = s.Status(ctx, sensor2, st.ID)
	wantCode(t, err, entente.ENOTFOUND)

	// Delete without match[version] removes every version.
	wantCode(t, s.DeleteObject(ctx, partner, c.ID, "indicator--8e2e2d2b-17d4-4cbf-938f-000000000001", entente.VersionFilter{}, nil), entente.EFORBIDDEN)
	if err := s.DeleteObject(ctx, sensor, c.ID, "indicator--8e2e2d2b-17d4-4cbf-938f-000000000001", entente.VersionFilter{}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = s.Versions(ctx, partner, c.ID, "indicator--8e2e2d2b-17d4-4cbf-938f-000000000001", entente.ObjectQuery{})
	wantCode(t, err, entente.ENOTFOUND)

	if err := s.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

func TestDateAddedRange(t *testing.T) {
	a := time.Date(2024, 1, 1, 0, 0, 0, 1, time.UTC)
	b := a.Add(time.Second)
	if _, _, ok := node.DateAddedRange(entente.Page{}); ok {
		t.Error("range of an empty page")
	}
	first, last, ok := node.DateAddedRange(entente.Page{Entries: []entente.ObjectEntry{{DateAdded: b}, {DateAdded: a}, {DateAdded: b}}})
	if !ok || !first.Equal(a) || !last.Equal(b) {
		t.Errorf("range = %v, %v", first, last)
	}
}

// dial reaches peers over TAXII, as cmd/entente wires it.
var dial = taxiiclient.Dialer(nil, taxiiclient.Limits{})
