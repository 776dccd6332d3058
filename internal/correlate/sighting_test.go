package correlate_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/testutil"
)

func TestParseSightingFromTheSTIXExamples(t *testing.T) {
	dir := testutil.SharedData(t, "stix", "examples", "cti-documentation")
	data, err := os.ReadFile(filepath.Join(dir, "sighting-of-an-indicator.json"))
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(data, &bundle); err != nil {
		t.Fatal(err)
	}
	var got []correlate.STIXSighting
	for _, o := range bundle.Objects {
		if strings.Contains(string(o), `"type": "sighting"`) {
			s, err := correlate.ParseSighting(o)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want one sighting, got %d", len(got))
	}
	s := got[0]
	if s.SightingOfRef != "indicator--9299f726-ce06-492e-8472-2b52ccb53191" || s.FirstSeen.IsZero() {
		t.Errorf("parsed %+v", s)
	}
	r := correlate.NewThreatResolver()
	r.Add("indicator--9299f726-ce06-492e-8472-2b52ccb53191", "malware--x")
	ss := s.Sightings(r, func(string) bool { return true }, func(org string) string { return "US" })
	if len(ss) == 0 || ss[0].Threat != "malware--x" || ss[0].Country != "US" || ss[0].ID != s.ID {
		t.Errorf("sightings %+v", ss)
	}
	// Replayed against an engine whose clock is at the sighting, it is accepted.
	e := newEngine(t, correlate.Config{})
	for _, x := range ss {
		if _, err := e.Add(x, s.LastSeen.Add(time.Minute)); err != nil {
			t.Errorf("add: %v", err)
		}
	}
}

func TestParseSightingErrors(t *testing.T) {
	tests := []struct{ name, raw, wantInMsg string }{
		{"not JSON", `{"type":`, "not a valid JSON object"},
		{"wrong type", `{"type":"indicator","id":"indicator--1"}`, "property type"},
		{"bad id", `{"type":"sighting","id":"x"}`, "property id"},
		{"no ref", `{"type":"sighting","id":"sighting--1"}`, "sighting--1: property sighting_of_ref"},
		{"bad time", `{"type":"sighting","id":"sighting--1","sighting_of_ref":"indicator--1","last_seen":"yesterday"}`, "property last_seen"},
		{"negative count", `{"type":"sighting","id":"sighting--1","sighting_of_ref":"indicator--1","count":-1}`, "property count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := correlate.ParseSighting([]byte(tt.raw))
			if entente.ErrorCode(err) != entente.EINVALID || !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Fatalf("err %v, want EINVALID mentioning %q", err, tt.wantInMsg)
			}
		})
	}
}

func FuzzParseSighting(f *testing.F) {
	f.Add([]byte(`{"type":"sighting","id":"sighting--1","sighting_of_ref":"indicator--1","where_sighted_refs":["identity--a","identity--b"],"first_seen":"2026-11-20T12:00:00Z","last_seen":"2026-11-20T12:00:00.5Z","count":3}`))
	f.Add([]byte(`{"type":"sighting","id":"sighting--1","sighting_of_ref":"x","count":1e99}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := correlate.ParseSighting(raw)
		if err != nil {
			if entente.ErrorCode(err) != entente.EINVALID {
				t.Fatalf("error %v has code %s", err, entente.ErrorCode(err))
			}
			return
		}
		e, _ := correlate.New(correlate.Config{})
		r := correlate.NewThreatResolver()
		for _, x := range s.Sightings(r, func(string) bool { return true }, func(string) string { return "FR" }) {
			e.Add(x, t0) // must not panic
		}
	})
}
