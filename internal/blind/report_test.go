package blind

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/stix/schema"
)

// TestSightingsBundle: a hit resolved to a released indicator is a
// sighting of it, the indicator in the bundle; others are sightings of a
// stub indicator of the reporting organisation's own, whose pattern holds
// only the observed values and matches them; every object validates
// against the STIX schemas and through this node's validation.
func TestSightingsBundle(t *testing.T) {
	const me, partner = "identity--5e1f0000-0000-4000-8000-0000000000b0", "identity--5e1f0000-0000-4000-8000-0000000000a0"
	released := json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"indicator--5e1f0000-0000-4000-8000-00000000000f","created":"2026-05-01T00:00:00.000Z","modified":"2026-05-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '100.64.7.7']","pattern_type":"stix","valid_from":"2026-05-01T00:00:00Z"}`)
	t0 := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	hits := []Hit{
		{Ref: Ref{Epoch: 20605, Key: 0xabc}, Count: 3, FirstSeen: t0, LastSeen: t0.Add(time.Hour), Observed: []string{"198.51.100.7", "198.51.100.9"}},
		{Ref: Ref{Epoch: 20605, Key: 0xdef}, Count: 1, FirstSeen: t0, LastSeen: t0, Observed: []string{"www.evil.example.org"}},
		{Ref: Ref{Epoch: 20605, Key: 0x123}, Count: 2, FirstSeen: t0.Add(time.Hour), LastSeen: t0, Observed: []string{"100.64.7.7"}, Released: []json.RawMessage{released}},
	}
	b, err := SightingsBundle(hits, me, partner, t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct{ Objects []json.RawMessage }
	if err := json.Unmarshal(b, &bundle); err != nil {
		t.Fatal(err)
	}
	objs := map[string]map[string]any{}
	var sightings []map[string]any
	for _, raw := range bundle.Objects {
		schema.Check(t, raw)
		o, err := stix.Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if err := stix.Validate(o); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		var m map[string]any
		json.Unmarshal(raw, &m)
		objs[o.ID] = m
		if o.Type == "sighting" {
			sightings = append(sightings, m)
		}
	}
	if len(sightings) != 3 || len(objs) != 6 {
		t.Fatalf("%d sightings, %d objects", len(sightings), len(objs))
	}
	for i, s := range sightings {
		of := objs[s["sighting_of_ref"].(string)]
		if of == nil || s[BlindRefProperty] != hits[i].Ref.String() || s["count"] != float64(hits[i].Count) {
			t.Fatalf("sighting %d: %v", i, s)
		}
		if s["first_seen"].(string) > s["last_seen"].(string) {
			t.Errorf("sighting %d: first_seen after last_seen", i)
		}
		if hits[i].Released != nil {
			if of["id"] != "indicator--5e1f0000-0000-4000-8000-00000000000f" {
				t.Errorf("a released hit is a sighting of %v", of["id"])
			}
			continue
		}
		if of["created_by_ref"] != me || of[BlindRefProperty] != hits[i].Ref.String() || of[BlindPartnerProperty] != partner {
			t.Errorf("stub %v", of)
		}
		vals, err := match.PatternValues(of["pattern"].(string))
		if err != nil || len(vals) != len(hits[i].Observed) {
			t.Fatalf("stub pattern %q: %v %v", of["pattern"], vals, err)
		}
		for _, v := range vals {
			found := false
			for _, o := range hits[i].Observed {
				found = found || o == v.Value
			}
			if !found {
				t.Errorf("stub pattern %q names %s, not observed", of["pattern"], v.Value)
			}
		}
	}
	// The same reference gets the same stub.
	again, _ := SightingsBundle(hits[:1], me, partner, t0)
	var first map[string]any
	json.Unmarshal(bundle.Objects[0], &first)
	if !strings.Contains(string(again), first["id"].(string)) {
		t.Error("a reference's stub id is not deterministic")
	}
	if _, err := SightingsBundle(hits, "organization--x", partner, t0); err == nil {
		t.Error("a non-identity reporter was accepted")
	}
	if _, err := SightingsBundle([]Hit{{Ref: Ref{1, 1}, Observed: []string{"not a value at all!"}}}, me, partner, t0); err == nil {
		t.Error("a stub without a pattern was made")
	}
}
