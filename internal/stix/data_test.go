package stix

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
)

// readObjects returns every object of a bundle file (gzip-compressed when
// its name ends in .gz).
func readObjects(tb testing.TB, path string) []json.RawMessage {
	tb.Helper()
	if strings.HasSuffix(path, ".gz") && path == attackPath(tb) {
		var out []json.RawMessage
		if err := ScanBundle(attackBytes(tb), func(_ int, raw json.RawMessage) error {
			out = append(out, raw)
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
		return out
	}
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			tb.Fatal(err)
		}
		r = zr
	}
	var out []json.RawMessage
	if err := ReadBundle(r, func(_ int, raw json.RawMessage) error {
		out = append(out, raw)
		return nil
	}); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return out
}

// validFiles lists the shared example bundles and valid validator cases.
func validFiles(tb testing.TB) []string {
	tb.Helper()
	var files []string
	for _, dir := range []string{
		testutil.SharedData(tb, "stix", "examples"),
		testutil.SharedData(tb, "stix", "validator-cases", "valid"),
	} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if len(files) < 10 {
		tb.Fatalf("found only %d example files", len(files))
	}
	return files
}

func attackPath(tb testing.TB) string {
	return testutil.SharedData(tb, "attack", "enterprise-attack-18.1.json.gz")
}

func TestValidateExamples(t *testing.T) {
	n := 0
	for _, file := range validFiles(t) {
		for i, raw := range readObjects(t, file) {
			o, err := Decode(raw)
			if err != nil {
				t.Errorf("%s object %d: decode: %v", filepath.Base(file), i, err)
				continue
			}
			if err := Validate(o); err != nil {
				t.Errorf("%s object %d: %v", filepath.Base(file), i, err)
			}
			n++
		}
	}
	t.Logf("%d example objects valid", n)
}

func TestValidateATTACK(t *testing.T) {
	objs := readObjects(t, attackPath(t))
	if len(objs) != 24772 {
		t.Errorf("ATT&CK bundle has %d objects, want 24772", len(objs))
	}
	bad := 0
	for i, raw := range objs {
		o, err := Decode(raw)
		if err == nil {
			err = Validate(o)
		}
		if err != nil {
			bad++
			if bad <= 20 {
				t.Errorf("object %d: %v", i, err)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d ATT&CK objects invalid", bad, len(objs))
	}
}
