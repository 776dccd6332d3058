package store

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
	idx := ReleaseIndex(vs)
	if len(idx) > AuditObjectBuckets {
		t.Fatalf("%d index rows, more than %d buckets", len(idx), AuditObjectBuckets)
	}
	n := 0
	for _, r := range idx {
		n += len(r.Hashes) / 4
	}
	if n < 1999 || n > 2000 { // two objects of a bucket may share their upper 32 bits
		t.Errorf("index lists %d hashes, want one per distinct object (2000)", n)
	}
	for _, id := range []string{vs[0].ObjectID, vs[1999].ObjectID} {
		b, h := ObjectBucket(id)
		found := false
		for _, r := range idx {
			if r.Bucket == b {
				for i := 0; i < len(r.Hashes); i += 4 {
					found = found || bytes.Equal(r.Hashes[i:i+4], h)
				}
			}
		}
		if !found || uint64(binary.BigEndian.Uint32(h)) != ObjectHash(id)>>32 {
			t.Errorf("object %s not in its bucket %d", id, b)
		}
	}
}

func TestAuditCursor(t *testing.T) {
	for _, bad := range []string{"bogus", "a", "a-5", "b12"} {
		if _, err := ParseAuditCursor(bad); err == nil {
			t.Errorf("cursor %q accepted", bad)
		}
	}
	seq := AuditSeq(42, 7)
	got, err := ParseAuditCursor(AuditCursor(seq))
	if err != nil || got != seq || got>>AuditSeqShift != 42 {
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
