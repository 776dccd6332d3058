package ingest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
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

// TestStatusRecord checks that a status record reads back as it was,
// whatever its strings (ids that are not STIX ids or whose UUID is not in
// canonical lowercase form, escapes, messages, versions of any precision,
// empty and missing lists, a missing status), that the compact encoding
// is what a complete status of 100 new objects is stored in (smaller than
// a third of its JSON), and that a record the node stored in JSON still
// reads.
func TestStatusRecord(t *testing.T) {
	hundred := make([]entente.StatusDetail, 100)
	for i := range hundred {
		hundred[i] = entente.StatusDetail{ID: fmt.Sprintf("indicator--%08x-940e-4ea9-8fa4-d349c9c45c27", i*7919), Version: fmt.Sprintf("2024-01-01T00:00:%02d.%03dZ", i/10, i*37%1000)}
	}
	for _, tc := range []struct {
		name string
		rec  statusRecord
	}{
		{"complete, 100 successes", statusRecord{Owner: "key-1", Status: &entente.Status{ID: "d92b6fa8-8062-454d-8bbb-b373be576d1d", Status: entente.StatusComplete,
			RequestTimestamp: "2026-12-07T11:59:09.180917030Z", TotalCount: 100, SuccessCount: 100, Successes: hundred}}},
		{"failures and pendings", statusRecord{Owner: `odd "<owner>"`, Status: &entente.Status{ID: "s", Status: entente.StatusPending, TotalCount: 5, FailureCount: 2, PendingCount: 3,
			Failures: []entente.StatusDetail{
				{ID: "indicator--8E1D4E99-1CFB-43CB-A70C-96E6C38821A1", Version: "2024-01-01T00:00:00Z", Message: "object 0: pattern: expected ']' at column 12"},
				{ID: "", Message: "object 1: not JSON: ünïcödé \"quoted\""},
			},
			Pendings: []entente.StatusDetail{
				{ID: "indicator--8e1d4e99-1cfb-43cb-a70c-96e6c38821a1", Version: "2024-01-01T00:00:00.123456789Z"},
				{ID: "indicator--8e1d4e99-1cfb-43cb-a70c-96e6c38821a1", Version: "2024-01-01T00:00:00.123456789Z"},
				{ID: "x-custom--not-a-uuid-at-all-but-36-characters!", Version: "2024"},
			}}}},
		{"empty lists", statusRecord{Owner: "k", Status: &entente.Status{ID: "s", Status: entente.StatusComplete, Successes: []entente.StatusDetail{}}}},
		{"no status", statusRecord{Owner: "k"}},
		{"empty", statusRecord{}},
	} {
		b := tc.rec.appendRecord(nil)
		got, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		// Empty lists read back as JSON's omitted ones: compare as JSON.
		want, _ := json.Marshal(tc.rec)
		if gotJSON, _ := json.Marshal(got); string(gotJSON) != string(want) {
			t.Errorf("%s: read back\n%s\nwant\n%s", tc.name, gotJSON, want)
		}
		fromJSON, err := decodeRecord(want)
		if err != nil {
			t.Fatalf("%s: the JSON record: %v", tc.name, err)
		}
		if gotJSON, _ := json.Marshal(fromJSON); string(gotJSON) != string(want) {
			t.Errorf("%s: the JSON record read back\n%s\nwant\n%s", tc.name, gotJSON, want)
		}
		if tc.name == "complete, 100 successes" && 3*len(b) > len(want) {
			t.Errorf("%s: %d bytes compact against %d in JSON", tc.name, len(b), len(want))
		}
		if owner, st, err := DecodeStatusRecord(b); err != nil || owner != tc.rec.Owner || (st == nil) != (tc.rec.Status == nil) {
			t.Errorf("%s: DecodeStatusRecord = %q, %v, %v", tc.name, owner, st, err)
		}
	}
}

// TestStatusRecordCorrupt checks that bytes that are not a whole record
// (each prefix of one, one with bytes after its end, lengths past its end)
// are an error, never a panic nor a wrong status.
func TestStatusRecordCorrupt(t *testing.T) {
	rec := statusRecord{Owner: "key-1", Status: &entente.Status{ID: "s", Status: entente.StatusComplete, TotalCount: 2, SuccessCount: 2,
		Successes: []entente.StatusDetail{{ID: "indicator--8e1d4e99-1cfb-43cb-a70c-96e6c38821a1", Version: "2024-01-01T00:00:00.400Z"},
			{ID: "indicator--7d99d88e-940e-4ea9-8fa4-d349c9c45c27", Version: "2024-01-01T00:00:00.401Z"}}}}
	b := rec.appendRecord(nil)
	for n := 1; n < len(b); n++ {
		if _, err := decodeRecord(b[:n]); err == nil {
			t.Errorf("the first %d of %d bytes read as a record", n, len(b))
		}
	}
	if _, err := decodeRecord(append(slices.Clone(b), 0)); err == nil {
		t.Error("a record with a byte after its end read")
	}
	for _, bad := range [][]byte{
		{recordCompact, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},                // an owner longer than the record
		{recordCompact, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x03},    // more successes than bytes
		{recordCompact, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5, 0, 0, 0, 0, 0}, // a shared prefix longer than the string before
		{recordCompact, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5, 0, 0, 0, 0}, // a packed UUID of a wrong length
		{recordCompact},
		{},
		[]byte("{not json"),
	} {
		if _, err := decodeRecord(bad); err == nil {
			t.Errorf("% x read as a record", bad)
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

// TestStatusRecordRandom checks that records of random details (ids that
// are STIX ids or not, UUIDs in any case, arbitrary bytes) read back
// exactly.
func TestStatusRecordRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		switch r.IntN(4) {
		case 0:
			return fmt.Sprintf("indicator--%08x-%04x-4%03x-8%03x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Uint64()>>16)
		case 1:
			return fmt.Sprintf("x--%08X-%04x-4%03x-8%03x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Uint64()>>16)
		case 2:
			return fmt.Sprintf("2024-01-%02dT00:00:00.%03dZ", 1+r.IntN(28), r.IntN(1000))
		}
		b := make([]byte, r.IntN(50))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return string(b)
	}
	details := func() []entente.StatusDetail {
		ds := make([]entente.StatusDetail, 1+r.IntN(20))
		for i := range ds {
			ds[i] = entente.StatusDetail{ID: str(), Version: str(), Message: str()}
		}
		return ds
	}
	for range 300 {
		rec := statusRecord{Owner: str(), Status: &entente.Status{ID: str(), Status: str(), RequestTimestamp: str(), TotalCount: r.IntN(1000),
			SuccessCount: r.IntN(1000), FailureCount: r.IntN(1000), PendingCount: r.IntN(1000), Successes: details(), Failures: details(), Pendings: details()}}
		got, err := decodeRecord(rec.appendRecord(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, rec) {
			t.Fatalf("read back %+v\nwant %+v", got.Status, rec.Status)
		}
	}
}

// TestStatusRecordBomb checks that a corrupt record whose details repeat
// a long string from a few bytes each is refused, not decoded to
// gigabytes.
func TestStatusRecordBomb(t *testing.T) {
	long := strings.Repeat("m", 1<<16)
	b := []byte{recordCompact, 1, 0, 0, 0, 0, 0, 0, 0, 0} // no status strings, counts 0
	const n = 1 << 16
	b = binary.AppendUvarint(b, n) // successes
	// The first detail: id "", version "", the long message.
	b = append(b, 0, 0, 0, 0, 0)
	b = binary.AppendUvarint(b, uint64(len(long))<<1)
	b = append(b, long...)
	for i := 1; i < n; i++ { // each further detail repeats it in 6 bytes
		b = append(b, 0, 0, 0, 0)
		b = binary.AppendUvarint(b, uint64(len(long)))
		b = append(b, 0)
	}
	b = append(b, 0, 0) // no failures, no pendings
	_, err := decodeRecord(b)
	if err == nil || !strings.Contains(err.Error(), "more than its size allows") {
		t.Fatalf("a record of %d bytes repeating a 64 KiB message %d times: err %v, want the size bound", len(b), n, err)
	}
}

// FuzzStatusRecord checks that any bytes either decode to a record that
// encodes back to a record reading the same, or give an error; never a
// panic. The seeds are records of the tests above and corruptions.
func FuzzStatusRecord(f *testing.F) {
	f.Add(statusRecord{Owner: "key-1", Status: &entente.Status{ID: "s", Status: entente.StatusComplete, TotalCount: 2, SuccessCount: 2,
		Successes: []entente.StatusDetail{{ID: "indicator--8e1d4e99-1cfb-43cb-a70c-96e6c38821a1", Version: "2024-01-01T00:00:00.400Z"},
			{ID: "indicator--7d99d88e-940e-4ea9-8fa4-d349c9c45c27", Version: "2024-01-01T00:00:00.401Z"}}}}.appendRecord(nil))
	f.Add(statusRecord{Owner: "k", Status: &entente.Status{ID: "s", Status: entente.StatusPending, TotalCount: 1, FailureCount: 1,
		Failures: []entente.StatusDetail{{Message: "object 0: pattern: expected ']' at column 12"}}}}.appendRecord(nil))
	f.Add([]byte{recordCompact, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5, 0, 0, 0, 0})
	f.Add([]byte(`{"Owner":"k","Status":{"id":"s","status":"complete"}}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(rec.appendRecord(nil))
		if err != nil {
			t.Fatalf("a decoded record does not read back: %v", err)
		}
		x, _ := json.Marshal(rec)
		y, _ := json.Marshal(again)
		if string(x) != string(y) {
			t.Fatalf("read back differs:\n%s\n%s", x, y)
		}
	})
}
