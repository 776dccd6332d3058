package feed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/google/uuid"
)

// flexString decodes a JSON string, number or null into a string (MISP
// writes timestamps and ids both ways).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	if string(b) == "null" {
		*f = ""
		return nil
	}
	*f = flexString(b)
	return nil
}

// flexBool decodes true/false, 1/0 and "1"/"0".
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(string(bytes.TrimSpace(b)), `"`) {
	case "true", "1", "True":
		*f = true
	default:
		*f = false
	}
	return nil
}

type mispTag struct {
	Name string `json:"name"`
}

type mispCluster struct {
	UUID        string          `json:"uuid"`
	Value       string          `json:"value"`
	Type        string          `json:"type"`
	Description string          `json:"description"`
	Meta        json.RawMessage `json:"meta"`
}

type mispGalaxy struct {
	Type     string        `json:"type"`
	Name     string        `json:"name"`
	Clusters []mispCluster `json:"GalaxyCluster"`
}

type mispAttribute struct {
	UUID      string       `json:"uuid"`
	Type      string       `json:"type"`
	Category  string       `json:"category"`
	Value     string       `json:"value"`
	ToIDS     flexBool     `json:"to_ids"`
	Deleted   flexBool     `json:"deleted"`
	Timestamp flexString   `json:"timestamp"`
	FirstSeen flexString   `json:"first_seen"`
	LastSeen  flexString   `json:"last_seen"`
	Comment   string       `json:"comment"`
	Relation  flexString   `json:"object_relation"`
	Tags      []mispTag    `json:"Tag"`
	Galaxies  []mispGalaxy `json:"Galaxy"`
}

type mispObject struct {
	UUID       string          `json:"uuid"`
	Name       string          `json:"name"`
	Deleted    flexBool        `json:"deleted"`
	Timestamp  flexString      `json:"timestamp"`
	Attributes []mispAttribute `json:"Attribute"`
}

type mispOrg struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

type mispEvent struct {
	UUID       string          `json:"uuid"`
	Info       string          `json:"info"`
	Date       string          `json:"date"`
	Timestamp  flexString      `json:"timestamp"`
	Orgc       mispOrg         `json:"Orgc"`
	Tags       []mispTag       `json:"Tag"`
	Attributes []mispAttribute `json:"Attribute"`
	Objects    []mispObject    `json:"Object"`
	Galaxies   []mispGalaxy    `json:"Galaxy"`
}

// mispData imports a MISP event document: {"Event":{...}},
// {"response":[{"Event":{...}}, ...]}, {"response":{"Event":...}}, an
// array of either, a bare event object, or a MISP object search result
// ({"response":[{"Object":{...}}]}, read as objects of an anonymous event).
func (b *batch) mispData(data []byte) error {
	events, err := splitMISP(data)
	if err != nil {
		return err
	}
	for i, raw := range events {
		var ev mispEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			b.reject(fmt.Sprintf("%s:event %d", b.name, i+1), "invalid MISP event: "+err.Error())
			continue
		}
		b.mispEvent(&ev)
	}
	return nil
}

// splitMISP returns the event objects of a MISP document.
func splitMISP(data []byte) ([]json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(data, &arr); err != nil {
			return nil, fmt.Errorf("MISP events: %w", err)
		}
		var out []json.RawMessage
		for _, a := range arr {
			evs, err := splitMISP(a)
			if err != nil {
				return nil, err
			}
			out = append(out, evs...)
		}
		return out, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("MISP event: %w", err)
	}
	if r, ok := top["response"]; ok {
		return splitMISP(r)
	}
	if e, ok := top["Event"]; ok {
		return []json.RawMessage{e}, nil
	}
	if o, ok := top["Object"]; ok && len(bytes.TrimSpace(o)) > 0 && bytes.TrimSpace(o)[0] == '{' {
		// A MISP object search result: one object outside any event.
		ev := append(append([]byte(`{"Object":[`), o...), "]}"...)
		return []json.RawMessage{ev}, nil
	}
	if _, ok := top["uuid"]; ok {
		return []json.RawMessage{data}, nil
	}
	if _, ok := top["Attribute"]; ok {
		return []json.RawMessage{data}, nil
	}
	if len(top) > 0 {
		manifest := true
		for k := range top {
			if uuid.Validate(k) != nil {
				manifest = false
				break
			}
		}
		if manifest {
			return nil, errors.New("this is a MISP feed manifest.json: import its directory as a misp-feed")
		}
	}
	if t, ok := top["type"]; ok && string(t) == `"bundle"` {
		return nil, errors.New("this is a STIX bundle, not a MISP event")
	}
	return nil, errors.New(`not a MISP event: want {"Event":...}, {"response":[...]} or an event object`)
}

func parseMISPTime(s flexString) time.Time {
	v := strings.TrimSpace(string(s))
	if v == "" {
		return time.Time{}
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return time.Time{}
		}
		if n > 1e14 { // microseconds (first_seen is sometimes written so)
			return time.UnixMicro(n).UTC()
		}
		return time.Unix(n, 0).UTC()
	}
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999-07:00", "2006-01-02"} {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// tlpTag returns the marking of a "tlp:..." tag.
func tlpTag(name string) (string, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	rest, ok := strings.CutPrefix(n, "tlp:")
	if !ok {
		return "", false
	}
	t, err := stix.ParseTLP(strings.Trim(rest, `"`))
	if err != nil {
		return "", false
	}
	return t.MarkingID(), true
}

// splitTags turns MISP tags into marking refs (TLP tags) and labels
// (every other tag, galaxy tags excepted: galaxies become SDOs).
func splitTags(tags []mispTag) (marks, labels []string) {
	for _, t := range tags {
		if m, ok := tlpTag(t.Name); ok {
			marks = append(marks, m)
			continue
		}
		if strings.HasPrefix(t.Name, "misp-galaxy:") || t.Name == "" {
			continue
		}
		labels = append(labels, t.Name)
	}
	return marks, labels
}

func (b *batch) mispEvent(ev *mispEvent) {
	b.res.Stats.Events++
	evWhere := "event " + ev.UUID
	if ev.UUID == "" {
		evWhere = fmt.Sprintf("%s:event %d", b.name, b.res.Stats.Events)
	}
	evTime := parseMISPTime(ev.Timestamp)
	if evTime.IsZero() {
		if t, err := time.Parse("2006-01-02", ev.Date); err == nil {
			evTime = t
		} else {
			evTime = b.now
		}
	}
	createdBy := ""
	if ev.Orgc.Name != "" {
		id := "identity--" + ev.Orgc.UUID
		if uuid.Validate(ev.Orgc.UUID) != nil {
			id = derivedID("identity", ev.Orgc.Name)
		}
		ts := stix.FormatTimestamp(evTime)
		raw, _ := json.Marshal(map[string]any{"type": "identity", "spec_version": "2.1", "id": id, "created": ts, "modified": ts, "name": ev.Orgc.Name, "identity_class": "organization"})
		b.im.addOther(id, raw)
		createdBy = id
	}
	evMarks, evLabels := splitTags(ev.Tags)
	for _, m := range evMarks {
		if t, ok := stix.TLPFromMarking(m); ok {
			b.im.addOther(m, stix.TLPMarkingObject(t))
		}
	}
	if evMarks == nil {
		evMarks = b.tlp
	}
	evSDOs := b.galaxies(ev.Galaxies, evTime, createdBy, evMarks)
	handle := func(where string, a *mispAttribute, objName string) {
		b.res.Stats.Records++
		if a.Deleted {
			b.res.Stats.Skipped["deleted"]++
			return
		}
		vals, known := mispValues(a.Type, a.Value)
		if !known {
			b.reject(where, fmt.Sprintf("unknown MISP attribute type %q", a.Type))
			return
		}
		if len(vals) == 0 {
			b.res.Stats.Skipped[a.Type]++
			return
		}
		marks, labels := splitTags(a.Tags)
		if marks == nil {
			marks = evMarks
		}
		labels = append(append(labels, evLabels...), `misp:type="`+a.Type+`"`)
		if a.Category != "" {
			labels = append(labels, `misp:category="`+a.Category+`"`)
		}
		if objName != "" {
			labels = append(labels, `misp:object="`+objName+`"`)
		}
		ts := parseMISPTime(a.Timestamp)
		if ts.IsZero() {
			ts = evTime
		}
		vf := parseMISPTime(a.FirstSeen)
		if vf.IsZero() {
			vf = ts
		}
		var vu time.Time
		if ls := parseMISPTime(a.LastSeen); !ls.IsZero() && ls.After(vf) {
			vu = ls
		}
		sdos := append(b.galaxies(a.Galaxies, ts, createdBy, marks), evSDOs...)
		for _, v := range vals {
			k, n, err := observable.NormalizeKind(v.kind, v.value)
			if err != nil {
				b.reject(where, err.Error())
				continue
			}
			id := b.add(obs{
				kind: k, value: n,
				indicator:   bool(a.ToIDS) || b.opts.AllIndicators,
				validFrom:   vf,
				validUntil:  vu,
				created:     ts,
				confidence:  -1,
				labels:      labels,
				markings:    marks,
				description: strings.TrimSpace(a.Comment),
				ref:         ExtRef{SourceName: b.source, ExternalID: a.UUID, Description: ev.Info},
			})
			if id == "" {
				continue
			}
			for _, s := range sdos {
				b.relate(id, "indicates", s, ts, marks)
			}
		}
	}
	for i := range ev.Attributes {
		a := &ev.Attributes[i]
		handle(evWhere+" attribute "+a.UUID, a, "")
	}
	for i := range ev.Objects {
		o := &ev.Objects[i]
		if o.Deleted {
			continue
		}
		for j := range o.Attributes {
			a := &o.Attributes[j]
			handle(evWhere+" object "+o.UUID+" attribute "+a.UUID, a, o.Name)
		}
	}
}

// relate adds a relationship with a deterministic id.
func (b *batch) relate(src, typ, dst string, t time.Time, marks []string) {
	id := derivedID("relationship", src+"|"+typ+"|"+dst)
	ts := stix.FormatTimestamp(t)
	m := map[string]any{"type": "relationship", "spec_version": "2.1", "id": id, "created": ts, "modified": ts,
		"relationship_type": typ, "source_ref": src, "target_ref": dst}
	if len(marks) > 0 {
		m["object_marking_refs"] = marks
	}
	raw, _ := json.Marshal(m)
	b.im.addOther(id, raw)
}

var attackID = regexp.MustCompile(`\b(T[0-9]{4}(?:\.[0-9]{3})?|G[0-9]{4}|S[0-9]{4})\b`)

// galaxyType returns the STIX type of a MISP galaxy's clusters, or "".
func galaxyType(t string) string {
	switch {
	case strings.Contains(t, "attack-pattern"):
		return "attack-pattern"
	case strings.Contains(t, "intrusion-set"), strings.Contains(t, "threat-actor"), t == "microsoft-activity-group":
		return "intrusion-set"
	case strings.Contains(t, "malware"), t == "malpedia", t == "ransomware", t == "rat", t == "botnet", t == "banker", t == "stealer", t == "backdoor", t == "android":
		return "malware"
	}
	return ""
}

// galaxies turns galaxy clusters of known kinds into SDOs and returns
// their ids.
func (b *batch) galaxies(gs []mispGalaxy, t time.Time, createdBy string, marks []string) []string {
	var ids []string
	for _, g := range gs {
		typ := galaxyType(g.Type)
		if typ == "" {
			b.res.Stats.Skipped["galaxy:"+g.Type]++
			continue
		}
		for _, c := range g.Clusters {
			if c.Value == "" {
				continue
			}
			id := typ + "--" + c.UUID
			if uuid.Validate(c.UUID) != nil {
				id = derivedID(typ, c.Value)
			}
			ts := stix.FormatTimestamp(t)
			name := c.Value
			m := map[string]any{"type": typ, "spec_version": "2.1", "id": id, "created": ts, "modified": ts, "name": name}
			if c.Description != "" {
				m["description"] = c.Description
			}
			if createdBy != "" {
				m["created_by_ref"] = createdBy
			}
			if typ == "malware" {
				m["is_family"] = true
			}
			if len(marks) > 0 {
				m["object_marking_refs"] = marks
			}
			refs := []ExtRef{{SourceName: "misp-galaxy", ExternalID: g.Type + ":" + c.Value}}
			if strings.HasPrefix(g.Type, "mitre-") {
				if x := attackID.FindString(c.Value); x != "" {
					refs = append([]ExtRef{{SourceName: "mitre-attack", ExternalID: x}}, refs...)
				}
			}
			m["external_references"] = refs
			m["labels"] = []string{`misp:galaxy-type="` + g.Type + `"`}
			raw, _ := json.Marshal(m)
			b.im.addOther(id, raw)
			ids = append(ids, id)
		}
	}
	return ids
}

// mvalue is one observable carried by a MISP attribute.
type mvalue struct {
	kind  observable.Kind
	value string
}

// mispValues returns the observable values a MISP attribute of type typ
// carries; known is false for a type MISP does not define.
func mispValues(typ, value string) (vals []mvalue, known bool) {
	value = strings.TrimSpace(value)
	one := func(k observable.Kind, v string) []mvalue { return []mvalue{{k, v}} }
	switch typ {
	case "ip-src", "ip-dst":
		return one(observable.IPv4, value), true
	case "ip-src|port", "ip-dst|port":
		ip, _, _ := strings.Cut(value, "|")
		return one(observable.IPv4, ip), true
	case "domain", "hostname":
		return one(observable.Domain, value), true
	case "hostname|port":
		h, _, _ := strings.Cut(value, "|")
		return one(observable.Domain, h), true
	case "domain|ip":
		d, ip, ok := strings.Cut(value, "|")
		if !ok {
			return one(observable.Domain, d), true
		}
		return []mvalue{{observable.Domain, d}, {observable.IPv4, ip}}, true
	case "url":
		return one(observable.URL, value), true
	case "email", "email-src", "email-dst", "email-reply-to", "whois-registrant-email", "dns-soa-email", "target-email":
		if typ == "target-email" {
			return nil, true
		}
		return one(observable.Email, value), true
	case "md5", "sha1", "sha256", "sha512":
		return one(observable.Kind(typ), value), true
	case "filename|md5", "filename|sha1", "filename|sha256", "filename|sha512",
		"malware-sample":
		_, h, _ := strings.Cut(value, "|")
		k := observable.Kind(strings.TrimPrefix(typ, "filename|"))
		if typ == "malware-sample" {
			k = observable.MD5
		}
		return one(k, h), true
	}
	if _, ok := mispOtherTypes[typ]; ok {
		return nil, true
	}
	return nil, false
}

// mispOtherTypes are the MISP attribute types that carry nothing this
// package turns into an observable (they are counted as skipped, not
// rejected).
var mispOtherTypes = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, t := range strings.Fields(`text comment other link uri filename pdb regkey regkey|value mutex port
		yara snort sigma vulnerability weakness attachment email-subject email-attachment email-body email-header
		email-message-id email-mime-boundary email-thread-index email-x-mailer email-dst-display-name email-src-display-name
		user-agent btc xmr dash bic iban bin cc-number AS datetime float counter size-in-bytes mime-type ssdeep imphash
		pehash impfuzzy tlsh authentihash vhash cdhash telfhash sha224 sha384 sha512/224 sha512/256 sha3-224 sha3-256
		sha3-384 sha3-512 filename|sha224 filename|sha384 filename|ssdeep filename|imphash filename|pehash filename|tlsh
		filename|authentihash filename|vhash filename|impfuzzy filename|sha3-256 filename|sha512/256 windows-scheduled-task
		windows-service-name windows-service-displayname target-user target-machine target-org target-location
		target-external threat-actor campaign-name campaign-id malware-type whois-registrant-phone whois-registrant-name
		whois-registrant-org whois-registrar whois-creation-date x509-fingerprint-md5 x509-fingerprint-sha1
		x509-fingerprint-sha256 ja3-fingerprint-md5 jarm-fingerprint hassh-md5 hasshserver-md5 named-pipe
		process-state pattern-in-file pattern-in-traffic pattern-in-memory stix2-pattern cookie http-method
		full-name first-name last-name middle-name phone-number place-of-birth gender passport-number nationality
		mobile-application-id chrome-extension-id cpe boolean hex community-id github-username github-repository
		github-organisation jabber-id twitter-id dkim dkim-signature favicon-mmh3 anonymised hostname|port
		ip-src|port ip-dst|port gene kusto-query mac-address mac-eui-64 cortex identity-card-number issue-date-of-the-visa
		visa-number date-of-birth primary-residence prtn onion-address dns-soa-email aba-rtn nationality
		attachment|md5 snort|sid user-account-name user-account-id azure-application-id`) {
		m[t] = struct{}{}
	}
	return m
}()

// ImportMISPFeed imports a MISP feed: manifest.json, listing event
// uuids, and one <uuid>.json file per event, in fsys (os.DirFS(dir) for
// a directory). An event the manifest lists but the directory lacks is a
// reject; an unreadable manifest is an error.
func (im *Importer) ImportMISPFeed(fsys fs.FS, name string, opts Options) (Result, error) {
	man, err := fs.ReadFile(fsys, "manifest.json")
	if err != nil {
		return Result{}, fmt.Errorf("MISP feed %s: %w", name, err)
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(man, &entries); err != nil {
		return Result{}, fmt.Errorf("MISP feed %s: manifest.json: %w", name, err)
	}
	b := im.newBatch(name, opts)
	b.res.Format = FormatMISPFeed
	keys := sortedKeys(entries)
	for _, u := range keys {
		if uuid.Validate(u) != nil {
			b.reject(name+"/manifest.json", fmt.Sprintf("%q is not an event uuid", u))
			continue
		}
		file := u + ".json"
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			b.reject(path.Join(name, file), "event listed in manifest.json: "+err.Error())
			continue
		}
		b.name = path.Join(name, file)
		if err := b.mispData(data); err != nil {
			b.reject(b.name, err.Error())
		}
	}
	b.name = name
	b.finish()
	return b.res, nil
}

// ImportMISPFeed is [Importer.ImportMISPFeed] with a new Importer,
// returning the objects too.
func ImportMISPFeed(fsys fs.FS, name string, opts Options) (Result, error) {
	im := NewImporter()
	res, err := im.ImportMISPFeed(fsys, name, opts)
	if err != nil {
		return Result{}, err
	}
	res.Objects = im.Objects()
	return res, nil
}
