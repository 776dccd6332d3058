package policy_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

var (
	relSelf    = policy.Party{ID: "identity--00000000-0000-4000-8000-000000000001", Country: "FR"}
	relPartner = policy.Party{ID: "identity--00000000-0000-4000-8000-0000000000de", Country: "DE"}
	relThird   = "identity--00000000-0000-4000-8000-0000000000be"
	relVictim  = "identity--00000000-0000-4000-8000-00000000f00d"
)

func relGate() *policy.Gate {
	countries := map[string]string{relVictim: "BE", relThird: "BE", relSelf.ID: "FR", "location--paris": "FR"}
	return policy.NewGate(relSelf, func(ref string) (string, bool) {
		c, ok := countries[ref]
		return c, ok
	})
}

func relAgreement(r policy.Redaction) *policy.Agreement {
	return &policy.Agreement{ID: "ag", Partner: relPartner, Collections: []string{"c"}, MaxTLP: stix.TLPAmber, AllowReshare: true, Redact: r}
}

func decode(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("released object is not JSON: %v\n%s", err, raw)
	}
	return m
}

func TestReleaseRedactions(t *testing.T) {
	sighting := `{"type":"sighting","spec_version":"2.1","id":"sighting--1","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",` +
		`"sighting_of_ref":"indicator--1","count":3,"description":"seen at the town hall of <Ghent>","x_internal_ticket":"T-42",` +
		`"created_by_ref":"` + relThird + `","where_sighted_refs":["` + relVictim + `","` + relThird + `","location--paris","identity--unknown"],` +
		`"external_references":[{"source_name":"ticket","description":"internal","external_id":"7"}]}`
	obj := policy.ObjectMeta{ID: "sighting--1", Type: "sighting", Collection: "c", TLP: stix.TLPAmber}
	g := relGate()
	now := time.Now()

	t.Run("none", func(t *testing.T) {
		rel, d, err := g.Release(relAgreement(policy.Redaction{}), relPartner, obj, json.RawMessage(sighting), now)
		if err != nil || !d.Allow {
			t.Fatalf("Release: %v %+v", err, d)
		}
		if string(rel.Object) != sighting || rel.Related != nil {
			t.Fatalf("object changed without redaction:\n%s", rel.Object)
		}
	})
	t.Run("all", func(t *testing.T) {
		rel, d, err := g.Release(relAgreement(policy.Redaction{SightingVictimsToCountry: true, RemoveThirdPartyIdentities: true, StripFreeText: true}),
			relPartner, obj, json.RawMessage(sighting), now)
		if err != nil || !d.Allow {
			t.Fatalf("Release: %v %+v", err, d)
		}
		be, beLoc := policy.CountryLocation("BE")
		fr, frLoc := policy.CountryLocation("FR")
		want := map[string]any{
			"type": "sighting", "spec_version": "2.1", "id": "sighting--1",
			"created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
			"sighting_of_ref": "indicator--1", "count": float64(3),
			"where_sighted_refs":  []any{be, fr},
			"external_references": []any{map[string]any{"source_name": "ticket", "external_id": "7"}},
		}
		if diff := cmp.Diff(want, decode(t, rel.Object)); diff != "" {
			t.Errorf("released sighting (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{string(beLoc), string(frLoc)}, []string{string(rel.Related[0]), string(rel.Related[1])}); diff != "" {
			t.Errorf("related locations (-want +got):\n%s", diff)
		}
		for _, loc := range rel.Related {
			o, err := stix.Decode(loc)
			if err != nil {
				t.Fatalf("location: %v", err)
			}
			if o.Type != "location" {
				t.Fatalf("related object type %q", o.Type)
			}
		}
	})
	t.Run("third-party refs only", func(t *testing.T) {
		rel, _, err := g.Release(relAgreement(policy.Redaction{RemoveThirdPartyIdentities: true}), relPartner, obj, json.RawMessage(sighting), now)
		if err != nil {
			t.Fatal(err)
		}
		m := decode(t, rel.Object)
		if _, ok := m["created_by_ref"]; ok {
			t.Error("created_by_ref of a third party kept")
		}
		if diff := cmp.Diff([]any{"location--paris"}, m["where_sighted_refs"]); diff != "" {
			t.Errorf("where_sighted_refs (-want +got):\n%s", diff)
		}
		if m["description"] != "seen at the town hall of <Ghent>" {
			t.Errorf("description changed: %v", m["description"])
		}
	})
}

func TestReleaseWithholdsWhenRedactionBreaksObject(t *testing.T) {
	g := relGate()
	a := relAgreement(policy.Redaction{RemoveThirdPartyIdentities: true})
	rel := `{"type":"relationship","spec_version":"2.1","id":"relationship--1","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",` +
		`"relationship_type":"targets","source_ref":"malware--1","target_ref":"` + relThird + `"}`
	out, d, err := g.Release(a, relPartner, policy.ObjectMeta{ID: "relationship--1", Type: "relationship", Collection: "c", TLP: stix.TLPGreen}, json.RawMessage(rel), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || d.Rule != policy.RuleThirdPartyID || out.Object != nil || !strings.Contains(d.Reason, "target_ref") {
		t.Fatalf("got %+v, %s; want withheld by %s naming target_ref", d, out.Object, policy.RuleThirdPartyID)
	}
	// The same relationship to the partner's own identity is released.
	rel2 := strings.Replace(rel, relThird, relPartner.ID, 1)
	out, d, err = g.Release(a, relPartner, policy.ObjectMeta{ID: "relationship--1", Type: "relationship", Collection: "c", TLP: stix.TLPGreen}, json.RawMessage(rel2), time.Now())
	if err != nil || !d.Allow || string(out.Object) != rel2 {
		t.Fatalf("got %+v %v %s", d, err, out.Object)
	}
}

func TestReleaseInvalidJSON(t *testing.T) {
	g := relGate()
	_, d, err := g.Release(relAgreement(policy.Redaction{StripFreeText: true}), relPartner,
		policy.ObjectMeta{ID: "indicator--1", Type: "indicator", Collection: "c", TLP: stix.TLPGreen}, json.RawMessage(`{"type":`), time.Now())
	if err == nil || d.Allow || !strings.Contains(err.Error(), "indicator--1") {
		t.Fatalf("got %+v, %v; want an error naming the object", d, err)
	}
}

func TestResidencyMarkingRoundTrip(t *testing.T) {
	raw := policy.ResidencyMarking("fr", "DE", "FR")
	id, js, ok, err := policy.ParseResidencyMarking(raw)
	if err != nil || !ok {
		t.Fatalf("ParseResidencyMarking: %v %v", ok, err)
	}
	if diff := cmp.Diff([]string{"DE", "FR"}, js); diff != "" {
		t.Errorf("jurisdictions (-want +got):\n%s", diff)
	}
	if id != policy.ResidencyMarkingID("FR", "DE") || id == policy.ResidencyMarkingID("FR") {
		t.Errorf("id %s is not derived from the set", id)
	}
	o, err := stix.Decode(raw)
	if err != nil || o.Type != "marking-definition" || o.ID != id {
		t.Fatalf("marking is not a STIX marking definition: %v %+v", err, o)
	}
	if _, _, ok, err := policy.ParseResidencyMarking(stix.TLPMarkingObject(stix.TLPAmber)); ok || err != nil {
		t.Errorf("TLP marking read as residency: %v %v", ok, err)
	}
	bad := strings.Replace(string(raw), `"DE"`, `"XX"`, 1)
	if _, _, _, err := policy.ParseResidencyMarking(json.RawMessage(bad)); err == nil || !strings.Contains(err.Error(), `jurisdictions[0]: "XX"`) {
		t.Errorf("bad jurisdiction: %v", err)
	}
	var ext map[string]any
	if err := json.Unmarshal(policy.ResidencyExtensionDefinition(), &ext); err != nil || ext["id"] != policy.ResidencyExtensionID {
		t.Errorf("extension definition: %v %v", err, ext["id"])
	}
}

func TestClassify(t *testing.T) {
	frde := policy.ResidencyMarkingID("FR", "DE")
	de := policy.ResidencyMarkingID("DE", "BE")
	m := policy.Markings{Residency: map[string][]string{frde: {"DE", "FR"}, de: {"BE", "DE"}}}
	tests := []struct {
		name    string
		refs    []string
		def     stix.TLP
		wantTLP stix.TLP
		wantRes []string
	}{
		{"default", nil, stix.TLPGreen, stix.TLPGreen, nil},
		{"own marking over default", []string{stix.TLPClear.MarkingID()}, stix.TLPAmber, stix.TLPClear, nil},
		{"most restrictive", []string{stix.TLPGreen.MarkingID(), stix.TLPAmberStrict.MarkingID()}, stix.TLPClear, stix.TLPAmberStrict, nil},
		{"tlp 1.0 white", []string{"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"}, stix.TLPRed, stix.TLPClear, nil},
		{"residency", []string{frde}, stix.TLPGreen, stix.TLPGreen, []string{"DE", "FR"}},
		{"intersection", []string{frde, de}, stix.TLPGreen, stix.TLPGreen, []string{"DE"}},
		{"unknown ref ignored", []string{"marking-definition--nope"}, stix.TLPAmber, stix.TLPAmber, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tlp, res := m.Classify(tc.refs, tc.def)
			if tlp != tc.wantTLP || !cmp.Equal(res, tc.wantRes) {
				t.Fatalf("Classify = %s %v, want %s %v", tlp, res, tc.wantTLP, tc.wantRes)
			}
		})
	}
	// Disjoint residencies leave nowhere (non-nil, empty).
	m.Residency["x"] = []string{"US"}
	if _, res := m.Classify([]string{frde, "x"}, stix.TLPGreen); res == nil || len(res) != 0 {
		t.Fatalf("disjoint residencies = %#v, want empty non-nil", res)
	}
}

func FuzzParseResidencyMarking(f *testing.F) {
	f.Add([]byte(policy.ResidencyMarking("FR", "DE")))
	f.Add([]byte(stix.TLPMarkingObject(stix.TLPGreen)))
	f.Add([]byte(`{"type":"marking-definition","extensions":{"` + policy.ResidencyExtensionID + `":{"jurisdictions":null}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, js, ok, err := policy.ParseResidencyMarking(b)
		if ok && err != nil || ok && len(js) == 0 {
			t.Fatalf("ok=%v err=%v js=%v", ok, err, js)
		}
		for _, j := range js {
			if !policy.IsCountry(j) {
				t.Fatalf("jurisdiction %q accepted", j)
			}
		}
	})
}

func FuzzRelease(f *testing.F) {
	f.Add([]byte(`{"type":"sighting","id":"sighting--1","where_sighted_refs":["`+relVictim+`"],"description":"x","created_by_ref":"`+relThird+`"}`), uint8(7))
	f.Add([]byte(`{"type":"report","object_refs":["`+relThird+`"]}`), uint8(2))
	f.Add([]byte(`{"external_references":[{"description":"d"}],"x_a":1}`), uint8(4))
	f.Add([]byte(`not json`), uint8(4))
	g := relGate()
	f.Fuzz(func(t *testing.T, raw []byte, mask uint8) {
		a := relAgreement(policy.Redaction{SightingVictimsToCountry: mask&1 != 0, RemoveThirdPartyIdentities: mask&2 != 0, StripFreeText: mask&4 != 0})
		obj := policy.ObjectMeta{ID: "sighting--1", Type: "sighting", Collection: "c", TLP: stix.TLPGreen}
		rel, d, err := g.Release(a, relPartner, obj, raw, time.Now())
		if err != nil || !d.Allow {
			return
		}
		if len(d.Redactions) > 0 && !json.Valid(rel.Object) {
			t.Fatalf("released invalid JSON %q from %q", rel.Object, raw)
		}
		if mask&4 != 0 && strings.Contains(string(rel.Object), `"description"`) && json.Valid(raw) {
			var m map[string]json.RawMessage
			if json.Unmarshal(rel.Object, &m) == nil {
				if _, ok := m["description"]; ok {
					t.Fatalf("description kept: %s", rel.Object)
				}
			}
		}
	})
}
