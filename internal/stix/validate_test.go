package stix

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
)

// Base objects for the rule table: each is valid as written.
const (
	baseIndicator = `{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
		"created":"2016-04-06T20:03:48.000Z","modified":"2016-04-06T20:03:48.000Z","indicator_types":["malicious-activity"],
		"name":"Poison Ivy","pattern":"[ipv4-addr:value = '198.51.100.1']","pattern_type":"stix","valid_from":"2016-01-01T00:00:00Z"}`
	baseSighting = `{"type":"sighting","spec_version":"2.1","id":"sighting--ee20065d-2555-424f-ad9e-0f8428623c75",
		"created":"2016-04-06T20:08:31.000Z","modified":"2016-04-06T20:08:31.000Z",
		"sighting_of_ref":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","count":3,
		"first_seen":"2016-04-06T20:00:00Z","last_seen":"2016-04-06T21:00:00Z",
		"where_sighted_refs":["identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"]}`
	baseRelationship = `{"type":"relationship","spec_version":"2.1","id":"relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad",
		"created":"2016-04-06T20:06:37.000Z","modified":"2016-04-06T20:06:37.000Z","relationship_type":"indicates",
		"source_ref":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","target_ref":"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"}`
	baseIdentity = `{"type":"identity","spec_version":"2.1","id":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
		"created":"2016-04-06T20:03:00.000Z","modified":"2016-04-06T20:03:00.000Z","name":"ACME","identity_class":"organization"}`
	baseIPv4   = `{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd","value":"198.51.100.3"}`
	baseStmt   = `{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41db","created":"2016-08-01T00:00:00.000Z","definition_type":"statement","definition":{"statement":"Copyright ACME"}}`
	baseExtDef = `{"type":"extension-definition","spec_version":"2.1","id":"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e",
		"created_by_ref":"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff","created":"2014-02-20T09:16:08.989Z","modified":"2014-02-20T09:16:08.989Z",
		"name":"Extension My Favorite SDO and Sub-Comp","schema":"https://www.example.com/schema-foo-1a/v1/","version":"1.2.1",
		"extension_types":["new-sdo"]}`
	baseNetTraffic = `{"type":"network-traffic","spec_version":"2.1","id":"network-traffic--2568d22a-8998-58eb-99ec-3c8ca74f527d",
		"src_ref":"ipv4-addr--4d22aae0-2bf9-5427-8819-e4f6abf20a53","dst_port":443,"protocols":["ipv4","tcp"]}`
	baseLocation = `{"type":"location","spec_version":"2.1","id":"location--a6e9345f-5a15-4c29-8bb3-7dcc5d168d64",
		"created":"2016-04-06T20:03:00.000Z","modified":"2016-04-06T20:03:00.000Z","region":"south-eastern-asia","country":"th"}`
	baseMalware = `{"type":"malware","spec_version":"2.1","id":"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
		"created":"2016-04-06T20:07:09.000Z","modified":"2016-04-06T20:07:09.000Z","name":"Poison Ivy","is_family":true}`
	baseObserved = `{"type":"observed-data","spec_version":"2.1","id":"observed-data--b67d30ff-02ac-498a-92f9-32f845f448cf",
		"created":"2016-04-06T19:58:16.000Z","modified":"2016-04-06T19:58:16.000Z","first_observed":"2015-12-21T19:00:00Z",
		"last_observed":"2015-12-21T19:00:00Z","number_observed":50,"object_refs":["ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"]}`
	baseOpinion = `{"type":"opinion","spec_version":"2.1","id":"opinion--b01efc25-77b4-4003-b18b-f6e24b5cd9f7",
		"created":"2016-05-12T08:17:27.000Z","modified":"2016-05-12T08:17:27.000Z","opinion":"strongly-disagree",
		"object_refs":["relationship--16d2358f-3b0d-4c88-b047-0da2f7ed4471"]}`
	baseArtifact = `{"type":"artifact","spec_version":"2.1","id":"artifact--6f437177-6e48-5cf8-9d9e-872a2bddd641","mime_type":"image/jpeg","payload_bin":"VBORw0KGgoAAAANSUhEUgAAADI=="}`
	baseEmail    = `{"type":"email-message","spec_version":"2.1","id":"email-message--cf9b4b7f-14c8-5955-8065-020e0316b559","is_multipart":false,"body":"hello"}`
)

// mutate returns base with the properties in set replaced (a nil value
// deletes the property).
func mutate(t *testing.T, base string, set map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(base), &m); err != nil {
		t.Fatalf("base object: %v", err)
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func validateRaw(raw []byte) error {
	o, err := Decode(raw)
	if err != nil {
		return err
	}
	return Validate(o)
}

func TestValidateBaseObjectsAreValid(t *testing.T) {
	for _, b := range []string{baseIndicator, baseSighting, baseRelationship, baseIdentity, baseIPv4, baseStmt, baseExtDef,
		baseNetTraffic, baseLocation, baseMalware, baseObserved, baseOpinion, baseArtifact, baseEmail} {
		if err := validateRaw([]byte(b)); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// TestValidateRules holds one invalid object per rule and checks that
// Validate names the property and the reason.
func TestValidateRules(t *testing.T) {
	type M = map[string]any
	tests := []struct {
		name     string
		base     string
		set      M
		property string // expected Problem.Property
		want     string // expected substring of the message
	}{
		{"type missing", baseIdentity, M{"type": nil}, "type", "required"},
		{"type not a string", baseIdentity, M{"type": 7}, "type", "must be a string"},
		{"type too short", baseIdentity, M{"type": "xy", "id": "xy--f431f809-377b-45e0-aa1c-6a4751cae5ff"}, "type", "3 to 250"},
		{"type upper case", baseIdentity, M{"type": "Identity"}, "type", "a-z, 0-9"},
		{"type with double dash", baseIdentity, M{"type": "x--y"}, "type", `"--"`},
		{"id missing", baseIdentity, M{"id": nil}, "id", "required"},
		{"id not an identifier", baseIdentity, M{"id": "identity-1"}, "id", "not an identifier"},
		{"id bad uuid", baseIdentity, M{"id": "identity--f431f809-377b-45e0-aa1c"}, "id", "not an RFC 4122 UUID"},
		{"id of another type", baseIdentity, M{"id": "indicator--f431f809-377b-45e0-aa1c-6a4751cae5ff"}, "id", "must start with the object's type"},
		{"spec_version missing", baseIdentity, M{"spec_version": nil}, "spec_version", "required"},
		{"spec_version 2.0", baseIdentity, M{"spec_version": "2.0"}, "spec_version", "only STIX 2.1"},
		{"created missing", baseIdentity, M{"created": nil}, "created", "required"},
		{"modified missing", baseIdentity, M{"modified": nil}, "modified", "required"},
		{"created not a timestamp", baseIdentity, M{"created": "2016-04-06 20:03:00"}, "created", "timestamp"},
		{"created without Z", baseIdentity, M{"created": "2016-04-06T20:03:00.000+01:00"}, "created", "timestamp"},
		{"created without milliseconds", baseIdentity, M{"created": "2016-04-06T20:03:00Z"}, "created", "millisecond"},
		{"modified before created", baseIdentity, M{"modified": "2015-04-06T20:03:00.000Z"}, "modified", "earlier than created"},
		{"created_by_ref not identity", baseIdentity, M{"created_by_ref": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"}, "created_by_ref", "identity"},
		{"revoked not boolean", baseIdentity, M{"revoked": "yes"}, "revoked", "boolean"},
		{"confidence out of range", baseIdentity, M{"confidence": 101}, "confidence", "between 0 and 100"},
		{"confidence not integer", baseIdentity, M{"confidence": 5.5}, "confidence", "integer"},
		{"labels empty", baseIdentity, M{"labels": []any{}}, "labels", "empty list"},
		{"labels not strings", baseIdentity, M{"labels": []any{1}}, "labels[0]", "string"},
		{"marking ref of wrong type", baseIdentity, M{"object_marking_refs": []any{"identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"}}, "object_marking_refs[0]", "marking-definition"},
		{"marking ref not an id", baseIdentity, M{"object_marking_refs": []any{"TLP:RED"}}, "object_marking_refs[0]", "not an identifier"},
		{"granular marking without selectors", baseIdentity, M{"granular_markings": []any{M{"marking_ref": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"}}}, "granular_markings[0].selectors", "required"},
		{"granular marking without ref or lang", baseIdentity, M{"granular_markings": []any{M{"selectors": []any{"name"}}}}, "granular_markings[0]", "marking_ref or lang"},
		{"granular marking with ref and lang", baseIdentity, M{"granular_markings": []any{M{"selectors": []any{"name"}, "lang": "en", "marking_ref": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"}}}, "granular_markings[0]", "not both"},
		{"granular marking selector absent", baseIdentity, M{"granular_markings": []any{M{"selectors": []any{"description"}, "lang": "en"}}}, "granular_markings[0].selectors[0]", "does not select"},
		{"external reference without source_name", baseIdentity, M{"external_references": []any{M{"url": "https://example.com"}}}, "external_references[0].source_name", "required"},
		{"external reference bad hash", baseIdentity, M{"external_references": []any{M{"source_name": "x", "hashes": M{"SHA-256": "abc"}}}}, "external_references[0].hashes.SHA-256", "SHA-256 hash"},
		{"kill chain phase without phase_name", baseIndicator, M{"kill_chain_phases": []any{M{"kill_chain_name": "lockheed"}}}, "kill_chain_phases[0].phase_name", "required"},
		{"custom property name upper case", baseIdentity, M{"x_Foo": 1}, "x_Foo", "a-z, 0-9 and '_'"},
		{"custom property name too short", baseIdentity, M{"xy": 1}, "xy", "3 to 250"},
		{"custom ref not an identifier", baseIdentity, M{"x_acme_owner_ref": "bob"}, "x_acme_owner_ref", "not an identifier"},
		{"nested custom ref not an identifier", baseIdentity, M{"x_acme_links": []any{M{"target_ref": "nope"}}}, "x_acme_links[0].target_ref", "not an identifier"},
		{"nested refs not a list", baseIdentity, M{"x_acme": M{"member_refs": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"}}, "x_acme.member_refs", "must be a list"},
		{"bundle given as an object", `{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[]}`, nil, "type", "container"},
		{"extension name invalid", baseIdentity, M{"extensions": M{"my-extension": M{"a": 1}}}, "extensions.my-extension", "extension-definition identifier"},
		{"extension_type unknown", baseIdentity, M{"extensions": M{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e": M{"extension_type": "new-thing"}}}, "extensions.extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e.extension_type", "new-sdo"},
		{"identity name missing", baseIdentity, M{"name": nil}, "name", "required for identity"},
		{"indicator pattern missing", baseIndicator, M{"pattern": nil}, "pattern", "required for indicator"},
		{"indicator valid_from missing", baseIndicator, M{"valid_from": nil}, "valid_from", "required"},
		{"indicator valid_until before valid_from", baseIndicator, M{"valid_until": "2015-01-01T00:00:00Z"}, "valid_until", "must be later than valid_from"},
		{"indicator valid_until equal valid_from", baseIndicator, M{"valid_until": "2016-01-01T00:00:00Z"}, "valid_until", "must be later than valid_from"},
		{"indicator valid_until malformed", baseIndicator, M{"valid_until": "tomorrow"}, "valid_until", "timestamp"},
		{"indicator name not a string", baseIndicator, M{"name": 5}, "name", "must be a string"},
		{"malware is_family missing", baseMalware, M{"is_family": nil}, "is_family", "required"},
		{"malware family without name", baseMalware, M{"name": nil}, "name", "is_family is true"},
		{"malware last_seen before first_seen", baseMalware, M{"first_seen": "2016-01-02T00:00:00Z", "last_seen": "2016-01-01T00:00:00Z"}, "last_seen", "earlier than first_seen"},
		{"location without region country or coordinates", baseLocation, M{"region": nil, "country": nil}, "", "region, country"},
		{"location latitude out of range", baseLocation, M{"latitude": 91.0, "longitude": 10.0}, "latitude", "-90.0 and 90.0"},
		{"location latitude without longitude", baseLocation, M{"latitude": 10.0}, "latitude", "together"},
		{"observed-data number_observed zero", baseObserved, M{"number_observed": 0}, "number_observed", "between 1 and 999999999"},
		{"observed-data without object_refs", baseObserved, M{"object_refs": nil}, "object_refs", "required"},
		{"observed-data last before first", baseObserved, M{"last_observed": "2015-12-20T19:00:00Z"}, "last_observed", "earlier than first_observed"},
		{"opinion outside enumeration", baseOpinion, M{"opinion": "meh"}, "opinion", "strongly-disagree"},
		{"relationship source_ref missing", baseRelationship, M{"source_ref": nil}, "source_ref", "required"},
		{"relationship type with spaces", baseRelationship, M{"relationship_type": "related to"}, "relationship_type", "a-z, 0-9"},
		{"relationship stop_time before start_time", baseRelationship, M{"start_time": "2016-01-02T00:00:00Z", "stop_time": "2016-01-01T00:00:00Z"}, "stop_time", "later than start_time"},
		{"sighting count negative", baseSighting, M{"count": -1}, "count", "between 0 and 999999999"},
		{"sighting count too large", baseSighting, M{"count": 1000000000}, "count", "between 0 and 999999999"},
		{"sighting last_seen before first_seen", baseSighting, M{"last_seen": "2016-04-06T19:00:00Z"}, "last_seen", "earlier than first_seen"},
		{"sighting where_sighted_refs of wrong type", baseSighting, M{"where_sighted_refs": []any{"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"}}, "where_sighted_refs[0]", "identity or location"},
		{"sighting of an SCO", baseSighting, M{"sighting_of_ref": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"}, "sighting_of_ref", "SDO"},
		{"sighting_of_ref missing", baseSighting, M{"sighting_of_ref": nil}, "sighting_of_ref", "required"},
		{"ipv4 value missing", baseIPv4, M{"value": nil}, "value", "required for ipv4-addr"},
		{"ipv4 value not an address", baseIPv4, M{"value": "300.1.1.1"}, "value", "IPv4"},
		{"ipv4 value is IPv6", baseIPv4, M{"value": "2001:db8::1"}, "value", "IPv4"},
		{"sco with created", baseIPv4, M{"created": "2016-04-06T20:03:00.000Z"}, "created", "not a property of cyber-observable"},
		{"sco spec_version 2.0", baseIPv4, M{"spec_version": "2.0"}, "spec_version", "only STIX 2.1"},
		{"network-traffic without src or dst", baseNetTraffic, M{"src_ref": nil}, "src_ref", "at least one of src_ref, dst_ref"},
		{"network-traffic port out of range", baseNetTraffic, M{"dst_port": 70000}, "dst_port", "between 0 and 65535"},
		{"network-traffic protocols missing", baseNetTraffic, M{"protocols": nil}, "protocols", "required"},
		{"network-traffic active with end", baseNetTraffic, M{"is_active": true, "end": "2016-01-01T00:00:00Z"}, "end", "is_active is true"},
		{"network-traffic src_ref of wrong type", baseNetTraffic, M{"src_ref": "file--364fe3e5-b1f4-5ba3-b951-ee5983b3538d"}, "src_ref", "ipv4-addr or ipv6-addr"},
		{"socket-ext address family", baseNetTraffic, M{"extensions": M{"socket-ext": M{"address_family": "AF_FOO"}}}, "extensions.socket-ext.address_family", "AF_INET"},
		{"artifact without payload or url", baseArtifact, M{"payload_bin": nil}, "payload_bin", "payload_bin or url"},
		{"artifact url without hashes", baseArtifact, M{"payload_bin": nil, "url": "https://example.com/a.jpg"}, "hashes", "required when url"},
		{"artifact encryption algorithm", baseArtifact, M{"encryption_algorithm": "rot13"}, "encryption_algorithm", "AES-256-GCM"},
		{"email multipart false with body_multipart", baseEmail, M{"body_multipart": []any{M{"body": "x"}}}, "body_multipart", "is_multipart is false"},
		{"email is_multipart missing", baseEmail, M{"is_multipart": nil}, "is_multipart", "required"},
		{"file without hashes or name", `{"type":"file","id":"file--364fe3e5-b1f4-5ba3-b951-ee5983b3538d","size":1}`, nil, "hashes", "at least one of hashes, name"},
		{"file hash of wrong length", `{"type":"file","id":"file--364fe3e5-b1f4-5ba3-b951-ee5983b3538d","hashes":{"MD5":"123"}}`, nil, "hashes.MD5", "MD5 hash"},
		{"mac-addr upper case", `{"type":"mac-addr","id":"mac-addr--65cfcf98-8a6e-5a1b-8f61-379ac4f92d00","value":"D2:FB:49:24:37:18"}`, nil, "value", "lowercase"},
		{"process without properties", `{"type":"process","id":"process--07bc30ca-ebc2-4579-881d-b9cdc7f2b33c"}`, nil, "", "at least one property"},
		{"registry value data_type", `{"type":"windows-registry-key","id":"windows-registry-key--2ba37ae7-2745-5082-9dfd-9486dad41016","key":"HKEY_LOCAL_MACHINE\\x","values":[{"name":"a","data_type":"REG_FOO"}]}`, nil, "values[0].data_type", "REG_SZ"},
		{"statement marking without statement", baseStmt, M{"definition": M{}}, "definition.statement", "required"},
		{"marking without definition or extension", baseStmt, M{"definition_type": nil, "definition": nil}, "definition_type", "definition_type and definition"},
		{"marking with modified in the past ok but spec_version missing", baseStmt, M{"spec_version": nil}, "spec_version", "required"},
		{"TLP 1.0 marking with unofficial id", baseStmt, M{"definition_type": "tlp", "definition": M{"tlp": "green"}}, "id", "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"},
		{"TLP 1.0 marking unknown level", baseStmt, M{"definition_type": "tlp", "definition": M{"tlp": "purple"}}, "definition.tlp", "white"},
		{"TLP 2.0 marking unknown level", baseStmt, M{"definition_type": nil, "definition": nil, "extensions": M{TLP20Extension: M{"extension_type": "property-extension", "tlp_2_0": "pink"}}}, "extensions." + TLP20Extension + ".tlp_2_0", "amber+strict"},
		{"TLP 2.0 official id with another level", baseStmt, M{"id": TLPRed.MarkingID(), "definition_type": nil, "definition": nil, "extensions": M{TLP20Extension: M{"extension_type": "property-extension", "tlp_2_0": "clear"}}}, "extensions." + TLP20Extension + ".tlp_2_0", "contradicts"},
		{"extension-definition unknown extension type", baseExtDef, M{"extension_types": []any{"new-thing"}}, "extension_types[0]", "toplevel-property-extension"},
		{"extension-definition without created_by_ref", baseExtDef, M{"created_by_ref": nil}, "created_by_ref", "required"},
		{"extension-definition extension_properties without toplevel", baseExtDef, M{"extension_properties": []any{"x_a"}}, "extension_properties", "toplevel-property-extension"},
		{"language-content without contents", `{"type":"language-content","spec_version":"2.1","id":"language-content--b86bd89f-98bb-4fa9-8cb2-9ad421da981d","created":"2017-02-08T21:31:22.007Z","modified":"2017-02-08T21:31:22.007Z","object_ref":"campaign--12a111f0-b824-4baf-a224-83b80237a094"}`, nil, "contents", "required"},
		{"custom object without created", `{"type":"x-acme-widget","spec_version":"2.1","id":"x-acme-widget--b86bd89f-98bb-4fa9-8cb2-9ad421da981d","modified":"2017-02-08T21:31:22.007Z"}`, nil, "created", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.base)
			if tt.set != nil {
				raw = mutate(t, tt.base, tt.set)
			}
			// Validate works from the JSON alone, whether or not Decode
			// (which rejects some of these itself) accepted it.
			err := Validate(&Object{Raw: raw})
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate accepted %s (err %v)", raw, err)
			}
			for _, p := range ve.Problems {
				if p.Property == tt.property && strings.Contains(p.Message, tt.want) {
					if !strings.Contains(err.Error(), tt.want) {
						t.Errorf("Error() %q does not carry the reason", err)
					}
					return
				}
			}
			t.Errorf("no problem on property %q containing %q; got: %v", tt.property, tt.want, err)
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	raw := mutate(t, baseIndicator, map[string]any{"valid_until": "2015-01-01T00:00:00Z", "pattern": nil})
	o, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	err = Validate(o)
	if err == nil {
		t.Fatal("Validate accepted the object")
	}
	want := `indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f: `
	for _, part := range []string{want, `property "valid_until": must be later than valid_from`, `property "pattern": required for indicator objects`} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("message %q lacks %q", err, part)
		}
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.ObjectID != o.ID || ve.Type != "indicator" || len(ve.Problems) != 2 {
		t.Errorf("ValidationError = %+v", ve)
	}
}

// TestValidateAccepts lists objects the specification allows that a
// stricter validator might reject.
func TestValidateAccepts(t *testing.T) {
	type M = map[string]any
	tests := []struct {
		name string
		raw  []byte
	}{
		{"custom object type", []byte(`{"type":"x-mitre-tactic","spec_version":"2.1","id":"x-mitre-tactic--b86bd89f-98bb-4fa9-8cb2-9ad421da981d","created":"2017-02-08T21:31:22.007Z","modified":"2017-02-08T21:31:22.007Z","name":"Execution","x_mitre_shortname":"execution"}`)},
		{"custom properties", mutate(t, baseIdentity, M{"x_acme_score": 5, "x_acme_tags": []any{"a"}, "foo": "bar"})},
		{"extension-definition extension", mutate(t, baseIdentity, M{"extensions": M{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e": M{"extension_type": "property-extension", "rank": 5}}})},
		{"SCO with a random (not UUIDv5) id", []byte(`{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--1e4ffad7-0b88-41d4-ba4d-77d27490b956","value":"198.51.100.3"}`)},
		{"SCO without spec_version", []byte(`{"type":"domain-name","id":"domain-name--ecb120bf-2694-4902-a737-62b74539a41b","value":"example.com"}`)},
		{"IPv4 CIDR", mutate(t, baseIPv4, M{"value": "198.51.100.0/24"})},
		{"custom SCO through new-sco", []byte(`{"type":"x-acme-wallet","id":"x-acme-wallet--1e4ffad7-0b88-41d4-ba4d-77d27490b956","address":"abc","extensions":{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e":{"extension_type":"new-sco"}}}`)},
		{"open vocabulary value", mutate(t, baseIdentity, M{"identity_class": "guild", "sectors": []any{"space-tourism"}})},
		{"granular marking on nested selector", mutate(t, baseIdentity, M{"external_references": []any{M{"source_name": "a", "url": "https://x"}},
			"granular_markings": []any{M{"selectors": []any{"external_references.[0].url"}, "marking_ref": TLPGreen.MarkingID()}}})},
		{"TLP 1.0 official marking", []byte(`{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da","created":"2017-01-20T00:00:00.000Z","definition_type":"tlp","name":"TLP:GREEN","definition":{"tlp":"green"}}`)},
		{"sighting with zero count", mutate(t, baseSighting, M{"count": 0})},
		{"relationship to a custom type", mutate(t, baseRelationship, M{"target_ref": "x-mitre-tactic--b86bd89f-98bb-4fa9-8cb2-9ad421da981d"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateRaw(tt.raw); err != nil {
				t.Errorf("rejected %s: %v", tt.raw, err)
			}
		})
	}
}

func TestValidateNonObjects(t *testing.T) {
	for _, raw := range []string{`[]`, `"x"`, `{"type":"identity"`, ``, `{"type":"identity","type":"identity"}`} {
		err := Validate(&Object{Raw: json.RawMessage(raw)})
		if err == nil {
			t.Errorf("Validate(%q) = nil", raw)
		}
	}
	if err := Validate(nil); err == nil {
		t.Error("Validate(nil) = nil")
	}
	err := Validate(&Object{Raw: json.RawMessage(`{"type":"identity","type":"identity"}`)})
	if err == nil || !strings.Contains(err.Error(), `property "type": appears more than once`) {
		t.Errorf("duplicate type: %v", err)
	}
	nested := strings.Replace(baseIdentity, `"name":"ACME"`, `"name":"ACME","x_acme":{"list":[{"a":1,"a":2}]}`, 1)
	err = Validate(&Object{Raw: json.RawMessage(nested)})
	if err == nil || !strings.Contains(err.Error(), `property "x_acme.list[0].a": appears more than once`) {
		t.Errorf("nested duplicate: %v", err)
	}
}

// TestInvalidCases checks that every invalid case of the OASIS validator
// fails, for the reason the case was written for.
func TestInvalidCases(t *testing.T) {
	dir := testutil.SharedData(t, "stix", "validator-cases", "invalid")
	reasons := map[string]string{
		"invalid_braces.json":    "unexpected character '<'",
		"invalid_timestamp.json": `property "modified": must not be earlier than created`,
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		want, ok := reasons[e.Name()]
		if !ok {
			t.Errorf("invalid case %s has no expected reason in this test", e.Name())
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		err = ReadBundle(f, func(_ int, raw json.RawMessage) error { return validateRaw(raw) })
		f.Close()
		if err == nil {
			t.Errorf("%s: accepted", e.Name())
		} else if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not say %q", e.Name(), err, want)
		}
	}
}
