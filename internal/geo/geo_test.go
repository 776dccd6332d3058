package geo

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
	"github.com/google/go-cmp/cmp"
	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

const sampleCSV = `1.0.0.0,1.0.0.255,AU
1.0.1.0,1.0.3.255,CN
1.0.4.0,1.0.7.255,au
8.8.8.0,8.8.8.255,US
9.0.0.0,9.0.0.255,ZZZ
2001:200::,2001:218:2000:51:ffff:ffff:ffff:ffff,JP
`

func TestTableCSV(t *testing.T) {
	tb := NewTable()
	if err := tb.LoadCSV(strings.NewReader(sampleCSV), "sample"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		cc   string
		ok   bool
	}{
		{"1.0.0.0", "AU", true},
		{"1.0.0.255", "AU", true},
		{"1.0.2.7", "CN", true},
		{"1.0.5.1", "AU", true},
		{"1.0.8.0", "", false},
		{"0.0.0.1", "", false},
		{"8.8.8.8", "US", true},
		{"9.0.0.1", "", false},
		{"::ffff:8.8.8.8", "US", true},
		{"2001:200::1", "JP", true},
		{"2001:300::1", "", false},
	}
	for _, tt := range tests {
		cc, ok := tb.Lookup(netip.MustParseAddr(tt.addr))
		if cc != tt.cc || ok != tt.ok {
			t.Errorf("Lookup(%s) = %q, %v; want %q, %v", tt.addr, cc, ok, tt.cc, tt.ok)
		}
	}
	got := tb.CountryPrefixes("au")
	want := []netip.Prefix{netip.MustParsePrefix("1.0.0.0/24"), netip.MustParsePrefix("1.0.4.0/22")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("CountryPrefixes(au) (-want +got):\n%s", diff)
	}
}

func TestTableCSVErrors(t *testing.T) {
	for _, in := range []string{"1.0.0.0,AU\n", "1.0.0.x,1.0.0.255,AU\n", "1.0.0.9,1.0.0.1,AU\n", "1.0.0.0,::1,AU\n"} {
		err := NewTable().LoadCSV(strings.NewReader(in), "bad.csv")
		if err == nil || !strings.Contains(err.Error(), "bad.csv:1") {
			t.Errorf("LoadCSV(%q) = %v, want error naming bad.csv:1", in, err)
		}
	}
}

func TestOverlapLaterWins(t *testing.T) {
	tb := NewTable()
	if err := tb.LoadCSV(strings.NewReader("10.0.0.0,10.0.0.255,AA\n10.0.0.128,10.0.0.255,BB\n"), "o"); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{"10.0.0.1": "AA", "10.0.0.200": "BB"} {
		if cc, _ := tb.Lookup(netip.MustParseAddr(addr)); cc != want {
			t.Errorf("Lookup(%s) = %q, want %q", addr, cc, want)
		}
	}
}

func TestRealCSV(t *testing.T) {
	dir := testutil.SharedData(t, "geo")
	tb, err := LoadFiles(filepath.Join(dir, "geo-whois-asn-country-ipv4.csv.gz"), filepath.Join(dir, "geo-whois-asn-country-ipv6.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"1.0.0.1":         "AU", // first row of the file
		"1.0.2.1":         "CN",
		"2001:2::1":       "JP",
		"193.0.6.139":     "NL", // RIPE NCC
		"2001:67c:2e8::1": "NL",
		"194.95.111.1":    "DE",
		"200.160.2.3":     "BR",
	} {
		cc, ok := tb.Lookup(netip.MustParseAddr(addr))
		if !ok || cc != want {
			t.Errorf("Lookup(%s) = %q, %v; want %q", addr, cc, ok, want)
		}
	}
	lu := tb.CountryPrefixes("LU")
	if len(lu) == 0 {
		t.Fatal("no prefixes for LU")
	}
	for _, p := range lu {
		if cc, _ := tb.Lookup(p.Addr()); cc != "LU" {
			t.Errorf("prefix %s of LU looks up as %q", p, cc)
		}
	}
}

func TestRealCIDRDir(t *testing.T) {
	dir := testutil.SharedData(t, "geo", "country-ip-blocks")
	tb, err := LoadCIDRDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tb.Countries()); n < 200 {
		t.Errorf("%d countries, want >= 200", n)
	}
	// The first line of ipv4/de.cidr.
	if cc, _ := tb.Lookup(netip.MustParseAddr("2.56.20.1")); cc != "DE" {
		t.Errorf("Lookup(2.56.20.1) = %q, want DE", cc)
	}
	data, err := os.ReadFile(filepath.Join(dir, "ipv4", "lu.cidr"))
	if err != nil {
		t.Fatal(err)
	}
	got := tb.CountryPrefixes("lu")
	var n4 int
	for _, p := range got {
		if p.Addr().Is4() {
			n4++
		}
	}
	lines := strings.Count(strings.TrimSpace(string(data)), "\n") + 1
	if n4 == 0 || n4 > lines {
		t.Errorf("aggregated LU IPv4 prefixes = %d, file has %d lines", n4, lines)
	}
}

func TestMMDB(t *testing.T) {
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "Test-Country", IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, cc := range map[string]string{"81.2.69.0/24": "GB", "81.2.70.0/24": "GB", "2001:db8::/32": "FR", "5.6.7.0/24": "DE"} {
		_, n, _ := net.ParseCIDR(cidr)
		rec := mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(cc)}}
		if err := w.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.mmdb")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := OpenMMDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var _ Locator = db
	for addr, want := range map[string]string{"81.2.69.160": "GB", "2001:db8::1": "FR", "5.6.7.8": "DE", "9.9.9.9": ""} {
		cc, ok := db.Lookup(netip.MustParseAddr(addr))
		if cc != want || ok != (want != "") {
			t.Errorf("Lookup(%s) = %q, %v; want %q", addr, cc, ok, want)
		}
	}
	got := db.CountryPrefixes("gb")
	want := []netip.Prefix{netip.MustParsePrefix("81.2.69.0/24"), netip.MustParsePrefix("81.2.70.0/24")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("CountryPrefixes(gb) (-want +got):\n%s", diff)
	}
	if _, err := OpenMMDB(filepath.Join(t.TempDir(), "missing.mmdb")); err == nil {
		t.Error("OpenMMDB of a missing file: no error")
	}
}

func FuzzGeoCSV(f *testing.F) {
	f.Add(sampleCSV)
	f.Add("1.0.0.0,1.0.0.255,AU\n1.0.0.5,1.0.0.9,NZ\n")
	f.Fuzz(func(t *testing.T, in string) {
		tb := NewTable()
		if tb.LoadCSV(strings.NewReader(in), "fuzz") != nil {
			return
		}
		for _, s := range tb.spans {
			if s.to.Less(s.from) {
				t.Fatalf("range %s-%s reversed", s.from, s.to)
			}
			tb.Lookup(s.from)
		}
		tb.CountryPrefixes(tb.Countries()...)
	})
}

func BenchmarkLookup(b *testing.B) {
	dir := testutil.SharedData(b, "geo")
	tb, err := LoadFiles(filepath.Join(dir, "geo-whois-asn-country-ipv4.csv.gz"), filepath.Join(dir, "geo-whois-asn-country-ipv6.csv.gz"))
	if err != nil {
		b.Fatal(err)
	}
	a := netip.MustParseAddr("193.0.6.139")
	for b.Loop() {
		tb.Lookup(a)
	}
}

func BenchmarkLoadCSV(b *testing.B) {
	p := filepath.Join(testutil.SharedData(b, "geo"), "geo-whois-asn-country-ipv4.csv.gz")
	for b.Loop() {
		if _, err := LoadFiles(p); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIPv4FastPath: the integer index of the IPv4 ranges answers as the
// search over all ranges does, on the real data, at range edges and
// between ranges.
func TestIPv4FastPath(t *testing.T) {
	path := testutil.SharedData(t, "geo", "geo-whois-asn-country-ipv4.csv.gz")
	tab, err := LoadFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	slow := &Table{spans: tab.spans, sorted: true}
	check := func(a netip.Addr) {
		c1, ok1 := tab.Lookup(a)
		c2, ok2 := slow.Lookup(a)
		if c1 != c2 || ok1 != ok2 {
			t.Fatalf("%s: %q %v, the full search says %q %v", a, c1, ok1, c2, ok2)
		}
	}
	for i, s := range tab.spans {
		if i%37 != 0 || !s.from.Is4() {
			continue
		}
		for _, a := range []netip.Addr{s.from, s.to, s.from.Prev(), s.to.Next()} {
			if a.IsValid() {
				check(a)
			}
		}
	}
	for _, s := range []string{"0.0.0.0", "255.255.255.255", "10.1.2.3", "8.8.8.8", "122.248.252.67"} {
		check(netip.MustParseAddr(s))
	}
	if len(tab.v4from) == 0 {
		t.Fatal("no IPv4 index")
	}
}

// TestLookupRange4 checks, on the real data, that LookupRange4 answers as
// Lookup does and that every address of the range it gives (its ends, and
// addresses inside) has that same answer, and that the addresses just
// outside are in another range (so that a cache of ranges answers as
// the table).
func TestLookupRange4(t *testing.T) {
	path := testutil.SharedData(t, "geo", "geo-whois-asn-country-ipv4.csv.gz")
	tab, err := LoadFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(v uint32) netip.Addr {
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	check := func(v uint32) {
		cc, lo, hi, ok := tab.LookupRange4(v)
		want, wok := tab.Lookup(addr(v))
		if ok != wok || ok && string(cc[:]) != want || lo > v || hi < v {
			t.Fatalf("%s: %q %v in [%s, %s]; Lookup says %q %v", addr(v), cc, ok, addr(lo), addr(hi), want, wok)
		}
		for _, w := range []uint32{lo, hi, lo + (hi-lo)/2, lo + (hi-lo)/3} {
			if c, ok2 := tab.Lookup(addr(w)); ok2 != ok || c != want {
				t.Fatalf("%s: %q %v in [%s, %s], but %s is %q %v", addr(v), cc, ok, addr(lo), addr(hi), addr(w), c, ok2)
			}
		}
		// Just outside, another range starts: same answer or not, the
		// range given must not reach over it.
		if lo > 0 {
			if _, l2, h2, _ := tab.LookupRange4(lo - 1); h2 != lo-1 || l2 > lo-1 {
				t.Fatalf("%s: range [%s, %s] does not end where the one before [%s, %s] starts", addr(v), addr(lo), addr(hi), addr(l2), addr(h2))
			}
		}
	}
	n := 0
	for i, s := range tab.spans {
		if i%53 != 0 || !s.from.Is4() {
			continue
		}
		for _, a := range []netip.Addr{s.from, s.to, s.from.Prev(), s.to.Next()} {
			if a.IsValid() && a.Is4() {
				b := a.As4()
				check(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
				n++
			}
		}
	}
	for _, v := range []uint32{0, 1, 0x08080808, 0x7af8fc43, ^uint32(0)} {
		check(v)
	}
	if n < 1000 {
		t.Fatalf("only %d addresses checked", n)
	}
	// A table not frozen answers for the address alone.
	var nt Table
	nt.add(span{from: netip.MustParseAddr("1.0.0.0"), to: netip.MustParseAddr("1.0.0.255"), cc: [2]byte{'A', 'U'}})
	if cc, lo, hi, ok := nt.LookupRange4(0x01000005); !ok || cc != [2]byte{'A', 'U'} || lo != 0x01000005 || hi != lo {
		t.Errorf("unfrozen table: %q %v [%d, %d]", cc, ok, lo, hi)
	}
}
