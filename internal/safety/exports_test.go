package safety_test

import (
	"bufio"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/stix"
)

// A case file of testdata/exports is sections "-- NAME --": "config"
// (key: value lines), "indicators" (one value per line, as a feed gives
// them) and one section per export format, "-- FORMAT --" or, for a
// multi-file format, "-- FORMAT: FILE --", holding the expected export.

type caseFile struct {
	head     string // what precedes the first section
	sections []section
}

type section struct{ name, body string }

func readCase(t *testing.T, path string) caseFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cf caseFile
	cur := -1
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if strings.HasPrefix(l, "-- ") && strings.HasSuffix(strings.TrimRight(l, "\n"), " --") {
			cf.sections = append(cf.sections, section{name: strings.TrimSuffix(strings.TrimPrefix(strings.TrimRight(l, "\n"), "-- "), " --")})
			cur = len(cf.sections) - 1
			continue
		}
		if cur < 0 {
			cf.head += l
		} else {
			cf.sections[cur].body += l
		}
	}
	return cf
}

func (cf caseFile) get(name string) string {
	for _, s := range cf.sections {
		if s.name == name {
			return s.body
		}
	}
	return ""
}

// netOf builds the net a case's config section describes.
func netOf(t *testing.T, conf string) *safety.Net {
	t.Helper()
	cfg := safety.Config{}
	for i, l := range strings.Split(conf, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		where := fmt.Sprintf("config line %d", i+1)
		switch strings.TrimSpace(k) {
		case "iana":
			cfg.IANA = v == "true"
		case "shipped_warninglists":
			if v == "true" {
				ws, err := safety.ShippedWarninglists()
				if err != nil {
					t.Fatal(err)
				}
				cfg.Warninglists = ws
			}
		case "networks":
			cfg.Networks = safety.Mode(v)
		case "widest_ipv4":
			cfg.WidestIPv4, _ = strconv.Atoi(v)
		case "widest_ipv6":
			cfg.WidestIPv6, _ = strconv.Atoi(v)
		case "constituency":
			for _, f := range strings.Fields(v) {
				cfg.Constituency = append(cfg.Constituency, safety.Entry{Value: f, Where: where})
			}
		case "allowlist":
			for _, f := range strings.Fields(v) {
				cfg.Allowlist = append(cfg.Allowlist, safety.Entry{Value: f, Where: "allow.txt line " + strconv.Itoa(i+1)})
			}
		default:
			t.Fatalf("config line %d: unknown key %q", i+1, k)
		}
	}
	n, err := safety.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// itemsOf turns the indicators section into export items, as a feed
// import would give them.
func itemsOf(t *testing.T, list string) []export.Item {
	t.Helper()
	var items []export.Item
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, l := range strings.Split(list, "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, err := observable.Detect(l)
		if err != nil {
			t.Fatalf("indicator %q: %v", l, err)
		}
		items = append(items, export.Item{Kind: k, Value: v, IndicatorID: feed.IndicatorID(k, v), Confidence: 80, TLP: stix.TLPGreen,
			Sources: []string{"test-feed"}, ValidFrom: from, Modified: from})
	}
	return items
}

var bundleID = regexp.MustCompile(`bundle--[0-9a-f-]{36}`)

// TestExportsDataDriven renders the indicators of each case file, through
// the case's safety net, in every export format, and compares with the
// expected exports of the file (rewritten with -update). Independently of
// the expected files, no address or network of any export may be
// protected or overlap protected space.
func TestExportsDataDriven(t *testing.T) {
	files, _ := filepath.Glob("testdata/exports/*.txt")
	if len(files) == 0 {
		t.Fatal("no case files")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cf := readCase(t, path)
			n := netOf(t, cf.get("config"))
			opts := export.Options{Now: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Name: "entente", Org: "CERT Test"}
			got := map[string]string{}
			var order []string
			for _, format := range export.Formats {
				items := export.Guarded(itemsOf(t, cf.get("indicators")), n.Guard(safety.OutputExport))
				fs, err := export.RenderFiles(format, items, opts)
				if err != nil {
					t.Fatalf("%s: %v", format, err)
				}
				for _, f := range fs {
					name := format
					if export.MultiFile(format) {
						name += ": " + f.Name
					}
					got[name] = bundleID.ReplaceAllString(string(f.Data), "bundle--00000000-0000-0000-0000-000000000000")
					order = append(order, name)
					checkNothingProtected(t, n, name, got[name])
				}
			}
			if updating() {
				var b strings.Builder
				b.WriteString(cf.head)
				for _, s := range []string{"config", "indicators"} {
					fmt.Fprintf(&b, "-- %s --\n%s", s, cf.get(s))
				}
				for _, name := range order {
					fmt.Fprintf(&b, "-- %s --\n%s", name, got[name])
				}
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				cf = readCase(t, path)
			}
			for _, name := range order {
				if want := cf.get(name); want != got[name] {
					t.Errorf("%s differs from the file (go test ./internal/safety -update rewrites it):\n--- got\n%s--- want\n%s", name, got[name], want)
				}
			}
			if len(cf.sections) != len(order)+2 {
				t.Errorf("%d sections in the file, want config, indicators and %d exports", len(cf.sections), len(order))
			}
		})
	}
}

var (
	ipToken  = regexp.MustCompile(`[0-9a-fA-F:.]*[:.][0-9a-fA-F:.]+(/\d{1,3})?`)
	rpzToken = regexp.MustCompile(`\b(\d{1,2})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.rpz-ip\b`)
)

// checkNothingProtected fails when an address or network of out (an
// export) is, or overlaps, space the net protects.
func checkNothingProtected(t *testing.T, n *safety.Net, name, out string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name == export.FormatHosts {
			line = strings.TrimPrefix(line, "0.0.0.0 ") // the sinkhole address, not a listed one
		}
		var vals []string
		for _, m := range rpzToken.FindAllStringSubmatch(line, -1) {
			vals = append(vals, fmt.Sprintf("%s.%s.%s.%s/%s", m[5], m[4], m[3], m[2], m[1]))
		}
		if len(vals) == 0 {
			vals = ipToken.FindAllString(line, -1)
		}
		for _, v := range vals {
			if !strings.ContainsAny(v, "0123456789") {
				continue // "::" of Intel::ADDR
			}
			var k observable.Kind
			if p, err := netip.ParsePrefix(v); err == nil {
				k, v = observable.CIDR4, p.Masked().String()
				if p.Addr().Is6() {
					k = observable.CIDR6
				}
			} else if a, err := netip.ParseAddr(v); err == nil {
				k, v = observable.IPv4, a.String()
				if a.Is6() {
					k = observable.IPv6
				}
			} else {
				continue
			}
			if d := n.Decide(k, v); d.Action != safety.Keep {
				t.Errorf("%s export holds %s, which the net would %s (%s): %q", name, v, d.Action, d.Rule, line)
			}
		}
	}
}

// updating reports whether -update was given (the flag is the internal
// tests' of this package).
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}
