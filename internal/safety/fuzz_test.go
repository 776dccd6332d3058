package safety

import (
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/observable"
)

// FuzzParseList: an allowlist or constituency file never panics; an
// error names the file and a line; what parses builds a net (or an error
// naming an entry's line) whose decisions never panic either.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/8\n# comment\nexample.org # ours\n",
		"http://a.example/x#frag\n9.9.9.9\n",
		"AS64500\n2001:db8::/32\n",
		"\uFEFF1.2.3.4\r\n",
		"a b\n",
		"::ffff:10.0.0.0/104\n",
		"d41d8cd98f00b204e9800998ecf8427e\nx@y.example\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		es, err := ParseList("f.txt", strings.NewReader(s))
		if err != nil {
			if !strings.Contains(err.Error(), "f.txt line ") {
				t.Fatalf("error without file and line: %v", err)
			}
			return
		}
		for _, e := range es {
			if !strings.HasPrefix(e.Where, "f.txt line ") || e.Value == "" {
				t.Fatalf("entry %+v", e)
			}
		}
		n, err := New(Config{Allowlist: es, Constituency: es})
		if err != nil {
			if !strings.Contains(err.Error(), "f.txt line ") && !strings.Contains(err.Error(), "autonomous system") {
				t.Fatalf("error without the entry's line: %v", err)
			}
			return
		}
		for _, e := range es {
			if k, v, err := observable.Detect(e.Value); err == nil {
				if d := n.Decide(k, v); d.Action == Keep {
					t.Fatalf("%q is allowlisted but kept", e.Value)
				}
			}
		}
	})
}

// FuzzParseASNPrefixes: an AS prefix file never panics, and every error
// names the file and a line.
func FuzzParseASNPrefixes(f *testing.F) {
	for _, s := range []string{"AS64500 192.0.2.0/24\n", "64500,2001:db8::/32\n# c\n", "as1 1.2.3.4\n", "AS 1 2\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseASNPrefixes("asn.txt", strings.NewReader(s))
		if err != nil {
			if !strings.Contains(err.Error(), "asn.txt line ") {
				t.Fatalf("error without file and line: %v", err)
			}
			return
		}
		for _, es := range m {
			for _, e := range es {
				if _, ok := parseNet(e.Value); !ok {
					t.Fatalf("accepted %q", e.Value)
				}
			}
		}
	})
}
