package httpapi

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/taxii"
)

// Every route says which query parameters it takes (queries, set up with
// the routes); checkQuery refuses, with a 400 naming the parameter, a
// query string that is malformed, names a parameter the route does not
// take, repeats one that takes a single value or gives a value of the
// wrong form. Handlers still parse the values they use; this makes sure
// nothing a client sends is silently ignored.

// maxQueryValue is the longest value a single-valued parameter takes (a
// paging token is at most taxii.MaxNextLength bytes); a list (match[id]
// naming a hundred ids) is bounded by the request line's limit instead.
const maxQueryValue = 1024

// param is one query parameter a route takes.
type param struct {
	name string
	// list: the parameter may be repeated and takes comma-separated
	// lists, each item checked; otherwise it is given once.
	list bool
	// check, when not nil, says what is wrong with a value (or item).
	check func(string) error
}

// querySpec is what a route takes in its query string.
type querySpec struct {
	params []param
	// taxii marks TAXII routes: their filters' values are checked by
	// taxii.ParseFilters (params then only names them), and names a
	// route does not know — TAXII filters it does not take, a filter of
	// a later revision, a client's cache-buster — are ignored, so that
	// every TAXII client works unchanged (the node's own API, by
	// contrast, refuses names it does not know, to catch typos).
	taxii bool
}

// noQuery is the spec of the routes that take no parameters.
var noQuery querySpec

// taxiiQuery is the spec of a TAXII route that takes the filters of
// endpoint e (none when e < 0).
func taxiiQuery(e taxii.Endpoint) querySpec {
	s := querySpec{taxii: true}
	if e >= 0 {
		for _, n := range taxii.Params(e) {
			s.params = append(s.params, param{name: n, list: strings.HasPrefix(n, "match[")})
		}
	}
	return s
}

// noTAXIIFilters is the spec of the TAXII routes that take no filters.
var noTAXIIFilters = taxiiQuery(-1)

// checkQuery checks a raw query string against spec.
func checkQuery(raw string, spec querySpec) error {
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return entente.Errorf(entente.EINVALID, "the query string is malformed: %v", err)
	}
	names := make([]string, 0, len(q))
	for n := range q {
		names = append(names, n)
	}
	slices.Sort(names) // the first fault found is the same every time
	for _, name := range names {
		i := slices.IndexFunc(spec.params, func(p param) bool { return p.name == name })
		if i < 0 {
			if spec.taxii {
				continue
			}
			return unknownParam(name, spec)
		}
		p := spec.params[i]
		vals := q[name]
		if !p.list && len(vals) > 1 {
			return entente.Errorf(entente.EINVALID, "query parameter %q: given %d times; give it once", name, len(vals))
		}
		for _, v := range vals {
			if len(v) > maxQueryValue && !p.list {
				return entente.Errorf(entente.EINVALID, "query parameter %q: the value is longer than %d bytes", name, maxQueryValue)
			}
			if !utf8.ValidString(v) || strings.ContainsFunc(v, isControl) {
				return entente.Errorf(entente.EINVALID, "query parameter %q: the value holds invalid UTF-8 or control characters", name)
			}
			if p.check == nil || v == "" {
				continue // an empty value is no value, as the handlers read it
			}
			items := []string{v}
			if p.list {
				items = strings.Split(v, ",")
			}
			for _, it := range items {
				if p.list {
					if it = strings.TrimSpace(it); it == "" {
						continue
					}
				}
				if err := p.check(it); err != nil {
					return entente.Errorf(entente.EINVALID, "query parameter %q: %q %v", name, clip(it), err)
				}
			}
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// unknownParam is the error of a parameter the route does not take.
func unknownParam(name string, spec querySpec) error {
	var takes []string
	for _, p := range spec.params {
		takes = append(takes, p.name)
	}
	what := "takes no query parameters"
	if len(takes) > 0 {
		what = "takes only " + strings.Join(takes, ", ")
	}
	return entente.Errorf(entente.EINVALID, "query parameter %q is not known here: this resource %s", clip(name), what)
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	i := 64
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// The value checks; each says what the value is not.

func oneOf(vals ...string) func(string) error {
	return func(s string) error {
		if slices.Contains(vals, s) {
			return nil
		}
		return fmt.Errorf("is not one of %s", strings.Join(vals, ", "))
	}
}

func positiveInt(s string) error {
	if n, err := strconv.Atoi(s); err != nil || n < 1 {
		return fmt.Errorf("is not a positive integer")
	}
	return nil
}

func nonNegativeInt(s string) error {
	if n, err := strconv.Atoi(s); err != nil || n < 0 {
		return fmt.Errorf("is not a non-negative integer")
	}
	return nil
}

func rfc3339(s string) error {
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		return fmt.Errorf("is not an RFC 3339 time such as 2024-01-31T00:00:00Z")
	}
	return nil
}

func boolean(s string) error {
	if _, err := strconv.ParseBool(s); err != nil {
		return fmt.Errorf("is not true or false")
	}
	return nil
}

// stixID checks a STIX identifier, of type typ when typ is not "".
func stixID(typ string) func(string) error {
	return func(s string) error {
		t, id, ok := strings.Cut(s, "--")
		if !ok || len(id) != 36 || (typ != "" && t != typ) || (typ == "" && !validTypeName(t)) {
			if typ != "" {
				return fmt.Errorf("is not a STIX %s id (%s--<uuid>)", typ, typ)
			}
			return fmt.Errorf("is not a STIX id (type--<uuid>)")
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if i == 8 || i == 13 || i == 18 || i == 23 {
				if c != '-' {
					return fmt.Errorf("is not a STIX id: %q is not a UUID", id)
				}
			} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return fmt.Errorf("is not a STIX id: %q is not a UUID", id)
			}
		}
		return nil
	}
}

// validTypeName reports whether s is shaped like a STIX type name.
func validTypeName(s string) bool {
	if len(s) < 3 || len(s) > 250 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// token checks an opaque paging token.
func token(s string) error {
	if s == "" || len(s) > taxii.MaxNextLength {
		return fmt.Errorf("is not a paging token (1 to %d characters)", taxii.MaxNextLength)
	}
	return nil
}

// freeValue checks a value to explain: 1 to 1,024 characters (the
// handler says what it is).
func freeValue(s string) error {
	if s == "" || len(s) > maxQueryValue {
		return fmt.Errorf("is not a value (1 to %d characters)", maxQueryValue)
	}
	return nil
}

// freeName checks a free name: 1 to 128 characters.
func freeName(s string) error {
	if s == "" || utf8.RuneCountInString(s) > 128 {
		return fmt.Errorf("must be 1 to 128 characters")
	}
	return nil
}

func countryCode(s string) error {
	if !policy.IsCountry(strings.ToUpper(s)) {
		return fmt.Errorf("is not an ISO 3166-1 alpha-2 country code")
	}
	return nil
}

func observableKind(s string) error {
	_, err := observable.ParseKind(s)
	return err
}

func tlp(s string) error {
	_, err := stix.ParseTLP(s)
	return err
}

func confidence(s string) error {
	if n, err := strconv.Atoi(s); err != nil || n < 0 || n > 100 {
		return fmt.Errorf("is not a number from 0 to 100")
	}
	return nil
}

func age(s string) error {
	_, err := parseAge(s)
	if err != nil {
		return fmt.Errorf("is not a duration such as 36h or 7d")
	}
	return nil
}

// The specs of the node API's routes that take parameters.
var (
	auditQuery = querySpec{params: []param{
		{name: "partner", check: stixID("identity")},
		{name: "object", check: stixID("")},
		{name: "action", check: oneOf(node.AuditEgress, node.AuditAdmin)},
		{name: "from", check: rfc3339},
		{name: "to", check: rfc3339},
		{name: "limit", check: positiveInt},
		{name: "next", check: token},
	}}
	alertsQuery = querySpec{params: []param{
		{name: "status", check: oneOf(string(correlate.StatusNew), string(correlate.StatusAcknowledged),
			string(correlate.StatusResolved), string(correlate.StatusEscalated))},
		{name: "tier", check: freeName},
	}}
	previewQuery = querySpec{params: []param{
		{name: "limit", check: positiveInt},
		{name: "next", check: token},
		{name: "summary", check: boolean},
	}}
	peerAddQuery = querySpec{params: []param{{name: "check", check: boolean}}}
	explainQuery = querySpec{params: []param{{name: "value", check: freeValue}, {name: "class", check: freeName}}}
	devicesQuery = querySpec{params: []param{{name: "class", check: freeName}, {name: "top", check: positiveInt}, {name: "limit", check: positiveInt}}}
	eventsQuery  = querySpec{params: []param{{name: "name", check: freeName}}}
	exportQuery  = querySpec{params: []param{
		{name: "class", check: freeName},
		{name: "type", list: true, check: observableKind},
		{name: "collection", list: true, check: freeName},
		{name: "tlp", check: tlp},
		{name: "min-confidence", check: confidence},
		{name: "source", list: true, check: freeName},
		{name: "max-age", check: age},
		{name: "country", list: true, check: countryCode},
		{name: "country-list", list: true, check: countryCode},
		{name: "include-warninglisted", check: boolean},
		{name: "no-aggregate", check: boolean},
		{name: "name", check: freeName},
		{name: "zone", check: freeName},
	}}
)
