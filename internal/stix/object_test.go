package stix

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	raw := `{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
	"created":"2016-04-06T20:03:48.000Z","modified":"2016-04-06T20:03:48.123456Z","revoked":true,"valid_until":"2017-01-01T00:00:00Z",
	"created_by_ref":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff","object_marking_refs":["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"],
	"nested":{"type":"not-me","id":"x"},"x_\u0069d":"escaped name is x_id"}`
	o, err := Decode([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := &Object{
		Type: "indicator", ID: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", SpecVersion: "2.1",
		Created:      time.Date(2016, 4, 6, 20, 3, 48, 0, time.UTC),
		Modified:     time.Date(2016, 4, 6, 20, 3, 48, 123456000, time.UTC),
		Revoked:      true,
		ValidUntil:   time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC),
		CreatedByRef: "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
		MarkingRefs:  []string{"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"},
		Raw:          json.RawMessage(raw),
	}
	if diff := cmp.Diff(want, o); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
	if !o.Version().Equal(want.Modified) {
		t.Errorf("Version = %v", o.Version())
	}
}

func TestDecodeEscapedID(t *testing.T) {
	o, err := Decode([]byte(`{"type":"ident\u0069ty","\u0069d":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"}`))
	if err != nil {
		t.Fatal(err)
	}
	if o.Type != "identity" || o.ID != "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff" {
		t.Errorf("got type %q id %q", o.Type, o.ID)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ raw, want string }{
		{``, "not a JSON object"},
		{`[1]`, "not a JSON object"},
		{`{"type":"identity"`, "truncated"},
		{`{"type":"identity",}`, "expected a string"},
		{`{"type":"identity"} x`, "after the object"},
		{`{"type":5}`, `property "type" must be a string`},
		{`{"type":"identity","type":"indicator"}`, `"type" appears more than once`},
		{`{"created":"yesterday"}`, `property "created"`},
		{`{"revoked":"no"}`, `"revoked" must be a boolean`},
		{`{"object_marking_refs":[1]}`, `"object_marking_refs" must be a list of strings`},
		{`{"a":tru}`, "invalid literal"},
		{"{\"a\":\"\x01\"}", "control character"},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.raw))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Decode(%q) error %v, want it to contain %q", tt.raw, err, tt.want)
		}
	}
}

// TestDecodeMatchesEncodingJSON checks, on every example and ATT&CK
// object, that Decode reads the common properties as encoding/json does
// and that re-encoding keeps every property.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	files := append(validFiles(t), attackPath(t))
	n := 0
	for _, file := range files {
		for i, raw := range readObjects(t, file) {
			n++
			o, err := Decode(raw)
			if err != nil {
				t.Fatalf("%s object %d: %v", filepath.Base(file), i, err)
			}
			var e struct {
				Type         string   `json:"type"`
				ID           string   `json:"id"`
				SpecVersion  string   `json:"spec_version"`
				Revoked      bool     `json:"revoked"`
				CreatedByRef string   `json:"created_by_ref"`
				MarkingRefs  []string `json:"object_marking_refs"`
				Created      string   `json:"created"`
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			got := struct {
				Type, ID, SpecVersion, CreatedByRef string
				Revoked                             bool
				MarkingRefs                         []string
			}{o.Type, o.ID, o.SpecVersion, o.CreatedByRef, o.Revoked, o.MarkingRefs}
			want := got
			want.Type, want.ID, want.SpecVersion, want.CreatedByRef, want.Revoked, want.MarkingRefs =
				e.Type, e.ID, e.SpecVersion, e.CreatedByRef, e.Revoked, e.MarkingRefs
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%s object %d (-encoding/json +Decode):\n%s", filepath.Base(file), i, diff)
			}
			if e.Created != "" && FormatTimestamp(o.Created) == "" {
				t.Fatalf("created not decoded")
			}
			// Round trip: every property survives, custom ones and
			// extensions included.
			out, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			var before, after any
			if err := json.Unmarshal(raw, &before); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &after); err != nil {
				t.Fatal(err)
			}
			if reflect.DeepEqual(before, after) {
				continue
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Fatalf("%s object %d round trip (-in +out):\n%s", filepath.Base(file), i, diff)
			}
		}
	}
	if n < 24772 {
		t.Errorf("checked only %d objects", n)
	}
}

// toAny converts a parsed tree to the values encoding/json produces.
func toAny(v *value) any {
	switch v.kind {
	case kNull:
		return nil
	case kBool:
		return v.b
	case kNumber:
		return json.Number(v.str)
	case kString:
		return v.str
	case kArray:
		out := make([]any, len(v.obj))
		for i := range v.obj {
			out[i] = toAny(&v.obj[i].val)
		}
		return out
	default:
		out := make(map[string]any, len(v.obj))
		for i := range v.obj {
			out[v.obj[i].name] = toAny(&v.obj[i].val)
		}
		return out
	}
}

// TestParserMatchesEncodingJSON checks the package's JSON parser against
// encoding/json on every ATT&CK and example object and on edge cases.
func TestParserMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		`{"a":"\u00e9\ud83d\ude00\n\t\"\\\/","b":[1,-2.5e3,0,true,false,null],"c":{}}`,
		`"\ud800"`, `[]`, `-0`, `1E+2`, `"caf\u00e9"`, "\"\xff\"",
	}
	for _, c := range cases {
		checkParser(t, []byte(c), false, true)
	}
	for _, file := range append(validFiles(t), attackPath(t)) {
		for _, raw := range readObjects(t, file) {
			checkParser(t, raw, true) // Validate's mode
		}
	}
}

func checkParser(t *testing.T, raw []byte, modes ...bool) {
	t.Helper()
	for _, alias := range modes {
		p := parser{b: raw, alias: alias}
		v, err := parse(p)
		if err != nil {
			t.Fatalf("parse %s: %v", raw, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		got := toAny(&v)
		if reflect.DeepEqual(want, got) {
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("parse %.200s (-encoding/json +parser):\n%s", raw, diff)
		}
	}
}

func TestParserRejects(t *testing.T) {
	for _, raw := range []string{`{`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `01`, `1.`, `1e`, `"\x"`, `"\u12"`, `nul`, `[1 2]`, `{} {}`,
		strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2)} {
		if _, err := parseJSON([]byte(raw)); err == nil {
			t.Errorf("parseJSON(%.40q) accepted", raw)
		}
		if end, err := skipValue([]byte(raw), 0); err == nil && skipWS([]byte(raw), end) == len(raw) {
			t.Errorf("skipValue(%.40q) accepted", raw)
		}
	}
}

func TestTimestamps(t *testing.T) {
	for _, s := range []string{"2016-01-01T00:00:00Z", "2016-01-01T00:00:00.1Z", "2016-01-01T00:00:00.123456789Z"} {
		ts, err := ParseTimestamp(s)
		if err != nil {
			t.Errorf("ParseTimestamp(%q): %v", s, err)
			continue
		}
		back, err := ParseTimestamp(FormatTimestamp(ts))
		if err != nil || !back.Equal(ts) {
			t.Errorf("FormatTimestamp round trip of %q: %v %v", s, back, err)
		}
	}
	for _, s := range []string{"2016-01-01", "2016-01-01T00:00:00+00:00", "2016-01-01 00:00:00Z", "2016-13-01T00:00:00Z"} {
		if _, err := ParseTimestamp(s); err == nil {
			t.Errorf("ParseTimestamp(%q) accepted", s)
		}
	}
	if got := FormatTimestamp(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)); got != "2020-01-02T03:04:05.000Z" {
		t.Errorf("FormatTimestamp = %s", got)
	}
}

func TestPatternValues(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		want    []string
	}{
		{`[ipv4-addr:value = '198.51.100.1']`, []string{"198.51.100.1"}},
		{`[domain-name:value = 'evil.example.com' OR url:value = 'http://x.example/a\'b']`, []string{"evil.example.com", "http://x.example/a'b"}},
		{`[file:name = '']`, nil},
		{`[ipv4-addr:value = '10.0.0.1`, []string{"10.0.0.1"}},
	} {
		if got := PatternValues(tc.pattern); !slices.Equal(got, tc.want) {
			t.Errorf("PatternValues(%q) = %q, want %q", tc.pattern, got, tc.want)
		}
	}
}
