package correlate_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the golden file:\ngot  %s\nwant %s", name, got, want)
	}
}

func regionalAlert(t *testing.T) correlate.Alert {
	t.Helper()
	e := newEngine(t, correlate.Config{})
	last := addAll(t, e, t0.Add(time.Hour), []correlate.Sighting{
		sighting(1, malware, "identity--a", "FR", t0.Add(10*time.Minute)),
		sighting(2, malware, "identity--b", "DE", t0.Add(20*time.Minute)),
		sighting(3, malware, "identity--c", "IT", t0.Add(30*time.Minute)),
	})
	if len(last) != 1 {
		t.Fatalf("want one alert, got %+v", last)
	}
	for _, a := range last {
		return a
	}
	return correlate.Alert{}
}

func TestAlertObject(t *testing.T) {
	a := regionalAlert(t)
	raw := correlate.AlertObject(a)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	golden(t, "alert.golden.json", append(pretty.Bytes(), '\n'))

	o, err := stix.Decode(raw)
	if err != nil {
		t.Fatalf("alert is not a decodable STIX object: %v", err)
	}
	if o.Type != correlate.AlertType || o.ID != a.ID || o.SpecVersion != "2.1" {
		t.Errorf("decoded type %q id %q spec %q", o.Type, o.ID, o.SpecVersion)
	}
	if o.Modified.Before(o.Created) {
		t.Errorf("modified %s before created %s", o.Modified, o.Created)
	}
	if !bytes.Equal(raw, correlate.AlertObject(a)) {
		t.Error("the same alert gave two different objects")
	}
	var props map[string]any
	if err := json.Unmarshal(raw, &props); err != nil {
		t.Fatal(err)
	}
	ext, _ := props["extensions"].(map[string]any)
	if m, _ := ext[correlate.ExtensionID].(map[string]any); m["extension_type"] != "new-sdo" {
		t.Errorf("extensions %v do not name the new-sdo extension definition", props["extensions"])
	}
}

func TestModifiedGrowsWithContent(t *testing.T) {
	a := regionalAlert(t)
	b := a
	b.Organisations++
	c := a
	c.TierRank++
	d := a
	d.SupersededBy = correlate.AlertID("malware--x", t0)
	for _, x := range []correlate.Alert{b, c, d} {
		if !x.Modified().After(a.Modified()) {
			t.Errorf("modified %s of a grown alert is not after %s", x.Modified(), a.Modified())
		}
	}
}

func TestExtensionDefinition(t *testing.T) {
	for name, raw := range map[string]json.RawMessage{
		"extension definition": correlate.ExtensionDefinition(),
		"author identity":      correlate.AuthorIdentity(),
	} {
		o, err := stix.Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if o.Created.IsZero() {
			t.Errorf("%s has no created timestamp", name)
		}
	}
	var def struct {
		ID             string   `json:"id"`
		CreatedByRef   string   `json:"created_by_ref"`
		Schema         string   `json:"schema"`
		ExtensionTypes []string `json:"extension_types"`
	}
	if err := json.Unmarshal(correlate.ExtensionDefinition(), &def); err != nil {
		t.Fatal(err)
	}
	if def.ID != correlate.ExtensionID || def.CreatedByRef != correlate.AuthorID || len(def.ExtensionTypes) != 1 || def.ExtensionTypes[0] != "new-sdo" {
		t.Errorf("extension definition %+v", def)
	}
	if !json.Valid([]byte(def.Schema)) {
		t.Errorf("schema text is not JSON: %s", def.Schema)
	}
}

// TestAlertMatchesItsSchema checks an alert object against the JSON schema
// the extension definition carries.
func TestAlertMatchesItsSchema(t *testing.T) {
	raw := correlate.AlertObject(regionalAlert(t))
	if err := checkSchema(t, correlate.ExtensionDefinition(), raw); err != nil {
		t.Errorf("alert does not match its schema: %v", err)
	}
	bad := bytes.Replace(raw, []byte(`"FR"`), []byte(`"fr"`), 1)
	if err := checkSchema(t, correlate.ExtensionDefinition(), bad); err == nil {
		t.Error("the schema accepts a lower-case country code")
	}
}

func TestResolverOnPoisonIvy(t *testing.T) {
	dir := testutil.SharedData(t, "stix", "examples", "oasis-json-schemas", "threat-reports")
	data, err := os.ReadFile(filepath.Join(dir, "poisonivy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(data, &bundle); err != nil {
		t.Fatal(err)
	}
	forward, backward := correlate.NewThreatResolver(), correlate.NewThreatResolver()
	n := 0
	for i, o := range bundle.Objects {
		ok, err := forward.AddRelationship(o)
		if err != nil {
			t.Fatalf("object %d: %v", i, err)
		}
		if ok {
			n++
		}
		if _, err := backward.AddRelationship(bundle.Objects[len(bundle.Objects)-1-i]); err != nil {
			t.Fatal(err)
		}
	}
	if n < 40 {
		t.Fatalf("read %d indicates relationships from poisonivy.json; it has more than 40", n)
	}
	// This indicator indicates a campaign and a malware: the smallest id wins.
	const ind = "indicator--e8094b09-7df4-4b13-b207-1e27af3c4bde"
	if got, want := forward.Resolve(ind, true), correlate.ThreatKey("campaign--752c225d-d6f6-4456-9130-d9580fd4007b"); got != want {
		t.Errorf("Resolve(%s) = %s, want %s", ind, got, want)
	}
	for _, o := range bundle.Objects {
		var h struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(o, &h)
		if f, b := forward.Resolve(h.ID, true), backward.Resolve(h.ID, true); f != b {
			t.Errorf("%s resolves to %s or %s depending on order", h.ID, f, b)
		}
	}
	if got := forward.Resolve("malware--61a62a6a-9a18-4758-8e52-622431c4b8ae", true); got != "malware--61a62a6a-9a18-4758-8e52-622431c4b8ae" {
		t.Errorf("a malware resolves to %s, not itself", got)
	}
	if got := forward.Resolve(ind, false); got != "" {
		t.Errorf("an unknown object resolves to %q", got)
	}
	if _, err := forward.AddRelationship(json.RawMessage(`{"type":`)); err == nil {
		t.Error("malformed JSON accepted")
	}
}

func TestParseAlertObjectRoundTrip(t *testing.T) {
	epoch := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	a := correlate.Alert{ID: "x-entente-alert--6f1c1a53-8a57-5d6e-9b1f-0c2d3e4f5a6b", Threat: "malware--0a1b2c3d-0000-4000-8000-000000000001",
		Tier: "regional", TierRank: 2, Epoch: epoch, Window: 24 * time.Hour, Organisations: 4, Countries: []string{"DE", "FR", "PL"},
		FirstSeen: epoch.Add(time.Hour), LastSeen: epoch.Add(2 * time.Hour)}
	rank := func(tier string) int { return map[string]int{"national": 1, "regional": 2, "global": 3}[tier] }
	got, err := correlate.ParseAlertObject(correlate.AlertObject(a), rank)
	if err != nil {
		t.Fatal(err)
	}
	a.Version = a.Modified() // the object's modified, read back
	if !reflect.DeepEqual(got, a) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, a)
	}
	a.Version = time.Time{}
	a.SupersededBy = "x-entente-alert--00000000-0000-5000-8000-000000000000"
	if got, err := correlate.ParseAlertObject(correlate.AlertObject(a), rank); err != nil || got.Change != correlate.ChangeSuperseded || got.SupersededBy != a.SupersededBy {
		t.Errorf("revoked alert: %+v, %v", got, err)
	}
	for _, bad := range []string{`{`, `{"type":"indicator","id":"indicator--x"}`, `{"type":"x-entente-alert","id":"x-entente-alert--1","tier":"","threat_ref":"m"}`,
		`{"type":"x-entente-alert","id":"x-entente-alert--1","tier":"global","threat_ref":"m","created":"yesterday"}`} {
		if _, err := correlate.ParseAlertObject([]byte(bad), rank); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestConfigTierRank(t *testing.T) {
	var c correlate.Config // defaults: national, regional, global
	for name, want := range map[string]int{"national": 1, "regional": 2, "global": 3, "planetary": 0} {
		if got := c.TierRank(name); got != want {
			t.Errorf("TierRank(%q) = %d, want %d", name, got, want)
		}
	}
}
