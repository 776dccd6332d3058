package taxiiclient_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/taxiiclient"
	"github.com/entente-cti/entente/internal/testutil"
)

// TestMedallionResources reads the discovery, API root and collection
// resources of the OASIS reference server's test data (medallion), and
// pulls the objects of its "High Value Indicator Collection".
func TestMedallionResources(t *testing.T) {
	path := testutil.SharedData(t, "stix", "taxii", "medallion-default_data.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var root struct {
		Information json.RawMessage `json:"information"`
		Collections []struct {
			ID      string            `json:"id"`
			Objects []json.RawMessage `json:"objects"`
		} `json:"collections"`
	}
	if err := json.Unmarshal(data["trustgroup1"], &root); err != nil {
		t.Fatalf("%s: trustgroup1: %v", path, err)
	}
	var objs []json.RawMessage
	var cols []json.RawMessage
	json.Unmarshal(data["trustgroup1"], &struct {
		Collections *[]json.RawMessage `json:"collections"`
	}{&cols})
	for _, c := range root.Collections {
		if c.ID == "91a7b528-80eb-42ed-a74d-c6fbd5a26116" {
			objs = c.Objects
		}
	}
	if len(objs) == 0 {
		t.Fatalf("%s: collection 91a7b528-… has no objects", path)
	}
	f := newFakeServer(t, len(objs))
	f.pageSize = 3
	f.gen = func(i int) []byte { return objs[i] }
	f.misbehave = func(w http.ResponseWriter, r *http.Request, _ int64) bool {
		var body []byte
		switch r.URL.Path {
		case "/taxii2/":
			body = data["/discovery"]
		case "/api1/":
			body = root.Information
		case "/api1/collections/":
			// Medallion keeps objects inside its collections; a server
			// answers with the collection resources only.
			var out []map[string]any
			for _, c := range cols {
				var m map[string]any
				json.Unmarshal(c, &m)
				delete(m, "objects")
				delete(m, "manifest")
				out = append(out, m)
			}
			body, _ = json.Marshal(map[string]any{"collections": out})
		default:
			return false
		}
		w.Header().Set("Content-Type", mediaTAXII)
		w.Write(body)
		return true
	}
	c := newClient(f)
	d, err := c.Discover(context.Background())
	if err != nil || d.Title == "" || len(d.APIRoots) == 0 {
		t.Fatalf("discovery: %+v %v", d, err)
	}
	info, err := c.APIRootInfo(context.Background())
	if err != nil || info.MaxContentLength <= 0 || len(info.Versions) == 0 {
		t.Fatalf("api root: %+v %v", info, err)
	}
	collections, err := c.Collections(context.Background())
	if err != nil || len(collections) != len(root.Collections) {
		t.Fatalf("collections: %d, %v", len(collections), err)
	}
	got, invalid := 0, 0
	_, err = c.Pull(context.Background(), "91a7b528-80eb-42ed-a74d-c6fbd5a26116", taxiiclient.Checkpoint{}, func(p *taxiiclient.Page) error {
		got += len(p.Objects)
		for _, bad := range p.Invalid {
			t.Logf("invalid: %v", bad)
			invalid++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got+invalid != len(objs) || got == 0 {
		t.Fatalf("%d valid + %d invalid objects, want %d", got, invalid, len(objs))
	}
}

// TestPullAttackICS pulls the MITRE ATT&CK for ICS bundle through the
// fake server, in pages of 100: every object arrives once, valid or
// reported invalid with its id.
func TestPullAttackICS(t *testing.T) {
	path := testutil.SharedData(t, "attack", "ics-attack-18.1.json")
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var objs []json.RawMessage
	if err := stix.ReadBundle(fh, func(_ int, raw json.RawMessage) error {
		objs = append(objs, append(json.RawMessage(nil), raw...))
		return nil
	}); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	f := newFakeServer(t, len(objs))
	f.gen = func(i int) []byte { return objs[i] }
	c := newClient(f)
	seen := map[string]bool{}
	invalid := 0
	_, err = c.Pull(context.Background(), "c1", taxiiclient.Checkpoint{}, func(p *taxiiclient.Page) error {
		for _, raw := range p.Objects {
			o, err := stix.Decode(raw)
			if err != nil {
				t.Fatalf("delivered object does not decode: %v", err)
			}
			seen[o.ID+"|"+stix.FormatTimestamp(o.Version())] = true
		}
		for _, bad := range p.Invalid {
			if bad.ID == "" {
				t.Errorf("invalid object without id: %v", bad)
			}
			invalid++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen)+invalid != len(objs) {
		t.Fatalf("%d distinct valid + %d invalid, want %d objects", len(seen), invalid, len(objs))
	}
	t.Logf("%d objects: %d valid, %d reported invalid", len(objs), len(seen), invalid)
}
