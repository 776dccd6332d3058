package safety

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix/pattern"
	"go4.org/netipx"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// defaultNet is the net of a node's default configuration.
func defaultNet(t testing.TB) *Net {
	t.Helper()
	ws, err := ShippedWarninglists()
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{IANA: true, Warninglists: ws, WidestIPv4: 8, WidestIPv6: 16})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIANAEntries: every entry of the embedded registries, parsed, with
// the decision the net takes for it, is what testdata/iana.golden says
// (review its diff when the registries are updated), and the registries
// hold the blocks the issue names.
func TestIANAEntries(t *testing.T) {
	es, err := Registries()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%-20s %-6s protects=%-5v %s | %s | %s\n", e.Prefix, e.Reach, e.Protects(), e.Name, e.RFC, e.Registry)
	}
	golden(t, "testdata/iana.golden", b.String())
	if len(es) != 26+25+2 {
		t.Errorf("%d entries, want 26 IPv4 (one row holds two blocks), 25 IPv6 and 2 multicast", len(es))
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != got {
		t.Fatalf("%s differs (run go test ./internal/safety -update and review the diff):\n%s", path, got)
	}
}

// TestDecide: what the default net does with each value, and the rule
// it names.
func TestDecide(t *testing.T) {
	n := defaultNet(t)
	for _, c := range []struct {
		value  string
		action Action
		rule   string
	}{
		{"10.1.2.3", Suppress, "iana-special-purpose: 10.0.0.0/8 (RFC 1918, Private-Use)"},
		{"10.0.0.0/8", Suppress, "iana-special-purpose: 10.0.0.0/8 (RFC 1918, Private-Use)"},
		{"192.168.0.0/16", Suppress, "iana-special-purpose: 192.168.0.0/16 (RFC 1918, Private-Use)"},
		{"224.0.0.251", Suppress, "warninglist: List of RFC 5771 multicast CIDR blocks"}, // the most specific range decides: the list's 224.0.0.0/8
		{"239.255.255.250", Suppress, "warninglist: List of RFC 5771 multicast CIDR blocks"},
		{"255.255.255.255", Suppress, "iana-special-purpose: 255.255.255.255/32 (RFC 8190, RFC 919, Section 7, Limited Broadcast)"},
		{"127.0.0.1", Suppress, "iana-special-purpose: 127.0.0.0/8 (RFC 1122, Section 3.2.1.3, Loopback)"},
		{"0.0.0.0/0", Refuse, "too-broad: IPv4 networks wider than /8 (widest_ipv4)"},
		{"224.0.0.0/3", Refuse, "too-broad: IPv4 networks wider than /8 (widest_ipv4)"},
		{"100.0.0.0/8", Cut, "iana-special-purpose: 100.64.0.0/10 (RFC 6598, Shared Address Space)"},
		{"192.0.0.9", Suppress, "warninglist: List of RFC 5735 CIDR blocks"}, // globally reachable per IANA, but in the shipped list's 192.0.0.0/24
		{"192.0.0.11", Suppress, "iana-special-purpose: 192.0.0.0/24 (RFC 6890, Section 2.1, IETF Protocol Assignments)"},
		{"192.31.196.1", Keep, ""}, // AS112-v4
		{"192.52.193.7", Keep, ""}, // AMT
		{"192.175.48.6", Keep, ""}, // AS112 direct delegation
		{"192.88.99.1", Suppress, "warninglist: List of RFC 5735 CIDR blocks"}, // deprecated: the registry no longer protects it, the warninglist does
		{"192.88.99.2", Suppress, "iana-special-purpose: 192.88.99.2/32 (RFC 6751, 6a44-relay anycast address)"},
		{"8.8.8.8", Keep, ""},
		{"2001:db8::1", Suppress, "iana-special-purpose: 2001:db8::/32 (RFC 3849, Documentation)"},
		{"3fff::1", Suppress, "iana-special-purpose: 3fff::/20 (RFC 9637, Documentation)"},
		{"fe80::1", Suppress, "iana-special-purpose: fe80::/10 (RFC 4291, Link-Local Unicast)"},
		{"ff02::fb", Suppress, "iana-multicast: ff00::/8 (RFC 4291, Multicast)"},
		{"fd00::/16", Suppress, "iana-special-purpose: fc00::/7 (RFC 4193, RFC 8190, Unique-Local)"},
		{"2001::1", Keep, ""},         // TEREDO: N/A, a real host's tunnelled address
		{"2002:808:808::1", Keep, ""}, // 6to4
		{"2001:2::1", Suppress, "iana-special-purpose: 2001:2::/48 (RFC 5180, RFC Errata 1752, Benchmarking)"},
		{"2001:10::1", Suppress, "iana-special-purpose: 2001::/23 (RFC 2928, IETF Protocol Assignments)"}, // deprecated ORCHID: the enclosing block decides
		{"2001:20::1", Keep, ""}, // ORCHIDv2
		{"64:ff9b::808:808", Keep, ""},
		{"64:ff9b:1::1", Suppress, "iana-special-purpose: 64:ff9b:1::/48 (RFC 8215, IPv4-IPv6 Translat.)"},
		{"2000::/3", Refuse, "too-broad: IPv6 networks wider than /16 (widest_ipv6)"},
		{"2600::/16", Keep, ""},
		{"http://10.0.0.1/x", Suppress, "iana-special-purpose: 10.0.0.0/8 (RFC 1918, Private-Use)"},
		{"http://[fe80::1]:8080/x", Suppress, "iana-special-purpose: fe80::/10 (RFC 4291, Link-Local Unicast)"},
		{"http://evil.example.net/x", Keep, ""},
		{"example.com", Suppress, "warninglist: List of RFC 6761 Special-Use Domain Names"},
		{"evil.example.net", Keep, ""},
		{"d41d8cd98f00b204e9800998ecf8427e", Suppress, "warninglist: List of known hashes for empty files"},
		{"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Suppress, "warninglist: List of known hashes for empty files"},
		{"44d88612fea8a8f36de82e1278abb02f", Keep, ""},
	} {
		k, v, err := observable.Detect(c.value)
		if err != nil {
			t.Fatalf("%s: %v", c.value, err)
		}
		d := n.Decide(k, v)
		got := ""
		if d.Action != Keep {
			got = d.Rule.String()
		}
		if d.Action != c.action || got != c.rule {
			t.Errorf("%s: %s by %q, want %s by %q", c.value, d.Action, got, c.action, c.rule)
		}
	}
}

// TestIANAExceptions: with the registries alone, the globally reachable
// blocks inside a protected one are carved out of it.
func TestIANAExceptions(t *testing.T) {
	n, err := New(Config{IANA: true})
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]Action{"192.0.0.9": Keep, "192.0.0.10": Keep, "192.0.0.11": Suppress, "192.0.0.8": Suppress,
		"192.88.99.1": Keep, "192.88.99.2": Suppress, "224.0.0.251": Suppress, "2001:1::1": Keep, "2001:1::4": Suppress,
		"192.0.0.0/24": Cut, "0.0.0.0/0": Cut, "240.0.0.0/3": Suppress} {
		k, c, _ := observable.Detect(v)
		if d := n.Decide(k, c); d.Action != want {
			t.Errorf("%s: %s (%s), want %s", v, d.Action, d.Rule, want)
		}
	}
	if d := n.Decide(observable.CIDR4, "192.0.0.0/24"); len(d.Parts) != 2 || d.Parts[0].String() != "192.0.0.9/32" || d.Parts[1].String() != "192.0.0.10/32" {
		t.Errorf("192.0.0.0/24 cut to %v, want its two anycast addresses", d.Parts)
	}
}

// TestConstituencyAllowlistASN: the node's constituency (networks,
// domains with their subdomains, autonomous systems through a prefix
// file) and the allowlist (any value) are protected, with their source.
func TestConstituencyAllowlistASN(t *testing.T) {
	asn, err := ParseASNPrefixes("asn.txt", strings.NewReader("# AS, prefix\nAS64500 185.20.0.0/22\n64500,2a0b:1000::/32\nAS64501 5.6.7.0/24\n"))
	if err != nil {
		t.Fatal(err)
	}
	allow, err := ParseList("allow.txt", strings.NewReader("# never block\n9.9.9.9\n\nhttp://partner.example.org/feed # their feed\n44d88612fea8a8f36de82e1278abb02f\nresolver.example.net\n"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{
		Constituency: []Entry{{"198.51.0.0/16", "config line 12"}, {"cert.example", "config line 13"}, {"AS64500", "config line 14"}},
		ASNPrefixes:  asn, ASNSource: "asn.txt", Allowlist: allow, Networks: ModeRefuse,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value  string
		action Action
		rule   string
	}{
		{"198.51.7.7", Suppress, "constituency: 198.51.0.0/16 (config line 12)"},
		{"198.0.0.0/8", Refuse, "constituency: 198.51.0.0/16 (config line 12)"},
		{"www.cert.example", Suppress, "constituency: cert.example (config line 13)"},
		{"notcert.example", Keep, ""},
		{"https://mail.cert.example/login", Suppress, "constituency: cert.example (config line 13)"},
		{"phish@cert.example", Suppress, "constituency: cert.example (config line 13)"},
		{"185.20.1.1", Suppress, "constituency: 185.20.0.0/22 (AS64500, config line 14; asn.txt line 2)"},
		{"2a0b:1000::5", Suppress, "constituency: 2a0b:1000::/32 (AS64500, config line 14; asn.txt line 3)"},
		{"5.6.7.8", Keep, ""}, // AS64501 is not in the constituency
		{"9.9.9.9", Suppress, "allowlist: 9.9.9.9 (allow.txt line 2)"},
		{"http://partner.example.org/feed", Suppress, "allowlist: http://partner.example.org/feed (allow.txt line 4)"},
		{"http://partner.example.org/other", Keep, ""},
		{"44d88612fea8a8f36de82e1278abb02f", Suppress, "allowlist: 44d88612fea8a8f36de82e1278abb02f (allow.txt line 5)"},
		{"a.resolver.example.net", Suppress, "allowlist: resolver.example.net (allow.txt line 6)"},
		{"10.0.0.1", Keep, ""}, // the IANA registries are off in this net
	} {
		k, v, err := observable.Detect(c.value)
		if err != nil {
			t.Fatal(err)
		}
		d := n.Decide(k, v)
		got := ""
		if d.Action != Keep {
			got = d.Rule.String()
		}
		if d.Action != c.action || got != c.rule {
			t.Errorf("%s: %s by %q, want %s by %q", c.value, d.Action, got, c.action, c.rule)
		}
	}
}

// TestBadInput: malformed entries are refused, naming the entry and the
// file and line at fault.
func TestBadInput(t *testing.T) {
	for _, c := range []struct {
		name, list string
		asn        bool
		want       string
	}{
		{"allow.txt", "1.2.3.4\n10.0.0.300\n", false, `allow.txt line 2`},
		{"allow.txt", "1.2.3.4 5.6.7.8\n", false, `allow.txt line 1: "1.2.3.4 5.6.7.8": one value per line`},
		{"allow.txt", "ok.example\n\x00\n", false, `allow.txt line 2: a NUL byte`},
		{"allow.txt", "ok.example\n\xff\xfe\n", false, `allow.txt line 2: not UTF-8`},
		{"allow.txt", strings.Repeat("a", MaxLine+10) + "\n", false, `allow.txt line 1: longer than`},
		{"asn.txt", "AS64500\n", true, `asn.txt line 1: "AS64500": want an AS number and a prefix`},
		{"asn.txt", "ASx 1.2.3.0/24\n", true, `asn.txt line 1: "ASx" is not an AS number`},
		{"asn.txt", "# c\nAS1 1.2.3.0/33\n", true, `asn.txt line 2: "1.2.3.0/33" is not a network`},
		{"asn.txt", "AS99999999999 1.2.3.0/24\n", true, `is not an AS number`},
	} {
		var err error
		if c.asn {
			_, err = ParseASNPrefixes(c.name, strings.NewReader(c.list))
		} else {
			var es []Entry
			if es, err = ParseList(c.name, strings.NewReader(c.list)); err == nil {
				_, err = New(Config{Allowlist: es})
			}
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.list, err, c.want)
		}
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Constituency: []Entry{{"d41d8cd98f00b204e9800998ecf8427e", "config line 3"}}}, `constituency entry "d41d8cd98f00b204e9800998ecf8427e" (config line 3): a md5`},
		{Config{Constituency: []Entry{{"AS64500", "config line 4"}}}, `(config line 4): an autonomous system needs a file of its prefixes`},
		{Config{Constituency: []Entry{{"AS7", "config line 4"}}, ASNPrefixes: map[uint32][]Entry{1: {{"1.2.3.0/24", "a line 1"}}}, ASNSource: "a"}, `(config line 4): a has no prefix of AS7`},
		{Config{Constituency: []Entry{{"not a value", "c.txt line 9"}}}, `(c.txt line 9)`},
		{Config{Networks: "widen"}, `network mode "widen" is not cut or refuse`},
		{Config{WidestIPv4: 33}, `widest IPv4 network /33`},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error with %q", c.cfg, err, c.want)
		}
	}
}

// protectedSet returns the union of every prefix the net protects by an
// address rule, as a set.
func protectedSet(t testing.TB, n *Net) *netipx.IPSet {
	var b netipx.IPSetBuilder
	for p := range n.ip.All() {
		b.AddPrefix(p)
	}
	s, err := b.IPSet()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCutIsExact: for random networks, a cut keeps exactly the network
// less the protected space (set arithmetic), never widens it, and each
// part is admitted whole; a suppressed network lies inside protected
// space; a kept one does not overlap it.
func TestCutIsExact(t *testing.T) {
	n := defaultNet(t)
	prot := protectedSet(t, n)
	r := rand.New(rand.NewPCG(1, 13))
	counts := map[Action]int{}
	for range 20000 {
		var p netip.Prefix
		if r.IntN(4) == 0 {
			var a [16]byte
			for i := range a {
				a[i] = byte(r.Uint32())
			}
			a[0] = []byte{0x20, 0xfc, 0xfe, 0xff, 0x3f, 0x5f, 0x00, 0x01}[r.IntN(8)]
			p = netip.PrefixFrom(netip.AddrFrom16(a), 16+r.IntN(113)).Masked()
		} else {
			a := r.Uint32()
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), 8+r.IntN(25)).Masked()
		}
		k := observable.CIDR4
		if p.Addr().Is6() {
			k = observable.CIDR6
		}
		d := n.Decide(k, p.String())
		counts[d.Action]++
		var orig netipx.IPSetBuilder
		orig.AddPrefix(p)
		switch d.Action {
		case Keep:
			if prot.OverlapsPrefix(p) {
				t.Fatalf("%s kept but overlaps protected space", p)
			}
		case Suppress:
			if !prot.ContainsPrefix(p) {
				t.Fatalf("%s suppressed but not inside protected space", p)
			}
		case Cut:
			var want netipx.IPSetBuilder
			want.AddPrefix(p)
			want.RemoveSet(prot)
			ws, _ := want.IPSet()
			var got netipx.IPSetBuilder
			for _, part := range d.Parts {
				if !p.Contains(part.Addr()) || part.Bits() < p.Bits() {
					t.Fatalf("%s: part %s widens it", p, part)
				}
				got.AddPrefix(part)
				pk := observable.CIDR4
				if part.Addr().Is6() {
					pk = observable.CIDR6
				}
				if dd := n.Decide(pk, part.String()); dd.Action != Keep {
					t.Fatalf("%s: part %s is %s", p, part, dd.Action)
				}
			}
			gs, _ := got.IPSet()
			if !gs.Equal(ws) {
				t.Fatalf("%s cut to %v, want %v", p, gs.Prefixes(), ws.Prefixes())
			}
		case Refuse:
			t.Fatalf("%s refused (no network here is wider than the limit)", p)
		}
	}
	if counts[Keep] == 0 || counts[Suppress] == 0 || counts[Cut] == 0 {
		t.Fatalf("the random networks did not reach every action: %v", counts)
	}
}

// TestGuardCounts: a guard counts each suppression under its rule and
// output, and the explanation reports the counts.
func TestGuardCounts(t *testing.T) {
	n := defaultNet(t)
	g := n.Guard(OutputExport)
	for _, v := range []string{"10.0.0.1", "10.9.9.9", "8.8.8.8"} {
		g.Admit(observable.IPv4, v)
	}
	n.Guard(OutputSnapshot).Admit(observable.IPv4, "10.0.0.2")
	if whole, parts := g.Admit(observable.CIDR4, "100.0.0.0/8"); whole || len(parts) != 2 || parts[0] != "100.0.0.0/10" || parts[1] != "100.128.0.0/9" {
		t.Fatalf("100.0.0.0/8: %v %v", whole, parts)
	}
	got := map[string]int64{}
	for _, c := range n.Counts() {
		got[c.Rule.Entry+" "+c.Output.String()] = c.N
	}
	want := map[string]int64{"10.0.0.0/8 export": 2, "10.0.0.0/8 snapshot": 1, "100.64.0.0/10 export": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	ex, err := n.Explain(" 10.1.1.1 ")
	if err != nil {
		t.Fatal(err)
	}
	if !ex.Protected || ex.Action != Suppress || len(ex.Rules) != 3 || ex.Rules[0].Suppressed["export"] != 2 || ex.Rules[0].Suppressed["snapshot"] != 1 {
		t.Fatalf("explanation: %+v", ex)
	}
	if _, err := n.Explain("not a value at all"); err == nil {
		t.Fatal("explained a non-observable")
	}
	var none *Net
	if whole, _ := none.Guard(OutputExport).Admit(observable.IPv4, "10.0.0.1"); !whole || none.Counts() != nil {
		t.Fatal("a nil net must protect nothing")
	}
}

// TestFuzzSeeds keeps the fuzz corpora as tests (they run with go test
// through the Fuzz functions; this only checks they exist).
func TestFuzzSeeds(t *testing.T) {
	for _, f := range []string{"FuzzParseList", "FuzzParseASNPrefixes"} {
		if ents, err := os.ReadDir(filepath.Join("testdata", "fuzz", f)); err != nil || len(ents) == 0 {
			t.Errorf("no seed corpus for %s: %v", f, err)
		}
	}
}

// TestWithConstituency: a net derived with a constituency decides as a
// net built with it from the start, for values inside, around and
// outside it, on a base prefix too (10.1.0.0/16 adds a rule to a set of
// the base); the base and a sibling net are left as they were.
func TestWithConstituency(t *testing.T) {
	base := defaultNet(t)
	cons := []Entry{{Value: "81.20.0.0/24", Where: "a line 1"}, {Value: "cert.example", Where: "a line 2"}, {Value: "10.1.0.0/16", Where: "a line 3"}}
	derived, err := base.WithConstituency(cons)
	if err != nil {
		t.Fatal(err)
	}
	sibling, err := base.WithConstituency([]Entry{{Value: "81.20.1.0/24", Where: "b line 1"}})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := ShippedWarninglists()
	if err != nil {
		t.Fatal(err)
	}
	whole, err := New(Config{IANA: true, Warninglists: ws, WidestIPv4: 8, WidestIPv6: 16, Constituency: cons})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		k observable.Kind
		v string
	}{
		{observable.IPv4, "81.20.0.7"}, {observable.CIDR4, "81.20.0.0/16"}, {observable.CIDR4, "81.20.0.128/25"},
		{observable.IPv4, "81.20.1.7"}, {observable.Domain, "www.cert.example"}, {observable.IPv4, "10.1.2.3"},
		{observable.CIDR4, "10.0.0.0/8"}, {observable.IPv4, "45.33.32.156"}, {observable.CIDR4, "0.0.0.0/0"},
	}
	for _, c := range cases {
		got, want := derived.Decide(c.k, c.v), whole.Decide(c.k, c.v)
		if got.Action != want.Action || got.Rule != want.Rule || fmt.Sprint(got.Parts) != fmt.Sprint(want.Parts) {
			t.Errorf("%s: derived %v %v %v, built whole %v %v %v", c.v, got.Action, got.Rule, got.Parts, want.Action, want.Rule, want.Parts)
		}
		if d := base.Decide(c.k, c.v); (c.v == "81.20.0.7" || c.v == "www.cert.example") && d.Action != Keep {
			t.Errorf("the base net changed: %s is %v", c.v, d.Action)
		}
	}
	if d := sibling.Decide(observable.IPv4, "81.20.0.7"); d.Action != Keep {
		t.Errorf("the sibling net protects its sibling's constituency: %v", d.Rule)
	}
	if d := sibling.Decide(observable.IPv4, "81.20.1.7"); d.Action != Suppress || d.Rule.Kind != RuleConstituency {
		t.Errorf("the sibling net: 81.20.1.7 is %v by %v", d.Action, d.Rule)
	}
	if _, err := base.WithConstituency([]Entry{{Value: "not a value!", Where: "c line 1"}}); err == nil || !strings.Contains(err.Error(), "c line 1") {
		t.Errorf("a bad entry: %v", err)
	}
}

// TestSetPartners: partners' declared constituencies are protected as
// the node's own: an address or a domain inside one is suppressed by a
// partner-constituency rule, a network around one is cut around it and
// around the node's own ranges, the explanation names the partner, and
// the generation moves; setting none removes them; a malformed entry is
// refused, named.
func TestSetPartners(t *testing.T) {
	n, err := defaultNet(t).WithConstituency([]Entry{{Value: "81.20.0.0/24", Where: "own"}})
	if err != nil {
		t.Fatal(err)
	}
	gen := n.Generation()
	if err := n.SetPartners([]Entry{{Value: "81.20.8.0/24", Where: "partner CERT-JP"}, {Value: "partner.example", Where: "partner CERT-JP"}}); err != nil {
		t.Fatal(err)
	}
	if n.Generation() == gen {
		t.Error("the generation did not change")
	}
	for _, c := range []struct {
		k     observable.Kind
		v     string
		want  Action
		kind  RuleKind
		parts string
	}{
		{observable.IPv4, "81.20.8.1", Suppress, RulePartner, "[]"},
		{observable.Domain, "www.partner.example", Suppress, RulePartner, "[]"},
		{observable.URL, "http://partner.example/x", Suppress, RulePartner, "[]"},
		{observable.CIDR4, "81.20.8.0/23", Cut, RulePartner, "[81.20.9.0/24]"},
		{observable.CIDR4, "81.20.0.0/20", Cut, RuleConstituency, "[81.20.1.0/24 81.20.2.0/23 81.20.4.0/22 81.20.9.0/24 81.20.10.0/23 81.20.12.0/22]"},
		{observable.CIDR4, "81.20.0.0/24", Suppress, RuleConstituency, "[]"},
		{observable.CIDR4, "10.0.0.0/8", Suppress, RuleIANA, "[]"},
		{observable.CIDR4, "0.0.0.0/0", Refuse, RuleTooBroad, "[]"},
		{observable.IPv4, "45.33.32.156", Keep, "", "[]"},
	} {
		d := n.Decide(c.k, c.v)
		if d.Action != c.want || d.Rule.Kind != c.kind || fmt.Sprint(d.Parts) != c.parts {
			t.Errorf("%s: %v by %v, parts %v; want %v by %s, parts %s", c.v, d.Action, d.Rule, d.Parts, c.want, c.kind, c.parts)
		}
	}
	g := n.Guard(OutputExport)
	if whole, parts := g.Admit(observable.IPv4, "81.20.8.7"); whole || len(parts) != 0 {
		t.Errorf("admit a partner's address: %v %v", whole, parts)
	}
	counted := false
	for _, c := range n.Counts() {
		counted = counted || (c.Rule.Kind == RulePartner && c.Output == OutputExport && c.N == 1)
	}
	if !counted {
		t.Errorf("the suppression is not counted: %+v", n.Counts())
	}
	// Every way of deciding names the partner's rule (and counts it).
	corr := n.Guard(OutputCorrelation)
	for _, pat := range []string{"[ipv4-addr:value = '81.20.8.7']", "[ipv4-addr:value = '81.20.8.7'] OR [ipv4-addr:value = '81.20.8.8']",
		"[ipv4-addr:value = '81.20.8.7' AND network-traffic:dst_port = 443]"} {
		raw := fmt.Sprintf(`{"type":"indicator","pattern_type":"stix","pattern":%q}`, pat)
		if ok, rule := corr.ProtectedIndicator([]byte(raw)); !ok || !strings.Contains(rule, "partner CERT-JP") {
			t.Errorf("ProtectedIndicator(%s): %v %q", pat, ok, rule)
		}
		p, err := pattern.Parse(pat)
		if err != nil {
			t.Fatal(err)
		}
		if corr.AdmitPattern(p) {
			t.Errorf("AdmitPattern(%s) admits a partner's address", pat)
		}
	}
	ex, err := n.Explain("81.20.8.7")
	if err != nil || !strings.Contains(ex.Rule, "partner CERT-JP") || len(ex.Rules) == 0 {
		t.Errorf("explain: %+v %v", ex, err)
	}
	if err := n.SetPartners(nil); err != nil {
		t.Fatal(err)
	}
	if d := n.Decide(observable.IPv4, "81.20.8.1"); d.Action != Keep {
		t.Errorf("partners removed: 81.20.8.1 is %v by %v", d.Action, d.Rule)
	}
	if err := n.SetPartners([]Entry{{Value: "not a value!", Where: "partner X"}}); err == nil || !strings.Contains(err.Error(), "partner X") {
		t.Errorf("a bad entry: %v", err)
	}
}
