package stix

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestSCOIDOfficialExamples checks SCOID against the deterministic ids of
// the OASIS examples (cti-documentation, sighting-of-observed-data).
func TestSCOIDOfficialExamples(t *testing.T) {
	tests := []struct{ raw, want string }{
		{`{"type":"file","id":"file--364fe3e5-b1f4-5ba3-b951-ee5983b3538d","spec_version":"2.1",
			"hashes":{"MD5":"1717b7fff97d37a1e1a0029d83492de1","SHA-1":"c79a326f8411e9488bdc3779753e1e3489aaedea"},
			"size":83968,"name":"resume.pdf"}`, "file--364fe3e5-b1f4-5ba3-b951-ee5983b3538d"},
		{`{"type":"windows-registry-key","id":"windows-registry-key--16b80d14-d574-5620-abad-10ff304b1c26","spec_version":"2.1",
			"key":"HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\WSALG2"}`, "windows-registry-key--16b80d14-d574-5620-abad-10ff304b1c26"},
	}
	for _, tt := range tests {
		typ := tt.want[:strings.Index(tt.want, "--")]
		got, err := SCOID(typ, json.RawMessage(tt.raw))
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("SCOID = %s, want %s", got, tt.want)
		}
		ok, err := SCOIDMatches(json.RawMessage(tt.raw))
		if err != nil || !ok {
			t.Errorf("SCOIDMatches = %v, %v", ok, err)
		}
	}
}

func TestSCOIDProperties(t *testing.T) {
	id := func(typ, raw string) string {
		t.Helper()
		s, err := SCOID(typ, json.RawMessage(raw))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Only contributing properties count, in any order and spacing.
	a := id("ipv4-addr", `{"type":"ipv4-addr","value":"198.51.100.3"}`)
	b := id("ipv4-addr", `{ "value" : "198.51.100.3", "type":"ipv4-addr", "id":"ipv4-addr--x", "x_note":"ignored" }`)
	if a != b {
		t.Errorf("non-contributing properties changed the id: %s vs %s", a, b)
	}
	if u := uuid.MustParse(a[len("ipv4-addr--"):]); u.Version() != 5 {
		t.Errorf("version %d, want 5", u.Version())
	}
	if a == id("ipv4-addr", `{"value":"198.51.100.4"}`) {
		t.Error("different values gave the same id")
	}
	// The id is UUIDv5 over the canonical JSON {"value":"..."}.
	want := "ipv4-addr--" + uuid.NewSHA1(SCONamespace, []byte(`{"value":"198.51.100.3"}`)).String()
	if a != want {
		t.Errorf("SCOID = %s, want %s", a, want)
	}
	// One hash is chosen: MD5 first, then SHA-1, SHA-256, SHA-512.
	h1 := id("file", `{"hashes":{"SHA-256":"aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f","MD5":"d41d8cd98f00b204e9800998ecf8427e"}}`)
	h2 := id("file", `{"hashes":{"MD5":"d41d8cd98f00b204e9800998ecf8427e"}}`)
	if h1 != h2 {
		t.Error("the MD5 hash was not the one chosen")
	}
	h3 := id("file", `{"hashes":{"SHA-512":"x","SHA-256":"aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f"}}`)
	h4 := id("file", `{"hashes":{"SHA-256":"aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f"}}`)
	if h3 != h4 {
		t.Error("SHA-256 was not preferred over SHA-512")
	}
	// Process objects and objects without contributing properties get
	// random ids.
	for _, c := range [][2]string{{"process", `{"pid":1}`}, {"url", `{"type":"url"}`}, {"x-custom", `{"a":1}`}} {
		p1, p2 := id(c[0], c[1]), id(c[0], c[1])
		if p1 == p2 || uuid.MustParse(p1[len(c[0])+2:]).Version() != 4 {
			t.Errorf("%s: ids %s, %s are not random", c[0], p1, p2)
		}
	}
	if _, err := SCOID("url", json.RawMessage(`{"value":`)); err == nil {
		t.Error("SCOID accepted broken JSON")
	}
}

// TestSCOIDShouldNotMust checks that Validate accepts an SCO whose id is
// not its deterministic one, while SCOIDMatches tells.
func TestSCOIDShouldNotMust(t *testing.T) {
	raw := json.RawMessage(`{"id":"ipv4-addr--1e4ffad7-0b88-41d4-ba4d-77d27490b956","type":"ipv4-addr","value":"198.51.100.3"}`)
	if err := validateRaw(raw); err != nil {
		t.Errorf("Validate: %v", err)
	}
	ok, err := SCOIDMatches(raw)
	if err != nil || ok {
		t.Errorf("SCOIDMatches = %v, %v; want false", ok, err)
	}
	good, _ := SCOID("ipv4-addr", raw)
	fixed := json.RawMessage(strings.Replace(string(raw), "ipv4-addr--1e4ffad7-0b88-41d4-ba4d-77d27490b956", good, 1))
	if ok, err := SCOIDMatches(fixed); err != nil || !ok {
		t.Errorf("SCOIDMatches(deterministic id) = %v, %v", ok, err)
	}
}
