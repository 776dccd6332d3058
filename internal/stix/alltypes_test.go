package stix

import (
	"encoding/json"
	"testing"

	"github.com/entente-cti/entente/internal/stix/schema"
)

// minimalObjects holds one small valid object of every type the
// specification defines. Each must pass both Validate and the OASIS
// schema, which cross-checks the two.
var minimalObjects = map[string]string{
	"attack-pattern":   `{"type":"attack-pattern","spec_version":"2.1","id":"attack-pattern--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061","created":"2016-05-12T08:17:27.000Z","modified":"2016-05-12T08:17:27.000Z","name":"Spear Phishing","kill_chain_phases":[{"kill_chain_name":"lockheed-martin-cyber-kill-chain","phase_name":"delivery"}]}`,
	"campaign":         `{"type":"campaign","spec_version":"2.1","id":"campaign--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2016-04-06T20:03:00.000Z","modified":"2016-04-06T20:03:00.000Z","name":"Green Group Attacks","first_seen":"2016-01-01T00:00:00Z","last_seen":"2016-02-01T00:00:00Z"}`,
	"course-of-action": `{"type":"course-of-action","spec_version":"2.1","id":"course-of-action--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2016-04-06T20:03:48.000Z","modified":"2016-04-06T20:03:48.000Z","name":"Add TCP port 80 Filter Rule"}`,
	"grouping":         `{"type":"grouping","spec_version":"2.1","id":"grouping--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3","created":"2015-12-21T19:59:11.000Z","modified":"2015-12-21T19:59:11.000Z","context":"suspicious-activity","object_refs":["indicator--26ffb872-1dd9-446e-b6f5-d58527e5b5d2"]}`,
	"identity":         baseIdentity,
	"incident":         `{"type":"incident","spec_version":"2.1","id":"incident--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2016-04-06T20:03:48.000Z","modified":"2016-04-06T20:03:48.000Z","name":"Breach"}`,
	"indicator":        baseIndicator,
	"infrastructure":   `{"type":"infrastructure","spec_version":"2.1","id":"infrastructure--38c47d93-d984-4fd9-b87b-d69d0841628d","created":"2016-05-07T11:22:30.000Z","modified":"2016-05-07T11:22:30.000Z","name":"Poison Ivy C2","infrastructure_types":["command-and-control"]}`,
	"intrusion-set":    `{"type":"intrusion-set","spec_version":"2.1","id":"intrusion-set--4e78f46f-a023-4e5f-bc24-71b3ca22ec29","created":"2016-04-06T20:03:48.000Z","modified":"2016-04-06T20:03:48.000Z","name":"Bobcat Breakin","aliases":["Zookeeper"]}`,
	"location":         baseLocation,
	"malware":          baseMalware,
	"malware-analysis": `{"type":"malware-analysis","spec_version":"2.1","id":"malware-analysis--d25167b7-fed0-4068-9ccd-a73dd2c5b07c","created":"2018-11-01T23:00:00.000Z","modified":"2018-11-01T23:00:00.000Z","product":"microsoft","result":"malicious"}`,
	"note":             `{"type":"note","spec_version":"2.1","id":"note--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061","created":"2016-05-12T08:17:27.000Z","modified":"2016-05-12T08:17:27.000Z","content":"This note indicates...","object_refs":["campaign--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"]}`,
	"observed-data":    baseObserved,
	"opinion":          baseOpinion,
	"report":           `{"type":"report","spec_version":"2.1","id":"report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3","created":"2015-12-21T19:59:11.000Z","modified":"2015-12-21T19:59:11.000Z","name":"The Black Vine Cyberespionage Group","published":"2016-01-20T17:00:00Z","object_refs":["indicator--26ffb872-1dd9-446e-b6f5-d58527e5b5d2"]}`,
	"threat-actor":     `{"type":"threat-actor","spec_version":"2.1","id":"threat-actor--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2016-04-06T20:03:48.000Z","modified":"2016-04-06T20:03:48.000Z","name":"Evil Org","threat_actor_types":["crime-syndicate"]}`,
	"tool":             `{"type":"tool","spec_version":"2.1","id":"tool--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2016-04-06T20:03:48.000Z","modified":"2016-04-06T20:03:48.000Z","name":"VNC"}`,
	"vulnerability":    `{"type":"vulnerability","spec_version":"2.1","id":"vulnerability--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061","created":"2016-05-12T08:17:27.000Z","modified":"2016-05-12T08:17:27.000Z","name":"CVE-2016-1234","external_references":[{"source_name":"cve","external_id":"CVE-2016-1234"}]}`,
	"relationship":     baseRelationship,
	"sighting":         baseSighting,

	"artifact":             baseArtifact,
	"autonomous-system":    `{"type":"autonomous-system","spec_version":"2.1","id":"autonomous-system--f720c34b-98ae-597f-ade5-27dc241e8c74","number":15139,"name":"Slime Industries","rir":"ARIN"}`,
	"directory":            `{"type":"directory","spec_version":"2.1","id":"directory--93c0a9b0-520d-545d-9094-1a08ddf46b05","path":"C:\\Windows\\System32"}`,
	"domain-name":          `{"type":"domain-name","spec_version":"2.1","id":"domain-name--3c10e93f-798e-5a26-a0c1-08156efab7f5","value":"example.com"}`,
	"email-addr":           `{"type":"email-addr","spec_version":"2.1","id":"email-addr--2d77a846-6264-5d51-b586-e43822ea1ea3","value":"john@example.com","display_name":"John Doe"}`,
	"email-message":        baseEmail,
	"file":                 `{"type":"file","spec_version":"2.1","id":"file--364fe3e5-b1f4-5ba3-b951-ee5983b3538d","name":"resume.pdf","hashes":{"MD5":"1717b7fff97d37a1e1a0029d83492de1"},"extensions":{"ntfs-ext":{"sid":"1234567"}}}`,
	"ipv4-addr":            baseIPv4,
	"ipv6-addr":            `{"type":"ipv6-addr","spec_version":"2.1","id":"ipv6-addr--1e61d36c-a16c-53b7-a80f-2a00161c96b1","value":"2001:0db8:85a3:0000:0000:8a2e:0370:7334"}`,
	"mac-addr":             `{"type":"mac-addr","spec_version":"2.1","id":"mac-addr--65cfcf98-8a6e-5a1b-8f61-379ac4f92d00","value":"d2:fb:49:24:37:18"}`,
	"mutex":                `{"type":"mutex","spec_version":"2.1","id":"mutex--eba44954-d4e4-5d3b-814c-2b17dd8de300","name":"__CLEANSWEEP__"}`,
	"network-traffic":      baseNetTraffic,
	"process":              `{"type":"process","spec_version":"2.1","id":"process--f52a906a-0dfc-40bd-92f1-e7778ead38a9","pid":1221,"command_line":"./gedit-bin --new-window","extensions":{"windows-process-ext":{"aslr_enabled":true,"integrity_level":"high"}}}`,
	"software":             `{"type":"software","spec_version":"2.1","id":"software--a1827f6d-ca53-5605-9e93-4316cd22a00a","name":"Word","cpe":"cpe:2.3:a:microsoft:word:2000:*:*:*:*:*:*:*","vendor":"Microsoft","version":"2002"}`,
	"url":                  `{"type":"url","spec_version":"2.1","id":"url--c1477287-23ac-5971-a010-5c287877fa60","value":"https://example.com/research/index.html"}`,
	"user-account":         `{"type":"user-account","spec_version":"2.1","id":"user-account--0d5b424b-93b8-5cd8-ac36-306e1789d63c","user_id":"1001","account_login":"jdoe","account_type":"unix"}`,
	"windows-registry-key": `{"type":"windows-registry-key","spec_version":"2.1","id":"windows-registry-key--2ba37ae7-2745-5082-9dfd-9486dad41016","key":"hkey_local_machine\\system\\bar\\foo","values":[{"name":"Foo","data":"qwerty","data_type":"REG_SZ"}]}`,
	"x509-certificate":     `{"type":"x509-certificate","spec_version":"2.1","id":"x509-certificate--463d7b2a-8516-5a50-a3d7-6f801465d5de","issuer":"C=ZA, ST=Western Cape, L=Cape Town, O=Thawte Consulting cc","validity_not_before":"2016-03-12T12:00:00Z","validity_not_after":"2016-08-21T12:00:00Z","subject":"C=US, ST=Maryland, L=Pasadena, O=Brent Baccala, OU=FreeSoft","serial_number":"36:f7:d4:32:f4:ab:70:ea:d3:ce:98:6e:ea:99:93:49:32:0a:b7:06"}`,

	"marking-definition":   baseStmt,
	"language-content":     `{"type":"language-content","spec_version":"2.1","id":"language-content--b86bd89f-98bb-4fa9-8cb2-9ad421da981d","created":"2017-02-08T21:31:22.007Z","modified":"2017-02-08T21:31:22.007Z","object_ref":"campaign--12a111f0-b824-4baf-a224-83b80237a094","object_modified":"2017-02-08T21:31:22.007Z","contents":{"de":{"name":"Bank Angriff 1","description":"Weitere Informationen über Banküberfall"}}}`,
	"extension-definition": baseExtDef,
}

func TestMinimalObjectsOfEveryType(t *testing.T) {
	for typ := range specs {
		raw, ok := minimalObjects[typ]
		if !ok {
			t.Errorf("no minimal object of type %s", typ)
			continue
		}
		t.Run(typ, func(t *testing.T) {
			if rawType(json.RawMessage(raw)) != typ {
				t.Fatalf("object is of type %s", rawType(json.RawMessage(raw)))
			}
			if err := validateRaw([]byte(raw)); err != nil {
				t.Errorf("Validate: %v", err)
			}
			schema.Check(t, []byte(raw))
			// Removing each required property is a problem.
			for _, p := range specs[typ].required {
				if err := Validate(&Object{Raw: mutate(t, raw, map[string]any{p: nil})}); err == nil {
					t.Errorf("accepted without required %s", p)
				}
			}
		})
	}
	if len(specs) != 42 {
		t.Errorf("%d types, want 19 SDOs + 2 SROs + 18 SCOs + 3 meta = 42", len(specs))
	}
}
