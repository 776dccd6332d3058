package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

// RunAlerts checks that the stores open returns implement
// [store.AlertStore] as its documentation says. Each subtest opens a
// fresh, empty store.
func RunAlerts(t *testing.T, open Opener) {
	as := func(t *testing.T) store.AlertStore {
		t.Helper()
		s, ok := open(t).(store.AlertStore)
		if !ok {
			t.Fatalf("%T does not implement store.AlertStore", s)
		}
		return s
	}
	t.Run("PutGet", func(t *testing.T) { testAlertPutGet(t, as(t)) })
	t.Run("Invalid", func(t *testing.T) { testAlertInvalid(t, as(t)) })
	t.Run("Own", func(t *testing.T) { testOwn(t, open) })
}

func testAlertPutGet(t *testing.T, s store.AlertStore) {
	ctx := context.Background()
	if _, err := s.AlertState(ctx, "x-entente-alert--none"); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Fatalf("AlertState of a missing alert: %v, want ENOTFOUND", err)
	}
	if got, err := s.AlertStates(ctx); err != nil || len(got) != 0 {
		t.Fatalf("AlertStates of an empty store: %v, %v", got, err)
	}
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 123456789, time.UTC)
	a := store.AlertState{ID: "x-entente-alert--a", Status: "new", Updated: t0, Body: json.RawMessage(`{"status":"new"}`)}
	b := store.AlertState{ID: "x-entente-alert--b", Status: "new", Updated: t0.Add(time.Minute), Body: json.RawMessage(`{"status":"new"}`)}
	for _, st := range []store.AlertState{a, b} {
		if err := s.PutAlertState(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	a.Status, a.Updated, a.Body = "acknowledged", t0.Add(2*time.Minute), json.RawMessage(`{"status":"acknowledged"}`)
	if err := s.PutAlertState(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.AlertState(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(normState(a), normState(got)); diff != "" {
		t.Errorf("AlertState after replace (-want +got):\n%s", diff)
	}
	all, err := s.AlertStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, st := range all {
		ids = append(ids, st.ID)
	}
	if diff := cmp.Diff([]string{a.ID, b.ID}, ids); diff != "" {
		t.Errorf("AlertStates order, most recent first (-want +got):\n%s", diff)
	}
}

func testAlertInvalid(t *testing.T, s store.AlertStore) {
	ctx := context.Background()
	for _, st := range []store.AlertState{
		{Status: "new", Body: json.RawMessage(`{}`)},
		{ID: "x-entente-alert--a", Status: "new"},
	} {
		if err := s.PutAlertState(ctx, st); entente.ErrorCode(err) != entente.EINVALID {
			t.Errorf("PutAlertState(%+v): %v, want EINVALID", st, err)
		}
	}
}

// normState makes a state comparable across backends: the body as
// canonical JSON (PostgreSQL's jsonb reformats it), the time in UTC.
func normState(st store.AlertState) store.AlertState {
	var v any
	if json.Unmarshal(st.Body, &v) == nil {
		st.Body, _ = json.Marshal(v)
	}
	st.Updated = st.Updated.UTC()
	return st
}
