package stix

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func collect(t *testing.T, in string) ([]string, error) {
	t.Helper()
	var got []string
	err := ReadBundle(strings.NewReader(in), func(i int, raw json.RawMessage) error {
		if i != len(got) {
			t.Errorf("index %d, want %d", i, len(got))
		}
		got = append(got, string(raw))
		return nil
	})
	return got, err
}

func TestReadBundleShapes(t *testing.T) {
	a := `{"type":"identity","id":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"}`
	b := `{"type":"x-foo","id":"x-foo--f431f809-377b-45e0-aa1c-6a4751cae5ff","objects":[1,{"a":"]"}]}`
	tests := []struct {
		name, in string
		want     []string
	}{
		{"bundle", `{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[` + a + `, ` + b + `]}`, []string{a, b}},
		{"objects before type", `{"objects":[` + a + `],"id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","type":"bundle"}`, []string{a}},
		{"bundle with white space and BOM", "\xEF\xBB\xBF \n{ \"type\" : \"bundle\" , \"objects\" : [ " + a + " ] } \n", []string{a}},
		{"empty bundle", `{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[]}`, nil},
		{"bundle without objects", `{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d"}`, nil},
		{"array", `[` + a + `,` + b + `]`, []string{a, b}},
		{"single object", a, []string{a}},
		{"single object with objects list", b, []string{b}},
		{"observed-data with objects dictionary", `{"type":"observed-data","objects":{"0":{"type":"file"}}}`, []string{`{"type":"observed-data","objects":{"0":{"type":"file"}}}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := collect(t, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadBundleErrors(t *testing.T) {
	obj := `{"type":"identity","id":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff","name":"x"}`
	head := `{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[`
	tests := []struct {
		name, in  string
		index     int
		id        string
		truncated bool
		want      string
	}{
		{"truncated in an object", head + obj + `,{"type":"identity","id":"identity--0000`, 1, "", true, "truncated"},
		{"truncated after an object", head + obj + `,` + obj, 1, "", true, "truncated"},
		{"truncated list", head + obj + `]`, -1, "", true, "truncated"},
		{"truncated array", `[` + obj, 0, "", true, "truncated"},
		{"bad syntax in second object", head + obj + `,{"type":"identity","id":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff","name":x}]}`, 1, "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff", false, "unexpected character 'x'"},
		{"non-object element", head + obj + `,42]}`, 1, "", false, "must be a JSON object"},
		{"objects not a list", `{"type":"bundle","objects":{}}`, -1, "", false, `"objects" must be a list`},
		{"trailing data", head + obj + `]} x`, -1, "", false, "after the end"},
		{"empty input", "  ", -1, "", false, "empty input"},
		{"not JSON", "<html>", -1, "", false, "unexpected character '<'"},
		{"trailing comma", head + obj + `,]}`, 1, "", false, "unexpected character ']'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := ReadBundle(strings.NewReader(tt.in), func(int, json.RawMessage) error { calls++; return nil })
			var be *BundleError
			if !errors.As(err, &be) {
				t.Fatalf("err = %v, want a *BundleError", err)
			}
			if be.Index != tt.index || be.ObjectID != tt.id {
				t.Errorf("index %d id %q, want %d %q (%v)", be.Index, be.ObjectID, tt.index, tt.id, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if errors.Is(err, ErrTruncated) != tt.truncated {
				t.Errorf("errors.Is(ErrTruncated) = %v", !tt.truncated)
			}
			if be.Offset < 0 || be.Offset > int64(len(tt.in)) {
				t.Errorf("offset %d outside the input", be.Offset)
			}
			if calls != 0 {
				t.Errorf("fn called %d times on malformed input", calls)
			}
		})
	}
}

func TestReadBundleCallbackError(t *testing.T) {
	in := `{"type":"bundle","objects":[{"id":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"},{"type":"x","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"},{}]}`
	stop := fmt.Errorf("store full")
	n := 0
	err := ReadBundle(strings.NewReader(in), func(i int, raw json.RawMessage) error {
		n++
		if i == 1 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("err %v after %d calls", err, n)
	}
	want := fmt.Sprintf("bundle object 1 (indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f) at byte offset %d: store full", strings.Index(in, `{"type":"x"`))
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestReadBundleReaderError(t *testing.T) {
	err := ReadBundle(errReader{}, func(int, json.RawMessage) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "read bundle") {
		t.Errorf("err = %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestReadBundleATTACK(t *testing.T) {
	n := 0
	types := map[string]int{}
	err := ScanBundle(attackBytes(t), func(i int, raw json.RawMessage) error {
		n++
		types[rawType(raw)]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 24772 || types["relationship"] != 20048 || types["attack-pattern"] != 835 {
		t.Errorf("%d objects, %d relationships, %d attack-patterns; want 24772, 20048, 835", n, types["relationship"], types["attack-pattern"])
	}
}

func rawType(raw []byte) string {
	var h struct{ Type string }
	json.Unmarshal(raw, &h)
	return h.Type
}
