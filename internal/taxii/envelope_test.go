package taxii

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/testutil"
	"github.com/google/go-cmp/cmp"
)

func TestSplitEnvelope(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"empty envelope", `{}`, nil},
		{"empty list", ` { "objects" : [ ] } `, nil},
		{"objects kept verbatim", `{"more":false,"objects":[ {"a" : 1 } ,{"b":[1,2,{"c":"\u00e9\n"}]}],"next":"x"}`,
			[]string{`{"a" : 1 }`, `{"b":[1,2,{"c":"\u00e9\n"}]}`}},
		{"non-object elements are returned for the caller to refuse", `{"objects":[1,"s",null,true,-0.5e+3]}`,
			[]string{`1`, `"s"`, `null`, `true`, `-0.5e+3`}},
		{"escaped member name", `{"obj\u0065cts":[{}]}`, []string{`{}`}},
		{"unknown members ignored", `{"x":{"objects":[1]},"objects":[{}]}`, []string{`{}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitEnvelope([]byte(tt.body), 0)
			if err != nil {
				t.Fatal(err)
			}
			var gs []string
			for _, g := range got {
				gs = append(gs, string(g))
			}
			if d := cmp.Diff(tt.want, gs); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestSplitEnvelopeErrors(t *testing.T) {
	tests := []struct {
		name, body, msg string
	}{
		{"empty body", ``, "not a JSON object"},
		{"a list", `[{}]`, "not a JSON object"},
		{"a bundle's objects must be a list", `{"objects":{}}`, "not a list"},
		{"objects twice", `{"objects":[],"objects":[]}`, "more than once"},
		{"truncated", `{"objects":[{"type":"indicator"`, "byte"},
		{"trailing data", `{} {}`, "after the envelope"},
		{"trailing comma", `{"objects":[{},]}`, "byte 15"},
		{"bad literal", `{"a":tru}`, "invalid literal"},
		{"bad number", `{"a":01}`, "expected ','"},
		{"bad escape", `{"a":"\x"}`, "invalid escape"},
		{"control character", "{\"a\":\"\x01\"}", "control character"},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", "invalid UTF-8"},
		{"unterminated string", `{"a":"abc`, "unterminated"},
		{"too deep", `{"objects":[{"a":{"b":{"c":{}}}}]}`, "deeper than 5"},
		{"too deep in other member", `{"x":[[[[[1]]]]]}`, "deeper than 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SplitEnvelope([]byte(tt.body), 5)
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.msg)
			}
			if entente.ErrorCode(err) != entente.EINVALID {
				t.Errorf("code %s, want %s", entente.ErrorCode(err), entente.EINVALID)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
		})
	}
}

// TestSplitEnvelopeRealBundles reads the OASIS example bundles as
// envelopes (a bundle has an objects list too) and compares with
// encoding/json.
func TestSplitEnvelopeRealBundles(t *testing.T) {
	dir := testutil.SharedData(t, "stix", "examples")
	var n int
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".json" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		got, err := SplitEnvelope(b, 0)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		var want struct{ Objects []json.RawMessage }
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(got) != len(want.Objects) {
			t.Errorf("%s: %d objects, want %d", path, len(got), len(want.Objects))
			return nil
		}
		for i := range got {
			if !bytes.Equal(got[i], want.Objects[i]) {
				t.Errorf("%s: object %d differs", path, i)
			}
		}
		n += len(got)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no object read from the examples")
	}
}

func TestAppendEnvelope(t *testing.T) {
	tests := []struct {
		more bool
		next string
		objs []string
		want string
	}{
		{false, "", nil, `{"more":false}`},
		{false, "ignored", []string{`{"a":1}`}, `{"more":false,"objects":[{"a":1}]}`},
		{true, `n"1`, []string{`{"a":1}`, `{}`}, `{"more":true,"next":"n\"1","objects":[{"a":1},{}]}`},
	}
	for _, tt := range tests {
		var raws []json.RawMessage
		for _, o := range tt.objs {
			raws = append(raws, json.RawMessage(o))
		}
		got := string(AppendEnvelope(nil, tt.more, tt.next, raws))
		if got != tt.want {
			t.Errorf("AppendEnvelope = %s, want %s", got, tt.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("AppendEnvelope produced invalid JSON %s", got)
		}
	}
}

// FuzzSplitEnvelope compares SplitEnvelope and CheckJSON with
// encoding/json. SplitEnvelope: whatever
// it accepts is valid JSON whose objects are exactly the elements
// encoding/json finds; whatever valid UTF-8 JSON envelope it refuses is
// refused for depth, a duplicated or non-list objects member only.
func FuzzSplitEnvelope(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"objects":[]}`, `{"objects":[{"type":"indicator","id":"x"}],"more":false}`,
		`{"objects":[1,2,[3,[4]]]}`, `{"objects":{}}`, `{"a":"\ud800"}`, `{"objects":[],"objects":[]}`,
		`{"objects":[{"a":-0.0e-1}]} `, `[]`, `{"objects":[{"a":"é"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		const depth = 16
		if err := CheckJSON(b, depth); err == nil {
			if !json.Valid(b) {
				t.Fatalf("CheckJSON accepted invalid JSON %q", b)
			}
		} else if json.Valid(b) && utf8.Valid(b) && !strings.Contains(err.Error(), "deeper than") {
			t.Fatalf("CheckJSON refused valid JSON %q: %v", b, err)
		}
		got, err := SplitEnvelope(b, depth)
		if err == nil {
			if !json.Valid(b) {
				t.Fatalf("accepted invalid JSON %q", b)
			}
			// Member names match exactly (encoding/json's struct decoding
			// would also match "OBJECTS"), so compare through a map.
			var want struct{ Objects []json.RawMessage }
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("accepted %q, which is not a JSON object: %v", b, err)
			}
			if raw, ok := m["objects"]; ok {
				if err := json.Unmarshal(raw, &want.Objects); err != nil {
					t.Fatalf("accepted %q, whose objects encoding/json refuses: %v", b, err)
				}
			}
			if len(got) != len(want.Objects) {
				t.Fatalf("%q: %d objects, encoding/json finds %d", b, len(got), len(want.Objects))
			}
			for i := range got {
				if !bytes.Equal(got[i], want.Objects[i]) {
					t.Fatalf("%q: object %d is %q, encoding/json finds %q", b, i, got[i], want.Objects[i])
				}
			}
			return
		}
		if entente.ErrorCode(err) != entente.EINVALID {
			t.Fatalf("error code %s", entente.ErrorCode(err))
		}
		if !json.Valid(b) || !utf8.Valid(b) {
			return
		}
		msg := err.Error()
		if strings.Contains(msg, "deeper than") || strings.Contains(msg, "more than once") ||
			strings.Contains(msg, "not a list") || strings.Contains(msg, "not a JSON object") {
			return
		}
		t.Fatalf("refused valid JSON %q: %v", b, err)
	})
}

func TestCheckJSON(t *testing.T) {
	for _, ok := range []string{`1`, ` "s" `, `[[1]]`, `{"a":[{"b":null}]}`} {
		if err := CheckJSON([]byte(ok), 3); err != nil {
			t.Errorf("CheckJSON(%s): %v", ok, err)
		}
	}
	for _, bad := range []string{``, `[[[[1]]]]`, `{"a":{"b":{"c":{}}}}`, `1 2`, `{"a":}`} {
		if err := CheckJSON([]byte(bad), 3); entente.ErrorCode(err) != entente.EINVALID {
			t.Errorf("CheckJSON(%s) = %v, want an EINVALID error", bad, err)
		}
	}
}

// BenchmarkSplitEnvelope reads an envelope of 100 indicators.
func BenchmarkSplitEnvelope(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString(`{"objects":[`)
	for i := range 100 {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"bench ip indicator","description":"synthetic indicator generated by taxiiload","indicator_types":["malicious-activity"],"pattern":"[ipv4-addr:value = '198.51.100.7']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00.000Z","labels":["bench"]}`)
	}
	buf.WriteString(`]}`)
	body := buf.Bytes()
	b.Run("SplitEnvelope", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			objs, err := SplitEnvelope(body, 0)
			if err != nil || len(objs) != 100 {
				b.Fatal(err)
			}
		}
	})
	// The same with encoding/json, for comparison in the same run.
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var env struct{ Objects []json.RawMessage }
			if err := json.Unmarshal(body, &env); err != nil || len(env.Objects) != 100 {
				b.Fatal(err)
			}
		}
	})
}
