package taxii

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

// Endpoint names an object endpoint, for the filters it supports
// (sections 5.3 to 5.8 of the specification).
type Endpoint int

// The endpoints that take URL filters.
const (
	// EndpointObjects is Get Objects (GET .../objects/).
	EndpointObjects Endpoint = iota
	// EndpointManifest is Get Object Manifests (GET .../manifest/).
	EndpointManifest
	// EndpointObject is Get An Object (GET .../objects/{id}/).
	EndpointObject
	// EndpointVersions is Get Object Versions (GET .../objects/{id}/versions/).
	EndpointVersions
	// EndpointDelete is Delete An Object (DELETE .../objects/{id}/).
	EndpointDelete
)

// Parameter names of the TAXII 2.1 URL filters.
const (
	ParamAddedAfter     = "added_after"
	ParamLimit          = "limit"
	ParamNext           = "next"
	ParamMatchID        = "match[id]"
	ParamMatchType      = "match[type]"
	ParamMatchVersion   = "match[version]"
	ParamMatchSpecVersn = "match[spec_version]"
)

// supported lists the parameters each endpoint takes. Parameters an
// endpoint does not take are ignored, as are unknown parameters.
var supported = map[Endpoint][]string{
	EndpointObjects:  {ParamAddedAfter, ParamLimit, ParamNext, ParamMatchID, ParamMatchType, ParamMatchVersion, ParamMatchSpecVersn},
	EndpointManifest: {ParamAddedAfter, ParamLimit, ParamNext, ParamMatchID, ParamMatchType, ParamMatchVersion, ParamMatchSpecVersn},
	EndpointObject:   {ParamAddedAfter, ParamLimit, ParamNext, ParamMatchVersion, ParamMatchSpecVersn},
	EndpointVersions: {ParamAddedAfter, ParamLimit, ParamNext, ParamMatchSpecVersn},
	EndpointDelete:   {ParamMatchVersion, ParamMatchSpecVersn},
}

// Params returns the names of the URL filters endpoint e takes.
func Params(e Endpoint) []string { return slices.Clone(supported[e]) }

// IsParam reports whether name is one of the URL filters TAXII 2.1
// defines (for any endpoint).
func IsParam(name string) bool {
	return slices.Contains(supported[EndpointObjects], name)
}

// Limits on filter values, so that a query string cannot make a query
// arbitrarily expensive.
const (
	// MaxMatchValues is the most values one match[] filter may list.
	MaxMatchValues = 1000
	// MaxNextLength is the longest next token accepted.
	MaxNextLength = 1024
)

// Filters are the URL filters of one request to an object endpoint.
type Filters struct {
	// AddedAfter, when not zero, keeps entries added strictly after it.
	AddedAfter time.Time
	// Limit is the page size asked for; 0 when not given.
	Limit int
	// Next is the paging token of a previous response; "" when not given.
	Next         string
	IDs          []string
	Types        []string
	SpecVersions []string
	// Versions is match[version]; the zero value means the endpoint's
	// default (the latest version for every endpoint but Delete, for
	// which the node deletes every version).
	Versions entente.VersionFilter
}

// Query returns the store query of f on collection: f's filters, paging
// and version selection.
func (f Filters) Query(collection string) entente.ObjectQuery {
	return entente.ObjectQuery{
		Collection:   collection,
		AddedAfter:   f.AddedAfter,
		IDs:          f.IDs,
		Types:        f.Types,
		SpecVersions: f.SpecVersions,
		Versions:     f.Versions,
		Limit:        f.Limit,
		Next:         f.Next,
	}
}

// ParseFilters parses the URL filters of a request to endpoint e from its
// query string. Parameters that e does not support, and unknown ones, are
// ignored. A parameter given with a bad value is an *entente.Error with
// code EINVALID naming the parameter and the value at fault.
//
// match[] parameters take comma-separated lists (a parameter repeated
// adds to its list); added_after, limit and next take one value each.
// match[version] takes "first", "last", "all" and STIX timestamps, in
// any combination; "all" selects every version whatever else is listed.
func ParseFilters(rawQuery string, e Endpoint) (Filters, error) {
	var f Filters
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return f, entente.Errorf(entente.EINVALID, "the query string is malformed: %v", err)
	}
	params, ok := supported[e]
	if !ok {
		return f, entente.Errorf(entente.EINVALID, "unknown TAXII endpoint %d", e)
	}
	for _, name := range params {
		vals, ok := q[name]
		if !ok {
			continue
		}
		switch name {
		case ParamAddedAfter:
			v, err := single(name, vals)
			if err != nil {
				return f, err
			}
			t, err := stix.ParseTimestamp(v)
			if err != nil {
				return f, entente.Errorf(entente.EINVALID, "%s: %q is not a timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z)", name, v)
			}
			f.AddedAfter = t
		case ParamLimit:
			v, err := single(name, vals)
			if err != nil {
				return f, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return f, entente.Errorf(entente.EINVALID, "%s: %q is not a positive integer", name, v)
			}
			f.Limit = n
		case ParamNext:
			v, err := single(name, vals)
			if err != nil {
				return f, err
			}
			if v == "" || len(v) > MaxNextLength {
				return f, entente.Errorf(entente.EINVALID, "%s: the token is empty or longer than %d bytes", name, MaxNextLength)
			}
			f.Next = v
		case ParamMatchID:
			if f.IDs, err = list(name, vals, validID); err != nil {
				return f, err
			}
		case ParamMatchType:
			if f.Types, err = list(name, vals, validType); err != nil {
				return f, err
			}
		case ParamMatchSpecVersn:
			if f.SpecVersions, err = list(name, vals, validSpecVersion); err != nil {
				return f, err
			}
		case ParamMatchVersion:
			tokens, err := list(name, vals, validVersion)
			if err != nil {
				return f, err
			}
			f.Versions = versionFilter(tokens)
		}
	}
	return f, nil
}

// single returns the one value of parameter name.
func single(name string, vals []string) (string, error) {
	if len(vals) != 1 {
		return "", entente.Errorf(entente.EINVALID, "%s: given %d times; give it once", name, len(vals))
	}
	return vals[0], nil
}

// list splits the comma-separated values of a match[] parameter, drops
// blanks and duplicates, and checks each value with valid.
func list(name string, vals []string, valid func(string) bool) ([]string, error) {
	var out []string
	seen := make(map[string]bool)
	for _, v := range vals {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok == "" || seen[tok] {
				continue
			}
			if !valid(tok) {
				return nil, entente.Errorf(entente.EINVALID, "%s: %q is not a valid value", name, clip(tok))
			}
			seen[tok] = true
			out = append(out, tok)
			if len(out) > MaxMatchValues {
				return nil, entente.Errorf(entente.EINVALID, "%s: more than %d values", name, MaxMatchValues)
			}
		}
	}
	if len(out) == 0 {
		return nil, entente.Errorf(entente.EINVALID, "%s: no value given", name)
	}
	return out, nil
}

// versionFilter turns validated match[version] tokens into a filter.
func versionFilter(tokens []string) entente.VersionFilter {
	var v entente.VersionFilter
	for _, tok := range tokens {
		switch tok {
		case "all":
			v.All = true
		case "first":
			v.First = true
		case "last":
			v.Last = true
		default:
			t, _ := stix.ParseTimestamp(tok) // validated by validVersion
			v.At = append(v.At, t)
		}
	}
	if v.All {
		return entente.VersionFilter{All: true}
	}
	return v
}

func validVersion(s string) bool {
	switch s {
	case "all", "first", "last":
		return true
	}
	_, err := stix.ParseTimestamp(s)
	return err == nil
}

// validType reports whether s is a STIX type name: 3 to 250 characters,
// lower-case ASCII letters, digits and hyphens.
func validType(s string) bool {
	if len(s) < 3 || len(s) > 250 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validID reports whether s is a STIX identifier: a type name, "--" and
// a UUID (checked for shape, not for version).
func validID(s string) bool {
	typ, id, ok := strings.Cut(s, "--")
	if !ok || !validType(typ) || len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// validSpecVersion reports whether s looks like "2.1": digits, a dot,
// digits.
func validSpecVersion(s string) bool {
	major, minor, ok := strings.Cut(s, ".")
	return ok && digits(major) && digits(minor) && len(s) <= 10
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
