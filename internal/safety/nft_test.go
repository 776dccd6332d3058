package safety_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/safety"
	"go4.org/netipx"
)

// TestNftablesCutSetLoads: networks that contain protected space, cut by
// the default net (with a constituency), are rendered as an nftables
// ruleset that the real nft loads in a network namespace of its own; the
// sets nft then holds are exactly the original networks less the
// protected space (set arithmetic on nft's own listing), and sampled
// addresses are in them exactly when they are not protected.
func TestNftablesCutSetLoads(t *testing.T) {
	for _, bin := range []string{"nft", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (Debian packages nftables and util-linux; CI installs them): %v", bin, err)
		}
	}
	unshare := []string{"-n"}
	if os.Geteuid() != 0 {
		unshare = []string{"-rn"}
	}
	if err := exec.Command("unshare", append(unshare, "true")...).Run(); err != nil {
		t.Skip("cannot create a network namespace here (needs root or user namespaces)")
	}
	ws, err := safety.ShippedWarninglists()
	if err != nil {
		t.Fatal(err)
	}
	n, err := safety.New(safety.Config{IANA: true, Warninglists: ws, WidestIPv4: 8, WidestIPv6: 16,
		Constituency: []safety.Entry{{Value: "185.20.0.0/22", Where: "test"}, {Value: "2a0b:1000::/32", Where: "test"}}})
	if err != nil {
		t.Fatal(err)
	}
	originals := []string{"100.0.0.0/8", "192.0.0.0/16", "185.20.0.0/16", "172.0.0.0/10", "198.18.0.0/14", "45.33.32.156", "2a0b::/16", "2001::/20"}
	var items []export.Item
	var orig4, orig6 netipx.IPSetBuilder
	for _, v := range originals {
		k, c, err := observable.Detect(v)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, export.Item{Kind: k, Value: c})
		p, _ := netip.ParsePrefix(c)
		if !p.IsValid() {
			a, _ := netip.ParseAddr(c)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4() {
			orig4.AddPrefix(p)
		} else {
			orig6.AddPrefix(p)
		}
	}
	items = export.Guarded(items, n.Guard(safety.OutputExport))
	files, err := export.RenderFiles(export.FormatNftables, items, export.Options{Name: "entente", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rules := filepath.Join(dir, "blocklist.nft")
	if err := os.WriteFile(rules, files[0].Data, 0o644); err != nil {
		t.Fatal(err)
	}

	// Samples: random addresses of each original network and the edges
	// of every protected range inside them, with what nft must answer.
	r := rand.New(rand.NewPCG(13, 1))
	type sample struct {
		addr netip.Addr
		in   bool
	}
	var samples []sample
	addSample := func(a netip.Addr) {
		if !a.IsValid() {
			return
		}
		k := observable.IPv4
		if a.Is6() {
			k = observable.IPv6
		}
		covered := false
		for _, v := range originals {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				p = netip.PrefixFrom(netip.MustParseAddr(v), netip.MustParseAddr(v).BitLen())
			}
			covered = covered || p.Contains(a)
		}
		samples = append(samples, sample{a, covered && n.Decide(k, a.String()).Action == safety.Keep})
	}
	for _, v := range originals {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			addSample(netip.MustParseAddr(v))
			continue
		}
		r4 := netipx.RangeOfPrefix(p)
		addSample(r4.From())
		addSample(r4.To())
		addSample(r4.To().Next()) // just outside
		for range 40 {
			b := p.Addr().AsSlice()
			for i := p.Bits() / 8; i < len(b); i++ {
				b[i] = byte(r.Uint32())
			}
			a, _ := netip.AddrFromSlice(b)
			if p.Contains(a) {
				addSample(a)
			}
		}
	}
	for _, m := range []string{"100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "185.20.0.0/22", "172.16.0.0/12", "198.18.0.0/15", "2a0b:1000::/32", "2001::/23"} {
		rg := netipx.RangeOfPrefix(netip.MustParsePrefix(m))
		addSample(rg.From())
		addSample(rg.To())
		addSample(rg.From().Prev())
		addSample(rg.To().Next())
	}
	addSample(netip.MustParseAddr("192.0.0.9")) // globally reachable per IANA, but in the shipped RFC 5735 list

	var script strings.Builder
	fmt.Fprintf(&script, "set -e; nft -f %s; nft list set inet entente blocklist_v4; nft list set inet entente blocklist_v6; set +e\n", rules)
	for _, s := range samples {
		set := "blocklist_v4"
		if s.addr.Is6() {
			set = "blocklist_v6"
		}
		fmt.Fprintf(&script, "if nft get element inet entente %s '{ %s }' >/dev/null 2>&1; then echo 'probe %s in'; else echo 'probe %s out'; fi\n", set, s.addr, s.addr, s.addr)
	}
	out, err := exec.Command("unshare", append(unshare, "sh", "-c", script.String())...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft in a namespace: %v\n%s", err, out)
	}
	text := string(out)

	// nft's own listing, as sets.
	elems := regexp.MustCompile(`(?s)set (blocklist_v[46]) \{.*?elements = \{(.*?)\}`)
	got := map[string]*netipx.IPSet{}
	for _, m := range elems.FindAllStringSubmatch(text, -1) {
		var b netipx.IPSetBuilder
		for _, e := range strings.Split(m[2], ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			if lo, hi, ok := strings.Cut(e, "-"); ok {
				rg := netipx.IPRangeFrom(netip.MustParseAddr(strings.TrimSpace(lo)), netip.MustParseAddr(strings.TrimSpace(hi)))
				b.AddRange(rg)
			} else if p, err := netip.ParsePrefix(e); err == nil {
				b.AddPrefix(p)
			} else if a, err := netip.ParseAddr(e); err == nil {
				b.Add(a)
			} else {
				t.Fatalf("nft listed %q", e)
			}
		}
		got[m[1]], _ = b.IPSet()
	}
	protected := func(b *netipx.IPSetBuilder) *netipx.IPSet {
		s, _ := b.IPSet()
		var out netipx.IPSetBuilder
		for _, p := range s.Prefixes() {
			k := observable.CIDR4
			if p.Addr().Is6() {
				k = observable.CIDR6
			}
			d := n.Decide(k, p.String())
			switch d.Action {
			case safety.Keep:
				out.AddPrefix(p)
			case safety.Cut:
				for _, part := range d.Parts {
					out.AddPrefix(part)
				}
			}
		}
		r, _ := out.IPSet()
		return r
	}
	want := map[string]*netipx.IPSet{"blocklist_v4": protected(&orig4), "blocklist_v6": protected(&orig6)}
	for name, w := range want {
		if got[name] == nil || !got[name].Equal(w) {
			var gp []netip.Prefix
			if got[name] != nil {
				gp = got[name].Prefixes()
			}
			t.Errorf("nft %s holds %v\nwant %v", name, gp, w.Prefixes())
		}
	}
	for _, s := range samples {
		want := "probe " + s.addr.String() + " out"
		if s.in {
			want = "probe " + s.addr.String() + " in"
		}
		if !strings.Contains(text, want+"\n") {
			t.Errorf("nft does not answer %q", want)
		}
	}
	t.Logf("nft loaded %d elements; %d sampled addresses answered as expected", strings.Count(string(files[0].Data), ","), len(samples))
}
