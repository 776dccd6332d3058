package stix

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/gowebpki/jcs"
)

// SCONamespace is the UUIDv5 namespace of the STIX 2.1 deterministic
// identifiers of cyber-observable objects.
var SCONamespace = uuid.MustParse("00abedb4-aa42-466c-9c01-fed23315a9b7")

// idContributing lists, for every SCO type the specification defines, the
// properties that contribute to its deterministic identifier (the
// specification's "ID Contributing Properties"). Process has none: its
// identifiers are random.
var idContributing = map[string][]string{
	"artifact":             {"hashes", "payload_bin"},
	"autonomous-system":    {"number"},
	"directory":            {"path"},
	"domain-name":          {"value"},
	"email-addr":           {"value"},
	"email-message":        {"from_ref", "subject", "body"},
	"file":                 {"hashes", "name", "extensions", "parent_directory_ref"},
	"ipv4-addr":            {"value"},
	"ipv6-addr":            {"value"},
	"mac-addr":             {"value"},
	"mutex":                {"name"},
	"network-traffic":      {"start", "end", "src_ref", "dst_ref", "src_port", "dst_port", "protocols", "extensions"},
	"process":              nil,
	"software":             {"name", "cpe", "swid", "vendor", "version"},
	"url":                  {"value"},
	"user-account":         {"account_type", "user_id", "account_login"},
	"windows-registry-key": {"key", "values"},
	"x509-certificate":     {"hashes", "serial_number"},
}

// hashPreference is the order in which one hash is chosen when hashes
// contribute to an identifier.
var hashPreference = []string{"MD5", "SHA-1", "SHA-256", "SHA-512"}

// SCOID returns the deterministic identifier of a cyber-observable object
// of type objType whose JSON is raw: objType, "--", and the UUIDv5 in the
// SCO namespace of the RFC 8785 canonical JSON of the object's
// ID-contributing properties. When hashes contribute, only one hash is
// used (MD5, else SHA-1, SHA-256, SHA-512, else the first one). For
// process objects, custom SCO types and objects that carry none of their
// contributing properties the specification calls for a random
// identifier, which SCOID returns.
func SCOID(objType string, raw json.RawMessage) (string, error) {
	props, ok := idContributing[objType]
	if !ok || len(props) == 0 {
		return NewID(objType), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", fmt.Errorf("sco id of %s: %w", objType, err)
	}
	sel := make(map[string]json.RawMessage, len(props))
	for _, p := range props {
		v, ok := obj[p]
		if !ok || string(v) == "null" {
			continue
		}
		if p == "hashes" {
			h, err := chooseHash(v)
			if err != nil {
				return "", fmt.Errorf("sco id of %s: property hashes: %w", objType, err)
			}
			if h == nil {
				continue
			}
			v = h
		}
		sel[p] = v
	}
	if len(sel) == 0 {
		return NewID(objType), nil
	}
	b, err := json.Marshal(sel)
	if err != nil {
		return "", fmt.Errorf("sco id of %s: %w", objType, err)
	}
	canon, err := jcs.Transform(b)
	if err != nil {
		return "", fmt.Errorf("sco id of %s: canonical JSON: %w", objType, err)
	}
	return objType + "--" + uuid.NewSHA1(SCONamespace, canon).String(), nil
}

// chooseHash returns a hashes dictionary with the one preferred hash.
func chooseHash(v json.RawMessage) (json.RawMessage, error) {
	var hashes map[string]json.RawMessage
	if err := json.Unmarshal(v, &hashes); err != nil {
		return nil, err
	}
	for _, k := range hashPreference {
		if h, ok := hashes[k]; ok {
			return json.Marshal(map[string]json.RawMessage{k: h})
		}
	}
	// Otherwise the first hash in the document's order.
	dec := json.NewDecoder(bytes.NewReader(v))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if !dec.More() {
		return nil, nil
	}
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	k, _ := t.(string)
	return json.Marshal(map[string]json.RawMessage{k: hashes[k]})
}

// SCOIDMatches reports whether a cyber-observable object's id is the
// deterministic identifier SCOID computes for it. Objects of types with
// random identifiers (process, custom types) always match. The
// specification makes deterministic identifiers a SHOULD, so [Validate]
// does not require them.
func SCOIDMatches(raw json.RawMessage) (bool, error) {
	var head struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return false, fmt.Errorf("sco id: %w", err)
	}
	props := idContributing[head.Type]
	if len(props) == 0 {
		return true, nil
	}
	want, err := SCOID(head.Type, raw)
	if err != nil {
		return false, err
	}
	u, err := uuid.Parse(want[len(head.Type)+2:])
	if err != nil || u.Version() != 5 {
		return true, nil // no contributing properties: random id
	}
	return want == head.ID, nil
}
