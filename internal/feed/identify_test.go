package feed

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
)

func TestIdentify(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"STIX bundle", `{"type":"bundle","id":"bundle--1","objects":[]}`, ""},
		{"STIX bundle, type last", `{"id":"bundle--1","objects":[{"Event":{}}],"type":"bundle"}`, ""},
		{"STIX object list", `[{"type":"indicator"}]`, ""},
		{"MISP event", `{"Event":{"info":"x","Attribute":[]}}`, "a MISP event"},
		{"bare MISP event", `{"uuid":"5a0b1f2e-4b7c-4d2e-8f1a-2b3c4d5e6f70","info":"x"}`, "a MISP event"},
		{"MISP response", `{"response":[{"Event":{}}]}`, "MISP events (a search response)"},
		{"list of MISP events", ` [ {"Event":{}} ]`, "a list of MISP events"},
		{"MISP manifest", `{"5a0b1f2e-4b7c-4d2e-8f1a-2b3c4d5e6f70":{"info":"x"}}`, "a MISP feed's manifest.json (import its directory)"},
		{"plain list", "# comment\n198.51.100.7\nevil.example\n", "a plain list of values"},
		{"prose", "Dear reader,\nthis is not a list.\nRegards\n", ""},
		{"CSV", "\"1\",\"2026-01-01\",\"http://evil.example/\",\"online\"\n", "a CSV feed"},
		{"empty", "  \n", ""},
		{"broken JSON", `{"Event"`, "a MISP event"},
		{"JSON garbage", `{]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Identify([]byte(tt.in)); got != tt.want {
				t.Fatalf("Identify(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestIdentifyRealData: every MISP event of the shared data is named so,
// and the STIX examples are not.
func TestIdentifyRealData(t *testing.T) {
	events, _ := filepath.Glob(filepath.Join(testutil.SharedData(t, "misp", "events"), "*.json"))
	bundles, _ := filepath.Glob(filepath.Join(testutil.SharedData(t, "stix", "examples"), "*", "*.json"))
	if len(events) == 0 || len(bundles) == 0 {
		t.Fatalf("no data: %d events, %d bundles", len(events), len(bundles))
	}
	for _, p := range append(events, bundles...) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got := Identify(data)
		isEvent := filepath.Base(filepath.Dir(p)) == "events"
		if isEvent && got != "a MISP event" || !isEvent && got != "" {
			t.Errorf("%s: %q", p, got)
		}
	}
}

func FuzzIdentify(f *testing.F) {
	f.Add([]byte(`{"Event":{}}`))
	f.Add([]byte(`[{"type":"bundle"}]`))
	f.Add([]byte("198.51.100.7\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		Identify(in)
	})
}
