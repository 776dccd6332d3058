package stix

import (
	"errors"
	"fmt"
	"strings"

	"github.com/entente-cti/entente/internal/stix/pattern"
)

// typeSpec is what the specification says about one object type.
type typeSpec struct {
	cat      category
	props    map[string]bool // the type's own (non-common) properties
	required []string
	check    func(c *checker, r *value)
}

// commonProps are the common properties of STIX objects.
var commonProps = set("type spec_version id created_by_ref created modified revoked labels confidence lang " +
	"external_references object_marking_refs granular_markings extensions defanged")

func set(s string) map[string]bool {
	m := make(map[string]bool)
	for _, f := range strings.Fields(s) {
		m[f] = true
	}
	return m
}

func spec(cat category, props, required string, check func(*checker, *value)) *typeSpec {
	return &typeSpec{cat: cat, props: set(props), required: strings.Fields(required), check: check}
}

// specs holds every object type the STIX 2.1 specification defines.
var specs = map[string]*typeSpec{
	// SDOs
	"attack-pattern":   spec(catSDO, "name description aliases kill_chain_phases", "name", nil),
	"campaign":         spec(catSDO, "name description aliases first_seen last_seen objective", "name", seenOrder),
	"course-of-action": spec(catSDO, "name description action", "name", nil),
	"grouping":         spec(catSDO, "name description context object_refs", "context object_refs", nil),
	"identity":         spec(catSDO, "name description roles identity_class sectors contact_information", "name", nil),
	"incident":         spec(catSDO, "name description kill_chain_phases", "name", nil),
	"indicator": spec(catSDO, "name description indicator_types pattern pattern_type pattern_version valid_from valid_until kill_chain_phases",
		"pattern pattern_type valid_from", checkIndicator),
	"infrastructure": spec(catSDO, "name description infrastructure_types aliases kill_chain_phases first_seen last_seen", "name", seenOrder),
	"intrusion-set": spec(catSDO, "name description aliases first_seen last_seen goals resource_level primary_motivation secondary_motivations",
		"name", seenOrder),
	"location": spec(catSDO, "name description latitude longitude precision region country administrative_area city street_address postal_code",
		"", checkLocation),
	"malware": spec(catSDO, "name description malware_types is_family aliases kill_chain_phases first_seen last_seen operating_system_refs "+
		"architecture_execution_envs implementation_languages capabilities sample_refs", "is_family", checkMalware),
	"malware-analysis": spec(catSDO, "product version host_vm_ref operating_system_ref installed_software_refs configuration_version modules "+
		"analysis_engine_version analysis_definition_version submitted analysis_started analysis_ended result_name result analysis_sco_refs sample_ref",
		"product", checkMalwareAnalysis),
	"note":          spec(catSDO, "abstract content authors object_refs", "content object_refs", nil),
	"observed-data": spec(catSDO, "first_observed last_observed number_observed objects object_refs", "first_observed last_observed number_observed", checkObservedData),
	"opinion":       spec(catSDO, "explanation authors opinion object_refs", "opinion object_refs", checkOpinion),
	"report":        spec(catSDO, "name description report_types published object_refs", "name published object_refs", nil),
	"threat-actor": spec(catSDO, "name description threat_actor_types aliases first_seen last_seen roles goals sophistication resource_level "+
		"primary_motivation secondary_motivations personal_motivations", "name", seenOrder),
	"tool":          spec(catSDO, "name description tool_types aliases kill_chain_phases tool_version", "name", nil),
	"vulnerability": spec(catSDO, "name description", "name", nil),

	// SROs
	"relationship": spec(catSRO, "relationship_type description source_ref target_ref start_time stop_time",
		"relationship_type source_ref target_ref", checkRelationship),
	"sighting": spec(catSRO, "description first_seen last_seen count sighting_of_ref observed_data_refs where_sighted_refs summary",
		"sighting_of_ref", checkSighting),

	// SCOs
	"artifact":          spec(catSCO, "mime_type payload_bin url hashes encryption_algorithm decryption_key", "", checkArtifact),
	"autonomous-system": spec(catSCO, "number name rir", "number", nil),
	"directory":         spec(catSCO, "path path_enc ctime mtime atime contains_refs", "path", nil),
	"domain-name":       spec(catSCO, "value resolves_to_refs", "value", nil),
	"email-addr":        spec(catSCO, "value display_name belongs_to_ref", "value", nil),
	"email-message": spec(catSCO, "is_multipart date content_type from_ref sender_ref to_refs cc_refs bcc_refs message_id subject "+
		"received_lines additional_header_fields body body_multipart raw_email_ref", "is_multipart", checkEmailMessage),
	"file": spec(catSCO, "hashes size name name_enc magic_number_hex mime_type ctime mtime atime parent_directory_ref contains_refs content_ref",
		"", checkFile),
	"ipv4-addr": spec(catSCO, "value resolves_to_refs belongs_to_refs", "value", func(c *checker, _ *value) { c.ipValue(true) }),
	"ipv6-addr": spec(catSCO, "value resolves_to_refs belongs_to_refs", "value", func(c *checker, _ *value) { c.ipValue(false) }),
	"mac-addr":  spec(catSCO, "value", "value", checkMAC),
	"mutex":     spec(catSCO, "name", "name", nil),
	"network-traffic": spec(catSCO, "start end is_active src_ref dst_ref src_port dst_port protocols src_byte_count dst_byte_count "+
		"src_packets dst_packets ipfix src_payload_ref dst_payload_ref encapsulates_refs encapsulated_by_ref", "protocols", checkNetworkTraffic),
	"process": spec(catSCO, "is_hidden pid created_time cwd command_line environment_variables opened_connection_refs creator_user_ref "+
		"image_ref parent_ref child_refs", "", func(c *checker, _ *value) { c.anySpecificProperty() }),
	"software": spec(catSCO, "name cpe swid languages vendor version", "name", nil),
	"url":      spec(catSCO, "value", "value", nil),
	"user-account": spec(catSCO, "user_id credential account_login account_type display_name is_service_account is_privileged "+
		"can_escalate_privs is_disabled account_created account_expires credential_last_changed account_first_login account_last_login",
		"", func(c *checker, _ *value) { c.anySpecificProperty() }),
	"windows-registry-key": spec(catSCO, "key values modified_time creator_user_ref number_of_subkeys", "", checkRegistryKey),
	"x509-certificate": spec(catSCO, "is_self_signed hashes version serial_number signature_algorithm issuer validity_not_before "+
		"validity_not_after subject subject_public_key_algorithm subject_public_key_modulus subject_public_key_exponent x509_v3_extensions",
		"", checkX509),

	// Meta objects
	"marking-definition": spec(catMeta, "name definition_type definition", "", checkMarkingDefinition),
	"language-content":   spec(catMeta, "object_ref object_modified contents", "object_ref contents", checkLanguageContent),
	"extension-definition": spec(catMeta, "name description schema version extension_types extension_properties",
		"name schema version extension_types created_by_ref", checkExtensionDefinition),
}

// propKind is the data type of a property the specification defines.
type propKind uint8

const (
	pString propKind = iota + 1
	pBool
	pInt
	pNonNegInt
	pNumber
	pStringList
	pObjectList
	pDict
)

// propKinds gives the data type of the specification's properties by
// name (the specification uses each name with one type throughout).
var propKinds = func() map[string]propKind {
	m := map[string]propKind{}
	add := func(k propKind, names string) {
		for _, n := range strings.Fields(names) {
			m[n] = k
		}
	}
	add(pString, "name description objective action context contact_information identity_class pattern pattern_type pattern_version "+
		"resource_level primary_motivation region country administrative_area city street_address postal_code product version "+
		"configuration_version analysis_engine_version analysis_definition_version result_name result abstract content explanation "+
		"opinion relationship_type sophistication tool_version mime_type payload_bin url encryption_algorithm decryption_key rir path "+
		"path_enc value display_name content_type message_id subject body name_enc magic_number_hex cwd command_line cpe swid vendor "+
		"user_id credential account_login account_type key signature_algorithm issuer serial_number subject_public_key_algorithm "+
		"subject_public_key_modulus definition_type schema")
	add(pBool, "is_family is_multipart is_active is_hidden is_self_signed is_service_account is_privileged can_escalate_privs "+
		"is_disabled summary")
	add(pInt, "number pid subject_public_key_exponent")
	add(pNonNegInt, "size src_byte_count dst_byte_count src_packets dst_packets number_of_subkeys count number_observed src_port dst_port")
	add(pNumber, "latitude longitude precision")
	add(pStringList, "aliases roles sectors indicator_types infrastructure_types goals secondary_motivations personal_motivations "+
		"malware_types architecture_execution_envs implementation_languages capabilities report_types threat_actor_types tool_types "+
		"authors protocols languages received_lines extension_types extension_properties modules")
	add(pObjectList, "body_multipart values")
	add(pDict, "hashes environment_variables additional_header_fields ipfix objects contents definition x509_v3_extensions")
	return m
}()

// timestampProps are the specification's timestamp properties.
var timestampProps = set("created modified valid_from valid_until first_seen last_seen first_observed last_observed published " +
	"start_time stop_time analysis_started analysis_ended submitted object_modified date ctime mtime atime start end created_time " +
	"account_created account_expires credential_last_changed account_first_login account_last_login modified_time " +
	"validity_not_before validity_not_after")

// refTargets fixes the object types that reference properties may point
// to, keyed by "type.property" ("SDO" and "SCO" stand for any SDO or SCO).
var refTargets = map[string][]string{
	"sighting.sighting_of_ref":                 {"SDO"},
	"sighting.where_sighted_refs":              {"identity", "location"},
	"sighting.observed_data_refs":              {"observed-data"},
	"malware.operating_system_refs":            {"software"},
	"malware.sample_refs":                      {"file", "artifact"},
	"malware-analysis.host_vm_ref":             {"software"},
	"malware-analysis.operating_system_ref":    {"software"},
	"malware-analysis.installed_software_refs": {"software"},
	"malware-analysis.sample_ref":              {"file", "artifact", "network-traffic"},
	"malware-analysis.analysis_sco_refs":       {"SCO"},
	"domain-name.resolves_to_refs":             {"ipv4-addr", "ipv6-addr", "domain-name"},
	"ipv4-addr.resolves_to_refs":               {"mac-addr"},
	"ipv6-addr.resolves_to_refs":               {"mac-addr"},
	"ipv4-addr.belongs_to_refs":                {"autonomous-system"},
	"ipv6-addr.belongs_to_refs":                {"autonomous-system"},
	"email-addr.belongs_to_ref":                {"user-account"},
	"email-message.from_ref":                   {"email-addr"},
	"email-message.sender_ref":                 {"email-addr"},
	"email-message.to_refs":                    {"email-addr"},
	"email-message.cc_refs":                    {"email-addr"},
	"email-message.bcc_refs":                   {"email-addr"},
	"email-message.raw_email_ref":              {"artifact"},
	"file.parent_directory_ref":                {"directory"},
	"file.content_ref":                         {"artifact"},
	"directory.contains_refs":                  {"file", "directory"},
	"network-traffic.src_ref":                  {"ipv4-addr", "ipv6-addr", "mac-addr", "domain-name"},
	"network-traffic.dst_ref":                  {"ipv4-addr", "ipv6-addr", "mac-addr", "domain-name"},
	"network-traffic.src_payload_ref":          {"artifact"},
	"network-traffic.dst_payload_ref":          {"artifact"},
	"network-traffic.encapsulates_refs":        {"network-traffic"},
	"network-traffic.encapsulated_by_ref":      {"network-traffic"},
	"process.opened_connection_refs":           {"network-traffic"},
	"process.creator_user_ref":                 {"user-account"},
	"process.image_ref":                        {"file"},
	"process.parent_ref":                       {"process"},
	"process.child_refs":                       {"process"},
	"windows-registry-key.creator_user_ref":    {"user-account"},
}

func seenOrder(c *checker, _ *value) { c.order("first_seen", "last_seen", false) }

func checkIndicator(c *checker, r *value) {
	c.order("valid_from", "valid_until", true)
	v, ok := r.get("pattern")
	if !ok || v.kind != kString {
		return // reported as missing or of the wrong type
	}
	if strings.TrimSpace(v.str) == "" {
		c.add("pattern", "must not be empty")
		return
	}
	if pt, ok := r.get("pattern_type"); ok && pt.kind == kString && pt.str == "stix" {
		c.stixPattern(v.str, r)
	}
}

// stixPattern parses a STIX pattern with the node's own parser, which
// also checks what the grammar cannot (qualifier values, timestamps,
// hashes, regular expressions, set literals), and reports the first
// fault with its position: `column 27: expected ']' …` (with the line
// too when the pattern spans several). The dialect follows
// pattern_version when it names one ("2.0" also accepts the string
// timestamps STIX 2.0 wrote after START and STOP, "2.1" does not);
// without it both are accepted, as everywhere else in the node. Patterns
// of other types (sigma, snort, suricata, yara, pcre…) are not parsed.
func (c *checker) stixPattern(src string, r *value) {
	ver := pattern.VersionAny
	if pv, ok := r.get("pattern_version"); ok && pv.kind == kString {
		switch pv.str {
		case "2.0":
			ver = pattern.Version20
		case "2.1":
			ver = pattern.Version21
		}
	}
	_, err := pattern.ParseVersion(src, ver)
	if err == nil {
		return
	}
	var se *pattern.SyntaxError
	if !errors.As(err, &se) {
		c.add("pattern", "not a valid STIX pattern: %v", err)
		return
	}
	if se.Line > 1 {
		c.add("pattern", "line %d, column %d: %s", se.Line, se.Column, se.Msg)
		return
	}
	c.add("pattern", "column %d: %s", se.Column, se.Msg)
}

func checkLocation(c *checker, r *value) {
	lat, hasLat := r.get("latitude")
	lon, hasLon := r.get("longitude")
	if !r.has("region") && !r.has("country") && !(hasLat && hasLon) {
		c.add("", "a location must have region, country, or latitude and longitude")
	}
	if hasLat != hasLon {
		c.add("latitude", "latitude and longitude must be given together")
	}
	if r.has("precision") && !(hasLat && hasLon) {
		c.add("precision", "requires latitude and longitude")
	}
	if hasLat {
		if f, ok := c.number("latitude", lat); ok && (f < -90 || f > 90) {
			c.add("latitude", "must be between -90.0 and 90.0")
		}
	}
	if hasLon {
		if f, ok := c.number("longitude", lon); ok && (f < -180 || f > 180) {
			c.add("longitude", "must be between -180.0 and 180.0")
		}
	}
	if v, ok := r.get("precision"); ok {
		if f, ok := c.number("precision", v); ok && f < 0 {
			c.add("precision", "must not be negative")
		}
	}
}

func checkMalware(c *checker, r *value) {
	seenOrder(c, r)
	if v, ok := r.get("is_family"); ok && v.kind == kBool && v.b && !r.has("name") {
		c.add("name", "required when is_family is true")
	}
}

func checkMalwareAnalysis(c *checker, r *value) {
	if !r.has("result") && !r.has("analysis_sco_refs") {
		c.add("result", "one of result or analysis_sco_refs is required")
	}
	c.order("analysis_started", "analysis_ended", false)
}

func checkObservedData(c *checker, r *value) {
	c.order("first_observed", "last_observed", false)
	if v, ok := r.get("number_observed"); ok {
		c.intRange("number_observed", v, 1, 999999999)
	}
	hasObjects, hasRefs := r.has("objects"), r.has("object_refs")
	switch {
	case hasObjects && hasRefs:
		c.add("objects", "must not be present together with object_refs")
	case !hasObjects && !hasRefs:
		c.add("object_refs", "required (or the deprecated objects)")
	}
}

func checkOpinion(c *checker, r *value) {
	c.enumProp(r, "", "opinion", "strongly-disagree", "disagree", "neutral", "agree", "strongly-agree")
}

func checkRelationship(c *checker, r *value) {
	c.order("start_time", "stop_time", true)
	if v, ok := r.get("relationship_type"); ok && v.kind == kString {
		switch {
		case v.str == "":
			c.add("relationship_type", "must not be empty")
		case len(v.str) > 250:
			c.add("relationship_type", "must be at most 250 characters long")
		case strings.Trim(v.str, "abcdefghijklmnopqrstuvwxyz0123456789-") != "":
			c.add("relationship_type", "%q may contain only a-z, 0-9 and '-'", v.str)
		}
	}
}

func checkSighting(c *checker, r *value) {
	c.order("first_seen", "last_seen", false)
	if v, ok := r.get("count"); ok {
		c.intRange("count", v, 0, 999999999)
	}
}

func checkArtifact(c *checker, r *value) {
	hasPayload, hasURL := r.has("payload_bin"), r.has("url")
	switch {
	case hasPayload && hasURL:
		c.add("payload_bin", "must not be present together with url")
	case !hasPayload && !hasURL:
		c.add("payload_bin", "one of payload_bin or url is required")
	}
	if hasURL && !r.has("hashes") {
		c.add("hashes", "required when url is present")
	}
	if r.has("decryption_key") && !r.has("encryption_algorithm") {
		c.add("decryption_key", "must not be present without encryption_algorithm")
	}
	c.enumProp(r, "", "encryption_algorithm", "AES-256-GCM", "ChaCha20-Poly1305", "mime-type-indicated")
}

func checkEmailMessage(c *checker, r *value) {
	mp, ok := r.get("is_multipart")
	if !ok || mp.kind != kBool {
		return
	}
	if mp.b && r.has("body") {
		c.add("body", "must not be present when is_multipart is true")
	}
	if !mp.b && r.has("body_multipart") {
		c.add("body_multipart", "must not be present when is_multipart is false")
	}
	if bm, ok := r.get("body_multipart"); ok && bm.kind == kArray {
		for i := range bm.obj {
			p := fmt.Sprintf("body_multipart[%d]", i)
			part := &bm.obj[i].val
			if part.kind != kObject {
				continue
			}
			if part.has("body") && part.has("body_raw_ref") {
				c.add(p, "must have body or body_raw_ref, not both")
			} else if !part.has("body") && !part.has("body_raw_ref") {
				c.add(p, "must have body or body_raw_ref")
			}
		}
	}
}

func checkFile(c *checker, r *value) {
	c.atLeastOne(r, "hashes", "name")
}

func checkMAC(c *checker, r *value) {
	v, ok := r.get("value")
	if !ok || v.kind != kString {
		return
	}
	s := v.str
	okForm := len(s) == 17
	for i := 0; okForm && i < len(s); i++ {
		if i%3 == 2 {
			okForm = s[i] == ':'
		} else {
			okForm = s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f'
		}
	}
	if !okForm {
		c.add("value", "%q must be a MAC address in lowercase, colon-delimited form (00:00:ab:cd:ef:01)", s)
	}
}

func checkNetworkTraffic(c *checker, r *value) {
	c.atLeastOne(r, "src_ref", "dst_ref")
	active, hasActive := r.get("is_active")
	if hasActive && active.kind == kBool && active.b && r.has("end") {
		c.add("end", "must not be present when is_active is true")
	}
	c.order("start", "end", false)
	for _, p := range []string{"src_port", "dst_port"} {
		if v, ok := r.get(p); ok {
			c.intRange(p, v, 0, 65535)
		}
	}
	if v, ok := r.get("protocols"); ok && v.kind == kArray {
		for i := range v.obj {
			if v.obj[i].val.kind == kString && v.obj[i].val.str != strings.ToLower(v.obj[i].val.str) {
				c.add(fmt.Sprintf("protocols[%d]", i), "%q must be lowercase", v.obj[i].val.str)
			}
		}
	}
}

func checkRegistryKey(c *checker, r *value) {
	c.anySpecificProperty()
	v, ok := r.get("values")
	if !ok || v.kind != kArray {
		return
	}
	for i := range v.obj {
		rv := &v.obj[i].val
		if rv.kind != kObject {
			continue
		}
		c.enumProp(rv, fmt.Sprintf("values[%d]", i), "data_type",
			"REG_NONE", "REG_SZ", "REG_EXPAND_SZ", "REG_BINARY", "REG_DWORD", "REG_DWORD_BIG_ENDIAN",
			"REG_DWORD_LITTLE_ENDIAN", "REG_LINK", "REG_MULTI_SZ", "REG_RESOURCE_LIST",
			"REG_FULL_RESOURCE_DESCRIPTION", "REG_RESOURCE_REQUIREMENTS_LIST", "REG_QWORD", "REG_INVALID_TYPE")
	}
}

func checkX509(c *checker, r *value) {
	c.anySpecificProperty()
	c.order("validity_not_before", "validity_not_after", false)
	if v, ok := r.get("x509_v3_extensions"); ok && v.kind == kObject && len(v.obj) == 0 {
		c.add("x509_v3_extensions", "must not be empty")
	}
}

// tlp1Values maps the TLP 1.0 definition values to their official ids.
func tlp1ID(value string) string {
	for _, l := range tlp1 {
		if l.value == value {
			return l.id
		}
	}
	return ""
}

func checkMarkingDefinition(c *checker, r *value) {
	id := ""
	if v, ok := r.get("id"); ok && v.kind == kString {
		id = v.str
	}
	dt, hasType := r.get("definition_type")
	def, hasDef := r.get("definition")
	ext, hasExt := r.get("extensions")
	switch {
	case hasType && !hasDef:
		c.add("definition", "required when definition_type is present")
	case hasDef && !hasType:
		c.add("definition_type", "required when definition is present")
	case !hasType && !hasExt:
		c.add("definition_type", "a marking definition needs definition_type and definition, or an extension")
	}
	if hasType && hasDef && dt.kind == kString && def.kind == kObject {
		switch dt.str {
		case "tlp":
			tv, ok := def.get("tlp")
			if !ok {
				c.add("definition.tlp", "required for a TLP marking definition")
				break
			}
			c.enum("definition.tlp", tv, "white", "green", "amber", "red")
			if tv.kind == kString {
				if want := tlp1ID(tv.str); want != "" && id != want {
					c.add("id", "the TLP:%s marking definition must have the specification's id %s", strings.ToUpper(tv.str), want)
				}
			}
		case "statement":
			sv, ok := def.get("statement")
			if !ok {
				c.add("definition.statement", "required for a statement marking definition")
			} else if sv.kind != kString {
				c.add("definition.statement", "must be a string, not a %s", sv.kind)
			}
		}
	}
	if hasExt && ext.kind == kObject {
		if tv, ok := ext.get(TLP20Extension); ok && tv.kind == kObject {
			p := "extensions." + TLP20Extension + ".tlp_2_0"
			lv, ok := tv.get("tlp_2_0")
			if !ok {
				c.add(p, "required by the TLP 2.0 extension")
				return
			}
			c.enum(p, lv, "clear", "green", "amber", "amber+strict", "red")
			if t, official := TLPFromMarking(id); official && lv.kind == kString && tlpLevels[t].id == id && tlpLevels[t].value != lv.str {
				c.add(p, "%q contradicts the official id %s of %s", lv.str, id, t)
			}
		}
	}
}

func checkLanguageContent(c *checker, r *value) {
	v, ok := r.get("contents")
	if !ok || v.kind != kObject {
		return
	}
	if len(v.obj) == 0 {
		c.add("contents", "must not be empty")
	}
	for i := range v.obj {
		if v.obj[i].val.kind != kObject {
			c.add("contents."+v.obj[i].name, "must be a dictionary of translated properties, not a %s", v.obj[i].val.kind)
		}
	}
}

func checkExtensionDefinition(c *checker, r *value) {
	v, ok := r.get("extension_types")
	if !ok || v.kind != kArray {
		return
	}
	top := false
	for i := range v.obj {
		c.enum(fmt.Sprintf("extension_types[%d]", i), &v.obj[i].val, "new-sdo", "new-sco", "new-sro", "property-extension", "toplevel-property-extension")
		if v.obj[i].val.str == "toplevel-property-extension" {
			top = true
		}
	}
	if r.has("extension_properties") && !top {
		c.add("extension_properties", "may be present only for a toplevel-property-extension")
	}
}

// extensionChecks validates the predefined SCO extensions' closed
// enumerations and required properties.
var extensionChecks = map[string]func(c *checker, p string, v *value){
	"archive-ext": func(c *checker, p string, v *value) {
		if !v.has("contains_refs") {
			c.add(p+".contains_refs", "required")
		}
	},
	"ntfs-ext": func(c *checker, p string, v *value) {
		if !v.has("sid") && !v.has("alternate_data_streams") {
			c.add(p, "must have sid or alternate_data_streams")
		}
	},
	"pdf-ext": func(c *checker, p string, v *value) {
		if len(v.obj) == 0 {
			c.add(p, "must have at least one property")
		}
	},
	"raster-image-ext": func(c *checker, p string, v *value) {
		if len(v.obj) == 0 {
			c.add(p, "must have at least one property")
		}
	},
	"windows-pebinary-ext": func(c *checker, p string, v *value) {
		if !v.has("pe_type") {
			c.add(p+".pe_type", "required")
		}
	},
	"http-request-ext": func(c *checker, p string, v *value) {
		for _, r := range []string{"request_method", "request_value"} {
			if !v.has(r) {
				c.add(p+"."+r, "required")
			}
		}
	},
	"icmp-ext": func(c *checker, p string, v *value) {
		for _, r := range []string{"icmp_type_hex", "icmp_code_hex"} {
			if !v.has(r) {
				c.add(p+"."+r, "required")
			}
		}
	},
	"socket-ext": func(c *checker, p string, v *value) {
		if !v.has("address_family") {
			c.add(p+".address_family", "required")
		}
		c.enumProp(v, p, "address_family", "AF_UNSPEC", "AF_INET", "AF_IPX", "AF_APPLETALK", "AF_NETBIOS", "AF_INET6", "AF_IRDA", "AF_BTH")
		c.enumProp(v, p, "socket_type", "SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_RDM", "SOCK_SEQPACKET")
	},
	"tcp-ext": func(c *checker, p string, v *value) {
		if len(v.obj) == 0 {
			c.add(p, "must have at least one property")
		}
	},
	"windows-process-ext": func(c *checker, p string, v *value) {
		c.enumProp(v, p, "integrity_level", "low", "medium", "high", "system")
	},
	"windows-service-ext": func(c *checker, p string, v *value) {
		c.enumProp(v, p, "start_type", "SERVICE_AUTO_START", "SERVICE_BOOT_START", "SERVICE_DEMAND_START", "SERVICE_DISABLED", "SERVICE_SYSTEM_ALERT")
		c.enumProp(v, p, "service_type", "SERVICE_KERNEL_DRIVER", "SERVICE_FILE_SYSTEM_DRIVER", "SERVICE_WIN32_OWN_PROCESS", "SERVICE_WIN32_SHARE_PROCESS")
		c.enumProp(v, p, "service_status", "SERVICE_CONTINUE_PENDING", "SERVICE_PAUSE_PENDING", "SERVICE_PAUSED", "SERVICE_RUNNING",
			"SERVICE_START_PENDING", "SERVICE_STOP_PENDING", "SERVICE_STOPPED")
	},
}
