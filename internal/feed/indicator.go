package feed

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/jsonenc"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/google/uuid"
)

// IndicatorNamespace is the UUIDv5 namespace of Entente's deterministic
// indicator, relationship and SDO identifiers: indicator--UUIDv5(namespace,
// pattern), where the pattern is built from the normalised value.
var IndicatorNamespace = uuid.MustParse("6b1f0b5e-3d3a-5f7e-9c1e-8a1d2f0c4e71")

// ExtRef is a STIX external reference.
type ExtRef struct {
	SourceName  string `json:"source_name"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`
	ExternalID  string `json:"external_id,omitempty"`
}

// indicator is the JSON shape of the indicators feed produces and merges.
// Merge is meant for indicators this package produced: properties it does
// not model are not carried over.
type indicator struct {
	Type            string          `json:"type"`
	SpecVersion     string          `json:"spec_version"`
	ID              string          `json:"id"`
	Created         string          `json:"created"`
	Modified        string          `json:"modified"`
	CreatedByRef    string          `json:"created_by_ref,omitempty"`
	Name            string          `json:"name,omitempty"`
	Description     string          `json:"description,omitempty"`
	IndicatorTypes  []string        `json:"indicator_types,omitempty"`
	Pattern         string          `json:"pattern"`
	PatternType     string          `json:"pattern_type"`
	PatternVersion  string          `json:"pattern_version,omitempty"`
	ValidFrom       string          `json:"valid_from"`
	ValidUntil      string          `json:"valid_until,omitempty"`
	Confidence      *int            `json:"confidence,omitempty"`
	Revoked         bool            `json:"revoked,omitempty"`
	Labels          []string        `json:"labels,omitempty"`
	ExternalRefs    []ExtRef        `json:"external_references,omitempty"`
	MarkingRefs     []string        `json:"object_marking_refs,omitempty"`
	Warninglists    []string        `json:"x_entente_warninglists,omitempty"`
	Country         string          `json:"x_entente_country,omitempty"`
	KillChainPhases json.RawMessage `json:"kill_chain_phases,omitempty"`

	batch uint64 // the Importer batch that last touched it
}

// marshal returns in's JSON: the bytes json.Marshal writes, which
// appendJSON writes itself for every indicator but those with
// kill_chain_phases (raw JSON, compacted and checked by json.Marshal).
func (in *indicator) marshal() json.RawMessage {
	if len(in.KillChainPhases) == 0 {
		return in.appendJSON(make([]byte, 0, in.jsonSize()))
	}
	b, err := json.Marshal(in)
	if err != nil {
		// Only kill_chain_phases (raw JSON) can fail; leave it out.
		c := *in
		c.KillChainPhases = nil
		b, _ = json.Marshal(&c)
	}
	return b
}

// appendJSON appends in's JSON to b as json.Marshal writes it (fields in
// the struct's order, omitempty as tagged, strings escaped as
// encoding/json does: its HTML-safe escaping included), but for
// KillChainPhases, which it leaves out: an import renders some 400,000
// indicators, and json.Marshal's reflection over each was 5 % of the
// whole import's CPU, and a fifth of the bytes it allocated.
// TestIndicatorJSON compares the two on every indicator of the shared
// feeds and on strings that need escaping.
func (in *indicator) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = jsonenc.AppendString(b, in.Type)
	b = append(b, `,"spec_version":`...)
	b = jsonenc.AppendString(b, in.SpecVersion)
	b = append(b, `,"id":`...)
	b = jsonenc.AppendString(b, in.ID)
	b = append(b, `,"created":`...)
	b = jsonenc.AppendString(b, in.Created)
	b = append(b, `,"modified":`...)
	b = jsonenc.AppendString(b, in.Modified)
	b = appendOptString(b, `,"created_by_ref":`, in.CreatedByRef)
	b = appendOptString(b, `,"name":`, in.Name)
	b = appendOptString(b, `,"description":`, in.Description)
	b = appendOptStrings(b, `,"indicator_types":`, in.IndicatorTypes)
	b = append(b, `,"pattern":`...)
	b = jsonenc.AppendString(b, in.Pattern)
	b = append(b, `,"pattern_type":`...)
	b = jsonenc.AppendString(b, in.PatternType)
	b = appendOptString(b, `,"pattern_version":`, in.PatternVersion)
	b = append(b, `,"valid_from":`...)
	b = jsonenc.AppendString(b, in.ValidFrom)
	b = appendOptString(b, `,"valid_until":`, in.ValidUntil)
	if in.Confidence != nil {
		b = append(b, `,"confidence":`...)
		b = strconv.AppendInt(b, int64(*in.Confidence), 10)
	}
	if in.Revoked {
		b = append(b, `,"revoked":true`...)
	}
	b = appendOptStrings(b, `,"labels":`, in.Labels)
	if len(in.ExternalRefs) > 0 {
		b = append(b, `,"external_references":[`...)
		for i, r := range in.ExternalRefs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"source_name":`...)
			b = jsonenc.AppendString(b, r.SourceName)
			b = appendOptString(b, `,"description":`, r.Description)
			b = appendOptString(b, `,"url":`, r.URL)
			b = appendOptString(b, `,"external_id":`, r.ExternalID)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendOptStrings(b, `,"object_marking_refs":`, in.MarkingRefs)
	b = appendOptStrings(b, `,"x_entente_warninglists":`, in.Warninglists)
	b = appendOptString(b, `,"x_entente_country":`, in.Country)
	return append(b, '}')
}

// jsonSize is a guess at the length of in's JSON, for its buffer.
func (in *indicator) jsonSize() int {
	n := 330 + len(in.ID) + len(in.Name) + len(in.Description) + len(in.Pattern) + len(in.CreatedByRef)
	for _, r := range in.ExternalRefs {
		n += 60 + len(r.SourceName) + len(r.Description) + len(r.URL) + len(r.ExternalID)
	}
	for _, s := range in.Labels {
		n += 3 + len(s)
	}
	return n + 50*len(in.MarkingRefs)
}

// appendOptString appends key and s's JSON unless s is empty (omitempty).
func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return jsonenc.AppendString(append(b, key...), s)
}

// appendOptStrings appends key and ss's JSON array unless it is empty
// (omitempty).
func appendOptStrings(b []byte, key string, ss []string) []byte {
	if len(ss) == 0 {
		return b
	}
	b = append(b, key...)
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, s)
	}
	return append(b, ']')
}

// quote writes s as a STIX pattern string literal: single quotes, with
// backslash and quote escaped.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' || c == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('\'')
	return b.String()
}

// hashProp is the STIX hashes key of each hash kind, as written in a
// pattern path and in an SCO.
var hashProp = map[observable.Kind][2]string{
	observable.MD5:    {"MD5", "MD5"},
	observable.SHA1:   {"'SHA-1'", "SHA-1"},
	observable.SHA256: {"'SHA-256'", "SHA-256"},
	observable.SHA512: {"'SHA-512'", "SHA-512"},
}

// URLPath is the kind of a URL path without a host, as Maltrail's trails
// list them ("/wp-content/x.php"). It is not an observable of its own
// (there is no STIX cyber-observable object for a path), so it makes an
// indicator but no SCO. Its pattern matches HTTP requests whose request
// target is the path: the http-request-ext extension of network-traffic
// (STIX 2.1, section 6.12.2), whose request_value "specifies the value
// (typically a resource path) of the HTTP request", e.g.
//
//	[network-traffic:extensions.'http-request-ext'.request_value = '/wp-content/x.php']
//
// Maltrail matches a path also with a query string, a trailing slash or
// without the file extension; the pattern says only what the trail says.
const URLPath observable.Kind = "url-path"

// Pattern returns the STIX pattern of a normalised observable value of
// kind k.
func Pattern(k observable.Kind, v string) string {
	switch k {
	case URLPath:
		return "[network-traffic:extensions.'http-request-ext'.request_value = " + quote(v) + "]"
	case observable.IPv4, observable.CIDR4:
		return "[ipv4-addr:value = " + quote(v) + "]"
	case observable.IPv6, observable.CIDR6:
		return "[ipv6-addr:value = " + quote(v) + "]"
	case observable.Domain:
		return "[domain-name:value = " + quote(v) + "]"
	case observable.URL:
		return "[url:value = " + quote(v) + "]"
	case observable.Email:
		return "[email-addr:value = " + quote(v) + "]"
	}
	if h, ok := hashProp[k]; ok {
		return "[file:hashes." + h[0] + " = " + quote(v) + "]"
	}
	return ""
}

// IndicatorID returns the deterministic id of the indicator for a
// normalised observable value of kind k.
func IndicatorID(k observable.Kind, v string) string {
	return "indicator--" + uuid.NewSHA1(IndicatorNamespace, []byte(Pattern(k, v))).String()
}

// derivedID returns a deterministic id of type typ for key.
func derivedID(typ, key string) string {
	return typ + "--" + uuid.NewSHA1(IndicatorNamespace, []byte(typ+"|"+key)).String()
}

// scoType returns the SCO type of kind k.
func scoType(k observable.Kind) string {
	switch k {
	case observable.IPv4, observable.CIDR4:
		return "ipv4-addr"
	case observable.IPv6, observable.CIDR6:
		return "ipv6-addr"
	case observable.Domain:
		return "domain-name"
	case observable.URL:
		return "url"
	case observable.Email:
		return "email-addr"
	}
	return "file"
}

// SCO returns the cyber-observable object of a normalised value, with its
// deterministic id (as stix.SCOID computes it: UUIDv5 in the SCO namespace
// of the canonical JSON of the ID-contributing property).
func SCO(k observable.Kind, v string) (id string, raw json.RawMessage) {
	var scratch []byte
	return sco(&scratch, k, v)
}

func sco(scratch *[]byte, k observable.Kind, v string) (id string, raw json.RawMessage) {
	typ := scoType(k)
	var contrib string
	var body []byte
	if jsonenc.PlainASCII(v) {
		// Fast path: the value needs no escaping in JSON, so its RFC 8785
		// form is the value between quotes.
		if typ == "file" {
			contrib = `{"hashes":{"` + hashProp[k][1] + `":"` + v + `"}}`
		} else {
			contrib = `{"value":"` + v + `"}`
		}
		id = typedUUID5(scratch, typ, stix.SCONamespace, contrib)
		body = make([]byte, 0, len(contrib)+len(id)+40+len(typ))
		body = append(body, `{"type":"`...)
		body = append(body, typ...)
		body = append(body, `","spec_version":"2.1","id":"`...)
		body = append(body, id...)
		body = append(body, `",`...)
		body = append(body, contrib[1:]...)
		return id, body
	}
	var m map[string]any
	if typ == "file" {
		m = map[string]any{"type": typ, "spec_version": "2.1", "hashes": map[string]string{hashProp[k][1]: v}}
	} else {
		m = map[string]any{"type": typ, "spec_version": "2.1", "value": v}
	}
	body, _ = json.Marshal(m)
	id, err := stix.SCOID(typ, body)
	if err != nil {
		id = derivedID(typ, v)
	}
	m["id"] = id
	body, _ = json.Marshal(m)
	return id, body
}

// Merge unions two versions of the same indicator (same id), as this
// package produces them (see [Importer] for merging within an import): it keeps
// the earliest created and valid_from, the latest modified and
// valid_until (none if either has none), the highest confidence, the most
// restrictive TLP marking and every other marking, and the union of
// labels, external references and warninglists. Other properties come
// from the version modified last. Revoked wins.
func Merge(a, b json.RawMessage) (json.RawMessage, error) {
	var x, y indicator
	if err := json.Unmarshal(a, &x); err != nil {
		return nil, fmt.Errorf("merge: first indicator: %w", err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		return nil, fmt.Errorf("merge: second indicator: %w", err)
	}
	if x.Type != "indicator" || y.Type != "indicator" {
		return nil, fmt.Errorf("merge: %s and %s are not both indicators", x.ID, y.ID)
	}
	if x.ID != y.ID {
		return nil, fmt.Errorf("merge: ids differ: %s and %s", x.ID, y.ID)
	}
	x.merge(&y)
	return x.marshal(), nil
}

// merge folds y into in (same id).
func (in *indicator) merge(y *indicator) {
	base := *in
	if y.Modified > in.Modified {
		base = *y
		base.Created, base.ValidFrom = in.Created, in.ValidFrom
		base.Labels, base.ExternalRefs, base.MarkingRefs, base.Warninglists = in.Labels, in.ExternalRefs, in.MarkingRefs, in.Warninglists
		base.Confidence, base.ValidUntil, base.Revoked = in.Confidence, in.ValidUntil, in.Revoked
		base.Modified = y.Modified
	}
	base.Created = minTS(in.Created, y.Created)
	base.ValidFrom = minTS(in.ValidFrom, y.ValidFrom)
	if in.ValidUntil == "" || y.ValidUntil == "" {
		base.ValidUntil = ""
	} else {
		base.ValidUntil = maxTS(in.ValidUntil, y.ValidUntil)
	}
	if y.Confidence != nil && (base.Confidence == nil || *y.Confidence > *base.Confidence) {
		c := *y.Confidence
		base.Confidence = &c
	}
	base.Revoked = in.Revoked || y.Revoked
	base.Labels = union(base.Labels, y.Labels)
	base.Warninglists = union(base.Warninglists, y.Warninglists)
	base.MarkingRefs = mergeMarkings(base.MarkingRefs, y.MarkingRefs)
	for _, r := range y.ExternalRefs {
		if !slices.Contains(base.ExternalRefs, r) {
			base.ExternalRefs = append(base.ExternalRefs, r)
		}
	}
	if base.Country == "" {
		base.Country = y.Country
	}
	base.batch = in.batch
	*in = base
}

// mergeMarkings unions two object_marking_refs lists, keeping only the
// most restrictive TLP marking.
func mergeMarkings(a, b []string) []string {
	best, have := stix.TLP(-1), false
	var out []string
	for _, ref := range append(slices.Clone(a), b...) {
		if t, ok := stix.TLPFromMarking(ref); ok {
			if !have || t > best {
				best, have = t, true
			}
			continue
		}
		if !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	if have {
		out = append([]string{best.MarkingID()}, out...)
	}
	return out
}

// union returns a with b's strings it lacks appended; it never writes
// into a's backing array.
func union(a, b []string) []string {
	a = slices.Clip(a)
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

func minTS(a, b string) string {
	at, err1 := stix.ParseTimestamp(a)
	bt, err2 := stix.ParseTimestamp(b)
	switch {
	case err1 != nil:
		return b
	case err2 != nil:
		return a
	case bt.Before(at):
		return b
	}
	return a
}

func maxTS(a, b string) string {
	if minTS(a, b) == a {
		return b
	}
	return a
}

// Confidence returns base decayed by age: halved every halfLife since
// since (a zero or negative halfLife disables decay), rounded to the
// nearest integer.
func Confidence(base int, since, now time.Time, halfLife time.Duration) int {
	if halfLife <= 0 || !now.After(since) {
		return base
	}
	age := now.Sub(since).Seconds() / halfLife.Seconds()
	return int(math.Round(float64(base) * math.Pow(0.5, age)))
}

// IndicatorConfidence returns the decayed confidence of an indicator:
// its confidence property (or def when it has none) decayed from its
// valid_from, or its modified time when that is later.
func IndicatorConfidence(raw json.RawMessage, def int, now time.Time, halfLife time.Duration) (int, error) {
	var in struct {
		ID         string `json:"id"`
		Confidence *int   `json:"confidence"`
		ValidFrom  string `json:"valid_from"`
		Modified   string `json:"modified"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return 0, fmt.Errorf("indicator confidence: %w", err)
	}
	base := def
	if in.Confidence != nil {
		base = *in.Confidence
	}
	since, err := stix.ParseTimestamp(in.ValidFrom)
	if err != nil {
		return 0, fmt.Errorf("indicator %s: valid_from: %w", in.ID, err)
	}
	if m, err := stix.ParseTimestamp(in.Modified); err == nil && m.After(since) {
		since = m
	}
	return Confidence(base, since, now, halfLife), nil
}
