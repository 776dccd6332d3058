package warninglist

import (
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/testutil"
	"github.com/google/go-cmp/cmp"
)

func TestMatchSynthetic(t *testing.T) {
	s := New()
	lists := []string{
		`{"name":"nets","type":"cidr","matching_attributes":["ip-src","ip-dst"],"list":["10.0.0.0/8","2001:db8::/32","192.0.2.1","bad"]}`,
		`{"name":"hosts","type":"hostname","matching_attributes":["domain","hostname","url"],"list":["example.com",".dyn.example"]}`,
		`{"name":"top","type":"string","matching_attributes":["domain","url"],"list":["Google.com",".googleapis.com"]}`,
		`{"name":"hashes","type":"string","matching_attributes":["md5"],"list":["D41D8CD98F00B204E9800998ECF8427E"]}`,
		`{"name":"sub","type":"substring","matching_attributes":["domain"],"list":["sandbox"]}`,
		`{"name":"mail","type":"regex","matching_attributes":["email-src"],"list":["/^(abuse|noc)\\@.*$/i"]}`,
	}
	for _, js := range lists {
		l, err := Parse(strings.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Add(l); err != nil {
			t.Fatal(err)
		}
	}
	if s.Skipped["nets"] != 1 {
		t.Errorf("Skipped[nets] = %d, want 1", s.Skipped["nets"])
	}
	tests := []struct {
		kind  observable.Kind
		value string
		want  []string
	}{
		{observable.IPv4, "10.1.2.3", []string{"nets"}},
		{observable.IPv4, "11.1.2.3", nil},
		{observable.IPv4, "192.0.2.1", []string{"nets"}},
		{observable.CIDR4, "10.2.0.0/16", []string{"nets"}},
		{observable.CIDR4, "8.0.0.0/6", nil},
		{observable.IPv6, "2001:db8::1", []string{"nets"}},
		{observable.Domain, "example.com", []string{"hosts"}},
		{observable.Domain, "www.example.com", []string{"hosts"}},
		{observable.Domain, "notexample.com", nil},
		{observable.Domain, "a.dyn.example", []string{"hosts"}},
		{observable.Domain, "google.com", []string{"top"}},
		{observable.Domain, "mail.google.com", nil},
		{observable.Domain, "x.googleapis.com", []string{"top"}},
		{observable.Domain, "my-sandbox.net", []string{"sub"}},
		{observable.URL, "http://www.example.com/x", []string{"hosts"}},
		{observable.MD5, "d41d8cd98f00b204e9800998ecf8427e", []string{"hashes"}},
		{observable.Email, "ABUSE@corp.example", []string{"mail"}},
		{observable.Email, "bob@corp.example", nil},
	}
	for _, tt := range tests {
		got := s.Match(tt.kind, tt.value)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Match(%s, %q) (-want +got):\n%s", tt.kind, tt.value, diff)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, js := range []string{`{`, `{"name":"","type":"string"}`, `{"name":"x","type":"nope"}`} {
		if _, err := Parse(strings.NewReader(js)); err == nil {
			t.Errorf("Parse(%s): no error", js)
		}
	}
}

func TestRealLists(t *testing.T) {
	dir := testutil.SharedData(t, "warninglists", "lists")
	s, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() < 90 {
		t.Errorf("loaded %d lists, want >= 90", s.Len())
	}
	has := func(kind observable.Kind, v, name string) {
		t.Helper()
		got := s.Match(kind, v)
		for _, n := range got {
			if n == name {
				return
			}
		}
		t.Errorf("Match(%s, %q) = %q, want it to include %q", kind, v, got, name)
	}
	has(observable.IPv4, "8.8.8.8", "List of known IPv4 public DNS resolvers")
	has(observable.IPv4, "10.1.2.3", "List of RFC 1918 CIDR blocks")
	has(observable.IPv4, "172.20.0.1", "List of RFC 1918 CIDR blocks")
	has(observable.IPv6, "fe80::1", "List of IPv6 link local blocks")
	has(observable.Domain, "google.com", "Top 1000 websites from Cisco Umbrella")
	has(observable.Domain, "foo.duckdns.org", "List of known dynamic DNS domains")
	has(observable.MD5, "d41d8cd98f00b204e9800998ecf8427e", "List of known hashes for empty files")
	if got := s.Match(observable.IPv4, "185.220.101.1"); len(got) > 0 {
		for _, n := range got {
			if strings.Contains(n, "RFC") {
				t.Errorf("public address in %q", n)
			}
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	dir := testutil.SharedData(b, "warninglists", "lists")
	s, err := LoadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s.Match(observable.IPv4, "8.8.8.8")
		s.Match(observable.Domain, "www.some-random-host.example.com")
	}
}

func FuzzWarninglist(f *testing.F) {
	f.Add(`{"name":"n","type":"cidr","list":["10.0.0.0/8"]}`, "ipv4", "10.0.0.1")
	f.Add(`{"name":"n","type":"hostname","list":[".a.b"]}`, "domain", "x.a.b")
	f.Add(`{"name":"n","type":"regex","list":["/(/"]}`, "email", "a@b")
	f.Fuzz(func(t *testing.T, js, kind, value string) {
		l, err := Parse(strings.NewReader(js))
		if err != nil {
			return
		}
		s := New()
		if err := s.Add(l); err != nil {
			return
		}
		s.Match(observable.Kind(kind), value)
	})
}
