package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/entente-cti/entente"
)

// Access says which roles may call a route of the node API, and what the
// route does. The table is the node API's authorisation as the adapter
// enforces it (ServeHTTP refuses the other roles with 403 before the
// route runs; the node service checks again, and decides what of the
// data each role sees), the roles each operation of the OpenAPI
// description lists (x-roles), and docs/roles.md, which a test generates
// from it.
type Access struct {
	// Pattern is the route's pattern as the mux registers it.
	Pattern string
	// Roles are the roles that may call it.
	Roles []entente.Role
	// What says what it does; Note what else decides (collection
	// permissions, agreements).
	What, Note string
}

var (
	allRoles     = []entente.Role{entente.RoleAdmin, entente.RoleAnalyst, entente.RoleSensor, entente.RolePartner}
	adminOnly    = []entente.Role{entente.RoleAdmin}
	analysts     = []entente.Role{entente.RoleAdmin, entente.RoleAnalyst}
	sensorsToo   = []entente.Role{entente.RoleAdmin, entente.RoleAnalyst, entente.RoleSensor}
	partnersOnly = []entente.Role{entente.RolePartner}
	// sensorsAndAdmin are the roles that post network logs.
	sensorsAndAdmin = []entente.Role{entente.RoleAdmin, entente.RoleSensor}
)

// accessTable lists every route the mux serves under /api/v1, and
// /metrics.
var accessTable = []Access{
	{"GET /api/v1/{$}", allRoles, "the index of the API", ""},
	{"GET /api/v1/openapi.json", allRoles, "the OpenAPI 3.1 description of /api/v1", ""},
	{"GET /api/v1/whoami", allRoles, "the calling key's id, organisation and role", ""},
	{"GET /api/v1/node/key", allRoles, "the node's public signing key", ""},
	{"GET /api/v1/keys", adminOnly, "list API keys", ""},
	{"POST /api/v1/keys", adminOnly, "create an API key", ""},
	{"DELETE /api/v1/keys/{id}", adminOnly, "revoke an API key", ""},
	{"GET /api/v1/collections", adminOnly, "list collections with their permissions", "TAXII lists to every role the collections it may read"},
	{"POST /api/v1/collections", adminOnly, "create a collection", ""},
	{"GET /api/v1/partners", analysts, "list partner organisations", ""},
	{"PUT /api/v1/partners/{id}", adminOnly, "create or replace a partner", ""},
	{"DELETE /api/v1/partners/{id}", adminOnly, "remove a partner", ""},
	{"POST /api/v1/partners/{id}/quarantine", adminOnly, "quarantine a partner", ""},
	{"POST /api/v1/partners/{id}/release", adminOnly, "release a partner from quarantine", ""},
	{"PUT /api/v1/partners/{id}/trust", adminOnly, "set a partner's trust weight and quota", ""},
	{"GET /api/v1/agreements", analysts, "list sharing agreements", ""},
	{"PUT /api/v1/agreements/{partner}", adminOnly, "create or replace an agreement", ""},
	{"GET /api/v1/agreements/{partner}", analysts, "read an agreement", ""},
	{"DELETE /api/v1/agreements/{partner}", adminOnly, "delete an agreement", ""},
	{"GET /api/v1/agreements/{partner}/preview", analysts, "preview what an agreement releases, and why", ""},
	{"POST /api/v1/agreements/{partner}/preview", adminOnly, "preview what a changed agreement would release, before saving it", "nothing is saved"},
	{"GET /api/v1/audit", adminOnly, "read the audit log", ""},
	{"GET /api/v1/peers", adminOnly, "list peers", ""},
	{"POST /api/v1/peers", adminOnly, "add a peer", ""},
	{"DELETE /api/v1/peers/{id}", adminOnly, "remove a peer", ""},
	{"POST /api/v1/peers/{id}/sync", adminOnly, "sync with a peer now", ""},
	{"GET /api/v1/feeds", adminOnly, "list feeds", ""},
	{"POST /api/v1/feeds", adminOnly, "add a feed", ""},
	{"PUT /api/v1/feeds/{id}", adminOnly, "change a feed's configuration", "its poll state is kept"},
	{"POST /api/v1/feeds/{id}/preview", adminOnly, "preview what changing a feed's configuration would change, before saving it", "nothing is saved"},
	{"DELETE /api/v1/feeds/{id}", adminOnly, "remove a feed", ""},
	{"POST /api/v1/feeds/{id}/poll", adminOnly, "poll a feed now", ""},
	{"GET /api/v1/snapshot", allRoles, "download the compiled indicator snapshot", "each key gets what its role and organisation may read, through the gate"},
	{"HEAD /api/v1/snapshot", allRoles, "the snapshot's entity tag", ""},
	{"POST /api/v1/sightings", allRoles, "report sightings", "the sightings collection's write roles decide (by default sensor and analyst; admin always)"},
	{"GET /api/v1/alerts", analysts, "list alerts", ""},
	{"GET /api/v1/alerts/stats", analysts, "correlation statistics", ""},
	{"GET /api/v1/alerts/{id}", analysts, "read an alert and its evidence", ""},
	{"POST /api/v1/alerts/{id}/ack", analysts, "acknowledge an alert", ""},
	{"POST /api/v1/alerts/{id}/resolve", analysts, "resolve an alert", ""},
	{"GET /api/v1/devices", analysts, "list the devices of the node's device watch", "their real identities never leave the node"},
	{"GET /api/v1/devices/{device}", analysts, "one device's profile and findings", ""},
	{"POST /api/v1/devices/events", sensorsAndAdmin, "post network logs to the node's device watch", "findings become sightings in the sightings collection"},
	{"GET /api/v1/explain", sensorsToo, "which safety rule keeps a value out of which output", ""},
	{"GET /api/v1/blind/epoch", partnersOnly, "blind access: the current epoch", "only with an agreement that grants blind access"},
	{"GET /api/v1/blind/set", partnersOnly, "blind access: the blinded indicator set", "only with an agreement that grants blind access"},
	{"POST /api/v1/blind/evaluate", partnersOnly, "blind access: evaluate blinded values", "only with an agreement that grants blind access, within its budget"},
	{"POST /api/v1/blind/resolve", partnersOnly, "blind access: resolve matched references", "only with an agreement that grants blind access"},
	{"GET /api/v1/search", analysts, "search and browse objects", "results are released through the gate as the key"},
	{"GET /api/v1/objects/{id}", analysts, "read an object page", "released through the gate as the key"},
	{"GET /api/v1/objects/{id}/graph", analysts, "the relationship graph around an object", "released through the gate as the key"},
	{"GET /api/v1/attack/matrix", analysts, "the ATT&CK matrix", ""},
	{"POST /api/v1/patterns/validate", analysts, "check a STIX pattern", ""},
	{"POST /api/v1/indicators", analysts, "create or edit an indicator as the node's organisation", "the collection's write roles decide where"},
	{"POST /api/v1/objects/{id}/notes", analysts, "add a note", "the object's collection's write roles decide"},
	{"POST /api/v1/objects/{id}/opinions", analysts, "add an opinion", "the object's collection's write roles decide"},
	{"POST /api/v1/objects/{id}/labels", analysts, "add or remove labels", "the object's collection's write roles decide"},
	{"POST /api/v1/objects/{id}/false-positive", analysts, "mark an object a false positive", ""},
	{"GET /api/v1/taxonomies", allRoles, "the MISP taxonomies labels are checked against", "a machine tag of a known namespace must name one of its predicates and values"},
	{"POST /api/v1/reports", analysts, "open a report or an incident", "the collection's write roles decide"},
	{"GET /metrics", adminOnly, "Prometheus metrics", ""},
}

// AccessTable returns the route/role table (a copy).
func AccessTable() []Access { return slices.Clone(accessTable) }

// accessByPattern indexes accessTable.
var accessByPattern = func() map[string]Access {
	m := make(map[string]Access, len(accessTable))
	for _, a := range accessTable {
		m[a.Pattern] = a
	}
	return m
}()

// authorise refuses a principal whose role the route's entry in the
// access table does not list.
func authorise(pattern string, p entente.Principal) error {
	a, ok := accessByPattern[pattern]
	if !ok || slices.Contains(a.Roles, p.Role) {
		return nil
	}
	names := make([]string, len(a.Roles))
	for i, r := range a.Roles {
		names[i] = string(r)
	}
	return entente.Errorf(entente.EFORBIDDEN, "%s requires the %s role; this key's role is %q (see docs/roles.md)", a.What, strings.Join(names, " or "), p.Role)
}

// patternMux is a ServeMux that remembers the patterns registered.
type patternMux struct {
	*http.ServeMux
	patterns *[]string
}

func (m patternMux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	*m.patterns = append(*m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, f)
}

func (m patternMux) Handle(pattern string, h http.Handler) {
	*m.patterns = append(*m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// Patterns returns the patterns the handler h (made by New) serves.
func Patterns(h http.Handler) ([]string, error) {
	hh, ok := h.(*handler)
	if !ok {
		return nil, fmt.Errorf("%T is not a handler made by New", h)
	}
	return slices.Clone(hh.patterns), nil
}
