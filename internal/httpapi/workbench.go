package httpapi

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/search"
	"github.com/entente-cti/entente/internal/stix"
)

// The analyst's workbench: search and browse, object pages, the
// relationship graph, the ATT&CK matrix, and the writes of analysts
// (indicators, notes, opinions, labels, reports), all as the principal,
// through the node service and so through the gate.

// openAPI is the OpenAPI 3.1 description of /api/v1, served at
// /api/v1/openapi.json.
//
//go:embed openapi.json
var openAPI []byte

// MaxSearchLimit is the largest page of GET /api/v1/search.
const MaxSearchLimit = search.MaxFindLimit

var (
	searchQuery = querySpec{params: []param{
		{name: "q", check: searchText},
		{name: "type", list: true, check: typeName},
		{name: "tlp", list: true, check: tlpLevel},
		{name: "collection", list: true, check: freeName},
		{name: "source", list: true, check: stixID("identity")},
		{name: "since", check: rfc3339},
		{name: "until", check: rfc3339},
		{name: "limit", check: upTo(MaxSearchLimit)},
		{name: "cursor", check: token},
	}}
	graphQuery = querySpec{params: []param{
		{name: "depth", check: oneOf("1", "2")},
		{name: "limit", check: upTo(search.MaxGraphLimit)},
	}}
	matrixQuery = querySpec{params: []param{{name: "filter", check: stixID("")}}}
)

func searchText(s string) error {
	if len(s) > 512 {
		return fmt.Errorf("is longer than 512 bytes")
	}
	return nil
}

func typeName(s string) error {
	if !validTypeName(s) {
		return fmt.Errorf("is not a STIX type name")
	}
	return nil
}

func tlpLevel(s string) error {
	if _, err := stix.ParseTLP(s); err != nil {
		return fmt.Errorf("is not a TLP level (clear, green, amber, amber+strict, red)")
	}
	return nil
}

func upTo(n int) func(string) error {
	return func(s string) error {
		if v, err := strconv.Atoi(s); err != nil || v < 1 || v > n {
			return fmt.Errorf("is not a whole number from 1 to %d", n)
		}
		return nil
	}
}

// listParam returns the comma-separated items of a list parameter.
func listParam(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for it := range strings.SplitSeq(v, ",") {
			if it = strings.TrimSpace(it); it != "" {
				out = append(out, it)
			}
		}
	}
	return out
}

// workbenchRoutes mounts the workbench's routes and the API's index and
// description.
func (h *handler) workbenchRoutes() {
	m := h.route()
	m.HandleFunc("GET /api/v1/{$}", h.apiIndex)
	m.HandleFunc("GET /api/v1/openapi.json", h.openAPIDoc)
	m.HandleFunc("GET /api/v1/search", h.find)
	m.HandleFunc("GET /api/v1/objects/{id}", h.objectView)
	m.HandleFunc("GET /api/v1/objects/{id}/graph", h.graph)
	m.HandleFunc("GET /api/v1/attack/matrix", h.matrix)
	m.HandleFunc("POST /api/v1/patterns/validate", h.validatePattern)
	m.HandleFunc("POST /api/v1/indicators", h.createIndicator)
	m.HandleFunc("POST /api/v1/objects/{id}/notes", h.addNote)
	m.HandleFunc("POST /api/v1/objects/{id}/opinions", h.addOpinion)
	m.HandleFunc("POST /api/v1/objects/{id}/labels", h.setLabels)
	m.HandleFunc("POST /api/v1/reports", h.createReport)
	m.HandleFunc("GET /api/v1/taxonomies", h.taxonomies)
	h.queries["GET /api/v1/search"] = searchQuery
	h.queries["GET /api/v1/objects/{id}/graph"] = graphQuery
	h.queries["GET /api/v1/attack/matrix"] = matrixQuery
}

// taxonomies serves GET /api/v1/taxonomies: the MISP taxonomies whose
// machine tags labels are checked against, for pickers.
func (h *handler) taxonomies(w http.ResponseWriter, r *http.Request) {
	ts, err := h.svc.Taxonomies(r.Context(), principal(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, map[string]any{"taxonomies": ts})
}

// APIIndex is the body of GET /api/v1/: what the API offers.
type APIIndex struct {
	Title   string    `json:"title"`
	OpenAPI string    `json:"openapi"`
	Docs    string    `json:"docs"`
	Links   []APILink `json:"links"`
}

// APILink is one route of the API.
type APILink struct {
	Method  string `json:"method"`
	Href    string `json:"href"`
	Summary string `json:"summary"`
}

func (h *handler) apiIndex(w http.ResponseWriter, r *http.Request) {
	var doc struct {
		Paths map[string]map[string]struct {
			Summary string `json:"summary"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		h.writeError(w, r, fmt.Errorf("read the API description: %w", err))
		return
	}
	idx := APIIndex{Title: "Entente node API", OpenAPI: "/api/v1/openapi.json", Docs: "docs/api.md", Links: []APILink{}}
	for _, path := range sortedKeys(doc.Paths) {
		for _, method := range sortedKeys(doc.Paths[path]) {
			if method == "parameters" {
				continue
			}
			idx.Links = append(idx.Links, APILink{Method: strings.ToUpper(method), Href: path, Summary: doc.Paths[path][method].Summary})
		}
	}
	h.writeAPI(w, r, http.StatusOK, idx)
}

func (h *handler) openAPIDoc(w http.ResponseWriter, r *http.Request) {
	writeBody(w, http.StatusOK, apiMediaType, openAPI)
}

func (h *handler) find(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fq := search.FindQuery{Text: q.Get("q"), Types: listParam(q, "type"), Collections: listParam(q, "collection"),
		Sources: listParam(q, "source"), Next: q.Get("cursor")}
	for _, t := range listParam(q, "tlp") {
		level, _ := stix.ParseTLP(t)
		fq.TLPs = append(fq.TLPs, strings.TrimPrefix(strings.ToLower(level.String()), "tlp:"))
	}
	if v := q.Get("since"); v != "" {
		fq.Since, _ = time.Parse(time.RFC3339Nano, v)
	}
	if v := q.Get("until"); v != "" {
		fq.Until, _ = time.Parse(time.RFC3339Nano, v)
	}
	fq.Limit = 50
	if v := q.Get("limit"); v != "" {
		fq.Limit, _ = strconv.Atoi(v)
	}
	page, err := h.svc.Find(r.Context(), principal(r), fq)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, page)
}

func (h *handler) objectView(w http.ResponseWriter, r *http.Request) {
	v, err := h.svc.View(r.Context(), principal(r), r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, v)
}

func (h *handler) graph(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	depth, limit := 1, search.DefaultGraphLimit
	if v := q.Get("depth"); v != "" {
		depth, _ = strconv.Atoi(v)
	}
	if v := q.Get("limit"); v != "" {
		limit, _ = strconv.Atoi(v)
	}
	g, err := h.svc.Graph(r.Context(), principal(r), r.PathValue("id"), depth, limit)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, g)
}

func (h *handler) matrix(w http.ResponseWriter, r *http.Request) {
	m, err := h.svc.Matrix(r.Context(), principal(r), r.URL.Query().Get("filter"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, m)
}

// PatternRequest is the body of POST /api/v1/patterns/validate.
type PatternRequest struct {
	Pattern string `json:"pattern"`
}

// PatternCheck is its answer: ok, or the error and its column (0-based,
// in characters).
type PatternCheck struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Column int    `json:"column"`
}

func (h *handler) validatePattern(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if p.Role != entente.RoleAdmin && p.Role != entente.RoleAnalyst {
		h.writeError(w, r, entente.Errorf(entente.EFORBIDDEN, "checking patterns requires the analyst or admin role; this key's role is %q", p.Role))
		return
	}
	var body PatternRequest
	if err := h.decodeAPIBody(w, r, &body); err != nil {
		h.writeError(w, r, err)
		return
	}
	out := PatternCheck{OK: true}
	if err := node.ValidatePattern(body.Pattern); err != nil {
		out.OK = false
		out.Error = entente.ErrorMessage(err)
		if pe, ok := errors.AsType[*node.PatternError](err); ok {
			out.Error, out.Column = pe.Msg, pe.Column
		}
	}
	h.writeAPI(w, r, http.StatusOK, out)
}

// FieldError is the body of a 400 that names the field at fault: a TAXII
// error message with the field and, for a pattern, the column.
type FieldError struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	ErrorCode   string `json:"error_code"`
	HTTPStatus  string `json:"http_status"`
	Error       string `json:"error"`
	Field       string `json:"field"`
	Column      int    `json:"column"`
}

func (h *handler) createIndicator(w http.ResponseWriter, r *http.Request) {
	var body node.NewIndicator
	if err := h.decodeAPIBody(w, r, &body); err != nil {
		h.writeError(w, r, err)
		return
	}
	c, err := h.svc.CreateIndicator(r.Context(), principal(r), body)
	if pe, ok := errors.AsType[*node.PatternError](err); ok {
		h.writeAPI(w, r, http.StatusBadRequest, FieldError{Title: "Bad Request", Description: entente.ErrorMessage(err),
			ErrorCode: string(entente.EINVALID), HTTPStatus: "400", Error: pe.Msg, Field: "pattern", Column: pe.Column})
		return
	}
	h.created(w, r, c, err)
}

func (h *handler) created(w http.ResponseWriter, r *http.Request, c node.Created, err error) {
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusCreated, c)
}

// NoteRequest is the body of POST /api/v1/objects/{id}/notes.
type NoteRequest struct {
	Content  string `json:"content"`
	Abstract string `json:"abstract,omitempty"`
}

func (h *handler) addNote(w http.ResponseWriter, r *http.Request) {
	var body NoteRequest
	if err := h.decodeAPIBody(w, r, &body); err != nil {
		h.writeError(w, r, err)
		return
	}
	c, err := h.svc.AddNote(r.Context(), principal(r), r.PathValue("id"), body.Content, body.Abstract)
	h.created(w, r, c, err)
}

// OpinionRequest is the body of POST /api/v1/objects/{id}/opinions.
type OpinionRequest struct {
	Opinion     string `json:"opinion"`
	Explanation string `json:"explanation,omitempty"`
}

func (h *handler) addOpinion(w http.ResponseWriter, r *http.Request) {
	var body OpinionRequest
	if err := h.decodeAPIBody(w, r, &body); err != nil {
		h.writeError(w, r, err)
		return
	}
	c, err := h.svc.AddOpinion(r.Context(), principal(r), r.PathValue("id"), body.Opinion, body.Explanation)
	h.created(w, r, c, err)
}

// LabelsRequest is the body of POST /api/v1/objects/{id}/labels.
type LabelsRequest struct {
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

func (h *handler) setLabels(w http.ResponseWriter, r *http.Request) {
	var body LabelsRequest
	if err := h.decodeAPIBody(w, r, &body); err != nil {
		h.writeError(w, r, err)
		return
	}
	c, err := h.svc.SetLabels(r.Context(), principal(r), r.PathValue("id"), body.Add, body.Remove)
	h.created(w, r, c, err)
}

func (h *handler) createReport(w http.ResponseWriter, r *http.Request) {
	var body node.NewGrouping
	if err := h.decodeAPIBody(w, r, &body); err != nil {
		h.writeError(w, r, err)
		return
	}
	c, err := h.svc.CreateGrouping(r.Context(), principal(r), body)
	h.created(w, r, c, err)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
