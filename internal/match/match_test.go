package match

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/testutil"
)

func buildList(t testing.TB, values ...string) *Snapshot {
	t.Helper()
	b := NewBuilder()
	st, err := LoadFile(b, "list.txt", strings.NewReader(strings.Join(values, "\n")), time.Now())
	if err != nil || st.Invalid != 0 {
		t.Fatalf("load: %v %v", err, st.Problems)
	}
	return b.Snapshot()
}

func matches(s *Snapshot, o sensor.Obs) []string {
	var got []string
	for _, h := range NewMatcher(s).Match(o, nil) {
		got = append(got, string(h.Kind)+" "+h.Matched)
	}
	sort.Strings(got)
	return got
}

var semanticsList = []string{
	"1.2.3.4", "10.20.0.0/16", "10.20.30.0/24", "2001:db8::1", "2001:db8:aaaa::/48",
	"evil.com", "bad.example.org.", "http://phish.example/login?a=1", "https://dl.example/x.exe",
	"bob@evil-mail.example", strings.Repeat("ab", 16), strings.Repeat("CD", 20), strings.Repeat("ef", 32), strings.Repeat("01", 64),
}

func TestSnapshotSemantics(t *testing.T) {
	s := buildList(t, semanticsList...)
	ip, dom, any := sensor.ObsIP, sensor.ObsDomain, sensor.ObsAny
	tests := []struct {
		o    sensor.Obs
		want []string
	}{
		{sensor.Obs{Kind: ip, Value: []byte("1.2.3.4")}, []string{"ipv4 1.2.3.4"}},
		{sensor.Obs{Kind: ip, Value: []byte("11.2.3.45")}, nil},
		{sensor.Obs{Kind: ip, Value: []byte("1.2.3.40")}, nil},
		{sensor.Obs{Kind: ip, Value: []byte("01.2.3.4")}, nil},
		{sensor.Obs{Kind: ip, Value: []byte("10.20.30.40")}, []string{"cidr4 10.20.0.0/16", "cidr4 10.20.30.0/24"}},
		{sensor.Obs{Kind: ip, Value: []byte("10.20.31.1")}, []string{"cidr4 10.20.0.0/16"}},
		{sensor.Obs{Kind: ip, Value: []byte("10.21.0.1")}, nil},
		{sensor.Obs{Kind: ip, Value: []byte("::ffff:1.2.3.4")}, []string{"ipv4 1.2.3.4"}},
		{sensor.Obs{Kind: ip, Value: []byte("2001:DB8::1")}, []string{"ipv6 2001:db8::1"}},
		{sensor.Obs{Kind: ip, Value: []byte("2001:db8:aaaa:1::5")}, []string{"cidr6 2001:db8:aaaa::/48"}},
		{sensor.Obs{Kind: ip, Value: []byte("2001:db8:aaab::5")}, nil},
		{sensor.Obs{Kind: dom, Value: []byte("evil.com")}, []string{"domain evil.com"}},
		{sensor.Obs{Kind: dom, Value: []byte("WWW.Evil.COM.")}, []string{"domain evil.com"}},
		{sensor.Obs{Kind: dom, Value: []byte("notevil.com")}, nil},
		{sensor.Obs{Kind: dom, Value: []byte("evil.com.au")}, nil},
		{sensor.Obs{Kind: dom, Value: []byte("a.b.bad.example.org")}, []string{"domain bad.example.org"}},
		{sensor.Obs{Kind: dom, Value: []byte("example.org")}, nil},
		{sensor.Obs{Kind: any, Value: []byte("x.evil.com")}, []string{"domain evil.com"}},
		{sensor.Obs{Kind: any, Value: []byte("10.20.0.9")}, []string{"cidr4 10.20.0.0/16"}},
		{sensor.Obs{Kind: sensor.ObsHost, Value: []byte("evil.com:8080")}, []string{"domain evil.com"}},
		{sensor.Obs{Kind: sensor.ObsHost, Value: []byte("1.2.3.4:80")}, []string{"ipv4 1.2.3.4"}},
		{sensor.Obs{Kind: sensor.ObsURL, Value: []byte("Phish.Example"), Aux: []byte("/login?a=1")}, []string{"url http://phish.example/login?a=1"}},
		{sensor.Obs{Kind: sensor.ObsURL, Value: []byte("phish.example:80"), Aux: []byte("/login?a=1#x")}, []string{"url http://phish.example/login?a=1"}},
		{sensor.Obs{Kind: sensor.ObsURL, Value: []byte("phish.example"), Aux: []byte("/login?a=12")}, nil},
		{sensor.Obs{Kind: sensor.ObsURL, Value: []byte("dl.example"), Aux: []byte("/x.exe")}, []string{"url http://dl.example/x.exe"}},
		{sensor.Obs{Kind: sensor.ObsURL, Value: []byte("proxy"), Aux: []byte("HTTPS://DL.example:443/x.exe")}, []string{"url http://dl.example/x.exe"}},
		{sensor.Obs{Kind: sensor.ObsEmail, Value: []byte("Bob <bob@EVIL-mail.example>")}, []string{"email bob@evil-mail.example"}},
		{sensor.Obs{Kind: sensor.ObsEmail, Value: []byte("Bob@evil-mail.example")}, nil},
		{sensor.Obs{Kind: sensor.ObsHash, Value: []byte(strings.Repeat("AB", 16))}, []string{"md5 " + strings.Repeat("ab", 16)}},
		{sensor.Obs{Kind: sensor.ObsHash, Value: []byte(strings.TrimSuffix(strings.Repeat("cd:", 20), ":"))}, []string{"sha1 " + strings.Repeat("cd", 20)}},
		{sensor.Obs{Kind: sensor.ObsHash, Value: []byte(strings.Repeat("ef", 32))}, []string{"sha256 " + strings.Repeat("ef", 32)}},
		{sensor.Obs{Kind: sensor.ObsHash, Value: []byte(strings.Repeat("01", 64))}, []string{"sha512 " + strings.Repeat("01", 64)}},
		{sensor.Obs{Kind: sensor.ObsHash, Value: []byte(strings.Repeat("ef", 31))}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, matches(s, tt.o)); diff != "" {
			t.Errorf("%s %q|%q (-want +got):\n%s", tt.o.Kind, tt.o.Value, tt.o.Aux, diff)
		}
	}
	// A single-label domain (a TLD) matches every name under it.
	tb := NewBuilder()
	for _, v := range []string{"evil.com", "zz"} {
		if err := tb.Add(observable.Domain, v, DerivedRef); err != nil {
			t.Fatal(err)
		}
	}
	tld := tb.Snapshot()
	if diff := cmp.Diff([]string{"domain zz"}, matches(tld, sensor.Obs{Kind: dom, Value: []byte("a.b.zz")})); diff != "" {
		t.Errorf("TLD indicator (-want +got):\n%s", diff)
	}
	data, _, _ := tld.Encode()
	tld2, err := ReadSnapshot(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"domain zz"}, matches(tld2, sensor.Obs{Kind: dom, Value: []byte("x.zz")})); diff != "" {
		t.Errorf("TLD indicator after a round trip (-want +got):\n%s", diff)
	}
	if s.Len() != len(semanticsList) {
		t.Errorf("Len = %d, want %d", s.Len(), len(semanticsList))
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	b := NewBuilder()
	r1, _ := b.Indicator("indicator--00000000-0000-4000-8000-000000000001")
	r2, _ := b.Indicator("indicator--00000000-0000-4000-8000-000000000002")
	for _, v := range []struct {
		k observable.Kind
		v string
		r Ref
	}{{observable.IPv4, "0.0.0.0", r1}, {observable.IPv4, "1.2.3.4", r1}, {observable.IPv4, "1.2.3.4", r2}, {observable.CIDR4, "9.0.0.0/8", r2},
		{observable.Domain, "evil.com", r1}, {observable.SHA256, strings.Repeat("ee", 32), DerivedRef}} {
		if err := b.Add(v.k, v.v, v.r); err != nil {
			t.Fatal(err)
		}
	}
	s := b.Snapshot()
	data, etag, err := s.Encode()
	if err != nil || etag == "" {
		t.Fatal(err)
	}
	s2, err := ReadSnapshot(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	ids := func(s *Snapshot, o sensor.Obs) []string {
		var got []string
		for _, h := range NewMatcher(s).Match(o, nil) {
			got = append(got, s.IndicatorID(h.Ref, h.Kind, h.Matched))
		}
		sort.Strings(got)
		return got
	}
	for _, o := range []sensor.Obs{{Kind: sensor.ObsIP, Value: []byte("1.2.3.4")}, {Kind: sensor.ObsIP, Value: []byte("0.0.0.0")}, {Kind: sensor.ObsIP, Value: []byte("9.9.9.9")},
		{Kind: sensor.ObsDomain, Value: []byte("a.evil.com")}, {Kind: sensor.ObsHash, Value: []byte(strings.Repeat("ee", 32))}} {
		want := ids(s, o)
		if len(want) == 0 {
			t.Errorf("%s: no hit", o.Value)
		}
		if diff := cmp.Diff(want, ids(s2, o)); diff != "" {
			t.Errorf("%s after round trip (-want +got):\n%s", o.Value, diff)
		}
	}
	if got := ids(s, sensor.Obs{Kind: sensor.ObsIP, Value: []byte("1.2.3.4")}); len(got) != 2 {
		t.Errorf("1.2.3.4 hits %v, want both indicators", got)
	}
	// Every truncation is an error, never a panic or a silent success.
	for n := 0; n < len(data)-1; n++ {
		if _, err := ReadSnapshot(bytes.NewReader(data[:n])); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
}

func FuzzReadSnapshot(f *testing.F) {
	data, _, _ := buildList(f, semanticsList...).Encode()
	f.Add(data)
	// A snapshot carrying patterns for the evaluator.
	b := NewBuilder()
	b.CollectPatterns(NewPatternSet())
	if _, err := LoadFile(b, "b.json", strings.NewReader(bundle), time.Now()); err != nil {
		f.Fatal(err)
	}
	s := b.Snapshot()
	if s.Patterns().Len() == 0 {
		f.Fatal("the bundle has no pattern for the evaluator")
	}
	data, _, _ = s.Encode()
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			return
		}
		if ps := s.Patterns(); ps.Len() > 0 {
			ev := newEvaluator(ps.snapshotForRun())
			ev.candidates([]sensor.Obs{{Kind: sensor.ObsIP, Value: []byte("192.0.2.3")}})
		}
		m := NewMatcher(s)
		for _, o := range []sensor.Obs{{Kind: sensor.ObsIP, Value: []byte("1.2.3.4")}, {Kind: sensor.ObsDomain, Value: []byte("a.evil.com")}} {
			for _, h := range m.Match(o, nil) {
				_ = s.IndicatorID(h.Ref, h.Kind, h.Matched)
			}
		}
	})
}

const bundle = `{"type":"bundle","id":"bundle--6b0f2f8b-8a2c-4d44-9d3e-000000000001","objects":[
{"type":"indicator","spec_version":"2.1","id":"indicator--a0000000-0000-4000-8000-000000000001","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.7'] OR [domain-name:value = 'Evil.example']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"},
{"type":"indicator","spec_version":"2.1","id":"indicator--a0000000-0000-4000-8000-000000000002","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value ISSUBSET '203.0.113.0/24' OR file:hashes.'SHA-256' = '` + "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE" + `']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"},
{"type":"indicator","spec_version":"2.1","id":"indicator--a0000000-0000-4000-8000-000000000003","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","revoked":true,"pattern":"[ipv4-addr:value = '192.0.2.1']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"},
{"type":"indicator","spec_version":"2.1","id":"indicator--a0000000-0000-4000-8000-000000000004","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '192.0.2.2']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z","valid_until":"2024-02-01T00:00:00Z"},
{"type":"indicator","spec_version":"2.1","id":"indicator--a0000000-0000-4000-8000-000000000005","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '192.0.2.3' AND network-traffic:dst_port = 80]","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"},
{"type":"indicator","spec_version":"2.1","id":"indicator--a0000000-0000-4000-8000-000000000006","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = ","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"},
{"type":"malware","spec_version":"2.1","id":"malware--a0000000-0000-4000-8000-000000000007","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"x","is_family":false}
]}`

const zeekConn = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\n#types\ttime\tstring\taddr\tport\taddr\tport\n" +
	"1700000000.5\tC1\t10.0.0.1\t1\t198.51.100.7\t80\n" + // line 8: indicator 1
	"1700000100.0\tC2\t10.0.0.1\t1\t198.51.100.77\t80\n" + // no substring hit
	"1700000200.0\tC3\t203.0.113.9\t1\t192.0.2.1\t80\n" + // CIDR of indicator 2; revoked 192.0.2.1
	"1700000300.0\tC4\t192.0.2.2\t1\t192.0.2.3\t80\n" + // expired; evaluator-only
	"garbage line\n" +
	"1700000400.0\tC5\t10.9.9.9\t1\t198.51.100.7\t80\n" // indicator 1 again

func TestRunBundle(t *testing.T) {
	b := NewBuilder()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	st, err := LoadFile(b, "bundle.json", strings.NewReader(bundle), now)
	if err != nil {
		t.Fatal(err)
	}
	want := LoadStats{Indicators: 2, Values: 4, Revoked: 1, Expired: 1, Uncompiled: 1, Invalid: 1}
	st.Problems = nil
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("load stats (-want +got):\n%s", diff)
	}
	var hits bytes.Buffer
	res, err := Run(context.Background(), Options{
		Snapshot: b.Snapshot(),
		Logs:     []sensor.Input{{Name: "conn.log", Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(zeekConn)), nil }}},
		Hits:     &hits, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []HitRecord
	for _, l := range strings.Split(strings.TrimSpace(hits.String()), "\n") {
		var h HitRecord
		if err := json.Unmarshal([]byte(l), &h); err != nil {
			t.Fatalf("hit line %q: %v", l, err)
		}
		got = append(got, h)
	}
	ind1, ind2 := "indicator--a0000000-0000-4000-8000-000000000001", "indicator--a0000000-0000-4000-8000-000000000002"
	wantHits := []HitRecord{
		{File: "conn.log", Line: 8, Kind: "ipv4", Observed: "198.51.100.7", Matched: "198.51.100.7", Indicator: ind1},
		{File: "conn.log", Line: 10, Kind: "cidr4", Observed: "203.0.113.9", Matched: "203.0.113.0/24", Indicator: ind2},
		{File: "conn.log", Line: 13, Kind: "ipv4", Observed: "198.51.100.7", Matched: "198.51.100.7", Indicator: ind1},
	}
	if diff := cmp.Diff(wantHits, got); diff != "" {
		t.Errorf("hits (-want +got):\n%s", diff)
	}
	if res.Stats.Bad != 1 || res.Stats.BadLines[0].Line != 12 {
		t.Errorf("bad lines %d %v, want line 12", res.Stats.Bad, res.Stats.BadLines)
	}
	wantS := []Sighting{
		{Indicator: ind1, Count: 2, FirstSeen: time.Unix(1700000000, 5e8).UTC(), LastSeen: time.Unix(1700000400, 0).UTC()},
		{Indicator: ind2, Count: 1, FirstSeen: time.Unix(1700000200, 0).UTC(), LastSeen: time.Unix(1700000200, 0).UTC()},
	}
	if diff := cmp.Diff(wantS, res.Sightings); diff != "" {
		t.Errorf("sightings (-want +got):\n%s", diff)
	}
	identity := "identity--b0000000-0000-4000-8000-000000000001"
	data, err := SightingsBundle(res.Sightings, identity, now)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = stix.ReadBundle(bytes.NewReader(data), func(i int, raw json.RawMessage) error {
		o, err := stix.Decode(raw)
		if err != nil {
			return err
		}
		if err := stix.Validate(o); err != nil {
			return err
		}
		var s struct {
			Count     int64    `json:"count"`
			Where     []string `json:"where_sighted_refs"`
			SightedOf string   `json:"sighting_of_ref"`
		}
		json.Unmarshal(raw, &s)
		if s.Count != wantS[i].Count || s.SightedOf != wantS[i].Indicator || len(s.Where) != 1 || s.Where[0] != identity {
			t.Errorf("sighting %d: %s", i, raw)
		}
		n++
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("sightings bundle: %v (%d objects)", err, n)
	}
	if _, err := SightingsBundle(res.Sightings, "", now); err == nil {
		t.Error("sightings without identity accepted")
	}
}

func TestRunPlainListEVE(t *testing.T) {
	s := buildList(t, "evil.example", "https://bad.example/payload.bin", strings.Repeat("ab", 32))
	eve := `{"timestamp":"2024-05-01T10:00:00.000000+0200","event_type":"dns","src_ip":"10.0.0.1","dest_ip":"10.0.0.2","dns":{"rrname":"cdn.evil.example"}}
{"timestamp":"2024-05-01T10:00:01.000000+0200","event_type":"dns","src_ip":"10.0.0.1","dest_ip":"10.0.0.2","dns":{"rrname":"notevil.example"}}
{"timestamp":"2024-05-01T10:00:02.000000+0200","event_type":"http","src_ip":"10.0.0.1","dest_ip":"10.0.0.2","http":{"hostname":"bad.example","url":"\/payload.bin"}}
{"timestamp":"2024-05-01T10:00:03.000000+0200","event_type":"fileinfo","src_ip":"10.0.0.1","dest_ip":"10.0.0.2","fileinfo":{"sha256":"` + strings.Repeat("AB", 32) + `"}}
`
	var hits bytes.Buffer
	res, err := Run(context.Background(), Options{Snapshot: s, Hits: &hits,
		Logs: []sensor.Input{{Name: "eve.json", Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(eve)), nil }}}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(hits.String()), "\n")
	var at []int64
	for _, l := range lines {
		var h HitRecord
		json.Unmarshal([]byte(l), &h)
		at = append(at, h.Line)
		k, v, _ := observable.Detect(h.Matched)
		if h.Indicator != DerivedID(k, v) {
			t.Errorf("hit %s: indicator %s, want the id derived from %s %s", l, h.Indicator, k, v)
		}
	}
	if diff := cmp.Diff([]int64{1, 3, 4}, at); diff != "" {
		t.Errorf("hit lines (-want +got):\n%s", diff)
	}
	if len(res.Sightings) != 3 {
		t.Errorf("sightings %v", res.Sightings)
	}
}

func TestRealBlocklists(t *testing.T) {
	dir := testutil.SharedData(t, "blocklists")
	files := []string{"abusech-urlhaus-filter/urlhaus-filter-domains.txt", "firehol-2021-01-18/firehol_level1.netset", "eset-hashes/turla__samples.sha256", "ipsum/levels/3.txt", "abusech-urlhaus-filter/urlhaus-filter-hosts.txt"}
	b := NewBuilder()
	total := 0
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		st, err := LoadFile(b, f, bytes.NewReader(data), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		lines := 0
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "!") {
				lines++
			}
		}
		if st.Values+st.Invalid != lines || st.Invalid > lines/100 {
			t.Errorf("%s: %d values + %d invalid of %d lines: %v", f, st.Values, st.Invalid, lines, st.Problems)
		}
		total += st.Values
	}
	s := b.Snapshot()
	if s.Len() == 0 || s.Len() > total {
		t.Errorf("snapshot holds %d values of %d loaded", s.Len(), total)
	}
}
