package devices

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/classpolicy")

// policyCase is one data-driven case: a configuration (testdata), the
// class, and addresses the rendered nftables sets must (not) hold.
type policyCase struct {
	name, class string
	permitted   []string // in permitted_v4/v6 (allow mode) or allowed (deny mode)
	refused     []string // not in them
	denied      []string // in denied_v4/v6 (deny mode)
	members     []string // in members_v4/v6/mac
	plainLines  int
}

var policyCases = []policyCase{
	{name: "cameras", class: "cameras", permitted: []string{"5.9.1.1", "31.1.2.3", "2a00:1450::1", "122.248.252.67"},
		refused: []string{"203.0.113.9", "8.8.8.8", "122.248.234.231", "2400::1"},
		members: []string{"192.168.10.7", "bc:ad:28:12:34:56", "192.168.1.20", "02:00:00:00:00:01"}, plainLines: 4},
	{name: "tvs", class: "tvs", permitted: []string{"203.0.113.50"}, denied: []string{"203.0.0.1", "2400::1"},
		refused: []string{"5.9.1.1"}, members: []string{"192.168.30.0", "192.168.30.255"}, plainLines: 2},
}

// policyProfiles are profiles that know a device classed by host name
// (a member the firewall can know only from them).
func policyProfiles(t *testing.T, cfg *Config) *Watcher {
	w, err := New(*cfg, testGeo, testKey)
	if err != nil {
		t.Fatal(err)
	}
	w.Lease(&Lease{Time: t0, MAC: MAC{2, 0, 0, 0, 0, 1}, Addr: netip.MustParseAddr("192.168.1.20"), Hostname: "IPC-garden"})
	w.Flow(flow("192.168.1.20", "5.9.1.1", 0, 443))
	return w
}

func loadPolicyConfig(t *testing.T, name string) *Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "classpolicy", name+".toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data, name+".toml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "classpolicy", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the golden file (run with -update after checking):\n%s", name, got)
	}
}

// nftNamespace returns a function that runs nft in a fresh network
// namespace, or skips the test saying why it cannot.
func nftNamespace(t *testing.T) func(args ...string) (string, error) {
	t.Helper()
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("nft not installed (apt-get install nftables): rulesets not loaded")
	}
	ip, err := exec.LookPath("ip")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("loading rulesets needs root and ip(8) for a network namespace")
	}
	ns := fmt.Sprintf("entente-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command(ip, "netns", "del", ns).Run() })
	return func(args ...string) (string, error) {
		out, err := exec.Command(ip, append([]string{"netns", "exec", ns, nft}, args...)...).CombinedOutput()
		return string(out), err
	}
}

// inSet asks nft whether an address is an element of a set.
func inSet(nft func(...string) (string, error), table, set, value string) bool {
	_, err := nft("get", "element", "inet", table, set, "{ "+value+" }")
	return err == nil
}

func TestClassPolicyExport(t *testing.T) {
	var nft func(...string) (string, error)
	if _, err := exec.LookPath("nft"); err == nil && os.Geteuid() == 0 {
		nft = nftNamespace(t)
	}
	for _, tc := range policyCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadPolicyConfig(t, tc.name)
			p, err := ClassPolicy(cfg, tc.class, testGeo, policyProfiles(t, cfg))
			if err != nil {
				t.Fatal(err)
			}
			var rules, plain bytes.Buffer
			if err := export.RenderClassPolicy(&rules, export.FormatNftables, p, export.Options{}); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".nft", rules.Bytes())
			if err := export.RenderClassPolicy(&plain, export.FormatPlain, p, export.Options{}); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".txt", plain.Bytes())
			if n := strings.Count(plain.String(), "\n"); n != tc.plainLines {
				t.Errorf("plain list of %d lines, want %d", n, tc.plainLines)
			}
			if nft == nil {
				t.Skip("nft not installed or not root: the ruleset matches its golden file, but is not loaded")
			}
			path := filepath.Join(t.TempDir(), "rules.nft")
			os.WriteFile(path, rules.Bytes(), 0o644)
			// Loaded twice: the ruleset replaces its own table.
			for i := 0; i < 2; i++ {
				if out, err := nft("-f", path); err != nil {
					t.Fatalf("nft -f (load %d): %v\n%s", i+1, err, out)
				}
			}
			table := "entente_class_" + tc.class
			set := func(a, kind string) string {
				if strings.Count(a, ":") == 5 && !strings.Contains(a, "::") {
					return "members_mac"
				}
				fam := "_v4"
				if strings.Contains(a, ":") {
					fam = "_v6"
				}
				return kind + fam
			}
			permitted := "permitted"
			if p.Deny {
				permitted = "allowed"
			}
			for _, a := range tc.permitted {
				if !inSet(nft, table, set(a, permitted), a) {
					t.Errorf("%s is not in %s", a, set(a, permitted))
				}
			}
			for _, a := range tc.refused {
				if inSet(nft, table, set(a, permitted), a) {
					t.Errorf("%s is in %s", a, set(a, permitted))
				}
			}
			for _, a := range tc.denied {
				if !inSet(nft, table, set(a, "denied"), a) {
					t.Errorf("%s is not in %s", a, set(a, "denied"))
				}
			}
			for _, a := range tc.members {
				if !inSet(nft, table, set(a, "members"), a) {
					t.Errorf("member %s is not in %s", a, set(a, "members"))
				}
			}
			if inSet(nft, table, "members_v4", "192.168.99.99") {
				t.Error("a device of no class is a member")
			}
		})
	}
}

func TestClassPolicyRPZ(t *testing.T) {
	cfg := loadPolicyConfig(t, "cameras")
	p, err := ClassPolicy(cfg, "cameras", testGeo, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := export.RenderClassPolicy(&b, export.FormatRPZ, p, export.Options{Now: time.Unix(1_700_000_000, 0)}); err != nil {
		t.Fatal(err)
	}
	golden(t, "cameras.rpz", b.Bytes())
	if bin, err := exec.LookPath("named-checkzone"); err == nil {
		path := filepath.Join(t.TempDir(), "z")
		os.WriteFile(path, b.Bytes(), 0o644)
		if out, err := exec.Command(bin, "entente-class-cameras.rpz", path).CombinedOutput(); err != nil {
			t.Errorf("named-checkzone: %v\n%s", err, out)
		}
	} else {
		t.Log("named-checkzone not installed: the zone is checked against its golden file only")
	}
	tv := loadPolicyConfig(t, "tvs")
	p, _ = ClassPolicy(tv, "tvs", testGeo, nil)
	if err := export.RenderClassPolicy(&b, export.FormatRPZ, p, export.Options{}); err == nil || !strings.Contains(err.Error(), "no domains") {
		t.Errorf("RPZ of a class without domains: %v", err)
	}
	if err := export.RenderClassPolicy(&b, export.FormatSuricata, p, export.Options{}); err == nil {
		t.Error("a class policy rendered as Suricata rules")
	}
}

func TestClassPolicyErrors(t *testing.T) {
	cfg := loadPolicyConfig(t, "cameras")
	for _, tc := range []struct {
		class string
		loc   geo.Locator
		want  string
	}{
		{"fridges", testGeo, `no class "fridges"`},
		{"cameras", nil, "needs geolocation data"},
		{"phones", testGeo, "has no country policy"},
	} {
		if _, err := ClassPolicy(cfg, tc.class, tc.loc, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.class, err, tc.want)
		}
	}
	// A class whose members only DHCP names: without profiles, no rule
	// can find them.
	p, err := ClassPolicy(cfg, "hostonly", testGeo, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := export.RenderClassPolicy(&b, export.FormatNftables, p, export.Options{}); err == nil || !strings.Contains(err.Error(), "no members") {
		t.Errorf("members by host name only: %v", err)
	}
}

func TestExplain(t *testing.T) {
	cfg := loadPolicyConfig(t, "cameras")
	for _, tc := range []struct{ q, want string }{
		{"", "DE: in (permitted): 3 networks in the geo data"},
		{"", "every other country: out"},
		{"", "names matching *.myedimax.com: in by name"},
		{"", "local networks, always in (not egress): 10.0.0.0/8"},
		{"203.0.113.9", "203.0.113.9: out: 203.0.113.9 is in AU; class cameras permits only DE, NL (it lies in 203.0.113.0/24, part of AU's address space in the geo data)"},
		{"5.9.1.1", "5.9.1.1: in: 5.9.1.1 is in DE, permitted by class cameras (DE, NL)"},
		{"122.248.252.67", "in: inside 122.248.252.0/24, a permitted network"},
		{"192.168.1.20", "in: local"},
		{"CN", "CN (2 networks in the geo data): out: class cameras permits only DE, NL; its parts inside allow_networks are in"},
		{"nl", "NL (1 networks in the geo data): in: permitted by class cameras (DE, NL)"},
		{"5.9.0.0/16", "5.9.0.0/16: in: 5.9.0.0/16 is in DE"},
		{"4.0.0.0/6", "partly in: it spans several countries"},
		{"100.64.0.0/10", "the geo data cannot place"},
	} {
		lines, err := Explain(cfg, "cameras", testGeo, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(lines, "\n"), tc.want) {
			t.Errorf("explain %q:\n%s\nwant %q", tc.q, strings.Join(lines, "\n"), tc.want)
		}
	}
	if _, err := Explain(cfg, "cameras", testGeo, "not an address"); err == nil {
		t.Error("explained nonsense")
	}
}

// TestRealClassPolicy renders a class policy from the real geo data and
// loads it into nft: tens of thousands of networks.
func TestRealClassPolicy(t *testing.T) {
	dir := testutil.SharedData(t, "geo")
	loc, err := geo.LoadFiles(filepath.Join(dir, "geo-whois-asn-country-ipv4.csv.gz"), filepath.Join(dir, "geo-whois-asn-country-ipv6.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadPolicyConfig(t, "cameras")
	p, err := ClassPolicy(cfg, "cameras", loc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) < 10000 {
		t.Fatalf("DE and NL: %d networks", len(p.Targets))
	}
	var b bytes.Buffer
	if err := export.RenderClassPolicy(&b, export.FormatNftables, p, export.Options{}); err != nil {
		t.Fatal(err)
	}
	nft := nftNamespace(t)
	path := filepath.Join(t.TempDir(), "rules.nft")
	os.WriteFile(path, b.Bytes(), 0o644)
	if out, err := nft("-f", path); err != nil {
		t.Fatalf("nft -f: %v\n%.2000s", err, out)
	}
	// 122.248.252.67 (the Edimax camera's server, SG) is out unless
	// permitted by network (it is, in this configuration); 122.248.234.231
	// is out; an address of each permitted country is in.
	for a, want := range map[string]bool{"122.248.234.231": false, "122.248.252.67": true, "8.8.8.8": false} {
		if got := inSet(nft, "entente_class_cameras", "permitted_v4", a); got != want {
			t.Errorf("%s in permitted_v4: %v, want %v", a, got, want)
		}
	}
	for _, cc := range []string{"DE", "NL"} {
		ps := loc.CountryPrefixes(cc)
		a := ps[len(ps)/2].Addr()
		if a.Is4() && !inSet(nft, "entente_class_cameras", "permitted_v4", a.String()) {
			t.Errorf("%s (%s) is not permitted", a, cc)
		}
	}
}
