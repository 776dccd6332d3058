package blind

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/entente-cti/entente/internal/observable"
)

// TestMembershipAgreesWithPlainSet is a property test: for random
// indicator sets (addresses, networks of any length the parameters take,
// domains) and random observed values drawn near them, the answers of the
// blind path (translate, then match the hits) agree with plain set
// semantics: an address is in when it equals an address indicator or lies
// in a network indicator, a name when it or a parent is a domain
// indicator.
func TestMembershipAgreesWithPlainSet(t *testing.T) {
	srv := newTestServer(t)
	ctx := context.Background()
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		partner := fmt.Sprintf("p%d", n)
		octet := rapid.IntRange(0, 3)
		addr := rapid.Custom(func(rt *rapid.T) netip.Addr {
			return netip.AddrFrom4([4]byte{10, byte(octet.Draw(rt, "b")), byte(octet.Draw(rt, "c")), byte(octet.Draw(rt, "d"))})
		})
		label := rapid.SampledFrom([]string{"a", "b", "evil", "www"})
		name := rapid.Custom(func(rt *rapid.T) string {
			parts := rapid.SliceOfN(label, 1, 3).Draw(rt, "labels")
			return strings.Join(parts, ".") + ".example"
		})
		var items []Indicator
		var addrs []netip.Addr
		var nets []netip.Prefix
		var names []string
		for i := range rapid.IntRange(0, 6).Draw(rt, "addresses") {
			a := addr.Draw(rt, "addr")
			addrs = append(addrs, a)
			items = append(items, Indicator{Ref: uint32(i), Kind: observable.IPv4, Value: a.String()})
		}
		for i := range rapid.IntRange(0, 3).Draw(rt, "networks") {
			bits := rapid.IntRange(20, 31).Draw(rt, "bits")
			p, _ := addr.Draw(rt, "net").Prefix(bits)
			nets = append(nets, p)
			items = append(items, Indicator{Ref: uint32(100 + i), Kind: observable.CIDR4, Value: p.String()})
		}
		for i := range rapid.IntRange(0, 4).Draw(rt, "names") {
			d := name.Draw(rt, "name")
			names = append(names, d)
			items = append(items, Indicator{Ref: uint32(200 + i), Kind: observable.Domain, Value: d})
		}
		if probs, err := srv.Update(ctx, partner, items, nil); err != nil || len(probs) != 0 {
			rt.Fatal(err, probs)
		}
		tr := NewTranslator(&LocalPeer{Server: srv, Partner: partner, Budget: Budget{Limit: 1 << 20, Period: time.Hour}})
		info, err := tr.Start(ctx)
		if err != nil {
			rt.Fatal(err)
		}
		qa := rapid.SliceOfN(addr, 1, 8).Draw(rt, "observed addresses")
		qn := rapid.SliceOfN(name, 1, 8).Draw(rt, "observed names")
		var inputs []string
		for _, a := range qa {
			inputs = info.Params.Queries(observable.IPv4, a.String(), inputs)
		}
		for _, d := range qn {
			inputs = info.Params.Queries(observable.Domain, d, inputs)
		}
		if _, err := tr.Translate(ctx, inputs); err != nil {
			rt.Fatal(err)
		}
		snap, err := tr.Snapshot()
		if err != nil {
			rt.Fatal(err)
		}
		m := matcherOf(snap)
		for _, a := range qa {
			want := false
			for _, x := range addrs {
				want = want || x == a
			}
			for _, p := range nets {
				want = want || p.Contains(a)
			}
			if got := m.ip(a.String()); got != want {
				rt.Fatalf("address %s: blind %v, plain %v (addresses %v, networks %v)", a, got, want, addrs, nets)
			}
		}
		for _, d := range qn {
			want := false
			for _, x := range names {
				want = want || d == x || strings.HasSuffix(d, "."+x)
			}
			if got := m.domain(d); got != want {
				rt.Fatalf("name %s: blind %v, plain %v (names %v)", d, got, want, names)
			}
		}
		srv.Forget(partner)
	})
}
