package ingest

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

// TestKeepCompleteBounds checks that the complete statuses kept stay
// within recentStatuses and recentDetails, the oldest forgotten first,
// and that a status too large to keep is not kept.
func TestKeepCompleteBounds(t *testing.T) {
	details := func(n int) []entente.StatusDetail {
		ds := make([]entente.StatusDetail, n)
		for i := range ds {
			ds[i] = entente.StatusDetail{ID: fmt.Sprintf("indicator--%d", i), Version: "2024-01-01T00:00:00.000Z"}
		}
		return ds
	}
	var ps pendingStatuses
	check := func(when string) {
		t.Helper()
		n := 0
		for _, id := range ps.order {
			st := ps.recent[id].Status
			n += len(st.Successes) + len(st.Failures) + len(st.Pendings)
		}
		if len(ps.recent) != len(ps.order) || n != ps.details || len(ps.order) > recentStatuses || ps.details > recentDetails {
			t.Fatalf("%s: %d kept, %d in order, %d details (counted %d)", when, len(ps.recent), len(ps.order), n, ps.details)
		}
	}
	for i := range recentStatuses + 10 {
		ps.keepComplete(fmt.Sprint(i), statusRecord{Owner: "k", Status: &entente.Status{ID: fmt.Sprint(i), Successes: details(1)}}, false)
	}
	check("by count")
	if _, ok := ps.recent["9"]; ok {
		t.Error("the oldest status is still kept past the count")
	}
	if _, ok := ps.recent[fmt.Sprint(recentStatuses+9)]; !ok {
		t.Error("the newest status is not kept")
	}
	ps.keepComplete("big", statusRecord{Owner: "k", Status: &entente.Status{ID: "big", Successes: details(recentDetails - 5), Failures: details(2)}}, false)
	check("by details")
	if _, ok := ps.recent["big"]; !ok || len(ps.recent) > 6 {
		t.Errorf("after a large status: %d kept, large kept %v", len(ps.recent), ok)
	}
	ps.keepComplete("huge", statusRecord{Owner: "k", Status: &entente.Status{ID: "huge", Successes: details(recentDetails + 1)}}, false)
	check("too large")
	if _, ok := ps.recent["huge"]; ok {
		t.Error("a status past recentDetails is kept")
	}
}

// TestStatusRecordJSON checks that a status record is stored as
// json.Marshal writes it, owner escapes and a missing status included.
func TestStatusRecordJSON(t *testing.T) {
	for _, r := range []statusRecord{
		{Owner: "key-1", Status: &entente.Status{ID: "s", Status: entente.StatusComplete, TotalCount: 1, SuccessCount: 1, Successes: []entente.StatusDetail{{ID: "indicator--1", Version: "2024-01-01T00:00:00.000Z"}}}},
		{Owner: `odd "<owner>"`, Status: &entente.Status{ID: "s", Status: entente.StatusPending}},
		{Owner: "k"},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.appendJSON(nil); string(got) != string(want) {
			t.Errorf("got %s\nwant %s", got, want)
		}
	}
}

// TestStoredAsValid checks when the writer may use the final status built
// beside validation: only when the outcome lists the valid objects in
// order, each with its own version.
func TestStoredAsValid(t *testing.T) {
	mk := func(id, modified string) *stix.Object {
		o, err := stix.Decode([]byte(`{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"2024-01-01T00:00:00.000Z","modified":"` + modified + `","pattern":"[ipv4-addr:value = '1.2.3.4']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}`))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	a := mk("indicator--00000000-0000-4000-8000-000000000001", "2024-01-02T00:00:00.000Z")
	b := mk("indicator--00000000-0000-4000-8000-000000000002", "2024-01-03T00:00:00.000Z")
	objs := []*stix.Object{a, b}
	as := outcomesOf(objs)
	other := outcomesOf([]*stix.Object{a, mk(b.ID, "2024-01-04T00:00:00.000Z")})
	swapped := outcomesOf([]*stix.Object{b, a})
	dup := outcomesOf(objs)
	dup[1].Duplicate = true
	for _, c := range []struct {
		name string
		out  []entente.AddOutcome
		want bool
	}{
		{"as built", as, true},
		{"a duplicate, same version", dup, true},
		{"another version stored", other, false},
		{"another order", swapped, false},
		{"one missing", as[:1], false},
		{"none", nil, false},
	} {
		if got := storedAsValid(c.out, objs); got != c.want {
			t.Errorf("%s: storedAsValid = %v, want %v", c.name, got, c.want)
		}
	}
	if !storedAsValid(nil, nil) {
		t.Error("no objects, no outcome: storedAsValid = false, want true")
	}
}
