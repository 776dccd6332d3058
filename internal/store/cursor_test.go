package store

import (
	"math"
	"testing"
	"time"

	"github.com/entente-cti/entente"
)

func TestCursorRoundTrip(t *testing.T) {
	q := entente.ObjectQuery{Collection: "alias", Types: []string{"indicator", "malware"}, AddedAfter: time.Unix(5, 7)}
	for _, c := range []Cursor{{0, 0}, {1, 2}, {time.Now().UnixNano(), 1 << 40}, {math.MaxInt64, math.MaxInt64}, {-1, 3}} {
		s := EncodeCursor(c, "c1", q)
		got, err := DecodeCursor(s, "c1", q)
		if err != nil || got != c {
			t.Errorf("DecodeCursor(EncodeCursor(%+v)) = %+v, %v", c, got, err)
		}
		// Limit, Next and MetadataOnly are not bound; filter order is not.
		q2 := q
		q2.Limit, q2.Next, q2.MetadataOnly = 5, "x", true
		q2.Types = []string{"malware", "indicator"}
		if _, err := DecodeCursor(s, "c1", q2); err != nil {
			t.Errorf("cursor refused for the same filters: %v", err)
		}
	}
}

func TestCursorBinding(t *testing.T) {
	q := entente.ObjectQuery{Collection: "c1"}
	s := EncodeCursor(Cursor{10, 20}, "c1", q)
	others := map[string]entente.ObjectQuery{
		"ids":           {IDs: []string{"x"}},
		"types":         {Types: []string{"x"}},
		"spec versions": {SpecVersions: []string{"2.1"}},
		"added after":   {AddedAfter: time.Unix(1, 0)},
		"all":           {Versions: entente.VersionFilter{All: true}},
		"first":         {Versions: entente.VersionFilter{First: true}},
		"last":          {Versions: entente.VersionFilter{Last: true}},
		"at":            {Versions: entente.VersionFilter{At: []time.Time{time.Unix(1, 0)}}},
		// Field boundaries are unambiguous: one type "a,b" is not two.
		"joined values": {Types: []string{"ab"}},
	}
	for name, q2 := range others {
		if _, err := DecodeCursor(s, "c1", q2); entente.ErrorCode(err) != entente.EINVALID {
			t.Errorf("%s: cursor accepted for other filters (err %v)", name, err)
		}
	}
	if _, err := DecodeCursor(s, "c2", q); entente.ErrorCode(err) != entente.EINVALID {
		t.Errorf("cursor accepted for another collection (err %v)", err)
	}
	split := EncodeCursor(Cursor{10, 20}, "c1", entente.ObjectQuery{Types: []string{"a", "b"}})
	if _, err := DecodeCursor(split, "c1", entente.ObjectQuery{Types: []string{"ab"}}); err == nil {
		t.Error("cursor for types [a b] accepted for [ab]")
	}
}

func FuzzDecodeCursor(f *testing.F) {
	q := entente.ObjectQuery{Types: []string{"indicator"}}
	f.Add(EncodeCursor(Cursor{1, 2}, "c", q))
	f.Add(EncodeCursor(Cursor{math.MaxInt64, 0}, "c", q))
	f.Add("")
	f.Add("AAAA")
	f.Add("not base64 ***")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeCursor(s, "c", q)
		if err != nil {
			if entente.ErrorCode(err) != entente.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if again := EncodeCursor(c, "c", q); again != s {
			t.Fatalf("accepted %q, which re-encodes as %q", s, again)
		}
	})
}
