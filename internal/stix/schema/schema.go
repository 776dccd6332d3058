// Package schema checks STIX 2.1 objects against the official OASIS STIX
// 2.1 JSON schemas. It is test support: other packages use [Check] to
// assert that every object the node emits conforms, and it works offline
// by loading the schemas from a local copy.
package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/entente-cti/entente/internal/testutil"
)

// baseURL is the $id prefix of the OASIS STIX 2.1 schemas.
const baseURL = "http://raw.githubusercontent.com/oasis-open/cti-stix2-json-schemas/stix2.1/schemas/"

// metaTypes maps the types whose schema lives under common/.
var commonTypes = map[string]string{
	"marking-definition":   "common/marking-definition.json",
	"language-content":     "common/language-content.json",
	"extension-definition": "common/extension-definition.json",
	"bundle":               "common/bundle.json",
}

// Validator validates STIX objects against the compiled OASIS schemas.
type Validator struct {
	byType  map[string]*jsonschema.Schema // type -> schema of that type
	core    *jsonschema.Schema            // custom SDO/SRO types
	scoCore *jsonschema.Schema            // custom SCO types
}

// New compiles every schema under dir (a copy of the "schemas" folder of
// oasis-open/cti-stix2-json-schemas), mapping their $id URLs to the local
// files, so that no network access is needed.
func New(dir string) (*Validator, error) {
	c := jsonschema.NewCompiler()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("schema %s: %w", p, err)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		url := baseURL + filepath.ToSlash(rel)
		if m, ok := doc.(map[string]any); ok {
			if id, ok := m["$id"].(string); ok && id != "" {
				url = id
			}
		}
		if err := c.AddResource(url, doc); err != nil {
			return fmt.Errorf("schema %s: %w", p, err)
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load STIX schemas from %s: %w", dir, err)
	}
	v := &Validator{byType: map[string]*jsonschema.Schema{}}
	for _, rel := range files {
		sch, err := c.Compile(baseURL + rel)
		if err != nil {
			return nil, fmt.Errorf("compile STIX schema %s: %w", rel, err)
		}
		name := strings.TrimSuffix(filepath.Base(rel), ".json")
		switch {
		case strings.HasPrefix(rel, "sdos/"), strings.HasPrefix(rel, "sros/"), strings.HasPrefix(rel, "observables/"):
			v.byType[name] = sch
		case rel == "common/core.json":
			v.core = sch
		case rel == "common/cyber-observable-core.json":
			v.scoCore = sch
		}
		for t, f := range commonTypes {
			if f == rel {
				v.byType[t] = sch
			}
		}
	}
	if v.core == nil || len(v.byType) < 40 {
		return nil, fmt.Errorf("load STIX schemas from %s: found %d object schemas, want the full OASIS set", dir, len(v.byType))
	}
	return v, nil
}

// Validate checks one object (or a bundle) against the schema of its
// type; objects of custom types are checked against the core schema
// (the cyber-observable core one when they declare a new-sco extension).
func (v *Validator) Validate(raw []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("schema check: %w", err)
	}
	m, ok := inst.(map[string]any)
	if !ok {
		return fmt.Errorf("schema check: not a JSON object")
	}
	typ, _ := m["type"].(string)
	id, _ := m["id"].(string)
	sch := v.byType[typ]
	if sch == nil {
		sch = v.core
		if isNewSCO(raw) && v.scoCore != nil {
			sch = v.scoCore
		}
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%s (type %s) does not match the OASIS schema: %w", id, typ, err)
	}
	return nil
}

// isNewSCO reports whether the object declares a new-sco extension.
func isNewSCO(raw []byte) bool {
	var o struct {
		Extensions map[string]struct {
			ExtensionType string `json:"extension_type"`
		} `json:"extensions"`
	}
	if json.Unmarshal(raw, &o) != nil {
		return false
	}
	for _, e := range o.Extensions {
		if e.ExtensionType == "new-sco" {
			return true
		}
	}
	return false
}

var (
	sharedOnce sync.Once
	shared     *Validator
	sharedErr  error
)

// Check fails tb unless raw validates against the OASIS STIX 2.1 schema
// of its type. The schemas are read once from the project's shared data
// (stix/schemas); the test is skipped when that is absent.
func Check(tb testing.TB, raw []byte) {
	tb.Helper()
	dir := testutil.SharedData(tb, "stix", "schemas")
	sharedOnce.Do(func() { shared, sharedErr = New(dir) })
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	if err := shared.Validate(raw); err != nil {
		tb.Error(err)
	}
}
