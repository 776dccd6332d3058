package match

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente/internal/sensor"
)

// batched matches obs the way a run does: prefetch and touch them all,
// then match each with what prefetch parsed.
func batched(s *Snapshot, obs []sensor.Obs) [][]string {
	m := NewMatcher(s)
	for i := range obs {
		m.prefetch(&obs[i])
	}
	m.touch()
	out := make([][]string, len(obs))
	for i := range obs {
		for _, h := range m.matchParsed(&obs[i], &m.pre[i], nil) {
			out[i] = append(out[i], string(h.Kind)+" "+h.Matched)
		}
		sort.Strings(out[i])
	}
	return out
}

// naiveNets returns the networks of nets that contain a, as the matcher
// names them.
func naiveNets(nets []netip.Prefix, a netip.Addr) []string {
	var out []string
	seen := map[netip.Prefix]bool{}
	for _, p := range nets {
		if p.Contains(a) && !seen[p] {
			seen[p] = true
			k := "cidr4 "
			if a.Is6() {
				k = "cidr6 "
			}
			out = append(out, k+p.String())
		}
	}
	sort.Strings(out)
	return out
}

// TestBatchedMatchEqualsMatch checks that the batched path (prefetch,
// touch, matchParsed) and its filters (the /24 bitmap, the IPv6 network
// filter) never change a result: every observed value gets what a plain
// Match gives, and every network hit a brute-force scan of the networks
// finds, before and after an encode/decode round trip.
func TestBatchedMatchEqualsMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, short := range []bool{false, true} {
		var nets []netip.Prefix
		var values []string
		for i := 0; i < 300; i++ {
			var b [16]byte
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			b[0] = 0x20 | b[0]&0x01 // 2000::/7, dense enough to hit
			bits := 16 + r.IntN(49)
			p := netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()
			nets = append(nets, p)
			values = append(values, p.String())
			if i%3 == 0 {
				values = append(values, netip.AddrFrom16(b).String())
			}
		}
		for i := 0; i < 100; i++ {
			a := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.Uint32()), byte(r.Uint32())})
			p := netip.PrefixFrom(a, 16+r.IntN(17)).Masked()
			nets = append(nets, p)
			values = append(values, p.String(), a.String())
		}
		if short {
			p := netip.MustParsePrefix("2400::/8")
			nets = append(nets, p)
			values = append(values, p.String())
		}
		values = append(values, "evil.com", "bad.example.org")
		s := buildList(t, values...)
		if s.short6 != short {
			t.Fatalf("short6 = %v, want %v", s.short6, short)
		}
		data, _, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		s2, err := ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}

		var obs []sensor.Obs
		var addrs []netip.Addr
		for i := 0; i < 3000; i++ {
			var a netip.Addr
			switch i % 4 {
			case 0: // inside or near an IPv6 network
				p := nets[r.IntN(300)]
				b := p.Addr().As16()
				for j := p.Bits() / 8; j < 16; j++ {
					b[j] ^= byte(r.Uint32())
				}
				if r.IntN(4) == 0 {
					b[r.IntN(4)] ^= 1 // just outside, most likely
				}
				a = netip.AddrFrom16(b)
			case 1:
				a = netip.AddrFrom4([4]byte{10, byte(r.IntN(5)), byte(r.Uint32()), byte(r.Uint32())})
			case 2:
				a = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
			case 3:
				a = netip.MustParseAddr("2400::").Next()
				if r.IntN(2) == 0 {
					a = netip.AddrFrom16(a.As16()) // stays v6
				}
			}
			addrs = append(addrs, a)
			obs = append(obs, sensor.Obs{Kind: sensor.ObsIP, Value: []byte(a.String())})
			if a.Is4() && i%8 == 1 {
				// The same address, mapped into IPv6, and as an HTTP host.
				m := netip.AddrFrom16(a.As16())
				addrs = append(addrs, a, a)
				obs = append(obs, sensor.Obs{Kind: sensor.ObsAny, Value: []byte(m.String())},
					sensor.Obs{Kind: sensor.ObsHost, Value: []byte(a.String() + ":8080")})
			}
		}
		for _, d := range []string{"www.evil.com", "EVIL.COM.", "notevil.com", "x.bad.example.org", "[2001:db8::1]:443"} {
			obs = append(obs, sensor.Obs{Kind: sensor.ObsHost, Value: []byte(d)})
			addrs = append(addrs, netip.Addr{})
		}
		for _, snap := range []*Snapshot{s, s2} {
			got := batched(snap, obs)
			hitsSeen := 0
			for i, o := range obs {
				want := matches(snap, o)
				if diff := cmp.Diff(want, got[i]); diff != "" {
					t.Errorf("short6=%v %q: batched differs from Match (-Match +batched):\n%s", short, o.Value, diff)
				}
				if !addrs[i].IsValid() {
					continue
				}
				var gotNets []string
				for _, h := range want {
					if strings.HasPrefix(h, "cidr") {
						gotNets = append(gotNets, h)
					}
				}
				if diff := cmp.Diff(naiveNets(nets, addrs[i]), gotNets); diff != "" {
					t.Errorf("short6=%v %s: networks (-brute force +matcher):\n%s", short, addrs[i], diff)
				}
				hitsSeen += len(gotNets)
			}
			if hitsSeen < 100 {
				t.Fatalf("only %d network hits: the test does not exercise the filters", hitsSeen)
			}
		}
	}
}

// TestRunZeekHeaderChangeMidChunk checks that lines whose matching is
// deferred get their timestamps from the header in effect for them, not
// from a header that follows them in the same chunk.
func TestRunZeekHeaderChangeMidChunk(t *testing.T) {
	s := buildList(t, "198.51.100.7")
	log := strings.Join([]string{
		"#separator \\x09",
		"#fields\tts\tid.orig_h\tid.resp_h",
		"1600000000.5\t10.0.0.1\t198.51.100.7",
		"1600000100.0\t10.0.0.1\t10.0.0.2",
		"#separator \\x09",
		"#fields\tid.orig_h\tid.resp_h\tts",
		"198.51.100.7\t10.0.0.3\t1700000000.0",
		"",
	}, "\n")
	var hits bytes.Buffer
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	res, err := Run(context.Background(), Options{
		Snapshot: s,
		Logs:     []sensor.Input{{Name: "conn.log", Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(log)), nil }}},
		Scan:     sensor.Options{Workers: 1},
		Hits:     &hits, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sightings) != 1 {
		t.Fatalf("sightings = %+v, want one", res.Sightings)
	}
	got := res.Sightings[0]
	want := Sighting{Indicator: got.Indicator, Count: 2,
		FirstSeen: time.Unix(1600000000, 5e8).UTC(), LastSeen: time.Unix(1700000000, 0).UTC()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sighting (-want +got):\n%s", diff)
	}
	if n := strings.Count(hits.String(), "\n"); n != 2 {
		t.Errorf("%d hit lines, want 2:\n%s", n, hits.String())
	}
}
