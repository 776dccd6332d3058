package stix

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente/internal/stix/schema"
	"github.com/entente-cti/entente/internal/testutil"
)

func TestTLPLevels(t *testing.T) {
	tests := []struct {
		tlp  TLP
		name string
		id   string
	}{
		{TLPClear, "TLP:CLEAR", "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"},
		{TLPGreen, "TLP:GREEN", "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"},
		{TLPAmber, "TLP:AMBER", "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"},
		{TLPAmberStrict, "TLP:AMBER+STRICT", "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"},
		{TLPRed, "TLP:RED", "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"},
	}
	for i, tt := range tests {
		if i > 0 && !(tests[i-1].tlp < tt.tlp) {
			t.Errorf("%s is not more restrictive than %s", tt.tlp, tests[i-1].tlp)
		}
		if tt.tlp.String() != tt.name || tt.tlp.MarkingID() != tt.id {
			t.Errorf("%d: %s %s", tt.tlp, tt.tlp, tt.tlp.MarkingID())
		}
		if got, ok := TLPFromMarking(tt.id); !ok || got != tt.tlp {
			t.Errorf("TLPFromMarking(%s) = %v, %v", tt.id, got, ok)
		}
		for _, s := range []string{tt.name, strings.ToLower(tt.name), strings.TrimPrefix(tt.name, "TLP:")} {
			if got, err := ParseTLP(s); err != nil || got != tt.tlp {
				t.Errorf("ParseTLP(%q) = %v, %v", s, got, err)
			}
		}
		text, err := tt.tlp.MarshalText()
		var back TLP
		if err != nil || back.UnmarshalText(text) != nil || back != tt.tlp {
			t.Errorf("text round trip of %s: %s %v", tt.tlp, text, err)
		}
		raw := TLPMarkingObject(tt.tlp)
		o, err := Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(o); err != nil {
			t.Errorf("official %s marking: %v", tt.name, err)
		}
		schema.Check(t, raw)
		md, err := o.MarkingDefinition()
		if err != nil || !md.IsTLP || md.TLP != tt.tlp || md.Name != tt.name || o.ID != tt.id {
			t.Errorf("marking object of %s: %+v %v", tt.name, md, err)
		}
	}
	tlp1 := map[string]TLP{
		"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TLPClear,
		"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TLPGreen,
		"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TLPAmber,
		"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TLPRed,
	}
	for id, want := range tlp1 {
		if got, ok := TLPFromMarking(id); !ok || got != want {
			t.Errorf("TLP 1.0 %s = %v, %v; want %v", id, got, ok, want)
		}
	}
	if _, ok := TLPFromMarking("marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41db"); ok {
		t.Error("an unofficial marking was read as TLP")
	}
	for _, s := range []string{"", "purple", "TLP:"} {
		if _, err := ParseTLP(s); err == nil {
			t.Errorf("ParseTLP(%q) accepted", s)
		}
	}
	if got, _ := ParseTLP("white"); got != TLPClear {
		t.Error("WHITE is not CLEAR")
	}
	if TLP(9).MarkingID() != "" || TLPMarkingObject(TLP(-1)) != nil {
		t.Error("invalid levels have markings")
	}
}

// TestTLPMarkingObjectIsOfficial compares TLPMarkingObject(TLPAmber) with
// the TLP:AMBER object of the OASIS validator's test cases.
func TestTLPMarkingObjectIsOfficial(t *testing.T) {
	b, err := os.ReadFile(testutil.SharedData(t, "stix", "validator-cases", "valid", "tlp-amber.json"))
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct{ Objects []any }
	if err := json.Unmarshal(b, &bundle); err != nil || len(bundle.Objects) != 1 {
		t.Fatalf("tlp-amber.json: %v", err)
	}
	var ours any
	if err := json.Unmarshal(TLPMarkingObject(TLPAmber), &ours); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bundle.Objects[0], ours); diff != "" {
		t.Errorf("TLP:AMBER (-official +ours):\n%s", diff)
	}
}

func TestNewID(t *testing.T) {
	a, b := NewID("indicator"), NewID("indicator")
	if a == b || !strings.HasPrefix(a, "indicator--") || identifierProblem(a) != "" {
		t.Errorf("NewID: %s %s", a, b)
	}
}
