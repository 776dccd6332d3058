package sensor

import (
	"net/netip"
	"strings"
	"testing"
)

func checkIPParsers(t *testing.T, s string) {
	want, err := netip.ParseAddr(s)
	v4, ok4 := ParseIPv4([]byte(s))
	if ok4 != (err == nil && want.Is4()) {
		t.Fatalf("ParseIPv4(%q) ok = %v; netip: %v %v", s, ok4, want, err)
	}
	if ok4 && netip.AddrFrom4([4]byte{byte(v4 >> 24), byte(v4 >> 16), byte(v4 >> 8), byte(v4)}) != want {
		t.Fatalf("ParseIPv4(%q) = %x, want %v", s, v4, want)
	}
	if strings.Contains(s, "%") {
		return
	}
	a6, ok6 := ParseIPv6([]byte(s))
	if ok6 != (err == nil && want.Is6()) {
		t.Fatalf("ParseIPv6(%q) ok = %v; netip: %v %v", s, ok6, want, err)
	}
	if ok6 && netip.AddrFrom16(a6) != want {
		t.Fatalf("ParseIPv6(%q) = %v, want %v", s, netip.AddrFrom16(a6), want)
	}
}

func TestIPParsers(t *testing.T) {
	for _, s := range []string{"1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "1..2.3",
		"10.0.0.1", "1..3.4", "1.2.3.4 ", "1.2.3.a", "1.2.3.04", "100.200.30.0", "1.2.3.1000", // the blind log matcher's cases,
		"::", "::1", "1::", "2001:db8::1", "2001:DB8:0:0:0:0:0:1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8",
		"::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1::1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", ":::", "1:::2", "12345::", "::g", "", ":", "1:", ":1",
		"2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:0DB8:ABCD:0000:0000:FF00:0042:832f", "2001:0db8:0000:0000:0000:ff00:0042:832g",
		"2001:0db8:0000:0000:0000:ff00:0042.8329", "2001:0db8:0000:0000:0000:ff00::42:8329", "1:2:3:4:5:6:7:8:9:10:11:12:13:14:1",
		"::ffff:0000:0000:0000:0000:0001:2:3", "2001:db8:0:0:0:0:0:0:0:0:0:0:0:0:1", "0000:0000:0000:0000:0000:ffff:1.2.3.4",
		"0000:0000:0000:0000:0000:ffff:0102:0304", "fe80:0000:0000:0000:0000:0000:0000:0001", "2001:0db8:0000:0000:0000:ff00:0042:83 9"} {
		checkIPParsers(t, s)
	}
}

func FuzzParseIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "::ffff:1.2.3.4", "2001:db8::1", "1:2:3:4:5:6:7:8", "::", "1::2:3",
		"2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:0db8:0000:0000:0000:ff00::42:8329"} {
		f.Add(s)
	}
	f.Fuzz(checkIPParsers)
}
