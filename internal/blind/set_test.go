package blind

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/cloudflare/circl/oprf"

	"github.com/entente-cti/entente/internal/observable"
)

func TestExpand(t *testing.T) {
	p := DefaultParams()
	cases := []struct {
		kind  observable.Kind
		value string
		n     int
		first string
		last  string
		err   string
	}{
		{observable.IPv4, "192.0.2.1", 1, "ipv4\x00192.0.2.1", "", ""},
		{observable.IPv6, "2001:db8::1", 1, "ipv6\x002001:db8::1", "", ""},
		{observable.CIDR4, "10.0.0.0/8", 1, "net4\x0010.0.0.0/8", "", ""},
		{observable.CIDR4, "10.8.0.0/13", 8, "net4\x0010.8.0.0/16", "net4\x0010.15.0.0/16", ""},
		{observable.CIDR4, "198.51.100.0/23", 2, "net4\x00198.51.100.0/24", "net4\x00198.51.101.0/24", ""},
		{observable.CIDR4, "198.51.100.128/25", 128, "ipv4\x00198.51.100.128", "ipv4\x00198.51.100.255", ""},
		{observable.CIDR4, "0.0.0.0/0", 256, "net4\x000.0.0.0/8", "net4\x00255.0.0.0/8", ""},
		{observable.CIDR4, "203.0.113.7/32", 1, "ipv4\x00203.0.113.7", "", ""},
		{observable.CIDR6, "2001:db8::/32", 1, "net6\x002001:db8::/32", "", ""},
		{observable.CIDR6, "2001:db8::/30", 4, "net6\x002001:db8::/32", "net6\x002001:dbb::/32", ""},
		{observable.CIDR6, "2001:db8::/60", 16, "net6\x002001:db8::/64", "net6\x002001:db8:0:f::/64", ""},
		{observable.CIDR6, "2001:db8::/120", 256, "ipv6\x002001:db8::", "ipv6\x002001:db8::ff", ""},
		{observable.CIDR6, "2001:db8::/96", 0, "", "", "2^32"},
		{observable.CIDR6, "2000::/3", 0, "", "", "2^21"},
		{observable.CIDR4, "10.0.0.1/8", 0, "", "", "not a canonical network"},
		{observable.Domain, "evil.example", 1, "domain\x00evil.example", "", ""},
		{observable.Domain, "Evil.Example", 0, "", "", "not canonical"},
		{observable.Domain, "localhost", 0, "", "", "single label"},
		{observable.URL, "http://evil.example/x", 1, "url\x00evil.example/x", "", ""},
		{observable.URL, "https://evil.example/x", 1, "url\x00evil.example/x", "", ""},
		{observable.URL, "ftp://evil.example/x", 1, "url\x00ftp://evil.example/x", "", ""},
		{observable.SHA256, strings.Repeat("ab", 32), 1, "sha256\x00" + strings.Repeat("ab", 32), "", ""},
		{observable.MD5, strings.Repeat("AB", 16), 0, "", "", "not canonical"},
		{observable.IPv4, "::ffff:1.2.3.4", 0, "", "", "not a canonical address"},
		{observable.IPv4, "2001:db8::1", 0, "", "", "other address family"},
	}
	for _, c := range cases {
		got, err := p.Expand(c.kind, c.value, nil)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Expand(%s %q): %v, want an error with %q", c.kind, c.value, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Expand(%s %q): %v", c.kind, c.value, err)
			continue
		}
		if len(got) != c.n || got[0] != c.first || c.last != "" && got[len(got)-1] != c.last {
			t.Errorf("Expand(%s %q) = %d inputs %q...%q, want %d %q...%q", c.kind, c.value, len(got), got[0], got[len(got)-1], c.n, c.first, c.last)
		}
		for _, in := range got {
			if _, _, err := ParseInput(in); err != nil {
				t.Errorf("ParseInput(%q): %v", in, err)
			}
		}
	}
}

func TestQueries(t *testing.T) {
	p := DefaultParams()
	got := p.Queries(observable.IPv4, "10.8.3.4", nil)
	want := []string{"ipv4\x0010.8.3.4", "net4\x0010.0.0.0/8", "net4\x0010.8.0.0/16", "net4\x0010.8.3.0/24"}
	if !slices.Equal(got, want) {
		t.Errorf("queries of an address: %q, want %q", got, want)
	}
	got = p.Queries(observable.Domain, "a.b.evil.example", nil)
	want = []string{"domain\x00a.b.evil.example", "domain\x00b.evil.example", "domain\x00evil.example"}
	if !slices.Equal(got, want) {
		t.Errorf("queries of a name: %q, want %q", got, want)
	}
	// Every address inside a network has one query among the network's
	// inputs.
	for _, n := range []string{"10.8.0.0/13", "198.51.100.128/25", "2001:db8::/60", "2001:db8::/120"} {
		pf := mustPrefix(t, n)
		k := observable.CIDR4
		if pf.Addr().Is6() {
			k = observable.CIDR6
		}
		inputs, err := p.Expand(k, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		a := pf.Addr()
		for range 50 {
			qs := p.Queries(observable.IPv4, a.String(), nil)
			common := 0
			for _, q := range qs {
				if slices.Contains(inputs, q) {
					common++
				}
			}
			if common != 1 {
				t.Errorf("address %s in %s: %d of its queries are inputs of the network, want 1", a, n, common)
			}
			for range 997 {
				a = a.Next()
			}
			if !pf.Contains(a) {
				break
			}
		}
	}
}

func testBuilder(t testing.TB, partner string, epoch uint64) *Builder {
	t.Helper()
	keys, err := NewKeys(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.Key(partner, epoch)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBuilder(key, epoch, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sampleIndicators(n int) []Indicator {
	var out []Indicator
	for i := range n {
		var it Indicator
		switch i % 6 {
		case 0, 1:
			it = Indicator{Kind: observable.IPv4, Value: fmt.Sprintf("198.%d.%d.%d", i%200, i/200%250, i%250+1)}
		case 2:
			it = Indicator{Kind: observable.Domain, Value: fmt.Sprintf("host%d.example%d.net", i, i%7)}
		case 3:
			it = Indicator{Kind: observable.CIDR4, Value: fmt.Sprintf("10.%d.0.0/%d", i%250, 15+i%2)}
		case 4:
			it = Indicator{Kind: observable.URL, Value: fmt.Sprintf("http://dl%d.example.org/p/%d.bin", i, i)}
		default:
			it = Indicator{Kind: observable.SHA256, Value: fmt.Sprintf("%064x", i*7919)}
		}
		it.Ref = uint32(i)
		out = append(out, it)
	}
	return out
}

func inputsOf(t testing.TB, items []Indicator) []string {
	var out []string
	for _, it := range items {
		var err error
		out, err = DefaultParams().Expand(it.Kind, it.Value, out)
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func keyOf(t testing.TB, b *Builder, in string) uint64 {
	o, err := oprf.NewServer(suite, b.key).FullEvaluate([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	return Key(o)
}

// TestBuilderIncremental checks that adding and removing indicators gives
// the set a fresh build of the result gives, that only changed shards are
// rebuilt, and that references resolve to the indicators.
func TestBuilderIncremental(t *testing.T) {
	all := sampleIndicators(600)
	b := testBuilder(t, "p", 5)
	if probs := b.Add(all[:400]); len(probs) != 0 {
		t.Fatal(probs)
	}
	s1, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	b.Add(all[400:])
	b.Remove(all[100:200])
	// Overlapping networks of two indicators: removing one keeps the other.
	overlap := []Indicator{{Ref: 9001, Kind: observable.CIDR4, Value: "172.16.0.0/12"}, {Ref: 9002, Kind: observable.CIDR4, Value: "172.16.0.0/13"}}
	b.Add(overlap)
	b.Remove(overlap[1:])
	s2, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	final := append(append(slices.Clone(all[:100]), all[200:]...), overlap[0])
	fresh := testBuilder(t, "p", 5)
	fresh.Add(final)
	s3, _ := fresh.Set()
	if s2.Len() != s3.Len() {
		t.Fatalf("incremental set has %d inputs, a fresh build %d", s2.Len(), s3.Len())
	}
	for _, in := range inputsOf(t, final) {
		k := keyOf(t, b, in)
		if !s2.Contains(k) || !s3.Contains(k) {
			t.Fatalf("input %q missing (incremental %v, fresh %v)", in, s2.Contains(k), s3.Contains(k))
		}
	}
	removed := 0
	for _, in := range inputsOf(t, all[100:200]) {
		if s2.Contains(keyOf(t, b, in)) {
			removed++
		}
	}
	if removed != 0 {
		t.Errorf("%d inputs of removed indicators still in the set", removed)
	}
	if r := b.Resolve(keyOf(t, b, "net4\x00172.16.0.0/16")); !slices.Equal(r, []uint32{9001}) {
		t.Errorf("Resolve of a prefix of the kept network: %v, want [9001]", r)
	}
	if r := b.Resolve(keyOf(t, b, "ipv4\x00"+all[0].Value)); !slices.Equal(r, []uint32{0}) {
		t.Errorf("Resolve: %v, want [0]", r)
	}
	// Adding one indicator rebuilds one shard: the others are shared.
	b.Add([]Indicator{{Ref: 7777, Kind: observable.IPv4, Value: "203.0.113.99"}})
	s4, _ := b.Set()
	changed := 0
	for i := range s4.shards {
		if s4.shards[i] != s2.shards[i] {
			changed++
		}
	}
	if changed != 1 {
		t.Errorf("%d shards rebuilt for one new input, want 1", changed)
	}
	_ = s1
}

func TestSetRoundTrip(t *testing.T) {
	b := testBuilder(t, "p", 77)
	b.Add(sampleIndicators(300))
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := s.MarshalBinary()
	d, err := DecodeSet(data)
	if err != nil {
		t.Fatal(err)
	}
	if d.Epoch != 77 || d.Len() != s.Len() || !slices.Equal(d.Params.V4Lengths, s.Params.V4Lengths) {
		t.Fatalf("decoded epoch %d len %d params %v; want 77, %d, %v", d.Epoch, d.Len(), d.Params, s.Len(), s.Params)
	}
	again, _ := d.MarshalBinary()
	if !bytes.Equal(again, data) {
		t.Fatal("re-encoding differs")
	}
	for _, in := range inputsOf(t, sampleIndicators(300)) {
		if !d.Contains(keyOf(t, b, in)) {
			t.Fatalf("decoded set lacks %q", in)
		}
	}
	// Every truncation is an error, never a panic.
	for n := 0; n < len(data); n += 1 + n/8 {
		if _, err := DecodeSet(data[:n]); err == nil {
			t.Fatalf("truncated set of %d bytes decoded", n)
		}
	}
	if _, err := DecodeSet(append(slices.Clone(data), 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	empty := testBuilder(t, "p", 1)
	es, _ := empty.Set()
	ed, _ := es.MarshalBinary()
	if d, err := DecodeSet(ed); err != nil || d.Len() != 0 || d.Contains(12345) {
		t.Errorf("empty set: %v, %v", d, err)
	}
}

func TestDecodeSetErrors(t *testing.T) {
	b := testBuilder(t, "p", 3)
	b.Add(sampleIndicators(20))
	s, _ := b.Set()
	good, _ := s.MarshalBinary()
	mut := func(f func([]byte)) []byte { c := slices.Clone(good); f(c); return c }
	// The first shard with keys starts after the header.
	hdr := len(setMagic) + 2 + 8 + 8 + 1 + 3 + 1 + 6
	first := hdr
	for i := range s.shards {
		if s.shards[i] != nil {
			break
		}
		first += 4
	}
	cases := map[string][]byte{
		"bad magic":          mut(func(c []byte) { c[0] = 'X' }),
		"version":            mut(func(c []byte) { c[8] = 2 }),
		"count":              mut(func(c []byte) { c[18]++ }),
		"lengths unordered":  mut(func(c []byte) { c[27], c[28] = 16, 8 }),
		"too many lengths":   mut(func(c []byte) { c[26] = 200 }),
		"segment length":     mut(func(c []byte) { c[first+12] = 3 }),
		"segment count huge": mut(func(c []byte) { c[first+19] = 0xff }),
		"keys > capacity":    mut(func(c []byte) { c[first+3] = 0x7f }),
	}
	for name, data := range cases {
		if _, err := DecodeSet(data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestSetDeterministic: a set depends on its key and indicators only,
// not on the order they were added in nor on what was added and removed
// on the way, so that every replica of a node publishes the same set
// (and digest).
func TestSetDeterministic(t *testing.T) {
	items := sampleIndicators(300)
	a := testBuilder(t, "p", 3)
	a.Add(items)
	rev := slices.Clone(items)
	slices.Reverse(rev)
	b := testBuilder(t, "p", 3)
	extra := []Indicator{{Ref: 9999, Kind: observable.IPv4, Value: "203.0.113.9"}, {Ref: 9998, Kind: observable.CIDR4, Value: "203.0.112.0/23"}}
	b.Add(append(extra, rev[:100]...))
	b.Add(rev[100:])
	b.Remove(extra)
	sa, err := a.Set()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	da, _ := sa.MarshalBinary()
	db, _ := sb.MarshalBinary()
	if !bytes.Equal(da, db) || a.Indicators() != b.Indicators() {
		t.Fatalf("the same indicators made two sets (%d and %d bytes, %d and %d indicators)", len(da), len(db), a.Indicators(), b.Indicators())
	}
	for _, e := range extra {
		in, _ := DefaultParams().Expand(e.Kind, e.Value, nil)
		for _, x := range in {
			if refs := b.Resolve(testKey(t, "p", 3, x)); slices.Contains(refs, e.Ref) {
				t.Errorf("removed indicator %d still resolves from %q", e.Ref, x)
			}
		}
	}
}

// testKey returns the key of input in's output under partner's key of
// epoch (the keys of testBuilder).
func testKey(t *testing.T, partner string, epoch uint64, in string) uint64 {
	t.Helper()
	keys, _ := NewKeys(bytes.Repeat([]byte{9}, 32))
	key, err := keys.Key(partner, epoch)
	if err != nil {
		t.Fatal(err)
	}
	out, err := oprf.NewServer(suite, key).FullEvaluate([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	return Key(out)
}
