package audit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestPackRelease(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		vs   []ReleasedVersion
	}{
		{"one", []ReleasedVersion{{ObjectID: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", Version: at, Rule: "agreement"}}},
		{"ids kept verbatim", []ReleasedVersion{
			{ObjectID: "indicator--8E2E2D2B-17D4-4CBF-938F-98EE46B3CD3F", Version: at, Rule: "agreement"},
			{ObjectID: "x-custom--not-a-uuid", Version: at.Add(-time.Hour), Rule: "tlp", Detail: "redaction of x"},
			{ObjectID: "--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", Rule: "agreement"},
			{ObjectID: "a--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3g", Version: at, Rule: ""},
			{ObjectID: "location--8e2e2d2b_17d4-4cbf-938f-98ee46b3cd3f", Version: time.Unix(0, 1).UTC(), Rule: "agreement", Detail: "redaction of x"},
		}},
		{"many", func() []ReleasedVersion {
			var vs []ReleasedVersion
			for i := range 1000 {
				vs = append(vs, ReleasedVersion{ObjectID: fmt.Sprintf("indicator--8e2e2d2b-17d4-4cbf-938f-%012x", i), Version: at.Add(time.Duration(i%7) * time.Second), Rule: "agreement"})
			}
			return vs
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := PackRelease(tt.vs)
			got, err := UnpackRelease(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.vs, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if len(tt.vs) == 1000 && len(b) > 26*len(tt.vs) {
				t.Errorf("%d versions packed in %d bytes: not compact", len(tt.vs), len(b))
			}
		})
	}
}

func TestReleaseIndex(t *testing.T) {
	var vs []ReleasedVersion
	for i := range 3000 {
		vs = append(vs, ReleasedVersion{ObjectID: fmt.Sprintf("indicator--8e2e2d2b-17d4-4cbf-938f-%012x", i%2000)})
	}
	vs = append(vs, ReleasedVersion{ObjectID: "x-custom--not-a-uuid"}, ReleasedVersion{ObjectID: "malware--8e2e2d2b-17d4-4cbf-938f-000000000000"})
	idx := ReleaseIndex(vs)
	if len(idx) > Buckets {
		t.Fatalf("%d index rows, more than %d buckets", len(idx), Buckets)
	}
	n := 0
	for _, r := range idx {
		if r.Bucket < Buckets || r.Bucket >= 2*Buckets {
			t.Errorf("index row in bucket %d, outside the current generation", r.Bucket)
		}
		n += len(r.Hashes) / 4
	}
	if n != len(vs) {
		t.Errorf("index lists %d hashes, want one per version (%d)", n, len(vs))
	}
	// Sequential UUIDs spread over the buckets like random ones.
	if len(idx) < Buckets {
		t.Errorf("3,000 versions fill %d of %d buckets", len(idx), Buckets)
	}
	for _, id := range []string{vs[0].ObjectID, vs[1999].ObjectID, "x-custom--not-a-uuid", "malware--8e2e2d2b-17d4-4cbf-938f-000000000000"} {
		bk := ObjectBuckets(id)[0]
		found := false
		for _, r := range idx {
			if r.Bucket == bk.Bucket {
				for i := 0; i < len(r.Hashes); i += 4 {
					found = found || bytes.Equal(r.Hashes[i:i+4], bk.Key)
				}
			}
		}
		if !found || uint64(binary.BigEndian.Uint32(bk.Key)) != IndexHash(id)>>32 {
			t.Errorf("object %s not in its bucket %d", id, bk.Bucket)
		}
	}
	// The same UUID under another type hashes differently.
	if IndexHash(vs[0].ObjectID) == IndexHash("malware"+vs[0].ObjectID[len("indicator"):]) {
		t.Error("the type does not enter the index hash")
	}
	// The first generation stays where older releases put it.
	if old := ObjectBuckets(vs[0].ObjectID)[1]; old.Bucket != int(ObjectHash(vs[0].ObjectID)%Buckets) {
		t.Errorf("first-generation bucket %d", old.Bucket)
	}
}

func TestReleasePack(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := Release{Time: at, Actor: "k", Partner: "p", Versions: []ReleasedVersion{
		{ObjectID: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", Version: at, Rule: "agreement"},
		{ObjectID: "x-custom--not-a-uuid", Rule: "agreement"},
	}}
	b, idx, err := r.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, PackRelease(r.Versions)) {
		t.Error("Pack and PackRelease disagree")
	}
	if diff := cmp.Diff(ReleaseIndex(r.Versions), idx); diff != "" {
		t.Errorf("index (-ReleaseIndex +Pack):\n%s", diff)
	}
	for _, bad := range []Release{
		{Time: at, Partner: "p"},
		{Partner: "p", Versions: r.Versions},
		{Time: at, Partner: "p", Versions: []ReleasedVersion{r.Versions[0], {Rule: "no id"}}},
		{Time: at, Partner: "p", Versions: []ReleasedVersion{{ObjectID: "x", Version: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}}},
	} {
		if _, _, err := bad.Pack(); err == nil || bad.Validate() == nil {
			t.Errorf("release %+v packed", bad)
		}
	}
}

func TestAuditCursor(t *testing.T) {
	for _, bad := range []string{"bogus", "a", "a-5", "b12"} {
		if _, err := ParseCursor(bad); err == nil {
			t.Errorf("cursor %q accepted", bad)
		}
	}
	seq := Seq(42, 7)
	got, err := ParseCursor(Cursor(seq))
	if err != nil || got != seq || got>>SeqShift != 42 {
		t.Errorf("cursor of %d read as %d, %v", seq, got, err)
	}
}

// FuzzUnpackRelease checks that corrupt packed releases give an error,
// never a panic, and that what decodes packs back to what decodes the
// same.
func FuzzUnpackRelease(f *testing.F) {
	f.Add(PackRelease([]ReleasedVersion{{ObjectID: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", Version: time.Unix(1, 2), Rule: "r", Detail: "d"}, {ObjectID: "x"}}))
	f.Add([]byte("R1"))
	f.Add([]byte("R1\x01\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		vs, err := UnpackRelease(b)
		if err != nil {
			return
		}
		again, err := UnpackRelease(PackRelease(vs))
		if err != nil {
			t.Fatalf("repacked release does not decode: %v", err)
		}
		if diff := cmp.Diff(vs, again, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("repack (-first +second):\n%s", diff)
		}
	})
}
