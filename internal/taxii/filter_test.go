package taxii

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/google/go-cmp/cmp"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestParseFilters(t *testing.T) {
	const id1 = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
	const id2 = "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"
	tests := []struct {
		name  string
		query string
		e     Endpoint
		want  Filters
	}{
		{"none", "", EndpointObjects, Filters{}},
		{"added_after", "added_after=2016-01-01T01:01:01.123456789Z", EndpointObjects,
			Filters{AddedAfter: ts("2016-01-01T01:01:01.123456789Z")}},
		{"limit and next", "limit=50&next=abc", EndpointObjects, Filters{Limit: 50, Next: "abc"}},
		{"ids comma and repeated", "match[id]=" + id1 + "," + id2 + "&match[id]=" + id1, EndpointObjects,
			Filters{IDs: []string{id1, id2}}},
		{"escaped brackets", "match%5Btype%5D=indicator,malware", EndpointObjects,
			Filters{Types: []string{"indicator", "malware"}}},
		{"spaces around values", "match[type]=indicator,%20malware", EndpointManifest,
			Filters{Types: []string{"indicator", "malware"}}},
		{"version all wins", "match[version]=first,all,2016-01-01T00:00:00Z", EndpointObjects,
			Filters{Versions: entente.VersionFilter{All: true}}},
		{"version first last and timestamps", "match[version]=first,last,2016-01-01T00:00:00.5Z", EndpointObject,
			Filters{Versions: entente.VersionFilter{First: true, Last: true, At: []time.Time{ts("2016-01-01T00:00:00.5Z")}}}},
		{"spec_version", "match[spec_version]=2.1,2.0", EndpointVersions, Filters{SpecVersions: []string{"2.1", "2.0"}}},
		{"unsupported ignored on versions", "match[type]=indicator&match[version]=first&match[id]=x", EndpointVersions, Filters{}},
		{"delete takes only match version and spec", "limit=5&added_after=bad&match[version]=last", EndpointDelete,
			Filters{Versions: entente.VersionFilter{Last: true}}},
		{"unknown parameters ignored", "foo=bar&match[foo]=1", EndpointObjects, Filters{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFilters(tt.query, tt.e)
			if err != nil {
				t.Fatalf("ParseFilters(%q): %v", tt.query, err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("ParseFilters(%q) (-want +got):\n%s", tt.query, d)
			}
		})
	}
}

func TestParseFiltersErrors(t *testing.T) {
	tests := []struct {
		query string
		names string // the parameter the error must name
	}{
		{"added_after=yesterday", "added_after"},
		{"added_after=2016-01-01T00:00:00+01:00", "added_after"},
		{"added_after=2016-01-01T00:00:00Z&added_after=2017-01-01T00:00:00Z", "added_after"},
		{"limit=0", "limit"},
		{"limit=-3", "limit"},
		{"limit=ten", "limit"},
		{"limit=99999999999999999999999", "limit"},
		{"next=", "next"},
		{"next=" + strings.Repeat("a", MaxNextLength+1), "next"},
		{"match[version]=newest", "match[version]"},
		{"match[version]=", "match[version]"},
		{"match[type]=Indicator", "match[type]"},
		{"match[type]=,,", "match[type]"},
		{"match[id]=indicator--nope", "match[id]"},
		{"match[spec_version]=two", "match[spec_version]"},
		{"match[id]=" + manyIDs(MaxMatchValues+1), "match[id]"},
		{"%zz", "query string"},
	}
	for _, tt := range tests {
		_, err := ParseFilters(tt.query, EndpointObjects)
		if err == nil {
			t.Errorf("ParseFilters(%.60q) = nil error, want one naming %s", tt.query, tt.names)
			continue
		}
		if entente.ErrorCode(err) != entente.EINVALID {
			t.Errorf("ParseFilters(%.60q): code %s, want %s", tt.query, entente.ErrorCode(err), entente.EINVALID)
		}
		if !strings.Contains(err.Error(), tt.names) {
			t.Errorf("ParseFilters(%.60q): error %q does not name %s", tt.query, err, tt.names)
		}
	}
}

func manyIDs(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "indicator--" + strings.Replace("00000000-0000-4000-8000-000000000000", "0000-4000", "0000-4"+pad3(i), 1)
	}
	return url.QueryEscape(strings.Join(ids, ","))
}

func pad3(i int) string {
	const hex = "0123456789abcdef"
	return string([]byte{hex[i>>8&15], hex[i>>4&15], hex[i&15]})
}

func TestFiltersQuery(t *testing.T) {
	f := Filters{Limit: 3, Next: "n", Types: []string{"indicator"}, Versions: entente.VersionFilter{First: true}}
	want := entente.ObjectQuery{Collection: "c", Limit: 3, Next: "n", Types: []string{"indicator"}, Versions: entente.VersionFilter{First: true}}
	if d := cmp.Diff(want, f.Query("c")); d != "" {
		t.Errorf("Query (-want +got):\n%s", d)
	}
}

// FuzzParseFilters checks that any query string either parses into
// filters that hold only valid values, or fails with EINVALID; and that
// parsing never panics.
func FuzzParseFilters(f *testing.F) {
	for _, s := range []string{
		"",
		"added_after=2016-01-01T01:01:01.000Z&limit=10",
		"match[id]=indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f&match[type]=indicator,malware",
		"match[version]=first,last,all,2016-01-01T00:00:00Z&match[spec_version]=2.1",
		"next=abc&limit=1",
		"match%5Bversion%5D=2016-13-01T00:00:00Z",
		"limit=0&limit=1",
		"match[type]=%zz",
	} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, q string, e uint8) {
		ep := Endpoint(e % 5)
		got, err := ParseFilters(q, ep)
		if err != nil {
			if entente.ErrorCode(err) != entente.EINVALID {
				t.Fatalf("ParseFilters(%q): error code %s, want %s", q, entente.ErrorCode(err), entente.EINVALID)
			}
			return
		}
		if got.Limit < 0 {
			t.Fatalf("negative limit %d", got.Limit)
		}
		if len(got.Next) > MaxNextLength {
			t.Fatalf("next token of %d bytes", len(got.Next))
		}
		for _, v := range got.Types {
			if !validType(v) {
				t.Fatalf("invalid type %q accepted", v)
			}
		}
		for _, v := range got.IDs {
			if !validID(v) {
				t.Fatalf("invalid id %q accepted", v)
			}
		}
		if got.Versions.All && (got.Versions.First || got.Versions.Last || len(got.Versions.At) > 0) {
			t.Fatalf("all combined with other versions: %+v", got.Versions)
		}
		if ep == EndpointDelete && (got.Limit != 0 || got.Next != "" || !got.AddedAfter.IsZero() || got.IDs != nil || got.Types != nil) {
			t.Fatalf("delete endpoint took unsupported filters: %+v", got)
		}
		if ep == EndpointVersions && (got.IDs != nil || got.Types != nil || !got.Versions.IsZero()) {
			t.Fatalf("versions endpoint took unsupported filters: %+v", got)
		}
	})
}
