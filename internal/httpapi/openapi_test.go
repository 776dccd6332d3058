package httpapi_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/httpapi"
)

// apiDoc is the OpenAPI description served at /api/v1/openapi.json, as
// the tests read it.
type apiDoc struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas   map[string]json.RawMessage `json:"schemas"`
		Responses map[string]json.RawMessage `json:"responses"`
	} `json:"components"`
}

type apiOperation struct {
	Roles       []string `json:"x-roles"`
	RequestBody *struct {
		Content map[string]struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]json.RawMessage `json:"responses"`
}

var loadDoc = sync.OnceValues(func() (*apiDoc, error) {
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	var d apiDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	return &d, nil
})

func openAPI(t testing.TB) *apiDoc {
	t.Helper()
	d, err := loadDoc()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// operation finds the operation serving method and a concrete path.
func (d *apiDoc) operation(method, path string) (string, *apiOperation, bool) {
	// The template with the fewest parameters wins, as in the mux
	// (/api/v1/alerts/stats before /api/v1/alerts/{id}).
	best, params := "", -1
	for tmpl := range d.Paths {
		if n := strings.Count(tmpl, "{"); templateMatch(tmpl, path) && (params < 0 || n < params) {
			best, params = tmpl, n
		}
	}
	if params >= 0 {
		tmpl, ops := best, d.Paths[best]
		raw, ok := ops[strings.ToLower(method)]
		if !ok {
			return tmpl, nil, false
		}
		var op apiOperation
		if json.Unmarshal(raw, &op) != nil {
			return tmpl, nil, false
		}
		return tmpl, &op, true
	}
	return "", nil, false
}

// templateMatch reports whether path is an instance of the path
// template tmpl ("/api/v1/objects/{id}").
func templateMatch(tmpl, path string) bool {
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if strings.HasPrefix(ts[i], "{") && strings.HasSuffix(ts[i], "}") {
			if ps[i] == "" {
				return false
			}
			continue
		}
		if ts[i] != ps[i] {
			return false
		}
	}
	return true
}

// resolve follows a $ref.
func (d *apiDoc) resolve(raw json.RawMessage) json.RawMessage {
	for range 10 {
		var r struct {
			Ref string `json:"$ref"`
		}
		if json.Unmarshal(raw, &r) != nil || r.Ref == "" {
			return raw
		}
		name := r.Ref[strings.LastIndex(r.Ref, "/")+1:]
		switch {
		case strings.HasPrefix(r.Ref, "#/components/schemas/"):
			raw = d.Components.Schemas[name]
		case strings.HasPrefix(r.Ref, "#/components/responses/"):
			raw = d.Components.Responses[name]
		default:
			return raw
		}
	}
	return raw
}

// validate checks v against a JSON Schema of the subset the description
// uses: $ref, type (one or a list), properties, required,
// additionalProperties, items, enum, minimum, maximum, format date-time.
// It returns the first fault, with its location.
func (d *apiDoc) validate(schema json.RawMessage, v any, at string) error {
	schema = d.resolve(schema)
	var s struct {
		Type                 json.RawMessage            `json:"type"`
		Properties           map[string]json.RawMessage `json:"properties"`
		Required             []string                   `json:"required"`
		AdditionalProperties json.RawMessage            `json:"additionalProperties"`
		Items                json.RawMessage            `json:"items"`
		Enum                 []any                      `json:"enum"`
		Minimum, Maximum     *float64
		Format               string `json:"format"`
	}
	if err := json.Unmarshal(schema, &s); err != nil {
		return fmt.Errorf("%s: bad schema %s: %v", at, schema, err)
	}
	if s.Type != nil {
		var types []string
		if json.Unmarshal(s.Type, &types) != nil {
			var one string
			_ = json.Unmarshal(s.Type, &one)
			types = []string{one}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return hasType(v, t) }) {
			return fmt.Errorf("%s: %s is not of type %v", at, short(v), types)
		}
	}
	if len(s.Enum) > 0 && !slices.ContainsFunc(s.Enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		return fmt.Errorf("%s: %s is not one of %v", at, short(v), s.Enum)
	}
	if n, ok := v.(float64); ok {
		if s.Minimum != nil && n < *s.Minimum || s.Maximum != nil && n > *s.Maximum {
			return fmt.Errorf("%s: %v is out of range", at, n)
		}
	}
	if str, ok := v.(string); ok && s.Format == "date-time" {
		if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
			return fmt.Errorf("%s: %q is not a date-time", at, str)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		for _, r := range s.Required {
			if _, ok := x[r]; !ok {
				return fmt.Errorf("%s: property %q is required", at, r)
			}
		}
		for k, val := range x {
			if ps, ok := s.Properties[k]; ok {
				if err := d.validate(ps, val, at+"."+k); err != nil {
					return err
				}
				continue
			}
			switch string(s.AdditionalProperties) {
			case "", "true":
			case "false":
				return fmt.Errorf("%s: property %q is not in the description", at, k)
			default:
				if err := d.validate(s.AdditionalProperties, val, at+"."+k); err != nil {
					return err
				}
			}
		}
	case []any:
		if s.Items != nil {
			for i, it := range x {
				if err := d.validate(s.Items, it, at+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func hasType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		n, ok := v.(float64)
		return ok && n == math.Trunc(n)
	case "null":
		return v == nil
	}
	return false
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// checkExchange checks a node API request's body (when it succeeded) and
// its response's body against the description: the operation exists,
// and bodies of described statuses and media types match their schemas.
func checkExchange(t testing.TB, method, path string, reqBody []byte, status int, contentType string, respBody []byte) {
	t.Helper()
	if !strings.HasPrefix(path, "/api/v1") || strings.HasPrefix(path, httpapi.BlindPath) {
		return
	}
	d := openAPI(t)
	path, _, _ = strings.Cut(path, "?")
	tmpl, op, ok := d.operation(method, path)
	if !ok {
		if status < 300 {
			t.Errorf("OpenAPI: %s %s (%d) is not described", method, path, status)
		}
		return
	}
	if status < 300 && op.RequestBody != nil && len(reqBody) > 0 {
		if c, ok := op.RequestBody.Content["application/json"]; ok {
			var v any
			if json.Unmarshal(reqBody, &v) == nil {
				if err := d.validate(c.Schema, v, "request"); err != nil {
					t.Errorf("OpenAPI: %s %s: the request body does not match: %v", method, tmpl, err)
				}
			}
		}
	}
	raw, ok := op.Responses[strconv.Itoa(status)]
	if !ok {
		return
	}
	var resp struct {
		Content map[string]struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"content"`
	}
	_ = json.Unmarshal(d.resolve(raw), &resp)
	mt, _, _ := strings.Cut(contentType, ";")
	for name, c := range resp.Content {
		if n, _, _ := strings.Cut(name, ";"); n != mt {
			continue
		}
		var v any
		if err := json.Unmarshal(respBody, &v); err != nil {
			t.Errorf("OpenAPI: %s %s (%d): the body is not JSON: %v", method, tmpl, status, err)
			return
		}
		if err := d.validate(c.Schema, v, "response"); err != nil {
			t.Errorf("OpenAPI: %s %s (%d): the response does not match the description: %v", method, tmpl, status, err)
		}
		return
	}
	if len(resp.Content) > 0 && len(respBody) > 0 {
		t.Errorf("OpenAPI: %s %s (%d): media type %q is not described", method, tmpl, status, contentType)
	}
}

// TestOpenAPICoversTheMux checks that every route the mux serves under
// /api/v1 is described, that every described path and method is served,
// and that each operation's roles are those of the route/role table.
func TestOpenAPICoversTheMux(t *testing.T) {
	e := newEnv(t)
	h := httpapi.New(e.svc, httpapi.Options{}, nil, nil)
	patterns, err := httpapi.Patterns(h)
	if err != nil {
		t.Fatal(err)
	}
	d := openAPI(t)
	served := map[string]bool{}
	for _, p := range patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok || !strings.HasPrefix(path, "/api/v1/") {
			continue
		}
		path = strings.TrimSuffix(path, "{$}")
		key := strings.ToLower(method) + " " + path
		served[key] = true
		if _, ok := d.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("the mux serves %s, which the OpenAPI description lacks", p)
		}
	}
	roles := map[string][]string{}
	for _, a := range httpapi.AccessTable() {
		method, path, _ := strings.Cut(a.Pattern, " ")
		for _, r := range a.Roles {
			roles[strings.ToLower(method)+" "+strings.TrimSuffix(path, "{$}")] = append(roles[strings.ToLower(method)+" "+strings.TrimSuffix(path, "{$}")], string(r))
		}
	}
	for path, ops := range d.Paths {
		for method, raw := range ops {
			key := method + " " + path
			if !served[key] {
				t.Errorf("the OpenAPI description has %s %s, which the mux does not serve", strings.ToUpper(method), path)
			}
			var op apiOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(op.Roles, roles[key]) {
				t.Errorf("%s %s: x-roles %v, but the route/role table says %v", strings.ToUpper(method), path, op.Roles, roles[key])
			}
		}
	}
	if len(served) < 50 {
		t.Errorf("only %d node API routes found; the mux walk is broken", len(served))
	}
}

// TestOpenAPIServed checks that the description is served, parses, and
// is OpenAPI 3.1, and that /api/v1/ lists it.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	r := e.get("/api/v1/openapi.json")
	if r.status != http.StatusOK {
		t.Fatalf("GET openapi.json: %d %s", r.status, r.body)
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	r.json(t, &doc)
	if doc.OpenAPI != "3.1.0" || len(doc.Paths) < 40 {
		t.Errorf("openapi %q with %d paths", doc.OpenAPI, len(doc.Paths))
	}
	r = e.get("/api/v1/")
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/: %d %s", r.status, r.body)
	}
	var idx httpapi.APIIndex
	r.json(t, &idx)
	if idx.OpenAPI != "/api/v1/openapi.json" || !slices.ContainsFunc(idx.Links, func(l httpapi.APILink) bool {
		return l.Method == "GET" && l.Href == "/api/v1/search"
	}) {
		t.Errorf("index: %+v", idx)
	}
	if r := e.do(req{path: "/api/v1/"}); r.status != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/ without a key: %d", r.status)
	}
}

// TestValidatorRefuses checks that the schema check can fail.
func TestValidatorRefuses(t *testing.T) {
	d := openAPI(t)
	for _, tc := range []struct {
		schema string
		body   string
	}{
		{`{"$ref":"#/components/schemas/SearchPage"}`, `{"results":[]}`},
		{`{"$ref":"#/components/schemas/SearchPage"}`, `{"results":[{"id":"x"}],"next":""}`},
		{`{"$ref":"#/components/schemas/PatternCheck"}`, `{"ok":true,"error":"","column":1.5}`},
		{`{"$ref":"#/components/schemas/Graph"}`, `{"nodes":[],"edges":[],"truncated":false,"extra":1}`},
		{`{"$ref":"#/components/schemas/OpinionRequest"}`, `{"opinion":"maybe"}`},
	} {
		var v any
		if err := json.Unmarshal([]byte(tc.body), &v); err != nil {
			t.Fatal(err)
		}
		if err := d.validate(json.RawMessage(tc.schema), v, "body"); err == nil {
			t.Errorf("%s accepted %s", tc.schema, tc.body)
		}
	}
}
