package feed

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/testutil"
	"github.com/google/go-cmp/cmp"
)

const sampleEvent = `{"Event":{"uuid":"5e9f1c2a-0000-4000-8000-000000000001","info":"test event","date":"2024-01-02","timestamp":"1704196800",
"Orgc":{"name":"CERT-X","uuid":"5e9f1c2a-0000-4000-8000-0000000000aa"},
"Tag":[{"name":"tlp:amber"},{"name":"type:OSINT"},{"name":"misp-galaxy:threat-actor=\"APT X\""}],
"Galaxy":[{"type":"threat-actor","name":"Threat Actor","GalaxyCluster":[{"uuid":"5e9f1c2a-0000-4000-8000-0000000000bb","value":"APT X","type":"threat-actor"}]},
          {"type":"mitre-attack-pattern","GalaxyCluster":[{"uuid":"5e9f1c2a-0000-4000-8000-0000000000cc","value":"Phishing - T1566"}]},
          {"type":"guidelines","GalaxyCluster":[{"uuid":"","value":"x"}]}],
"Attribute":[
 {"uuid":"a0000000-0000-4000-8000-000000000001","type":"ip-dst","category":"Network activity","value":"198.51.100.7","to_ids":true,"timestamp":"1704196800"},
 {"uuid":"a0000000-0000-4000-8000-000000000002","type":"domain|ip","value":"Evil.Example|203.0.113.9","to_ids":"1","timestamp":1704196800},
 {"uuid":"a0000000-0000-4000-8000-000000000003","type":"url","value":"http://evil.example/gate.php","to_ids":false},
 {"uuid":"a0000000-0000-4000-8000-000000000004","type":"text","value":"hello"},
 {"uuid":"a0000000-0000-4000-8000-000000000005","type":"no-such-type","value":"x","to_ids":true},
 {"uuid":"a0000000-0000-4000-8000-000000000006","type":"ip-src","value":"999.1.1.1","to_ids":true},
 {"uuid":"a0000000-0000-4000-8000-000000000007","type":"sha256","value":"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855","to_ids":true,"Tag":[{"name":"tlp:green"}],
  "Galaxy":[{"type":"mitre-malware","GalaxyCluster":[{"uuid":"5e9f1c2a-0000-4000-8000-0000000000dd","value":"BadMal - S9999"}]}]}],
"Object":[{"uuid":"b0000000-0000-4000-8000-000000000001","name":"domain-ip","Attribute":[
 {"uuid":"a0000000-0000-4000-8000-000000000008","type":"domain","object_relation":"domain","value":"c2.example","to_ids":true},
 {"uuid":"a0000000-0000-4000-8000-000000000009","type":"ip-dst","object_relation":"ip","value":"198.51.100.7","to_ids":true}]}]}}`

func TestMISPEvent(t *testing.T) {
	res, err := Import(strings.NewReader(sampleEvent), "ev.json", Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != FormatMISPEvent {
		t.Errorf("format %s", res.Format)
	}
	inds := checkObjects(t, res.Objects)
	var pats []string
	for _, in := range inds {
		pats = append(pats, in.Pattern)
	}
	sort.Strings(pats)
	want := []string{
		"[domain-name:value = 'c2.example']",
		"[domain-name:value = 'evil.example']",
		"[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']",
		"[ipv4-addr:value = '198.51.100.7']",
		"[ipv4-addr:value = '203.0.113.9']",
	}
	if diff := cmp.Diff(want, pats); diff != "" {
		t.Errorf("patterns (-want +got):\n%s", diff)
	}
	wantRej := []string{
		"event 5e9f1c2a-0000-4000-8000-000000000001 attribute a0000000-0000-4000-8000-000000000005",
		"event 5e9f1c2a-0000-4000-8000-000000000001 attribute a0000000-0000-4000-8000-000000000006",
	}
	var gotRej []string
	for _, r := range res.Rejected {
		gotRej = append(gotRej, r.Where)
	}
	if diff := cmp.Diff(wantRej, gotRej); diff != "" {
		t.Errorf("rejects (-want +got):\n%s\n%+v", diff, res.Rejected)
	}
	if !strings.Contains(res.Rejected[0].Reason, `unknown MISP attribute type "no-such-type"`) {
		t.Errorf("reason %q", res.Rejected[0].Reason)
	}
	if res.Stats.Skipped["text"] != 1 || res.Stats.Skipped["galaxy:guidelines"] != 1 {
		t.Errorf("skipped = %v", res.Stats.Skipped)
	}
	// The IP is both a plain attribute and an object attribute: one indicator, two references.
	ip := inds[IndicatorID("ipv4", "198.51.100.7")]
	if len(ip.ExternalRefs) != 2 {
		t.Errorf("198.51.100.7 external references = %+v", ip.ExternalRefs)
	}
	amber, green := stix.TLPAmber.MarkingID(), stix.TLPGreen.MarkingID()
	if !cmp.Equal(ip.MarkingRefs, []string{amber}) {
		t.Errorf("ip markings = %v, want amber", ip.MarkingRefs)
	}
	hash := inds[IndicatorID("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
	if !cmp.Equal(hash.MarkingRefs, []string{green}) {
		t.Errorf("hash markings = %v, want the attribute's green", hash.MarkingRefs)
	}
	if ip.ValidFrom != "2024-01-02T12:00:00.000Z" {
		t.Errorf("valid_from = %s", ip.ValidFrom)
	}
	types := map[string]int{}
	rels := map[string]bool{}
	for _, raw := range res.Objects {
		var o struct{ Type string }
		var m map[string]any
		json.Unmarshal(raw, &m)
		o.Type, _ = m["type"].(string)
		types[o.Type]++
		if o.Type == "relationship" {
			rels[m["source_ref"].(string)+" "+m["target_ref"].(string)] = true
		}
	}
	for typ, n := range map[string]int{"identity": 1, "intrusion-set": 1, "attack-pattern": 1, "malware": 1, "url": 1, "marking-definition": 2} {
		if types[typ] != n {
			t.Errorf("%d %s objects, want %d (all: %v)", types[typ], typ, n, types)
		}
	}
	if !rels[hash.ID+" malware--5e9f1c2a-0000-4000-8000-0000000000dd"] || !rels[ip.ID+" intrusion-set--5e9f1c2a-0000-4000-8000-0000000000bb"] {
		t.Errorf("relationships = %v", rels)
	}
	if rels[ip.ID+" malware--5e9f1c2a-0000-4000-8000-0000000000dd"] {
		t.Error("attribute-level galaxy related to another attribute's indicator")
	}
}

func TestMISPWrappers(t *testing.T) {
	inner := `{"uuid":"5e9f1c2a-0000-4000-8000-000000000002","info":"w","Attribute":[{"uuid":"a1","type":"domain","value":"w.example","to_ids":true}]}`
	for _, doc := range []string{`{"Event":` + inner + `}`, `{"response":[{"Event":` + inner + `}]}`, inner, `[{"Event":` + inner + `}]`, `{"response":{"Event":` + inner + `}}`} {
		res, err := Import(strings.NewReader(doc), "w", Options{Now: now})
		if err != nil {
			t.Errorf("%s: %v", doc[:20], err)
			continue
		}
		if res.Stats.Events != 1 || res.Stats.Indicators != 1 {
			t.Errorf("%s: stats %+v", doc[:20], res.Stats)
		}
	}
	if _, err := Import(strings.NewReader(`{"foo":1}`), "x", Options{Format: FormatMISPEvent}); err == nil {
		t.Error("non-MISP JSON: no error")
	}
}

func mispFiles(t testing.TB) []string {
	dir := testutil.SharedData(t, "misp", "events")
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	return files
}

func TestRealMISPEvents(t *testing.T) {
	im := NewImporter()
	for _, p := range mispFiles(t) {
		f := readShared(t, p)
		res, err := im.Import(f, filepath.Base(p), Options{Now: now})
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		t.Logf("%-70s events %d attributes %5d indicators %5d observables %5d rejected %3d skipped %v", filepath.Base(p), res.Stats.Events, res.Stats.Records, res.Stats.Indicators, res.Stats.Observables, res.Stats.Rejected, res.Stats.Skipped)
		if res.Stats.Events != 1 {
			t.Errorf("%s: %d events", p, res.Stats.Events)
		}
		for _, r := range res.Rejected {
			if strings.Contains(r.Reason, "unknown MISP attribute type") {
				t.Errorf("%s: %s: %s", p, r.Where, r.Reason)
			}
		}
	}
	checkObjects(t, im.Objects())
}

// TestMISPStixPairs compares our indicators with those MISP's own
// misp-stix converter produced from the same events, for the attribute
// types both convert to a single-value pattern.
func TestMISPStixPairs(t *testing.T) {
	dir := testutil.SharedData(t, "misp", "misp-stix-pairs")
	for _, pair := range []string{"events", "objects"} {
		im := NewImporter()
		for _, n := range []string{"1", "2"} {
			f := readShared(t, filepath.Join(dir, "test_"+pair+"_collection_"+n+".json"))
			if _, err := im.Import(f, "pair", Options{Now: now}); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		ours := checkObjects(t, im.Objects())
		data, err := os.ReadFile(filepath.Join(dir, "test_"+pair+"_collection_stix21.json"))
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct{ Objects []map[string]any }
		json.Unmarshal(data, &bundle)
		ourPatterns := map[string]bool{}
		for _, in := range ours {
			ourPatterns[in.Pattern] = true
		}
		compared := 0
		for _, o := range bundle.Objects {
			if o["type"] != "indicator" {
				continue
			}
			p := o["pattern"].(string)
			// misp-stix writes composite attributes (domain|ip, file objects) as
			// AND patterns; we split them into one indicator per value. Each
			// single comparison of theirs that we model must be one of ours.
			for _, part := range strings.Split(strings.Trim(p, "[]"), " AND ") {
				single := "[" + part + "]"
				if strings.Contains(part, "resolves_to_refs") {
					single = "[ipv4-addr:value = " + part[strings.Index(part, "'"):] + "]"
				}
				if strings.Contains(part, "file:name") || strings.Contains(part, "email-message:") {
					continue
				}
				compared++
				if !ourPatterns[single] {
					t.Errorf("%s: misp-stix indicator %s: we have no %s (ours: %v)", pair, p, single, ourPatterns)
				}
			}
		}
		if compared == 0 {
			t.Errorf("%s: nothing compared", pair)
		}
	}
}

func TestMISPFeedDir(t *testing.T) {
	dir := testutil.SharedData(t, "misp", "feed-misp")
	res, err := ImportMISPFeed(os.DirFS(dir), "circl", Options{Now: now, AllIndicators: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Events != 1 || res.Stats.Skipped["link"] != 1 {
		t.Errorf("stats = %+v", res.Stats)
	}
	tmp := t.TempDir()
	os.WriteFile(filepath.Join(tmp, "manifest.json"), []byte(`{"5e9f1c2a-0000-4000-8000-000000000009":{}}`), 0o600)
	res, err = ImportMISPFeed(os.DirFS(tmp), "broken", Options{Now: now})
	if err != nil || res.Stats.Rejected != 1 || !strings.Contains(res.Rejected[0].Where, "5e9f1c2a-0000-4000-8000-000000000009.json") {
		t.Errorf("missing event: %v %+v", err, res.Rejected)
	}
	if _, err := ImportMISPFeed(os.DirFS(t.TempDir()), "empty", Options{}); err == nil {
		t.Error("no manifest: no error")
	}
}

func FuzzMISPEvent(f *testing.F) {
	f.Add([]byte(sampleEvent))
	f.Add([]byte(`{"response":[{"Event":{"Attribute":[{"type":"domain|ip","value":"|"}]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Import(strings.NewReader(string(data)), "fuzz", Options{Now: now, Format: FormatMISPEvent})
		if err != nil {
			return
		}
		for _, raw := range res.Objects {
			if _, err := stix.Decode(raw); err != nil {
				t.Fatalf("invalid object %s: %v", raw, err)
			}
		}
	})
}
