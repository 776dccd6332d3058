package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

// ownStore is what testOwn needs of a store.
type ownStore interface {
	store.Store
	store.AlertStore
	store.OwnAdder
}

// testOwn checks AddOwn: objects, status and alert states are written
// together, and nothing is written when the addition fails.
func testOwn(t *testing.T, open Opener) {
	s, ok := open(t).(ownStore)
	if !ok {
		t.Fatalf("the store does not implement store.OwnAdder and store.AlertStore")
	}
	newCollection(t, s, "alerts")
	at := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	status := func(out []entente.AddOutcome) []byte {
		b, _ := json.Marshal(map[string]int{"success_count": len(out)})
		return b
	}
	st := func(id, status string) store.AlertState {
		return store.AlertState{ID: id, Status: status, Updated: at, Body: json.RawMessage(`{"status":"` + status + `"}`)}
	}
	objs := Indicators(t, 0, 5)
	out, err := s.AddOwn(ctx(t), store.Own{Collection: "alerts", Objects: objs, StatusID: "status-own-1", Status: status,
		AlertStates: []store.AlertState{st("x-entente-alert--a", "new"), st("x-entente-alert--b", "new")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(objs) {
		t.Fatalf("%d outcomes for %d objects", len(out), len(objs))
	}
	if body, err := s.Status(ctx(t), "status-own-1"); err != nil || string(body) != `{"success_count":5}` {
		t.Errorf("status written with the objects: %s, %v", body, err)
	}
	for _, id := range []string{"x-entente-alert--a", "x-entente-alert--b"} {
		if got, err := s.AlertState(ctx(t), id); err != nil || got.Status != "new" {
			t.Errorf("alert state %s written with the objects: %+v, %v", id, got, err)
		}
	}
	page, err := s.QueryObjects(ctx(t), entente.ObjectQuery{Collection: "alerts", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != len(objs) {
		t.Errorf("%d objects stored, want %d", len(page.Entries), len(objs))
	}

	// States alone replace those held.
	if _, err := s.AddOwn(ctx(t), store.Own{AlertStates: []store.AlertState{st("x-entente-alert--a", "acknowledged")}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AlertState(ctx(t), "x-entente-alert--a"); err != nil || got.Status != "acknowledged" {
		t.Errorf("alert state replaced alone: %+v, %v", got, err)
	}

	// A failed addition writes nothing: no status, no state.
	_, err = s.AddOwn(ctx(t), store.Own{Collection: "nope", Objects: Indicators(t, 100, 3), StatusID: "status-own-2", Status: status,
		AlertStates: []store.AlertState{st("x-entente-alert--c", "new")}})
	if got := entente.ErrorCode(err); got != entente.ENOTFOUND {
		t.Fatalf("AddOwn to a missing collection: %v, want ENOTFOUND", err)
	}
	if _, err := s.Status(ctx(t), "status-own-2"); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Errorf("status of a failed addition: %v, want ENOTFOUND", err)
	}
	if _, err := s.AlertState(ctx(t), "x-entente-alert--c"); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Errorf("alert state of a failed addition: %v, want ENOTFOUND", err)
	}
	// An invalid state: EINVALID, and the objects are not stored.
	_, err = s.AddOwn(ctx(t), store.Own{Collection: "alerts", Objects: Indicators(t, 200, 3), AlertStates: []store.AlertState{{ID: "x-entente-alert--d"}}})
	if got := entente.ErrorCode(err); got != entente.EINVALID {
		t.Fatalf("AddOwn with a state without a body: %v, want EINVALID", err)
	}
	page, err = s.QueryObjects(ctx(t), entente.ObjectQuery{Collection: "alerts", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != len(objs) {
		t.Errorf("%d objects stored after an invalid addition, want %d", len(page.Entries), len(objs))
	}
}
