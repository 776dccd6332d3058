package feed

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/stix/pattern"
	"github.com/entente-cti/entente/internal/testutil"
	"github.com/entente-cti/entente/internal/warninglist"
	"github.com/google/go-cmp/cmp"
)

var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// checkObjects decodes and validates every object, parses every
// indicator's pattern, and returns the indicators by id.
func checkObjects(t *testing.T, objs []json.RawMessage) map[string]indicator {
	t.Helper()
	inds := map[string]indicator{}
	ids := map[string]bool{}
	for _, raw := range objs {
		o, err := stix.Decode(raw)
		if err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
		if ids[o.ID] {
			t.Errorf("object %s appears twice", o.ID)
		}
		ids[o.ID] = true
		if err := stix.Validate(o); err != nil {
			t.Errorf("validate: %v\n%s", err, raw)
		}
		if o.Type == "indicator" {
			var in indicator
			if err := json.Unmarshal(raw, &in); err != nil {
				t.Fatal(err)
			}
			if _, err := pattern.Parse(in.Pattern); err != nil {
				t.Errorf("indicator %s: pattern %q: %v", in.ID, in.Pattern, err)
			}
			inds[in.ID] = in
		}
	}
	return inds
}

func TestPatternEscaping(t *testing.T) {
	tests := []struct {
		kind observable.Kind
		in   string
	}{
		{observable.URL, `http://example.com/a'b\c?q='x'`},
		{observable.Domain, "example.com"},
		{observable.IPv4, "192.0.2.1"},
		{observable.CIDR6, "2001:db8::/32"},
		{observable.SHA256, strings.Repeat("ab", 32)},
		{observable.Email, `o'brien@example.com`},
	}
	for _, tt := range tests {
		p := Pattern(tt.kind, tt.in)
		parsed, err := pattern.Parse(p)
		if err != nil {
			t.Errorf("Pattern(%s, %q) = %q: %v", tt.kind, tt.in, p, err)
			continue
		}
		cs, ok := parsed.Disjunction()
		if !ok || len(cs) != 1 || len(cs[0].Values) != 1 {
			t.Errorf("Pattern(%s, %q) = %q is not one comparison", tt.kind, tt.in, p)
			continue
		}
		if cs[0].Values[0] != tt.in {
			t.Errorf("Pattern(%s, %q): literal reads back as %q", tt.kind, tt.in, cs[0].Values[0])
		}
		k, ok := observable.FromComparison(cs[0].ObjectType, cs[0].Path)
		want := tt.kind
		if want == observable.CIDR6 {
			want = observable.IPv6
		}
		if !ok || k != want {
			t.Errorf("Pattern(%s): comparison %s:%s gives kind %q", tt.kind, cs[0].ObjectType, cs[0].Path, k)
		}
	}
}

func TestPlainShapes(t *testing.T) {
	in := `# comment
! adblock comment
; zone comment
$TTL 30
@ IN SOA localhost. root.localhost. 1 2 3 4 5
 NS localhost.
1.2.3.4
1.2.3.4 # same again
10.0.0.0/8
2001:DB8::1
Example.COM.
*.wild.example
bad.example CNAME .
*.bad.example CNAME .
32.4.3.2.1.rpz-ip CNAME .
0.0.0.0 hosts.example
127.0.0.1 localhost
zone "bind.example" { type master; notify no; file "null.zone.file"; };
address=/dnsmasq.example/0.0.0.0
local-zone: "unbound.example" always_nxdomain
||adblock.example^$all
||adblock.example/path/x.pdf^$all
5.6.7.8:443
9.9.9.9	10
http://evil.example/x?y#frag
D41D8CD98F00B204E9800998ECF8427E
/just/a/path
/has#fragment
not_a_domain!
`
	res, err := Import(strings.NewReader(in), "test.txt", Options{Now: now, Format: FormatPlain})
	if err != nil {
		t.Fatal(err)
	}
	inds := checkObjects(t, res.Objects)
	var got []string
	for _, raw := range res.Objects {
		var in indicator
		json.Unmarshal(raw, &in)
		if in.Type == "indicator" {
			got = append(got, in.Name)
		}
	}
	want := []string{"1.2.3.4", "10.0.0.0/8", "2001:db8::1", "example.com", "wild.example", "bad.example", "1.2.3.4/32"[:7] + "", "hosts.example", "bind.example", "dnsmasq.example", "unbound.example", "adblock.example", "http://adblock.example/path/x.pdf", "5.6.7.8", "9.9.9.9", "http://evil.example/x?y", "d41d8cd98f00b204e9800998ecf8427e", "/just/a/path"}
	want[6] = "1.2.3.4" // the rpz-ip trigger is 1.2.3.4/32, the same indicator as the first line
	want = append(want[:6], want[7:]...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("indicators (-want +got):\n%s", diff)
	}
	if res.Stats.Duplicates != 3 {
		t.Errorf("Duplicates = %d, want 3 (1.2.3.4 twice more, *.bad.example)", res.Stats.Duplicates)
	}
	for _, raw := range res.Objects {
		var in indicator
		json.Unmarshal(raw, &in)
		if in.Name == "/just/a/path" && in.Pattern != "[network-traffic:extensions.'http-request-ext'.request_value = '/just/a/path']" {
			t.Errorf("URL path pattern %s", in.Pattern)
		}
	}
	wantRej := []Reject{
		{Where: "test.txt:line 28", Reason: ""},
		{Where: "test.txt:line 29", Reason: ""},
	}
	if len(res.Rejected) != len(wantRej) {
		t.Fatalf("rejected = %+v, want 2", res.Rejected)
	}
	for i, r := range res.Rejected {
		if r.Where != wantRej[i].Where || r.Reason == "" {
			t.Errorf("reject %d = %+v, want at %s with a reason", i, r, wantRej[i].Where)
		}
	}
	if len(inds) != len(want) {
		t.Errorf("%d indicators, want %d", len(inds), len(want))
	}
}

func TestDedupAcrossFeeds(t *testing.T) {
	im := NewImporter()
	if _, err := im.Import(strings.NewReader("198.51.100.7\nevil.example\n"), "feed-a", Options{Now: now, Confidence: 50}); err != nil {
		t.Fatal(err)
	}
	tlp := stix.TLPAmber
	later := now.Add(time.Hour)
	if _, err := im.Import(strings.NewReader("198.51.100.7\n"), "feed-b", Options{Now: later, Confidence: 80, TLP: &tlp}); err != nil {
		t.Fatal(err)
	}
	inds := checkObjects(t, im.Objects())
	in, ok := inds[IndicatorID(observable.IPv4, "198.51.100.7")]
	if !ok {
		t.Fatal("no indicator for 198.51.100.7")
	}
	if len(inds) != 2 {
		t.Errorf("%d indicators, want 2", len(inds))
	}
	var sources []string
	for _, r := range in.ExternalRefs {
		sources = append(sources, r.SourceName)
	}
	if diff := cmp.Diff([]string{"feed-a", "feed-b"}, sources); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	if in.Confidence == nil || *in.Confidence != 80 {
		t.Errorf("confidence = %v, want 80", in.Confidence)
	}
	if in.ValidFrom != stix.FormatTimestamp(now) || in.Modified != stix.FormatTimestamp(later) {
		t.Errorf("valid_from %s modified %s, want %s and %s", in.ValidFrom, in.Modified, stix.FormatTimestamp(now), stix.FormatTimestamp(later))
	}
	if want := stix.FormatTimestamp(later.Add(30 * 24 * time.Hour)); in.ValidUntil != want {
		t.Errorf("valid_until = %s, want %s", in.ValidUntil, want)
	}
	if diff := cmp.Diff([]string{tlp.MarkingID()}, in.MarkingRefs); diff != "" {
		t.Errorf("markings (-want +got):\n%s", diff)
	}
	scos := 0
	for _, raw := range im.Objects() {
		o, _ := stix.Decode(raw)
		if o.Type == "ipv4-addr" {
			scos++
		}
	}
	if scos != 1 {
		t.Errorf("%d ipv4-addr objects, want 1", scos)
	}
}

func TestMerge(t *testing.T) {
	a, _ := Import(strings.NewReader("192.0.2.1\n"), "a", Options{Now: now, Confidence: 40})
	b, _ := Import(strings.NewReader("192.0.2.1\n"), "b", Options{Now: now.Add(-time.Hour), Confidence: 90, DefaultValidFor: map[observable.Kind]time.Duration{observable.IPv4: 0}})
	find := func(r Result) json.RawMessage {
		for _, o := range r.Objects {
			if strings.Contains(string(o), `"type":"indicator"`) {
				return o
			}
		}
		t.Fatal("no indicator")
		return nil
	}
	m, err := Merge(find(a), find(b))
	if err != nil {
		t.Fatal(err)
	}
	var in indicator
	json.Unmarshal(m, &in)
	if in.ValidUntil != "" {
		t.Errorf("valid_until = %q, want none (b has none)", in.ValidUntil)
	}
	if in.ValidFrom != stix.FormatTimestamp(now.Add(-time.Hour)) || *in.Confidence != 90 || len(in.ExternalRefs) != 2 {
		t.Errorf("merged = %s", m)
	}
	c, _ := Import(strings.NewReader("192.0.2.2\n"), "c", Options{Now: now})
	if _, err := Merge(find(a), find(c)); err == nil {
		t.Error("Merge of two different indicators: no error")
	}
}

func TestConfidence(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		base int
		age  time.Duration
		half time.Duration
		want int
	}{
		{80, 0, 30 * day, 80},
		{80, 30 * day, 30 * day, 40},
		{80, 60 * day, 30 * day, 20},
		{80, 15 * day, 30 * day, 57},
		{80, 90 * day, 0, 80},
		{80, -day, 30 * day, 80},
	}
	for _, tt := range tests {
		if got := Confidence(tt.base, now.Add(-tt.age), now, tt.half); got != tt.want {
			t.Errorf("Confidence(%d, age %v, half %v) = %d, want %d", tt.base, tt.age, tt.half, got, tt.want)
		}
	}
	r, _ := Import(strings.NewReader("192.0.2.1\n"), "a", Options{Now: now.Add(-30 * day), Confidence: 60})
	for _, o := range r.Objects {
		if strings.Contains(string(o), `"indicator"`) {
			c, err := IndicatorConfidence(o, 0, now, 30*day)
			if err != nil || c != 30 {
				t.Errorf("IndicatorConfidence = %d, %v; want 30", c, err)
			}
		}
	}
}

func TestWarninglistAndGeo(t *testing.T) {
	wl := warninglist.New()
	l, _ := warninglist.Parse(strings.NewReader(`{"name":"RFC 1918","type":"cidr","list":["10.0.0.0/8"]}`))
	wl.Add(l)
	res, err := Import(strings.NewReader("10.1.2.3\n8.8.8.8\n"), "x", Options{Now: now, Warninglists: wl, Geo: fakeGeo{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Warninglisted != 1 || res.Stats.WarninglistHits["RFC 1918"] != 1 {
		t.Errorf("stats = %+v", res.Stats)
	}
	inds := checkObjects(t, res.Objects)
	if got := inds[IndicatorID(observable.IPv4, "10.1.2.3")].Warninglists; !cmp.Equal(got, []string{"RFC 1918"}) {
		t.Errorf("warninglists of 10.1.2.3 = %q", got)
	}
	if got := inds[IndicatorID(observable.IPv4, "8.8.8.8")]; got.Warninglists != nil || got.Country != "US" {
		t.Errorf("8.8.8.8: warninglists %q country %q", got.Warninglists, got.Country)
	}
}

type fakeGeo struct{}

func (fakeGeo) Lookup(a netip.Addr) (string, bool) {
	if a == netip.MustParseAddr("8.8.8.8") {
		return "US", true
	}
	return "", false
}

func TestDetect(t *testing.T) {
	tests := map[string]Format{
		`{"Event":{}}`:       FormatMISPEvent,
		"  [{\"Event\":{}}]": FormatMISPEvent,
		"# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n": FormatCSV,
		"\"a\",\"b\",\"c\"\n":    FormatCSV,
		"1.2.3.4\nexample.com\n": FormatPlain,
	}
	for in, want := range tests {
		if got := Detect([]byte(in)); got != want {
			t.Errorf("Detect(%q) = %s, want %s", in, got, want)
		}
	}
}

func readShared(t testing.TB, p string) *os.File {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRealBlocklists(t *testing.T) {
	dir := testutil.SharedData(t, "blocklists")
	im := NewImporter()
	total := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f := readShared(t, p)
		defer f.Close()
		rel, _ := filepath.Rel(dir, p)
		res, err := im.Import(f, rel, Options{Now: now})
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		total += res.Stats.Indicators
		t.Logf("%-60s %-6s records %7d indicators %7d rejected %5d", rel, res.Format, res.Stats.Records, res.Stats.Indicators, res.Stats.Rejected)
		if res.Stats.Indicators == 0 {
			t.Errorf("%s: no indicators", rel)
		}
		// Most lines of these lists are values (Maltrail's bare URL
		// paths included): rejects are few.
		if res.Stats.Rejected*50 > res.Stats.Records {
			t.Errorf("%s: %d of %d records rejected, e.g. %+v", rel, res.Stats.Rejected, res.Stats.Records, res.Rejected[:min(3, len(res.Rejected))])
		}
		return nil
	})
	t.Logf("indicators across files %d, distinct objects %d", total, im.Len())
	if im.Len() >= 2*total {
		t.Errorf("no dedup: %d objects for %d indicators", im.Len(), total)
	}
}

func TestSCOIDMatchesStix(t *testing.T) {
	tests := []struct {
		kind observable.Kind
		v    string
	}{
		{observable.IPv4, "192.0.2.1"},
		{observable.Domain, "example.com"},
		{observable.URL, "http://example.com/a?b=<c>&d"},
		{observable.URL, "http://example.com/ü"},
		{observable.SHA256, strings.Repeat("0f", 32)},
		{observable.MD5, strings.Repeat("0f", 16)},
	}
	for _, tt := range tests {
		id, raw := SCO(tt.kind, tt.v)
		o, err := stix.Decode(raw)
		if err != nil {
			t.Fatalf("SCO(%s, %q) = %s: %v", tt.kind, tt.v, raw, err)
		}
		want, err := stix.SCOID(o.Type, raw)
		if err != nil {
			t.Fatal(err)
		}
		if id != want || o.ID != want {
			t.Errorf("SCO(%s, %q) id %s (in JSON %s), stix.SCOID says %s", tt.kind, tt.v, id, o.ID, want)
		}
		if err := stix.Validate(o); err != nil {
			t.Errorf("SCO(%s, %q): %v", tt.kind, tt.v, err)
		}
	}
}

func bytesReader(b []byte) *strings.Reader { return strings.NewReader(string(b)) }

// TestIndicatorJSONEscapes checks that an indicator's JSON is
// json.Marshal's where strings need escaping (quotes, control
// characters, HTML-sensitive characters, non-ASCII, invalid UTF-8, the
// line and paragraph separators) and with every optional property set,
// unset or zero.
func TestIndicatorJSONEscapes(t *testing.T) {
	zero, high := 0, 85
	for _, s := range []string{"", "plain", `a"b`, `back\slash`, "tab\there", "nl\n", "\x01\x1f\x7f",
		"<script>&amp;</script>", "café", "日本", "\xff\xfe", "a\u2028b\u2029", "'quoted'"} {
		for _, in := range []indicator{
			{Type: "indicator", SpecVersion: "2.1", ID: "indicator--x", Pattern: s},
			{Type: "indicator", SpecVersion: "2.1", ID: "indicator--x", Created: "2024-01-01T00:00:00Z", Modified: s,
				CreatedByRef: s, Name: s, Description: s, IndicatorTypes: []string{s, "malicious-activity"}, Pattern: "[x]",
				PatternType: "stix", PatternVersion: s, ValidFrom: s, ValidUntil: s, Confidence: &zero, Revoked: true,
				Labels: []string{s}, ExternalRefs: []ExtRef{{SourceName: s}, {SourceName: "a", Description: s, URL: s, ExternalID: s}},
				MarkingRefs: []string{s, s}, Warninglists: []string{s}, Country: s},
			{Confidence: &high, Labels: []string{}, ExternalRefs: []ExtRef{}},
		} {
			want, err := json.Marshal(&in)
			if err != nil {
				t.Fatal(err)
			}
			if got := in.marshal(); !bytes.Equal(got, want) {
				t.Errorf("%q:\nappendJSON   %s\njson.Marshal %s", s, got, want)
			}
		}
	}
}
