package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSafetyConfig: the safety table loads, and a malformed entry, mode
// or width is refused naming the setting, the entry and its line.
func TestSafetyConfig(t *testing.T) {
	dir := t.TempDir()
	load := func(text string) (Config, error) {
		p := filepath.Join(dir, "entente.toml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(p, func(string) string { return "" })
	}
	c, err := load("[safety]\nnetworks = \"refuse\"\nconstituency_networks = [\"185.20.0.0/22\", \"2a0b:1000::/32\", \"9.9.9.9\"]\nconstituency_domains = [\"cert.example\"]\nconstituency_asns = [\"AS64500\"]\nasn_prefixes = \"asn.txt\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Safety.Networks != "refuse" || len(c.Safety.ConstituencyNetworks) != 3 || !c.Safety.IANA || !c.Safety.ShippedWarninglists || c.Safety.WidestIPv4 != 8 {
		t.Fatalf("loaded %+v", c.Safety)
	}
	for _, tc := range []struct{ text, want string }{
		{"[safety]\nconstituency_networks = [\n  \"185.20.0.0/22\",\n  \"185.20.0.0/33\",\n]\n", `line 4: safety.constituency_networks: entry 2 "185.20.0.0/33": not a network`},
		{"title = \"x\"\n[safety]\nconstituency_domains = [\"cert.example\", \"9.9.9.9\"]\n", `line 3: safety.constituency_domains: entry 2 "9.9.9.9": an address, not a domain`},
		{"[safety]\nconstituency_domains = [\"-bad-.example\"]\n", `not a domain name`},
		{"[safety]\nconstituency_asns = [\"64500\"]\nasn_prefixes = \"a.txt\"\n", `line 2: safety.constituency_asns: entry 1 "64500": not an autonomous system`},
		{"[safety]\nconstituency_asns = [\"AS64500\"]\n", `autonomous systems need safety.asn_prefixes`},
		{"[safety]\nnetworks = \"widen\"\n", `safety.networks: "widen" is not cut or refuse`},
		{"[safety]\nwidest_ipv4 = 40\n", `safety.widest_ipv4: 40`},
		{"[safety]\nwidest_ipv6 = -1\n", `safety.widest_ipv6: -1`},
		{"[safety]\nallow = \"x\"\n", `unknown setting "safety.allow"`},
	} {
		if _, err := load(tc.text); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.text, err, tc.want)
		}
	}
}

// TestEntryLine finds an array element's line within its table only.
func TestEntryLine(t *testing.T) {
	text := "constituency_networks = [\"1.2.3.0/24\"]\n[safety]\n# c\nconstituency_networks = [\n \"10.0.0.0/8\",\n \"1.2.3.0/24\" ]\nallowlist = \"a\"\n[tls]\n"
	if got := EntryLine(text, "safety", "constituency_networks", "1.2.3.0/24"); got != 6 {
		t.Errorf("line %d, want 6", got)
	}
	if got := EntryLine(text, "safety", "constituency_networks", "9.9.9.9"); got != 0 {
		t.Errorf("line %d for a value not there", got)
	}
}
