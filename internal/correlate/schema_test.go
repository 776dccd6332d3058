package correlate_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// checkSchema validates obj against the schema text of the extension
// definition def.
func checkSchema(t *testing.T, def, obj json.RawMessage) error {
	t.Helper()
	var d struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(def, &d); err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(d.Schema)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("alert.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("alert.json")
	if err != nil {
		t.Fatalf("compile the alert schema: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(obj))
	if err != nil {
		t.Fatal(err)
	}
	return sch.Validate(inst)
}
