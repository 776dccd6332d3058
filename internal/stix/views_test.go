package stix

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustDecode(t *testing.T, raw string) *Object {
	t.Helper()
	o, err := Decode([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestViews(t *testing.T) {
	in, err := mustDecode(t, `{"type":"indicator","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","pattern":"[url:value = 'http://x']",
		"pattern_type":"stix","pattern_version":"2.1","valid_from":"2016-01-01T00:00:00Z","valid_until":"2017-01-01T00:00:00.5Z","confidence":80,
		"labels":["a"],"name":"n","indicator_types":["malicious-activity"]}`).Indicator()
	if err != nil {
		t.Fatal(err)
	}
	wantIn := &Indicator{Name: "n", IndicatorTypes: []string{"malicious-activity"}, Pattern: "[url:value = 'http://x']", PatternType: "stix",
		PatternVersion: "2.1", ValidFrom: time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC), ValidUntil: time.Date(2017, 1, 1, 0, 0, 0, 5e8, time.UTC),
		Confidence: 80, Labels: []string{"a"}}
	if diff := cmp.Diff(wantIn, in); diff != "" {
		t.Errorf("Indicator (-want +got):\n%s", diff)
	}
	in, err = mustDecode(t, `{"type":"indicator","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","valid_from":"2016-01-01T00:00:00Z"}`).Indicator()
	if err != nil || in.Confidence != -1 || !in.ValidUntil.IsZero() {
		t.Errorf("Indicator without confidence: %+v %v", in, err)
	}

	s, err := mustDecode(t, baseSighting).Sighting()
	if err != nil {
		t.Fatal(err)
	}
	wantS := &Sighting{SightingOfRef: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", WhereSightedRefs: []string{"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"},
		Count: 3, FirstSeen: time.Date(2016, 4, 6, 20, 0, 0, 0, time.UTC), LastSeen: time.Date(2016, 4, 6, 21, 0, 0, 0, time.UTC)}
	if diff := cmp.Diff(wantS, s); diff != "" {
		t.Errorf("Sighting (-want +got):\n%s", diff)
	}

	r, err := mustDecode(t, baseRelationship).Relationship()
	if err != nil || *r != (Relationship{"indicates", "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"}) {
		t.Errorf("Relationship = %+v, %v", r, err)
	}

	id, err := mustDecode(t, `{"type":"identity","id":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff","name":"CERT-FR","identity_class":"organization","sectors":["government"],"x_country":"FR"}`).Identity()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&Identity{Name: "CERT-FR", IdentityClass: "organization", Sectors: []string{"government"}, Country: "FR"}, id); diff != "" {
		t.Errorf("Identity (-want +got):\n%s", diff)
	}

	md, err := mustDecode(t, baseStmt).MarkingDefinition()
	if err != nil || md.IsTLP || md.Statement != "Copyright ACME" || md.DefinitionType != "statement" {
		t.Errorf("statement marking = %+v, %v", md, err)
	}
	md, err = mustDecode(t, `{"type":"marking-definition","id":"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82","definition_type":"tlp","definition":{"tlp":"amber"}}`).MarkingDefinition()
	if err != nil || !md.IsTLP || md.TLP != TLPAmber {
		t.Errorf("TLP 1.0 marking = %+v, %v", md, err)
	}

	// Wrong type and bad timestamps are errors.
	if _, err := mustDecode(t, baseIdentity).Indicator(); err == nil {
		t.Error("Indicator() of an identity succeeded")
	}
	if _, err := mustDecode(t, `{"type":"sighting","id":"sighting--ee20065d-2555-424f-ad9e-0f8428623c75","first_seen":"soon"}`).Sighting(); err == nil {
		t.Error("Sighting() with a bad first_seen succeeded")
	}
}
