package schema_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/stix/schema"
	"github.com/entente-cti/entente/internal/testutil"
)

func newValidator(t *testing.T) *schema.Validator {
	t.Helper()
	v, err := schema.New(testutil.SharedData(t, "stix", "schemas"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestExamplesMatchSchemas checks that every object of the official
// examples validates, through both Validate and Check.
func TestExamplesMatchSchemas(t *testing.T) {
	v := newValidator(t)
	n := 0
	for _, dir := range []string{"examples", filepath.Join("validator-cases", "valid")} {
		root := testutil.SharedData(t, "stix", dir)
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return stix.ReadBundle(f, func(i int, raw json.RawMessage) error {
				n++
				if err := v.Validate(raw); err != nil {
					t.Errorf("%s object %d: %v", filepath.Base(p), i, err)
				}
				schema.Check(t, raw)
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 300 {
		t.Errorf("checked only %d objects", n)
	}
}

// TestTLPMarkingsMatchSchema checks the official TLP 2.0 objects.
func TestTLPMarkingsMatchSchema(t *testing.T) {
	for tlp := stix.TLPClear; tlp <= stix.TLPRed; tlp++ {
		schema.Check(t, stix.TLPMarkingObject(tlp))
	}
}

func TestSchemaRejects(t *testing.T) {
	v := newValidator(t)
	tests := []struct {
		name, raw, want string
	}{
		{"identity without name", `{"type":"identity","spec_version":"2.1","id":"identity--8c6af861-7b20-41ef-9b59-6344fd872a8f","created":"2016-08-08T15:50:10.983Z","modified":"2016-08-08T15:50:10.983Z"}`, "name"},
		{"bad id", `{"type":"identity","spec_version":"2.1","id":"identity--1","created":"2016-08-08T15:50:10.983Z","modified":"2016-08-08T15:50:10.983Z","name":"x"}`, "identity--1"},
		{"custom type without created", `{"type":"x-thing","spec_version":"2.1","id":"x-thing--8c6af861-7b20-41ef-9b59-6344fd872a8f"}`, "created"},
		{"ipv4 value not a string", `{"type":"ipv4-addr","id":"ipv4-addr--8c6af861-7b20-41ef-9b59-6344fd872a8f","value":4}`, "value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate([]byte(tt.raw))
			if err == nil {
				t.Fatalf("schema accepted %s", tt.raw)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestNewBadDir(t *testing.T) {
	if _, err := schema.New(t.TempDir()); err == nil {
		t.Error("New of an empty directory succeeded")
	}
}
