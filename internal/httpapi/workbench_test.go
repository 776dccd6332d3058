package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/gunzip"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/search"
	"github.com/entente-cti/entente/internal/testutil"
)

const (
	apt28        = "intrusion-set--bef4c620-0787-42a8-a96d-b7eb6e85917c"
	phishing     = "attack-pattern--a62a8db3-f23a-4d8f-afd6-9dbc77e7813b"
	spearphish   = "attack-pattern--2e34237d-8574-43f6-aace-ae2915de8597"
	initialAcc   = "x-mitre-tactic--ffd5bcee-6e16-4dd2-8eca-7b3beedf33ca"
	attackIdent  = "identity--c78cb6e5-0c4b-4611-8297-d1b8b55e40b5"
	hiddenIntSet = "intrusion-set--6c1a3a6e-0000-4000-8000-0000000000ff"
)

var (
	wbAttackOnce sync.Once
	wbAttackObjs []json.RawMessage
	wbAttackErr  error
)

// attackWorkbench returns, from the shared ATT&CK Enterprise bundle, the
// tactics, the matrix, every technique, APT28 and CHOPSTICK, MITRE's
// identity and marking, and the relationships from APT28.
func attackWorkbench(t testing.TB) []json.RawMessage {
	t.Helper()
	path := testutil.SharedData(t, "attack", "enterprise-attack-18.1.json.gz")
	wbAttackOnce.Do(func() {
		f, err := os.Open(path)
		if err != nil {
			wbAttackErr = err
			return
		}
		defer f.Close()
		zr, err := gunzip.Open(f, path, gunzip.Limits{MaxSize: 1 << 30})
		if err != nil {
			wbAttackErr = err
			return
		}
		var bundle struct {
			Objects []json.RawMessage `json:"objects"`
		}
		if wbAttackErr = json.NewDecoder(zr).Decode(&bundle); wbAttackErr != nil {
			return
		}
		for _, raw := range bundle.Objects {
			var o struct {
				Type, ID, SourceRef string
			}
			var m map[string]any
			_ = json.Unmarshal(raw, &m)
			o.Type, _ = m["type"].(string)
			o.ID, _ = m["id"].(string)
			o.SourceRef, _ = m["source_ref"].(string)
			switch {
			case o.Type == "x-mitre-tactic", o.Type == "x-mitre-matrix", o.Type == "attack-pattern", o.Type == "identity",
				o.Type == "marking-definition", o.ID == apt28, o.ID == "malware--ccd61dfc-b03f-4689-8c18-7c97eab08472",
				o.Type == "relationship" && o.SourceRef == apt28:
				wbAttackObjs = append(wbAttackObjs, raw)
			}
		}
	})
	if wbAttackErr != nil {
		t.Fatalf("ATT&CK data: %v", wbAttackErr)
	}
	return wbAttackObjs
}

// workbenchEnv is a node initialised, holding the ATT&CK subset in its
// intelligence collection and one intrusion set in a collection only
// admins read.
func workbenchEnv(t testing.TB) *env {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	if _, _, err := e.svc.Init(ctx, "Workbench CERT", "DE", ""); err != nil {
		t.Fatal(err)
	}
	admin := node.LocalAdmin(org)
	if _, err := e.svc.ImportObjects(ctx, admin, node.CollectionIntel, attackWorkbench(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateCollection(ctx, admin, entente.Collection{Alias: "admins-only", Title: "Admins only",
		ReadRoles: []entente.Role{entente.RoleSensor}, WriteRoles: []entente.Role{}}); err != nil {
		t.Fatal(err)
	}
	st, err := e.svc.AddObjects(ctx, admin, "admins-only", []json.RawMessage{json.RawMessage(`{"type":"intrusion-set","spec_version":"2.1","id":"` + hiddenIntSet +
		`","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"Hidden Heron APT28 lookalike"}`)})
	if err != nil || st.FailureCount > 0 {
		t.Fatalf("add the hidden object: %v %+v", err, st)
	}
	return e
}

func (e *env) api(method, path string, role entente.Role, body any) response {
	e.t.Helper()
	q := req{method: method, path: path, key: e.keys[role]}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		q.body, q.header = b, map[string]string{"Content-Type": "application/json"}
	}
	return e.do(q)
}

func (e *env) find(t *testing.T, role entente.Role, query string) search.FindPage {
	t.Helper()
	r := e.api("GET", "/api/v1/search?"+query, role, nil)
	if r.status != http.StatusOK {
		t.Fatalf("search %s: %d %s", query, r.status, r.body)
	}
	var page search.FindPage
	r.json(t, &page)
	return page
}

func resultIDs(p search.FindPage) []string {
	var ids []string
	for _, r := range p.Results {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestWorkbenchSearch runs search cases on real ATT&CK data: names,
// aliases and external ids find the object first, filters restrict, and
// an object in a collection the key may not read is never found.
func TestWorkbenchSearch(t *testing.T) {
	e := workbenchEnv(t)
	for _, tc := range []struct {
		query string
		role  entente.Role
		first string // "" for no result
		not   string // an id that must not be among the results
	}{
		{"q=APT28", entente.RoleAnalyst, apt28, hiddenIntSet},
		{"q=APT28&type=intrusion-set", entente.RoleAnalyst, apt28, hiddenIntSet},
		{"q=Fancy+Bear", entente.RoleAnalyst, apt28, ""},
		{"q=T1566", entente.RoleAnalyst, phishing, ""},
		{"q=T1566.001", entente.RoleAnalyst, spearphish, ""},
		{"q=TA0001", entente.RoleAnalyst, initialAcc, ""},
		{"q=Hidden+Heron", entente.RoleAnalyst, "", hiddenIntSet},
		{"q=Hidden+Heron", entente.RoleAdmin, hiddenIntSet, ""},
		{"q=APT28&collection=admins-only", entente.RoleAnalyst, "", hiddenIntSet},
		{"q=APT28&type=malware", entente.RoleAnalyst, "malware--ccd61dfc-b03f-4689-8c18-7c97eab08472", apt28},
		{"q=APT28&type=course-of-action", entente.RoleAnalyst, "", apt28},
		{"q=APT28&tlp=red", entente.RoleAnalyst, "", apt28},
		{"q=APT28&source=" + attackIdent, entente.RoleAnalyst, apt28, ""},
		{"q=APT28&until=2000-01-01T00:00:00Z", entente.RoleAnalyst, "", apt28},
		{"q=" + apt28, entente.RoleAnalyst, apt28, ""},
		{"type=x-mitre-tactic&limit=200", entente.RoleAnalyst, "", hiddenIntSet},
	} {
		t.Run(tc.query+"/"+string(tc.role), func(t *testing.T) {
			page := e.find(t, tc.role, tc.query)
			ids := resultIDs(page)
			if tc.first == "" && strings.HasPrefix(tc.query, "q=") && len(ids) > 0 {
				t.Errorf("found %v, want nothing", ids)
			}
			if tc.first != "" && (len(ids) == 0 || ids[0] != tc.first) {
				t.Errorf("found %v, want %s first", ids, tc.first)
			}
			if tc.not != "" && slices.Contains(ids, tc.not) {
				t.Errorf("found %s", tc.not)
			}
			for _, r := range page.Results {
				if r.Title == "" || r.Title == r.ID || r.Collection == "" || r.Modified.IsZero() {
					t.Errorf("result %+v", r)
				}
			}
		})
	}
	// The intrusion set's result says what it is, marked by its
	// collection's default (TLP:AMBER; ATT&CK carries no TLP marking).
	got := e.find(t, entente.RoleAnalyst, "q=APT28&limit=1").Results[0]
	if got.Title != "APT28" || got.Type != "intrusion-set" || got.TLP != "amber" || got.CreatedBy != attackIdent || got.Description == "" || got.Score <= 0 {
		t.Errorf("APT28: %+v", got)
	}
	// Browse pages through the 14 tactics, newest first, each once.
	seen := map[string]bool{}
	q := "type=x-mitre-tactic&limit=5"
	for range 10 {
		page := e.find(t, entente.RoleAnalyst, q)
		for _, r := range page.Results {
			if seen[r.ID] || r.Type != "x-mitre-tactic" {
				t.Fatalf("browse: %+v twice or of another type", r)
			}
			seen[r.ID] = true
		}
		if page.Next == "" {
			break
		}
		q = "type=x-mitre-tactic&limit=5&cursor=" + url.QueryEscape(page.Next)
	}
	if len(seen) != 14 {
		t.Errorf("browse found %d tactics, want 14", len(seen))
	}
	for _, bad := range []string{"limit=201", "limit=0", "since=yesterday", "type=Not_A_Type", "tlp=purple", "cursor=not-a-cursor", "q=x&cursor=not-a-cursor", "frobnicate=1"} {
		if r := e.api("GET", "/api/v1/search?"+bad, entente.RoleAnalyst, nil); r.status != http.StatusBadRequest {
			t.Errorf("search?%s: %d %s, want 400", bad, r.status, r.body)
		}
	}
}

// TestWorkbenchRoles checks that every route of the workbench refuses
// sensor and partner keys, and keys that are not keys.
func TestWorkbenchRoles(t *testing.T) {
	e := workbenchEnv(t)
	routes := []struct{ method, path string }{
		{"GET", "/api/v1/search?q=APT28"},
		{"GET", "/api/v1/objects/" + apt28},
		{"GET", "/api/v1/objects/" + apt28 + "/graph"},
		{"GET", "/api/v1/attack/matrix"},
		{"POST", "/api/v1/patterns/validate"},
		{"POST", "/api/v1/indicators"},
		{"POST", "/api/v1/objects/" + apt28 + "/notes"},
		{"POST", "/api/v1/objects/" + apt28 + "/opinions"},
		{"POST", "/api/v1/objects/" + apt28 + "/labels"},
		{"POST", "/api/v1/reports"},
	}
	for _, rt := range routes {
		for _, role := range []entente.Role{entente.RoleSensor, entente.RolePartner} {
			var body any
			if rt.method == "POST" {
				body = map[string]any{}
			}
			if r := e.api(rt.method, rt.path, role, body); r.status != http.StatusForbidden {
				t.Errorf("%s %s as %s: %d, want 403", rt.method, rt.path, role, r.status)
			}
		}
		if r := e.do(req{method: rt.method, path: rt.path, key: "not-a-key"}); r.status != http.StatusUnauthorized {
			t.Errorf("%s %s with a bad key: %d, want 401", rt.method, rt.path, r.status)
		}
	}
}

// TestObjectView checks an object page: titled by name, its markings,
// its source, its relationships with their ends' titles, its versions.
func TestObjectView(t *testing.T) {
	e := workbenchEnv(t)
	r := e.api("GET", "/api/v1/objects/"+apt28, entente.RoleAnalyst, nil)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var v search.ObjectView
	r.json(t, &v)
	if v.Title != "APT28" || v.Type != "intrusion-set" || v.TLP != "amber" || len(v.Versions) != 1 || len(v.Rels.Out) < 50 {
		t.Errorf("view: title %q type %q tlp %q, %d versions, %d relationships out", v.Title, v.Type, v.TLP, len(v.Versions), len(v.Rels.Out))
	}
	if len(v.Sources) != 1 || v.Sources[0].ID != attackIdent || v.Sources[0].Name != "The MITRE Corporation" {
		t.Errorf("sources: %+v", v.Sources)
	}
	i := slices.IndexFunc(v.Rels.Out, func(o search.OutRel) bool { return o.Target.ID == spearphish })
	if i < 0 || v.Rels.Out[i].RelationshipType != "uses" || v.Rels.Out[i].Target.Title != "Spearphishing Attachment" {
		t.Errorf("the relationship to Spearphishing Attachment: %+v", v.Rels.Out)
	}
	// And from the other end.
	r = e.api("GET", "/api/v1/objects/"+spearphish, entente.RoleAnalyst, nil)
	r.json(t, &v)
	if !slices.ContainsFunc(v.Rels.In, func(in search.InRel) bool { return in.Source.ID == apt28 && in.Source.Title == "APT28" }) {
		t.Errorf("relationships in: %+v", v.Rels.In)
	}
	for _, tc := range []struct {
		role   entente.Role
		id     string
		status int
	}{
		{entente.RoleAnalyst, hiddenIntSet, http.StatusNotFound},
		{entente.RoleAdmin, hiddenIntSet, http.StatusOK},
		{entente.RoleAnalyst, "intrusion-set--00000000-0000-4000-8000-000000000000", http.StatusNotFound},
		{entente.RoleAnalyst, "not-an-id", http.StatusBadRequest},
	} {
		if r := e.api("GET", "/api/v1/objects/"+tc.id, tc.role, nil); r.status != tc.status {
			t.Errorf("GET %s as %s: %d, want %d", tc.id, tc.role, r.status, tc.status)
		}
	}
}

// TestIndicatorLifecycle creates an indicator with a broken pattern (the
// column of the fault is answered), fixes it, finds it by its value,
// reads it (TLP:CLEAR shown as clear), edits it into a second version
// whose change is listed, labels it, and annotates it.
func TestIndicatorLifecycle(t *testing.T) {
	e := workbenchEnv(t)
	// The pattern checked as one types.
	for _, tc := range []struct {
		pattern string
		ok      bool
		column  int
	}{
		{"[ipv4-addr:value = '203.0.113.9']", true, 0},
		{"[ipv4-addr:value = '203.0.113.9'", false, 32},
		{"[ipv4-addr:value = ]", false, 19},
		{"[ipv4-addr:value = '203.0.113.9' AND]", false, 36},
		{"", false, 0},
	} {
		r := e.api("POST", "/api/v1/patterns/validate", entente.RoleAnalyst, map[string]string{"pattern": tc.pattern})
		var pc httpapi.PatternCheck
		r.json(t, &pc)
		if r.status != http.StatusOK || pc.OK != tc.ok || (!tc.ok && (pc.Error == "" || pc.Column != tc.column)) {
			t.Errorf("validate %q: %d %+v, want ok=%v column %d", tc.pattern, r.status, pc, tc.ok, tc.column)
		}
	}
	bad := map[string]any{"name": "C2 of the week", "pattern": "[ipv4-addr:value = '203.0.113.9'", "tlp": "clear", "labels": []string{"c2"}}
	r := e.api("POST", "/api/v1/indicators", entente.RoleAnalyst, bad)
	var fe httpapi.FieldError
	r.json(t, &fe)
	if r.status != http.StatusBadRequest || fe.Field != "pattern" || fe.Column != 32 || fe.Error == "" {
		t.Fatalf("bad pattern: %d %s", r.status, r.body)
	}
	good := bad
	good["pattern"] = "[ipv4-addr:value = '203.0.113.9']"
	r = e.api("POST", "/api/v1/indicators", entente.RoleAnalyst, good)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created node.Created
	r.json(t, &created)
	if !strings.HasPrefix(created.ID, "indicator--") {
		t.Fatalf("created %+v", created)
	}
	page := e.find(t, entente.RoleAnalyst, "q=203.0.113.9")
	if ids := resultIDs(page); len(ids) != 1 || ids[0] != created.ID || page.Results[0].TLP != "clear" || page.Results[0].Title != "C2 of the week" {
		t.Fatalf("search by value: %+v", page.Results)
	}
	// Edit: a second version.
	edit := map[string]any{"id": created.ID, "name": "C2 of last week", "pattern": "[ipv4-addr:value = '203.0.113.9']", "tlp": "clear"}
	if r := e.api("POST", "/api/v1/indicators", entente.RoleAnalyst, edit); r.status != http.StatusCreated {
		t.Fatalf("edit: %d %s", r.status, r.body)
	}
	if r := e.api("POST", "/api/v1/labels", entente.RoleAnalyst, nil); r.status != http.StatusNotFound {
		t.Errorf("an unknown route: %d", r.status)
	}
	if r := e.api("POST", "/api/v1/objects/"+created.ID+"/labels", entente.RoleAnalyst, map[string]any{"add": []string{"reviewed"}, "remove": []string{"c2"}}); r.status != http.StatusCreated {
		t.Fatalf("labels: %d %s", r.status, r.body)
	}
	r = e.api("GET", "/api/v1/objects/"+created.ID, entente.RoleAnalyst, nil)
	var v search.ObjectView
	r.json(t, &v)
	if v.Title != "C2 of last week" || v.TLP != "clear" || len(v.Markings) != 1 || v.Markings[0].Name != "TLP:CLEAR" || v.ValidFrom == nil || len(v.Versions) != 3 {
		t.Fatalf("view: %s", r.body)
	}
	changed := func(ver search.VersionDiff, field string) bool {
		return slices.ContainsFunc(ver.Changes, func(c search.Change) bool { return c.Field == field })
	}
	if !changed(v.Versions[1], "name") || changed(v.Versions[1], "pattern") || !changed(v.Versions[2], "labels") {
		t.Errorf("versions: %+v", v.Versions)
	}
	var labels struct {
		Labels []string `json:"labels"`
	}
	_ = json.Unmarshal(v.Object, &labels)
	if !slices.Equal(labels.Labels, []string{"reviewed"}) {
		t.Errorf("labels after the change: %v", labels.Labels)
	}
	// Another organisation's object gets a note carrying the labels.
	r = e.api("POST", "/api/v1/objects/"+apt28+"/labels", entente.RoleAnalyst, map[string]any{"add": []string{"priority"}})
	var note node.Created
	r.json(t, &note)
	if r.status != http.StatusCreated || !strings.HasPrefix(note.ID, "note--") {
		t.Errorf("labels on ATT&CK: %d %s", r.status, r.body)
	}
	// Notes, opinions, reports; unknown objects are a clear 404.
	for _, tc := range []struct {
		path   string
		body   any
		status int
		prefix string
	}{
		{"/api/v1/objects/" + created.ID + "/notes", map[string]any{"content": "Seen in the phishing wave of May.", "abstract": "phishing wave"}, 201, "note--"},
		{"/api/v1/objects/" + created.ID + "/opinions", map[string]any{"opinion": "agree", "explanation": "confirmed by our sensors"}, 201, "opinion--"},
		{"/api/v1/objects/" + created.ID + "/opinions", map[string]any{"opinion": "maybe"}, 400, ""},
		{"/api/v1/objects/" + created.ID + "/notes", map[string]any{"content": ""}, 400, ""},
		{"/api/v1/objects/indicator--00000000-0000-4000-8000-000000000000/notes", map[string]any{"content": "x"}, 404, ""},
		{"/api/v1/objects/" + hiddenIntSet + "/notes", map[string]any{"content": "x"}, 404, ""},
		{"/api/v1/reports", map[string]any{"type": "report", "name": "May phishing wave", "object_refs": []string{created.ID, apt28}}, 201, "report--"},
		{"/api/v1/reports", map[string]any{"type": "incident", "name": "Phishing at the ministry", "object_refs": []string{created.ID}}, 201, "incident--"},
		{"/api/v1/reports", map[string]any{"type": "campaign", "name": "x"}, 400, ""},
		{"/api/v1/reports", map[string]any{"type": "report", "name": "x", "object_refs": []string{hiddenIntSet}}, 404, ""},
	} {
		r := e.api("POST", tc.path, entente.RoleAnalyst, tc.body)
		if r.status != tc.status {
			t.Errorf("POST %s %v: %d %s, want %d", tc.path, tc.body, r.status, r.body, tc.status)
			continue
		}
		var c node.Created
		if tc.prefix != "" {
			r.json(t, &c)
			if !strings.HasPrefix(c.ID, tc.prefix) {
				t.Errorf("POST %s: created %s", tc.path, c.ID)
			}
		}
	}
	// The note and the opinion are found, and refer to the indicator.
	if page := e.find(t, entente.RoleAnalyst, "q=phishing+wave&type=note"); len(page.Results) != 1 {
		t.Errorf("the note is not found: %+v", page.Results)
	}
	// Another organisation's indicator cannot be edited.
	if r := e.api("POST", "/api/v1/indicators", entente.RoleAnalyst, map[string]any{"id": phishing, "name": "x", "pattern": "[ipv4-addr:value = '203.0.113.9']"}); r.status != http.StatusBadRequest && r.status != http.StatusForbidden {
		t.Errorf("editing ATT&CK's technique: %d %s", r.status, r.body)
	}
}

// TestGraphAndMatrix checks the relationship graph around APT28 and the
// ATT&CK matrix filtered by it, before and after an indicator of a
// technique is added.
func TestGraphAndMatrix(t *testing.T) {
	e := workbenchEnv(t)
	r := e.api("GET", "/api/v1/objects/"+apt28+"/graph?depth=2", entente.RoleAnalyst, nil)
	var g search.Graph
	r.json(t, &g)
	if r.status != http.StatusOK || len(g.Nodes) < 50 || g.Truncated || g.Nodes[0].ID != apt28 || g.Nodes[0].Title != "APT28" {
		t.Fatalf("graph: %d, %d nodes, truncated %v", r.status, len(g.Nodes), g.Truncated)
	}
	if !slices.Contains(g.Edges, search.GraphEdge{Source: apt28, Target: spearphish, Type: "uses"}) {
		t.Errorf("graph lacks APT28 uses Spearphishing Attachment")
	}
	nodes := map[string]bool{}
	for _, n := range g.Nodes {
		nodes[n.ID] = true
	}
	for _, ed := range g.Edges {
		if !nodes[ed.Source] || !nodes[ed.Target] {
			t.Errorf("edge %+v ends outside the graph", ed)
		}
	}
	r = e.api("GET", "/api/v1/objects/"+apt28+"/graph?limit=5", entente.RoleAnalyst, nil)
	r.json(t, &g)
	if len(g.Nodes) != 5 || !g.Truncated {
		t.Errorf("graph limit 5: %d nodes, truncated %v", len(g.Nodes), g.Truncated)
	}
	for _, bad := range []string{"depth=3", "limit=5001", "limit=x"} {
		if r := e.api("GET", "/api/v1/objects/"+apt28+"/graph?"+bad, entente.RoleAnalyst, nil); r.status != http.StatusBadRequest {
			t.Errorf("graph?%s: %d", bad, r.status)
		}
	}

	matrix := func(filter string) search.Matrix {
		t.Helper()
		path := "/api/v1/attack/matrix"
		if filter != "" {
			path += "?filter=" + filter
		}
		r := e.api("GET", path, entente.RoleAnalyst, nil)
		if r.status != http.StatusOK {
			t.Fatalf("matrix: %d %s", r.status, r.body)
		}
		var m search.Matrix
		r.json(t, &m)
		return m
	}
	cell := func(m search.Matrix, tactic, technique string) search.Technique {
		t.Helper()
		for _, tc := range m.Tactics {
			if tc.ID != tactic {
				continue
			}
			for _, te := range tc.Techniques {
				if te.ID == technique {
					return te
				}
			}
		}
		t.Fatalf("no %s under %s", technique, tactic)
		return search.Technique{}
	}
	m := matrix(apt28)
	if len(m.Tactics) != 14 || m.Tactics[0].ShortName != "reconnaissance" {
		t.Errorf("%d tactics, the first %+v", len(m.Tactics), m.Tactics[0].ShortName)
	}
	ph := cell(m, initialAcc, phishing)
	if ph.ExternalID != "T1566" || !ph.InFilter || ph.Indicators != 0 || len(ph.Subtechniques) < 3 {
		t.Errorf("Phishing: %+v", ph)
	}
	if !cell(matrix(""), initialAcc, phishing).InFilter == false {
		t.Errorf("unfiltered matrix marks Phishing")
	}
	// An indicator of Spearphishing Attachment counts under Phishing.
	r = e.api("POST", "/api/v1/indicators", entente.RoleAnalyst, map[string]any{"name": "Lure document", "pattern": "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']"})
	var ind node.Created
	r.json(t, &ind)
	rel := fmt.Sprintf(`{"type":"relationship","spec_version":"2.1","id":"relationship--6c1a3a6e-0000-4000-8000-000000000099","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","relationship_type":"indicates","source_ref":%q,"target_ref":%q}`, ind.ID, spearphish)
	if st, err := e.svc.AddObjects(context.Background(), node.LocalAdmin(org), node.CollectionIntel, []json.RawMessage{json.RawMessage(rel)}); err != nil || st.FailureCount > 0 {
		t.Fatalf("add the relationship: %v %+v", err, st)
	}
	if err := e.svc.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ph := cell(matrix(apt28), initialAcc, phishing); ph.Indicators != 1 {
		t.Errorf("after an indicator of T1566.001: Phishing %+v", ph)
	}
}

// TestAccessTableEnforced checks, for every route of the route/role
// table, that each role it does not list is refused with 403.
func TestAccessTableEnforced(t *testing.T) {
	e := newEnv(t)
	for _, a := range httpapi.AccessTable() {
		method, path, _ := strings.Cut(a.Pattern, " ")
		path = strings.TrimSuffix(path, "{$}")
		path = strings.NewReplacer("{id}", "indicator--8e2e2d2b-17d4-4cbf-938f-000000000001", "{partner}", "identity--8e2e2d2b-17d4-4cbf-938f-000000000001").Replace(path)
		for _, role := range []entente.Role{entente.RoleAdmin, entente.RoleAnalyst, entente.RoleSensor, entente.RolePartner} {
			if slices.Contains(a.Roles, role) {
				continue
			}
			var body any
			if method == "POST" || method == "PUT" {
				body = map[string]any{}
			}
			if r := e.api(method, path, role, body); r.status != http.StatusForbidden {
				t.Errorf("%s as %s: %d, want 403", a.Pattern, role, r.status)
			}
		}
	}
}
