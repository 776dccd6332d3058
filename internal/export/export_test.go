package export

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"go4.org/netipx"
	"time"

	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/testutil"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// sampleItems builds items through the real import path: a plain list
// imported by package feed, its indicators turned into items.
func sampleItems(t testing.TB) []Item {
	t.Helper()
	list := `198.51.100.7
198.51.100.6
198.51.100.4/31
203.0.113.0/25
203.0.113.128/25
2001:db8::1
2001:db8:1::/48
evil.example
xn--bcher-kva.example
c2_host.bad.example
http://evil.example/gate.php?id=1;x="2"
https://phish.example:8443/login
44d88612fea8a8f36de82e1278abb02f
275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f
bob@mail.example
10.1.2.3
`
	tlp := stix.TLPGreen
	res, err := feed.Import(strings.NewReader(list), "sample", feed.Options{Now: now.Add(-time.Hour), Confidence: 70, TLP: &tlp, Format: feed.FormatPlain})
	if err != nil {
		t.Fatal(err)
	}
	var items []Item
	for _, raw := range res.Objects {
		if !bytes.Contains(raw, []byte(`"type":"indicator"`)) {
			continue
		}
		its, err := FromIndicator(raw, "blocklist", nil)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, its...)
	}
	// 10.1.2.3 is warninglisted; expired and revoked items too.
	for i := range items {
		if items[i].Value == "10.1.2.3" {
			items[i].Warning = []string{"List of RFC 1918 CIDR blocks"}
		}
	}
	items = append(items,
		Item{Kind: observable.IPv4, Value: "192.0.2.99", ValidUntil: now.Add(-time.Minute), TLP: stix.TLPGreen},
		Item{Kind: observable.Domain, Value: "revoked.example", Revoked: true},
	)
	return items
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from %s (-want +got):\n%s", name, path, diff)
	}
}

func TestGolden(t *testing.T) {
	f := Filter{Now: now}
	items := f.Apply(sampleItems(t))
	opts := Options{Name: "entente", Now: now, Org: "CERT-Test"}
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			files, err := RenderFiles(format, items, opts)
			if err != nil {
				t.Fatal(err)
			}
			var all bytes.Buffer
			for _, f := range files {
				data := f.Data
				if format == FormatSTIX {
					// The bundle id is random.
					data = []byte(strings.Replace(string(data), string(data[strings.Index(string(data), "bundle--"):][:44]), "bundle--RANDOM", 1))
				}
				fmt.Fprintf(&all, "==> %s <==\n%s", f.Name, data)
			}
			golden(t, format, all.Bytes())
			if format == FormatSTIX {
				n := 0
				err := stix.ReadBundle(bytes.NewReader(files[0].Data), func(i int, raw json.RawMessage) error {
					o, err := stix.Decode(raw)
					if err != nil {
						return err
					}
					n++
					return stix.Validate(o)
				})
				if err != nil || n == 0 {
					t.Errorf("STIX bundle: %d objects, %v", n, err)
				}
			}
			for _, v := range []string{"10.1.2.3", "192.0.2.99", "revoked.example"} {
				if strings.Contains(all.String(), v) {
					t.Errorf("%s export contains %s (warninglisted, expired or revoked)", format, v)
				}
			}
		})
	}
}

func TestFilter(t *testing.T) {
	items := sampleItems(t)
	amber := stix.TLPClear
	tests := []struct {
		name string
		f    Filter
		want int
	}{
		{"default", Filter{Now: now}, 15},
		{"warninglisted", Filter{Now: now, IncludeWarninglisted: true}, 16},
		{"kinds", Filter{Now: now, Kinds: []observable.Kind{observable.Domain}}, 3},
		{"tlp", Filter{Now: now, MaxTLP: &amber}, 0},
		{"confidence", Filter{Now: now, MinConfidence: 71}, 0},
		{"source", Filter{Now: now, Sources: []string{"sample"}}, 15},
		{"other source", Filter{Now: now, Sources: []string{"x"}}, 0},
		{"age", Filter{Now: now.Add(48 * time.Hour), MaxAge: 24 * time.Hour}, 0},
		{"collection", Filter{Now: now, Collections: []string{"blocklist"}}, 15},
		{"expired later", Filter{Now: now.Add(181 * 24 * time.Hour)}, 2}, // hashes never expire
	}
	for _, tt := range tests {
		if got := len(tt.f.Apply(items)); got != tt.want {
			t.Errorf("%s: %d items, want %d", tt.name, got, tt.want)
		}
	}
	items[0].Country = "NL"
	if got := (&Filter{Now: now, Countries: []string{"nl"}}).Apply(items); len(got) != 1 || got[0].Value != items[0].Value {
		t.Errorf("country filter = %+v", got)
	}
}

func TestAggregate(t *testing.T) {
	p := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	tests := []struct{ in, want []netip.Prefix }{
		{p("10.0.0.0/32", "10.0.0.1/32"), p("10.0.0.0/31")},
		{p("10.0.0.1/32", "10.0.0.2/32"), p("10.0.0.1/32", "10.0.0.2/32")},
		{p("10.0.0.0/24", "10.0.0.5/32", "10.0.1.0/24"), p("10.0.0.0/23")},
		{p("10.0.0.0/25", "10.0.0.128/25", "10.0.1.0/24", "10.0.2.0/32"), p("10.0.0.0/23", "10.0.2.0/32")},
		{p("255.255.255.255/32", "255.255.255.254/32", "::/128", "::1/128"), p("255.255.255.254/31", "::/127")},
		{p("0.0.0.0/0", "1.2.3.4/32"), p("0.0.0.0/0")},
		{nil, nil},
	}
	for _, tt := range tests {
		got := Aggregate(tt.in)
		if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("Aggregate(%v) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestRPZIP(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3.4/32":          "32.4.3.2.1.rpz-ip",
		"10.0.0.0/8":          "8.0.0.0.10.rpz-ip",
		"2001:db8::1/128":     "128.1.zz.db8.2001.rpz-ip",
		"2001:db8:1::/48":     "48.zz.1.db8.2001.rpz-ip",
		"1:0:2:0:3:0:4:0/128": "128.0.4.0.3.0.2.0.1.rpz-ip",
	} {
		if got := rpzIP(netip.MustParsePrefix(in)); got != want {
			t.Errorf("rpzIP(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestETag(t *testing.T) {
	a, b := ETag([]byte("x")), ETag([]byte("y"))
	if a == b || !strings.HasPrefix(a, `"`) || a != ETag([]byte("x")) {
		t.Errorf("ETag: %s %s", a, b)
	}
}

// TestMISPFeedRoundTrip exports a MISP feed and imports it back with
// package feed: the same indicators, with the same ids, come back.
func TestMISPFeedRoundTrip(t *testing.T) {
	items := (&Filter{Now: now}).Apply(sampleItems(t))
	files, err := RenderFiles(FormatMISPFeed, items, Options{Name: "roundtrip", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for _, f := range files {
		fsys[f.Name] = &fstest.MapFile{Data: f.Data}
	}
	res, err := feed.ImportMISPFeed(fsys, "roundtrip", feed.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Rejected != 0 {
		t.Errorf("rejects: %+v", res.Rejected)
	}
	want := map[string]string{}
	for _, it := range items {
		want[it.IndicatorID] = it.Value
	}
	got := map[string]string{}
	for _, raw := range res.Objects {
		if !bytes.Contains(raw, []byte(`"type":"indicator"`)) {
			continue
		}
		its, err := FromIndicator(raw, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range its {
			got[it.IndicatorID] = it.Value
			if it.TLP != stix.TLPGreen {
				t.Errorf("%s came back as %s", it.Value, it.TLP)
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-exported +imported):\n%s", diff)
	}
	// hashes.csv names the event of every attribute.
	var man map[string]json.RawMessage
	json.Unmarshal(files[0].Data, &man)
	if len(man) != 1 || !strings.Contains(string(files[2].Data), sortedKeys(man)[0]) {
		t.Errorf("manifest/hashes.csv mismatch")
	}
}

func TestCountryItems(t *testing.T) {
	items := CountryItems("LU", []netip.Prefix{netip.MustParsePrefix("192.0.2.0/25"), netip.MustParsePrefix("192.0.2.128/25"), netip.MustParsePrefix("2001:db8::/32")})
	var b bytes.Buffer
	if err := Render(&b, FormatPlain, items, Options{}); err != nil {
		t.Fatal(err)
	}
	if b.String() != "192.0.2.0/24\n2001:db8::/32\n" {
		t.Errorf("plain = %q", b.String())
	}
}

func writeTemp(t *testing.T, name string, data []byte) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNamedCheckzone(t *testing.T) {
	bin, err := exec.LookPath("named-checkzone")
	if err != nil {
		t.Skip("named-checkzone not installed (apt-get install bind9-utils): RPZ output not checked")
	}
	var b bytes.Buffer
	if err := Render(&b, FormatRPZ, (&Filter{Now: now}).Apply(sampleItems(t)), Options{Zone: "rpz.entente.test", Now: now}); err != nil {
		t.Fatal(err)
	}
	p := writeTemp(t, "rpz.zone", b.Bytes())
	out, err := exec.Command(bin, "rpz.entente.test", p).CombinedOutput()
	if err != nil {
		t.Errorf("named-checkzone: %v\n%s\n%s", err, out, b.String())
	}
}

func TestNftLoads(t *testing.T) {
	bin, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("nft not installed (apt-get install nftables): nftables output not checked")
	}
	var b bytes.Buffer
	if err := Render(&b, FormatNftables, (&Filter{Now: now}).Apply(sampleItems(t)), Options{Now: now}); err != nil {
		t.Fatal(err)
	}
	p := writeTemp(t, "rules.nft", b.Bytes())
	out, err := exec.Command(bin, "-c", "-f", p).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "Operation not permitted") || strings.Contains(string(out), "netlink") {
			t.Skipf("nft -c cannot talk to the kernel here: %s", out)
		}
		t.Fatalf("nft -c -f: %v\n%s", err, out)
	}
	// A real load inside a fresh network namespace, when allowed.
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return
	}
	script := fmt.Sprintf("%s -f %s && %s -f %s && %s list set inet entente blocklist_v4", bin, p, bin, p, bin)
	out, err = exec.Command(unshare, "-n", "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Logf("real load in a network namespace not possible here: %v %s", err, out)
		return
	}
	if !strings.Contains(string(out), "198.51.100.4/30") {
		t.Errorf("loaded set lacks the aggregated 198.51.100.4/30:\n%s", out)
	}
}

// TestAggregateMatchesIPSet checks Aggregate against netipx's IPSet (whose
// Prefixes is also the minimal cover) on random inputs.
func TestAggregateMatchesIPSet(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 200; round++ {
		var ps []netip.Prefix
		var b netipx.IPSetBuilder
		for i := 0; i < 1+r.IntN(50); i++ {
			var p netip.Prefix
			if r.IntN(4) == 0 {
				var a [16]byte
				a[0], a[1], a[15] = 0x20, 0x01, byte(r.IntN(8))
				p = netip.PrefixFrom(netip.AddrFrom16(a), 124+r.IntN(5)).Masked()
			} else {
				v := uint32(0x0a000000) | uint32(r.IntN(1024))
				p = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 22+r.IntN(11)).Masked()
			}
			ps = append(ps, p)
			b.AddPrefix(p)
		}
		set, _ := b.IPSet()
		if diff := cmp.Diff(set.Prefixes(), Aggregate(ps), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Fatalf("Aggregate(%v) (-ipset +ours):\n%s", ps, diff)
		}
	}
}

func TestRenderDropsExpiredWithoutFilter(t *testing.T) {
	items := []Item{
		{Kind: observable.Domain, Value: "live.example"},
		{Kind: observable.Domain, Value: "old.example", ValidUntil: now.Add(-time.Second)},
		{Kind: observable.Domain, Value: "gone.example", Revoked: true},
	}
	var b bytes.Buffer
	if err := Render(&b, FormatHosts, items, Options{Now: now}); err != nil {
		t.Fatal(err)
	}
	if b.String() != "# Entente blocklist\n0.0.0.0 live.example\n" {
		t.Errorf("hosts = %q", b.String())
	}
}

func FuzzFromIndicator(f *testing.F) {
	f.Add([]byte(`{"type":"indicator","id":"indicator--0cee4f3a-7e27-589d-9c17-5d390171c0ab","pattern":"[ipv4-addr:value = '198.51.100.6'] OR [domain-name:value = 'a.example']","pattern_type":"stix","valid_from":"2026-11-01T11:00:00.000Z"}`))
	f.Add([]byte(`{"type":"indicator","pattern":"[file:hashes.'SHA-256' = 'x']","valid_until":"bad"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		items, err := FromIndicator(raw, "", nil)
		if err != nil {
			return
		}
		for _, it := range items {
			if n, err := observable.Normalize(it.Kind, it.Value); err != nil || n != it.Value {
				t.Fatalf("item %s %q is not normalised (%q, %v)", it.Kind, it.Value, n, err)
			}
		}
		var b bytes.Buffer
		for _, format := range []string{FormatNftables, FormatRPZ, FormatSuricata, FormatZeek} {
			if err := Render(&b, format, items, Options{Now: now}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestRealBlocklistExports renders real blocklists (URLhaus domains and
// IPs, a FireHOL netset) and checks the RPZ zone with named-checkzone and
// the ruleset with nft -c when they are installed.
func TestRealBlocklistExports(t *testing.T) {
	var items []Item
	for _, rel := range [][]string{{"abusech-urlhaus-filter", "urlhaus-filter-domains.txt"}, {"firehol-2021-01-18", "firehol_level1.netset"}} {
		p := testutil.SharedData(t, append([]string{"blocklists"}, rel...)...)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		res, err := feed.Import(f, rel[1], feed.Options{Now: now})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range res.Objects {
			if bytes.Contains(raw, []byte(`"type":"indicator"`)) {
				its, err := FromIndicator(raw, "", nil)
				if err != nil {
					t.Fatal(err)
				}
				items = append(items, its...)
			}
		}
	}
	if len(items) < 20000 {
		t.Fatalf("only %d items", len(items))
	}
	var rpz, nft bytes.Buffer
	if err := Render(&rpz, FormatRPZ, items, Options{Zone: "rpz.entente.test", Now: now}); err != nil {
		t.Fatal(err)
	}
	if err := Render(&nft, FormatNftables, items, Options{Now: now}); err != nil {
		t.Fatal(err)
	}
	if bin, err := exec.LookPath("named-checkzone"); err == nil {
		out, err := exec.Command(bin, "rpz.entente.test", writeTemp(t, "z", rpz.Bytes())).CombinedOutput()
		if err != nil {
			t.Errorf("named-checkzone: %v\n%.2000s", err, out)
		}
	} else {
		t.Log("named-checkzone not installed: zone not checked")
	}
	if bin, err := exec.LookPath("nft"); err == nil {
		out, err := exec.Command(bin, "-c", "-f", writeTemp(t, "n.nft", nft.Bytes())).CombinedOutput()
		if err != nil {
			t.Errorf("nft -c: %v\n%.2000s", err, out)
		}
	} else {
		t.Log("nft not installed: ruleset not checked")
	}
}
