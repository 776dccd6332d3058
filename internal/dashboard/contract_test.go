package dashboard_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/entente-cti/entente/internal/stix/pattern"
	"github.com/entente-cti/entente/internal/taxonomy"
)

// contractAPI serves the workbench's part of the node API (/api/v1:
// search, objects, graph, ATT&CK matrix, pattern validation, indicators,
// reports, notes, opinions, labels, false positives) as issue 17's
// contract describes it, from a few objects in memory, with the node's
// own pattern parser. The browser tests drive the pages against it, so
// that they test the pages whatever data the node holds; the tests
// against a real node (workbench_test.go) check the two agree. Every
// request must carry the signed-in key, as HTTP Basic's password: the
// dashboard forwards with it.
type contractAPI struct {
	t   testing.TB
	key string

	mu      sync.Mutex
	objects map[string]map[string]any
	order   []string
	posts   []contractPost
}

// contractPost is a write the pages made.
type contractPost struct {
	Path string
	Body map[string]any
}

// hub is the malware with hubNeighbours neighbours, for the graph.
const (
	hub           = "malware--00000000-0000-4000-8000-00000000cafe"
	hubNeighbours = 1000
	apt28         = "intrusion-set--bef4c620-0787-42a8-a96d-b7eb6e85917c"
	xagent        = "malware--5a3a31fe-5a8f-48e1-bff0-a753e5b1be70"
	phishing      = "attack-pattern--a62a8db3-f23a-4d8f-afd6-9dbc77e7813b"
	badIndicator  = "indicator--0a1b2c3d-0000-4000-8000-0000000000aa"
)

func newContractAPI(t testing.TB, key string) *contractAPI {
	c := &contractAPI{t: t, key: key, objects: map[string]map[string]any{}}
	add := func(o map[string]any) {
		c.objects[o["id"].(string)] = o
		c.order = append(c.order, o["id"].(string))
	}
	add(map[string]any{"type": "intrusion-set", "id": apt28, "name": "APT28", "aliases": []any{"Fancy Bear", "Sofacy"}, "description": "APT28 is a threat group attributed to Russia's GRU.", "modified": "2024-04-11T00:00:00Z"})
	add(map[string]any{"type": "malware", "id": xagent, "name": "X-Agent", "description": "X-Agent is a trojan used by APT28.", "modified": "2024-04-11T00:00:00Z", "labels": []any{"trojan"}})
	add(map[string]any{"type": "attack-pattern", "id": phishing, "name": "Phishing", "description": "Adversaries may send phishing messages.", "modified": "2024-04-11T00:00:00Z"})
	add(map[string]any{"type": "malware", "id": hub, "name": "Hub", "description": "A malware with a thousand indicators.", "modified": "2024-04-11T00:00:00Z"})
	add(map[string]any{"type": "indicator", "id": badIndicator, "name": "X-Agent C2", "pattern": "[ipv4-addr:value = '198.51.100.7']", "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z", "modified": "2026-11-02T00:00:00Z"})
	for i := range 30 {
		add(map[string]any{"type": "intrusion-set", "id": fmt.Sprintf("intrusion-set--00000000-0000-4000-8000-%012d", i), "name": fmt.Sprintf("Group %02d", i), "modified": "2024-01-01T00:00:00Z"})
	}
	return c
}

// posted returns the writes to paths ending in suffix.
func (c *contractAPI) posted(suffix string) []contractPost {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []contractPost
	for _, p := range c.posts {
		if strings.HasSuffix(p.Path, suffix) {
			out = append(out, p)
		}
	}
	return out
}

func (c *contractAPI) title(o map[string]any) string {
	for _, k := range []string{"name", "value"} {
		if s, ok := o[k].(string); ok {
			return s
		}
	}
	return o["id"].(string)
}

func (c *contractAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pass, ok := r.BasicAuth(); !ok || pass != c.key {
		c.t.Errorf("%s %s reached the API without the session's key", r.Method, r.URL.Path)
		writeAPIJSON(w, http.StatusUnauthorized, map[string]any{"error": "a valid API key is required"})
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/api/v1/")
	seg := strings.Split(path, "/")
	var body map[string]any
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeAPIJSON(w, http.StatusBadRequest, map[string]any{"error": "the body is not JSON"})
			return
		}
		c.mu.Lock()
		c.posts = append(c.posts, contractPost{Path: path, Body: body})
		c.mu.Unlock()
	}
	switch {
	case r.Method == "GET" && path == "collections":
		writeAPIJSON(w, http.StatusOK, []map[string]any{
			{"id": "7d7cbd8c-0000-4000-8000-000000000001", "alias": "intel", "title": "Intelligence", "read_roles": []string{"analyst"}, "write_roles": []string{"analyst"}},
			{"id": "7d7cbd8c-0000-4000-8000-000000000002", "alias": "attack", "title": "ATT&CK", "read_roles": []string{"analyst"}, "write_roles": []string{}},
		})
	case r.Method == "GET" && path == "search":
		c.search(w, r)
	case r.Method == "GET" && path == "taxonomies":
		set, err := taxonomy.Builtin()
		if err != nil {
			c.t.Error(err)
		}
		writeAPIJSON(w, http.StatusOK, map[string]any{"taxonomies": set.Taxonomies()})
	case r.Method == "GET" && len(seg) == 2 && seg[0] == "objects":
		c.object(w, seg[1])
	case r.Method == "GET" && len(seg) == 3 && seg[0] == "objects" && seg[2] == "graph":
		c.graph(w, seg[1])
	case r.Method == "POST" && len(seg) == 3 && seg[0] == "objects":
		if _, ok := c.objects[seg[1]]; !ok {
			writeAPIJSON(w, http.StatusNotFound, map[string]any{"error": "no such object"})
			return
		}
		switch seg[2] {
		case "notes", "opinions", "labels", "false-positive":
			writeAPIJSON(w, http.StatusOK, map[string]any{"id": seg[2] + "--done"})
		default:
			http.NotFound(w, r)
		}
	case r.Method == "GET" && path == "attack/matrix":
		c.matrix(w, r.URL.Query().Get("filter"))
	case r.Method == "POST" && path == "patterns/validate":
		ok, msg, col := validate(fmt.Sprint(body["pattern"]))
		writeAPIJSON(w, http.StatusOK, map[string]any{"ok": ok, "error": msg, "column": col})
	case r.Method == "POST" && path == "indicators":
		if ok, msg, col := validate(fmt.Sprint(body["pattern"])); !ok {
			writeAPIJSON(w, http.StatusBadRequest, map[string]any{"error": msg, "field": "pattern", "column": col})
			return
		}
		id := "indicator--0a1b2c3d-0000-4000-8000-0000000000bb"
		c.mu.Lock()
		c.objects[id] = map[string]any{"type": "indicator", "id": id, "name": body["name"], "pattern": body["pattern"], "modified": "2026-12-06T00:00:00Z"}
		c.order = append(c.order, id)
		c.mu.Unlock()
		writeAPIJSON(w, http.StatusCreated, map[string]any{"id": id})
	case r.Method == "POST" && path == "reports":
		writeAPIJSON(w, http.StatusCreated, map[string]any{"id": apt28})
	default:
		writeAPIJSON(w, http.StatusNotFound, map[string]any{"title": "Not Found", "description": "there is no such resource"})
	}
}

// validate checks a pattern with the node's parser: the error and its
// 0-based column.
func validate(p string) (bool, string, int) {
	_, err := pattern.Parse(p)
	if err == nil {
		return true, "", 0
	}
	var se *pattern.SyntaxError
	if errors.As(err, &se) {
		return false, se.Msg, se.Column
	}
	return false, err.Error(), 0
}

func (c *contractAPI) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	text, typ := strings.ToLower(q.Get("q")), q.Get("type")
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 {
		limit = 50
	}
	from, _ := strconv.Atoi(q.Get("cursor"))
	c.mu.Lock()
	defer c.mu.Unlock()
	var hits []map[string]any
	for _, id := range c.order {
		o := c.objects[id]
		if typ != "" && o["type"] != typ {
			continue
		}
		all, _ := json.Marshal(o)
		if text != "" && !strings.Contains(strings.ToLower(string(all)), text) {
			continue
		}
		hits = append(hits, map[string]any{"id": id, "type": o["type"], "title": c.title(o), "description": o["description"], "tlp": "clear",
			"collection": "7d7cbd8c-0000-4000-8000-000000000002", "created_by_ref": "", "modified": o["modified"], "score": 1.5})
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i]["title"].(string) < hits[j]["title"].(string) })
	next := ""
	if from > len(hits) {
		from = len(hits)
	}
	hits = hits[from:]
	if len(hits) > limit {
		hits, next = hits[:limit], strconv.Itoa(from+limit)
	}
	if hits == nil {
		hits = []map[string]any{}
	}
	writeAPIJSON(w, http.StatusOK, map[string]any{"results": hits, "next": next})
}

func (c *contractAPI) object(w http.ResponseWriter, id string) {
	c.mu.Lock()
	o, ok := c.objects[id]
	c.mu.Unlock()
	if !ok {
		writeAPIJSON(w, http.StatusNotFound, map[string]any{"error": "no object " + id})
		return
	}
	ref := func(id string) map[string]any {
		return map[string]any{"id": id, "type": strings.Split(id, "--")[0], "title": c.title(c.objects[id])}
	}
	d := map[string]any{
		"object": o, "title": c.title(o), "tlp": "clear", "residency": "",
		"markings":   []map[string]any{{"id": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", "name": "TLP:CLEAR"}},
		"sources":    []map[string]any{{"id": "identity--c78cb6e5-0c4b-4611-8297-d1b8b55e40b5", "name": "The MITRE Corporation"}},
		"confidence": 80, "valid_from": o["valid_from"], "valid_until": nil, "revoked": false,
		"warninglists":  []any{},
		"sightings":     map[string]any{"by_country": map[string]int{}, "by_day": []any{}},
		"alerts":        []any{},
		"relationships": map[string]any{"out": []any{}, "in": []any{}},
		"versions":      []map[string]any{{"modified": o["modified"], "changes": []any{}}},
	}
	switch id {
	case apt28:
		d["relationships"] = map[string]any{
			"out": []map[string]any{{"id": "relationship--1", "relationship_type": "uses", "target": ref(xagent)}, {"id": "relationship--2", "relationship_type": "uses", "target": ref(phishing)}},
			"in":  []any{},
		}
		d["versions"] = []map[string]any{
			{"modified": "2024-04-11T00:00:00Z", "changes": []map[string]any{{"field": "description", "from": "APT28 is a threat group.", "to": o["description"]}, {"field": "aliases", "from": nil, "to": o["aliases"]}}},
			{"modified": "2017-05-31T21:31:48Z", "changes": []any{}},
		}
	case badIndicator:
		d["tlp"] = "amber"
		d["sightings"] = map[string]any{"by_country": map[string]int{"FR": 3, "DE": 1}, "by_day": []map[string]any{{"day": "2026-11-02", "count": 3}, {"day": "2026-11-03", "count": 1}}}
		d["alerts"] = []map[string]any{{"id": "x-entente-alert--0a1b2c3d-0000-4000-8000-000000000001", "tier": "national", "status": "new"}}
		d["warninglists"] = []any{"List of RFC 5737 documentation addresses"}
		d["relationships"] = map[string]any{"out": []map[string]any{{"id": "relationship--3", "relationship_type": "indicates", "target": ref(xagent)}}, "in": []any{}}
	}
	writeAPIJSON(w, http.StatusOK, d)
}

func (c *contractAPI) graph(w http.ResponseWriter, id string) {
	nodes := []map[string]any{{"id": id, "type": strings.Split(id, "--")[0], "title": id, "tlp": "clear"}}
	var edges []map[string]any
	if o, ok := c.objects[id]; ok {
		nodes[0]["title"] = c.title(o)
	}
	n := 12
	if id == hub {
		n = hubNeighbours
	}
	for i := range n {
		nid := fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", i, len(id))
		nodes = append(nodes, map[string]any{"id": nid, "type": "indicator", "title": fmt.Sprintf("198.51.%d.%d", i/256, i%256), "tlp": "amber"})
		edges = append(edges, map[string]any{"source": nid, "target": id, "type": "indicates"})
		if i%50 == 0 {
			rid := fmt.Sprintf("report--%08x-0000-4000-8000-000000000001", i)
			nodes = append(nodes, map[string]any{"id": rid, "type": "report", "title": fmt.Sprintf("Report %d", i), "tlp": "green"})
			edges = append(edges, map[string]any{"source": rid, "target": nid, "type": "object"})
		}
	}
	writeAPIJSON(w, http.StatusOK, map[string]any{"nodes": nodes, "edges": edges, "truncated": false})
}

// matrix is 14 tactics of 40 techniques; APT28 uses every seventh.
func (c *contractAPI) matrix(w http.ResponseWriter, filter string) {
	var tactics []map[string]any
	for ti := range 14 {
		var techs []map[string]any
		for k := range 40 {
			n := ti*40 + k
			id := fmt.Sprintf("attack-pattern--00000000-0000-4000-8000-%012d", n)
			if n == 0 {
				id = phishing
			}
			techs = append(techs, map[string]any{"id": id, "external_id": fmt.Sprintf("T%04d", 1000+n), "name": fmt.Sprintf("Technique %d", n),
				"indicators": n % 3, "sightings": n % 5 / 4, "alerts": n % 11 / 10, "in_filter": filter != "" && n%7 == 0})
		}
		tactics = append(tactics, map[string]any{"id": fmt.Sprintf("x-mitre-tactic--%d", ti), "shortname": fmt.Sprintf("tactic-%d", ti), "name": fmt.Sprintf("Tactic %d", ti), "techniques": techs})
	}
	writeAPIJSON(w, http.StatusOK, map[string]any{"tactics": tactics})
}

func writeAPIJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
