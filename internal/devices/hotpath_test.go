package devices

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestEgress4: the integer test of IPv4 destinations agrees with
// net/netip's, at the edges of every range it leaves out and on random
// addresses.
func TestEgress4(t *testing.T) {
	slow := func(a netip.Addr) bool {
		return a.IsGlobalUnicast() && !a.IsPrivate() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
	}
	check := func(v uint32) {
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if got, want := egress(a), slow(a); got != want {
			t.Fatalf("egress(%s) = %v, net/netip says %v", a, got, want)
		}
		m := netip.AddrFrom16(a.As16()) // IPv4-mapped IPv6: the slow path
		if got, want := egress(m), slow(m); got != want {
			t.Fatalf("egress(%s) = %v, net/netip says %v", m, got, want)
		}
	}
	for _, p := range []string{"0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16",
		"224.0.0.0/4", "240.0.0.0/4", "100.64.0.0/10", "192.0.2.0/24", "8.8.8.0/24"} {
		pf := netip.MustParsePrefix(p)
		b := pf.Addr().As4()
		lo := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		hi := lo | uint32(uint64(1)<<(32-pf.Bits())-1)
		for _, v := range []uint32{lo - 1, lo, lo + 1, hi - 1, hi, hi + 1} {
			check(v)
		}
	}
	r := rand.New(rand.NewPCG(7, 8))
	for range 1_000_000 {
		check(r.Uint32())
	}
}

// TestNetwork: the integer masking of IPv4 networks gives what
// netip.Addr.Prefix gives, at every length (and out of range), for IPv4,
// IPv4-mapped IPv6 and IPv6 addresses, at the edges and at random.
func TestNetwork(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	addrs := []netip.Addr{netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("93.184.216.34"),
		netip.MustParseAddr("::ffff:93.184.216.34"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::")}
	for range 20_000 {
		v := r.Uint32()
		addrs = append(addrs, netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}))
	}
	for _, a := range addrs {
		for bits := -1; bits <= 129; bits++ {
			want4, _ := a.Prefix(bits)
			if got := network(a, bits, 64); a.Is4() && got != want4 {
				t.Fatalf("network(%s, %d) = %s, netip says %s", a, bits, got, want4)
			}
			want6, _ := a.Prefix(bits)
			if got := network(a, 24, bits); !a.Is4() && got != want6 {
				t.Fatalf("network(%s, /%d for IPv6) = %s, netip says %s", a, bits, got, want6)
			}
		}
	}
}
