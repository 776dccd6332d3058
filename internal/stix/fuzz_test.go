package stix

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

var fuzzSeeds = []string{
	baseIndicator, baseSighting, baseRelationship, baseIdentity, baseIPv4, baseStmt, baseExtDef, baseNetTraffic,
	baseLocation, baseMalware, baseObserved, baseOpinion, baseArtifact, baseEmail,
	`{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[` + baseIdentity + `,` + baseIPv4 + `]}`,
	`[` + baseIndicator + `]`, `{"a":"\u00e9\ud83d\ude00"}`, `{"type":"x-a","extensions":{"x":{"extension_type":"new-sco"}}}`,
	`{"type":"identity","granular_markings":[{"selectors":["a.[0].b"],"lang":"en"}]}`, `[`, `{"objects":[{}`, `"`, ``,
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := Decode(data)
		if err != nil {
			return
		}
		if !json.Valid(o.Raw) {
			t.Fatalf("Decode accepted invalid JSON %q", data)
		}
		out, _ := o.MarshalJSON()
		if !bytes.Equal(out, bytes.TrimSpace(data)) {
			t.Fatalf("MarshalJSON changed the object")
		}
		_ = Validate(o) // must not panic
	})
}

func FuzzValidate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Validate(&Object{Raw: data})
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 || err.Error() == "" {
				t.Fatalf("Validate returned %T %v", err, err)
			}
		}
		// The tree parser, the skipping scanner and encoding/json agree
		// on what is JSON.
		_, perr := parseJSON(data)
		end, serr := skipValue(data, 0)
		skipOK := serr == nil && skipWS(data, end) == len(data)
		if (perr == nil) != skipOK || (perr == nil) != json.Valid(data) {
			t.Fatalf("parseJSON %v, skipValue ok %v, json.Valid %v on %q", perr, skipOK, json.Valid(data), data)
		}
	})
}

func FuzzReadBundle(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := ReadBundle(bytes.NewReader(data), func(i int, raw json.RawMessage) error {
			if !json.Valid(raw) || raw[0] != '{' {
				t.Fatalf("object %d is not a JSON object: %q", i, raw)
			}
			o, err := Decode(raw)
			if err == nil {
				_ = Validate(o)
			}
			return nil
		})
		if err != nil {
			var be *BundleError
			if !errors.As(err, &be) {
				t.Fatalf("error %T %v is not a *BundleError", err, err)
			}
		}
	})
}

// FuzzScratchTree checks that a tree parsed into a reused scratch is the
// tree parsed with fresh memory, whatever was parsed into the scratch
// before.
func FuzzScratchTree(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	sc := new(scratch)
	f.Fuzz(func(t *testing.T, data []byte) {
		want, werr := parseJSONAlias(data)
		got, gerr := parseJSONScratch(data, sc)
		defer sc.reset()
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("errors differ: %v and %v", werr, gerr)
		}
		if werr == nil && !reflect.DeepEqual(want, got) {
			t.Fatalf("trees differ for %q", data)
		}
		if !reflect.DeepEqual(Validate(&Object{Raw: data}), Validate(&Object{Raw: data})) {
			t.Fatalf("Validate differs between two runs for %q", data)
		}
	})
}
