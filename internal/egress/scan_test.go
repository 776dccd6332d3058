package egress

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/testutil"
)

// checkScan compares what scanGateMeta reads of raw with the full
// decoder's reading, when both read it.
func checkScan(t *testing.T, raw []byte) (scanned bool) {
	t.Helper()
	m, ok := scanGateMeta(raw)
	if !ok {
		return false
	}
	o, err := stix.Decode(raw)
	if err != nil {
		return true // not an object the store holds
	}
	want := gateMeta{markingRefs: o.MarkingRefs, createdByRef: o.CreatedByRef}
	if diff := cmp.Diff(want, m, cmp.AllowUnexported(gateMeta{}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("scan of %.200s (-decode +scan):\n%s", raw, diff)
	}
	return true
}

// TestScanGateMetaATTACK checks the scan against the decoder on every
// object of the MITRE ATT&CK for ICS bundle (which marks and attributes
// its objects).
func TestScanGateMetaATTACK(t *testing.T) {
	data, err := os.ReadFile(testutil.SharedData(t, "attack", "ics-attack-18.1.json"))
	if err != nil {
		t.Fatal(err)
	}
	n, scanned := 0, 0
	var c refCache // shared by all objects, as by a page's
	err = stix.ScanBundle(data, func(_ int, raw json.RawMessage) error {
		n++
		if checkScan(t, raw) {
			scanned++
		}
		want, wok := scanGateMeta(raw)
		got, ok := c.scan(raw)
		if ok != wok || !cmp.Equal(want, got, cmp.AllowUnexported(gateMeta{}), cmpopts.EquateEmpty()) {
			t.Errorf("cached scan of %.200s: %+v, want %+v", raw, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || scanned == 0 {
		t.Fatalf("%d objects, %d scanned: the scan was not exercised", n, scanned)
	}
	if len(c.arrays) == 0 || len(c.strings) == 0 {
		t.Error("the cache kept nothing")
	}
	t.Logf("%d of %d objects scanned, the rest decoded", scanned, n)
}

func TestScanGateMeta(t *testing.T) {
	red := stix.TLPRed.MarkingID()
	tests := []struct {
		name string
		raw  string
		ok   bool
		want gateMeta
	}{
		{"marked and attributed", `{"type":"indicator","id":"indicator--1","created_by_ref":"identity--a","object_marking_refs":["` + red + `", "marking-definition--x"]}`,
			true, gateMeta{markingRefs: []string{red, "marking-definition--x"}, createdByRef: "identity--a"}},
		{"spaces", "{ \"object_marking_refs\" :\n [ \"" + red + "\" ] ,\"created_by_ref\" : \"identity--a\" }", true, gateMeta{markingRefs: []string{red}, createdByRef: "identity--a"}},
		{"none", `{"type":"indicator","pattern":"[ipv4-addr:value = '1.2.3.4']"}`, true, gateMeta{}},
		{"nested names are not the object's", `{"extensions":{"x":{"object_marking_refs":["` + red + `"],"created_by_ref":"identity--b"}},"labels":["object_marking_refs"],"description":"created_by_ref"}`, true, gateMeta{}},
		{"a value that looks like a name", `{"name":"object_marking_refs","x":["a","object_marking_refs"]}`, true, gateMeta{}},
		{"escaped name", `{"object\u005fmarking_refs":["` + red + `"]}`, false, gateMeta{}},
		{"escape anywhere", `{"description":"a \"quote\"","object_marking_refs":["` + red + `"]}`, false, gateMeta{}},
		{"twice", `{"object_marking_refs":[],"object_marking_refs":["` + red + `"]}`, false, gateMeta{}},
		{"not an array", `{"object_marking_refs":"` + red + `"}`, false, gateMeta{}},
		{"not strings", `{"object_marking_refs":[1]}`, false, gateMeta{}},
		{"creator not a string", `{"created_by_ref":1}`, false, gateMeta{}},
		{"truncated", `{"object_marking_refs":["` + red, false, gateMeta{}},
		{"unbalanced", `{"a":{"b":1}`, false, gateMeta{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := scanGateMeta([]byte(tt.raw))
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok {
				if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(gateMeta{}), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				checkScan(t, []byte(tt.raw))
			}
		})
	}
}

// FuzzScanGateMeta checks that the scan never panics and never reads
// markings or a creator other than the decoder's.
func FuzzScanGateMeta(f *testing.F) {
	f.Add([]byte(`{"type":"indicator","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created_by_ref":"identity--a","object_marking_refs":["marking-definition--x"],"spec_version":"2.1","created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"extensions":{"x":{"object_marking_refs":["m"]}},"object_marking_refs":[]}`))
	f.Add([]byte(`{"a":[{"created_by_ref":"x"}],"created_by_ref":"y"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkScan(t, raw)
	})
}

// BenchmarkScanGateMeta reads the gate's fields of a typical indicator.
func BenchmarkScanGateMeta(b *testing.B) {
	raw := []byte(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-000000000001",` +
		`"created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.0.1']",` +
		`"pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z","created_by_ref":"identity--8e2e2d2b-17d4-4cbf-938f-000000000001","object_marking_refs":["` + stix.TLPGreen.MarkingID() + `"]}`)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var c refCache
	for b.Loop() {
		if m, ok := c.scan(raw); !ok || len(m.markingRefs) != 1 {
			b.Fatal("not scanned")
		}
	}
}
