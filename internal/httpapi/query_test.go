package httpapi

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/taxii"
)

func TestCheckQuery(t *testing.T) {
	objects := taxiiQuery(taxii.EndpointObjects)
	tests := []struct {
		name string
		spec querySpec
		raw  string
		want string // "" when accepted, else a part of the message
	}{
		{"audit: nothing", auditQuery, "", ""},
		{"audit: every parameter", auditQuery, "partner=identity--9e592c5b-8089-4a90-9e6b-5386267ef7b7&object=indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f" +
			"&action=egress&from=2024-01-01T00:00:00Z&to=2024-02-01T00:00:00.5%2B01:00&limit=10&next=abc", ""},
		{"audit: since is not a parameter", auditQuery, "since=garbage",
			`query parameter "since" is not known here: this resource takes only partner, object, action, from, to, limit, next`},
		{"audit: from garbage", auditQuery, "from=garbage", `query parameter "from": "garbage" is not an RFC 3339 time`},
		{"audit: unknown action", auditQuery, "action=delete", `query parameter "action": "delete" is not one of egress, admin`},
		{"audit: partner not an identity", auditQuery, "partner=indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", `"partner": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f" is not a STIX identity id`},
		{"audit: object not an id", auditQuery, "object=x", `"object": "x" is not a STIX id`},
		{"audit: limit zero", auditQuery, "limit=0", `"limit": "0" is not a positive integer`},
		{"audit: limit twice", auditQuery, "limit=1&limit=2", `query parameter "limit": given 2 times; give it once`},
		{"audit: empty values are no values", auditQuery, "next=&partner=", ""},
		{"alerts: status", alertsQuery, "status=acknowledged&tier=national", ""},
		{"alerts: status garbage", alertsQuery, "status=garbage", `query parameter "status": "garbage" is not one of new, acknowledged, resolved, escalated`},
		{"alerts: tier too long", alertsQuery, "tier=" + strings.Repeat("x", 129), `"tier"`},
		{"preview: limit", previewQuery, "limit=10&next=1%7Cx&summary=true", ""},
		{"preview: zero limit", previewQuery, "limit=0", `"limit": "0" is not a positive integer`},
		{"preview: summary not a boolean", previewQuery, "summary=maybe", `"summary"`},
		{"peer add: check", peerAddQuery, "check=false", ""},
		{"peer add: other", peerAddQuery, "force=1", `query parameter "force" is not known here`},
		{"export: filters", exportQuery, "type=ipv4,domain&tlp=amber&min-confidence=50&max-age=7d&country=de,FR&country-list=us&include-warninglisted=true&name=x&zone=rpz.example", ""},
		{"export: bad type", exportQuery, "type=ipv4,planet", `query parameter "type": "planet"`},
		{"export: bad country", exportQuery, "country=XX", `"country": "XX" is not an ISO 3166-1 alpha-2 country code`},
		{"export: bad tlp", exportQuery, "tlp=purple", `query parameter "tlp": "purple"`},
		{"export: bad bool", exportQuery, "no-aggregate=maybe", `"no-aggregate": "maybe" is not true or false`},
		{"export: bad age", exportQuery, "max-age=soon", `"max-age": "soon" is not a duration`},
		{"export: unknown", exportQuery, "format=csv", `query parameter "format" is not known here`},
		{"none: anything", noQuery, "x=1", `query parameter "x" is not known here: this resource takes no query parameters`},
		{"malformed", auditQuery, "limit=%zz", "the query string is malformed"},
		{"semicolon", auditQuery, "limit=1;next=2", "the query string is malformed"},
		{"control character", alertsQuery, "tier=a%00b", `query parameter "tier": the value holds invalid UTF-8 or control characters`},
		{"invalid UTF-8", alertsQuery, "tier=%ff", `invalid UTF-8`},
		{"too long", auditQuery, "next=" + strings.Repeat("a", maxQueryValue+1), `"next": the value is longer than 1024 bytes`},
		{"taxii: filters named", objects, "match[type]=indicator&limit=5&added_after=x", ""}, // values: taxii.ParseFilters
		{"taxii: filters repeated", objects, "match[type]=indicator&match[type]=malware", ""},
		{"taxii: limit repeated", objects, "limit=1&limit=2", `query parameter "limit": given 2 times`},
		{"taxii: a match field of another revision is ignored", objects, "match[relationships]=x", ""},
		{"taxii: a client's own name is ignored", objects, "_=1733500000", ""},
		{"taxii: a filter the route does not take is ignored", noTAXIIFilters, "limit=5&match[id]=x", ""},
		{"taxii: known names are still checked where unknown ones are ignored", objects, "limit=1&limit=2&debug=1", `query parameter "limit": given 2 times`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkQuery(tt.raw, tt.spec)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %q", tt.raw)
			}
			if entente.ErrorCode(err) != entente.EINVALID {
				t.Errorf("code %s, want %s", entente.ErrorCode(err), entente.EINVALID)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// FuzzCheckQuery checks every route's spec against arbitrary query
// strings: no panic, and a query that is accepted names only parameters
// the route takes (or TAXII filters, on TAXII routes), each valid; a
// query that is refused gets an EINVALID error that names a parameter or
// the query string.
func FuzzCheckQuery(f *testing.F) {
	for _, s := range []string{"", "since=garbage", "status=garbage", "limit=1&limit=2", "limit=%zz", "a=1;b=2",
		"partner=identity--9e592c5b-8089-4a90-9e6b-5386267ef7b7", "type=ipv4,,domain,&country=de", "match[id]=x&foo",
		"tier=%00", "=", "&&&", "next=" + strings.Repeat("a", 1100), "from=2024-01-01T00:00:00Z&to=2024-13-01T00:00:00Z"} {
		f.Add(s)
	}
	specs := []querySpec{noQuery, noTAXIIFilters, auditQuery, alertsQuery, previewQuery, peerAddQuery, exportQuery,
		taxiiQuery(taxii.EndpointObjects), taxiiQuery(taxii.EndpointDelete)}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, spec := range specs {
			err := checkQuery(raw, spec)
			if err != nil {
				if entente.ErrorCode(err) != entente.EINVALID {
					t.Fatalf("%q: error %v is not EINVALID", raw, err)
				}
				if msg := err.Error(); !strings.Contains(msg, "query parameter") && !strings.Contains(msg, "query string") {
					t.Fatalf("%q: error %q names neither a parameter nor the query string", raw, msg)
				}
				continue
			}
			q, perr := url.ParseQuery(raw)
			if perr != nil {
				t.Fatalf("%q accepted though malformed: %v", raw, perr)
			}
			for name, vals := range q {
				i := slices.IndexFunc(spec.params, func(p param) bool { return p.name == name })
				if i < 0 {
					if !spec.taxii {
						t.Fatalf("%q accepted with parameter %q the route does not take", raw, name)
					}
					continue
				}
				if p := spec.params[i]; !p.list && len(vals) > 1 {
					t.Fatalf("%q accepted with %q repeated", raw, name)
				}
			}
		}
	})
}
