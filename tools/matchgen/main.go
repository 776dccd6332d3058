// Command matchgen generates a benchmark workload for the log matcher
// (internal/match) and runs it.
//
// Generate: real Zeek and Suricata logs from ../shared/data/logs are the
// templates of a large Zeek conn.log and dns.log and a Suricata EVE log;
// indicators of every kind (IPv4, IPv6, networks, domains, URLs, hashes)
// are random, with the real blocklists of ../shared/data/blocklists among
// them; a known fraction of log lines carry indicator values, and the
// truth file lists every (file, line, matched indicator value) that an
// exact matcher must report. Every other value in the logs is checked not
// to match any indicator, exactly or by network or parent domain.
//
//	go run ./tools/matchgen -out DIR -indicators 10000000 -conn-lines 10000000 \
//	    -dns-lines 5000000 -eve-lines 4000000 -seed 1
//
// Bench: load the indicator lists into a snapshot (timing the build and
// measuring the resident size), match each log (lines/s) and compare the
// hits with the truth file.
//
//	go run ./tools/matchgen -bench DIR
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/entente-cti/entente/internal/gunzip"

	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/sensor"
)

func main() {
	var (
		out       = flag.String("out", "", "directory to write the workload to")
		bench     = flag.String("bench", "", "directory of a generated workload to benchmark")
		nInd      = flag.Int("indicators", 10_000_000, "number of indicators, blocklists included")
		connLines = flag.Int("conn-lines", 10_000_000, "lines of conn.log")
		dnsLines  = flag.Int("dns-lines", 5_000_000, "lines of dns.log")
		eveLines  = flag.Int("eve-lines", 4_000_000, "lines of eve.json")
		hitRate   = flag.Float64("hit-rate", 0.001, "fraction of log lines that carry an indicator value")
		seed      = flag.Uint64("seed", 1, "random seed")
		data      = flag.String("data", "../shared/data", "the shared real data directory")
		workers   = flag.Int("workers", 0, "matcher workers for -bench (default every core)")
		skipTruth = flag.Bool("no-check", false, "for -bench: do not compare with the truth file")
		cpuprof   = flag.String("cpuprofile", "", "for -bench: write a CPU profile to this file")
	)
	flag.Parse()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "matchgen:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
	}
	var err error
	switch {
	case *out != "":
		g := &gen{rng: rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15)), dir: *out, data: *data, hitRate: *hitRate}
		err = g.run(*nInd, *connLines, *dnsLines, *eveLines)
	case *bench != "":
		err = runBench(*bench, *workers, !*skipTruth)
	default:
		flag.Usage()
		os.Exit(2)
	}
	pprof.StopCPUProfile()
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "matchgen:", err)
		os.Exit(1)
	}
}

// ---------------------------------------------------------------- indicators

// set is the generator's own, deliberately simple model of the
// indicators, used to compute the truth: maps of canonical values and one
// map per prefix length.
type set struct {
	v4     map[uint32]struct{}
	v6     map[[16]byte]struct{}
	nets4  [33]map[uint32]struct{}
	nets6  map[netip.Prefix]struct{}
	n6bits map[int]bool
	domain map[string]struct{}
	url    map[string]struct{} // keyed without http:// or https://
	hash   map[string]struct{}
	// lists of values by kind, for picking hits
	lv4, lv6, lnet4, lnet6, ldomain, lurl, lhash []string
}

func newSet() *set {
	s := &set{v4: map[uint32]struct{}{}, v6: map[[16]byte]struct{}{}, nets6: map[netip.Prefix]struct{}{}, n6bits: map[int]bool{},
		domain: map[string]struct{}{}, url: map[string]struct{}{}, hash: map[string]struct{}{}}
	for i := range s.nets4 {
		s.nets4[i] = map[uint32]struct{}{}
	}
	return s
}

func urlKey(u string) string {
	if strings.HasPrefix(u, "http://") {
		return u[7:]
	}
	if strings.HasPrefix(u, "https://") {
		return u[8:]
	}
	return u
}

// add adds a canonical value; it reports whether it was new.
func (s *set) add(k observable.Kind, v string) bool {
	switch k {
	case observable.IPv4:
		a := netip.MustParseAddr(v).As4()
		x := binary.BigEndian.Uint32(a[:])
		if _, ok := s.v4[x]; ok {
			return false
		}
		s.v4[x] = struct{}{}
		s.lv4 = append(s.lv4, v)
	case observable.IPv6:
		a := netip.MustParseAddr(v).As16()
		if _, ok := s.v6[a]; ok {
			return false
		}
		s.v6[a] = struct{}{}
		s.lv6 = append(s.lv6, v)
	case observable.CIDR4:
		p := netip.MustParsePrefix(v)
		a := p.Addr().As4()
		x := binary.BigEndian.Uint32(a[:])
		if _, ok := s.nets4[p.Bits()][x]; ok {
			return false
		}
		s.nets4[p.Bits()][x] = struct{}{}
		s.lnet4 = append(s.lnet4, v)
	case observable.CIDR6:
		p := netip.MustParsePrefix(v)
		if _, ok := s.nets6[p]; ok {
			return false
		}
		s.nets6[p] = struct{}{}
		s.n6bits[p.Bits()] = true
		s.lnet6 = append(s.lnet6, v)
	case observable.Domain:
		if _, ok := s.domain[v]; ok {
			return false
		}
		s.domain[v] = struct{}{}
		s.ldomain = append(s.ldomain, v)
	case observable.URL:
		key := urlKey(v)
		if _, ok := s.url[key]; ok {
			return false
		}
		s.url[key] = struct{}{}
		s.lurl = append(s.lurl, v)
	case observable.MD5, observable.SHA1, observable.SHA256, observable.SHA512:
		if _, ok := s.hash[v]; ok {
			return false
		}
		s.hash[v] = struct{}{}
		s.lhash = append(s.lhash, v)
	default:
		return false
	}
	return true
}

// matchIP returns every indicator value that address a matches.
func (s *set) matchIP(a netip.Addr) []string {
	var out []string
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		if _, ok := s.v4[x]; ok {
			out = append(out, a.String())
		}
		for bits := 0; bits <= 32; bits++ {
			if len(s.nets4[bits]) == 0 {
				continue
			}
			m := x
			if bits < 32 {
				m = x &^ (1<<(32-bits) - 1)
			}
			if _, ok := s.nets4[bits][m]; ok {
				out = append(out, netip.PrefixFrom(a, bits).Masked().String())
			}
		}
		return out
	}
	if _, ok := s.v6[a.As16()]; ok {
		out = append(out, a.String())
	}
	for bits := range s.n6bits {
		p := netip.PrefixFrom(a, bits).Masked()
		if _, ok := s.nets6[p]; ok {
			out = append(out, p.String())
		}
	}
	return out
}

func (s *set) matchDomain(d string) []string {
	var out []string
	for k := d; k != ""; {
		if _, ok := s.domain[k]; ok {
			out = append(out, k)
		}
		i := strings.IndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[i+1:]
	}
	return out
}

// ---------------------------------------------------------------- generator

type gen struct {
	rng     *rand.Rand
	dir     string
	data    string
	hitRate float64
	s       *set
	clean4  []string
	clean6  []string
	cleanD  []string
	truth   *bufio.Writer
}

var tlds = []string{"com", "net", "org", "info", "xyz", "ru", "cn", "de", "io", "top", "biz", "online"}

func (g *gen) label(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[g.rng.IntN(36)]
	}
	if b[0] >= '0' && b[0] <= '9' {
		b[0] = 'x'
	}
	return string(b)
}

func (g *gen) domain() string { return g.label(5+g.rng.IntN(10)) + "." + tlds[g.rng.IntN(len(tlds))] }

func (g *gen) ip4() netip.Addr {
	for {
		x := g.rng.Uint32()
		a := netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
		if a.IsGlobalUnicast() && !a.IsPrivate() {
			return a
		}
	}
}

func (g *gen) ip6() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], g.rng.Uint64())
	binary.BigEndian.PutUint64(b[8:], g.rng.Uint64())
	b[0] = 0x20 | b[0]&0x0f // 2000::/4
	return netip.AddrFrom16(b)
}

func (g *gen) hexs(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return hex.EncodeToString(b)
}

func (g *gen) run(n, connLines, dnsLines, eveLines int) error {
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return err
	}
	start := time.Now()
	g.s = newSet()
	bl, err := g.loadBlocklists()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "blocklists: %d values\n", bl)
	// Random indicators up to n, by share of kinds.
	shares := []struct {
		k observable.Kind
		f float64
	}{{observable.IPv4, .38}, {observable.IPv6, .05}, {observable.CIDR4, .015}, {observable.CIDR6, .005}, {observable.Domain, .25},
		{observable.URL, .10}, {observable.MD5, .05}, {observable.SHA1, .05}, {observable.SHA256, .10}}
	remaining := n - bl
	for i, sh := range shares {
		want := int(float64(remaining) * sh.f)
		if i == len(shares)-1 {
			want = n - g.count()
		}
		for added := 0; added < want; {
			if g.s.add(sh.k, g.random(sh.k)) {
				added++
			}
		}
	}
	fmt.Fprintf(os.Stderr, "indicators: %d in %v\n", g.count(), time.Since(start).Round(time.Millisecond))
	if err := g.writeIndicators(); err != nil {
		return err
	}
	g.cleanPools()
	tf, err := os.Create(filepath.Join(g.dir, "truth.tsv"))
	if err != nil {
		return err
	}
	g.truth = bufio.NewWriterSize(tf, 1<<20)
	if err := g.writeConn(connLines); err != nil {
		return err
	}
	if err := g.writeDNS(dnsLines); err != nil {
		return err
	}
	if err := g.writeEVE(eveLines); err != nil {
		return err
	}
	if err := g.truth.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "done in %v\n", time.Since(start).Round(time.Millisecond))
	return tf.Close()
}

func (g *gen) count() int {
	s := g.s
	return len(s.lv4) + len(s.lv6) + len(s.lnet4) + len(s.lnet6) + len(s.ldomain) + len(s.lurl) + len(s.lhash)
}

func (g *gen) random(k observable.Kind) string {
	switch k {
	case observable.IPv4:
		return g.ip4().String()
	case observable.IPv6:
		return g.ip6().String()
	case observable.CIDR4:
		return netip.PrefixFrom(g.ip4(), 20+g.rng.IntN(10)).Masked().String()
	case observable.CIDR6:
		return netip.PrefixFrom(g.ip6(), 32+g.rng.IntN(33)).Masked().String()
	case observable.Domain:
		return g.domain()
	case observable.URL:
		return "http://" + g.domain() + "/" + g.label(4+g.rng.IntN(8)) + "/" + g.label(6) + ".php?id=" + g.label(5)
	case observable.MD5:
		return g.hexs(16)
	case observable.SHA1:
		return g.hexs(20)
	case observable.SHA256:
		return g.hexs(32)
	}
	return ""
}

// loadBlocklists adds the values of the real plain-text blocklists.
func (g *gen) loadBlocklists() (int, error) {
	root := filepath.Join(g.data, "blocklists")
	n := 0
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		name := filepath.Base(path)
		if strings.HasSuffix(name, ".conf") || strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".md") || strings.Contains(name, "LICENSE") || strings.HasSuffix(name, ".csv") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r, err := gunzip.Open(f, path, gunzip.Limits{MaxSize: maxInput})
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if l == "" || l[0] == '#' || l[0] == '!' || l[0] == ';' {
				continue
			}
			fields := strings.Fields(l)
			v := fields[0]
			if len(fields) >= 2 && (v == "0.0.0.0" || v == "127.0.0.1") {
				v = fields[1]
			}
			k, c, err := observable.Detect(v)
			if err != nil {
				continue
			}
			if k == observable.Email {
				continue
			}
			if g.s.add(k, c) {
				n++
			}
		}
		return sc.Err()
	})
	return n, err
}

func (g *gen) writeIndicators() error {
	s := g.s
	all, err := os.Create(filepath.Join(g.dir, "indicators.txt"))
	if err != nil {
		return err
	}
	aw := bufio.NewWriterSize(all, 1<<20)
	for _, f := range []struct {
		name string
		vals []string
	}{{"ipv4", s.lv4}, {"ipv6", s.lv6}, {"cidr", append(append([]string(nil), s.lnet4...), s.lnet6...)}, {"domain", s.ldomain}, {"url", s.lurl}, {"hash", s.lhash}} {
		fh, err := os.Create(filepath.Join(g.dir, "indicators_"+f.name+".txt"))
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(fh, 1<<20)
		for _, v := range f.vals {
			w.WriteString(v)
			w.WriteByte('\n')
			aw.WriteString(v)
			aw.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			return err
		}
		fh.Close()
	}
	if err := aw.Flush(); err != nil {
		return err
	}
	return all.Close()
}

// cleanPools picks values that match no indicator at all.
func (g *gen) cleanPools() {
	for len(g.clean4) < 200_000 {
		a := g.ip4()
		if len(g.s.matchIP(a)) == 0 {
			g.clean4 = append(g.clean4, a.String())
		}
	}
	for len(g.clean6) < 20_000 {
		a := g.ip6()
		if len(g.s.matchIP(a)) == 0 {
			g.clean6 = append(g.clean6, a.String())
		}
	}
	for len(g.cleanD) < 200_000 {
		d := "www." + g.domain()
		if len(g.s.matchDomain(d)) == 0 {
			g.cleanD = append(g.cleanD, d)
		}
	}
}

func (g *gen) pick(l []string) string { return l[g.rng.IntN(len(l))] }

// hitIP returns an address that hits an indicator (exact, in a network,
// IPv6) and the values it matches.
func (g *gen) hitIP() (string, []string) {
	s := g.s
	var a netip.Addr
	switch r := g.rng.IntN(10); {
	case r < 6 && len(s.lv4) > 0:
		a = netip.MustParseAddr(g.pick(s.lv4))
	case r < 8 && len(s.lnet4) > 0:
		p := netip.MustParsePrefix(g.pick(s.lnet4))
		b := p.Addr().As4()
		x := binary.BigEndian.Uint32(b[:])
		if p.Bits() < 32 {
			x |= g.rng.Uint32() & (1<<(32-p.Bits()) - 1)
		}
		a = netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
	case r < 9 && len(s.lv6) > 0:
		a = netip.MustParseAddr(g.pick(s.lv6))
	default:
		if len(s.lnet6) == 0 {
			a = netip.MustParseAddr(g.pick(s.lv4))
			break
		}
		p := netip.MustParsePrefix(g.pick(s.lnet6))
		b := p.Addr().As16()
		var rnd [16]byte
		binary.BigEndian.PutUint64(rnd[:8], g.rng.Uint64())
		binary.BigEndian.PutUint64(rnd[8:], g.rng.Uint64())
		for i := p.Bits(); i < 128; i++ {
			b[i/8] = b[i/8]&^(0x80>>(i%8)) | rnd[i/8]&(0x80>>(i%8))
		}
		a = netip.AddrFrom16(b)
	}
	return a.String(), s.matchIP(a)
}

// hitDomain returns a subdomain (or the domain) of an indicator domain.
func (g *gen) hitDomain() (string, []string) {
	d := g.pick(g.s.ldomain)
	if g.rng.IntN(2) == 0 {
		d = g.label(3+g.rng.IntN(5)) + "." + d
	}
	return d, g.s.matchDomain(d)
}

func (g *gen) writeTruth(file string, line int, matched []string) {
	sort.Strings(matched)
	for i, m := range matched {
		if i > 0 && matched[i-1] == m {
			continue
		}
		fmt.Fprintf(g.truth, "%s\t%d\t%s\n", file, line, m)
	}
}

// zeekTemplate reads the header and data lines of a real Zeek TSV log.
func zeekTemplate(path string) (header []string, lines [][]string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	r, err := gunzip.Open(f, path, gunzip.Limits{MaxSize: maxInput})
	if err != nil {
		return nil, nil, err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if t := strings.TrimLeft(l, " \t"); strings.HasPrefix(t, "#") {
			l = t
		}
		if strings.HasPrefix(l, "#close") {
			continue
		}
		if strings.HasPrefix(l, "#") {
			if len(lines) == 0 {
				header = append(header, l)
			}
			continue
		}
		lines = append(lines, strings.Split(l, "\t"))
		if len(lines) >= 20000 {
			break
		}
	}
	return header, lines, sc.Err()
}

func column(header []string, name string) int {
	for _, h := range header {
		if strings.HasPrefix(h, "#fields\t") {
			for i, f := range strings.Split(h, "\t")[1:] {
				if f == name {
					return i
				}
			}
		}
	}
	return -1
}

func (g *gen) writeZeek(name, template string, nlines int, fill func(cols []string, cidx map[string]int) []string) error {
	header, lines, err := zeekTemplate(filepath.Join(g.data, "logs", "zeek", template))
	if err != nil {
		return fmt.Errorf("template %s: %w", template, err)
	}
	cidx := map[string]int{}
	for _, c := range []string{"id.orig_h", "id.resp_h", "query", "answers"} {
		cidx[c] = column(header, c)
	}
	f, err := os.Create(filepath.Join(g.dir, name))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 4<<20)
	for _, h := range header {
		w.WriteString(h)
		w.WriteByte('\n')
	}
	line := len(header)
	cols := make([]string, 0, 32)
	for i := 0; i < nlines; i++ {
		line++
		cols = append(cols[:0], lines[g.rng.IntN(len(lines))]...)
		matched := fill(cols, cidx)
		if len(matched) > 0 {
			g.writeTruth(name, line, matched)
		}
		for j, c := range cols {
			if j > 0 {
				w.WriteByte('\t')
			}
			w.WriteString(c)
		}
		w.WriteByte('\n')
	}
	w.WriteString("#close\t2026-01-01-00-00-00\n")
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: %d lines\n", name, nlines)
	return f.Close()
}

func (g *gen) cleanIPLike(old string) string {
	if strings.Contains(old, ":") {
		return g.pick(g.clean6)
	}
	return g.pick(g.clean4)
}

func (g *gen) writeConn(n int) error {
	return g.writeZeek("conn.log", "slips-test10-mixed/conn.log", n, func(cols []string, c map[string]int) []string {
		o, r := c["id.orig_h"], c["id.resp_h"]
		cols[o] = g.cleanIPLike(cols[o])
		cols[r] = g.cleanIPLike(cols[r])
		if g.rng.Float64() >= g.hitRate {
			return nil
		}
		v, m := g.hitIP()
		if g.rng.IntN(2) == 0 {
			cols[o] = v
		} else {
			cols[r] = v
		}
		return m
	})
}

func (g *gen) writeDNS(n int) error {
	return g.writeZeek("dns.log", "wrccdc-2018-03-24/tsv/dns.log.gz", n, func(cols []string, c map[string]int) []string {
		cols[c["id.orig_h"]] = g.pick(g.clean4)
		cols[c["id.resp_h"]] = g.pick(g.clean4)
		if cols[c["query"]] != "-" {
			cols[c["query"]] = g.pick(g.cleanD)
		}
		if a := c["answers"]; cols[a] != "-" {
			cols[a] = g.pick(g.cleanD) + "," + g.pick(g.clean4)
		}
		if g.rng.Float64() >= g.hitRate {
			return nil
		}
		if g.rng.IntN(4) == 0 {
			v, m := g.hitIP()
			cols[c["answers"]] = g.pick(g.cleanD) + "," + v
			return m
		}
		v, m := g.hitDomain()
		cols[c["query"]] = v
		return m
	})
}

// eveTemplate is one real EVE line with the observable values replaced
// by placeholders.
type eveTemplate struct {
	parts []string // literal text between placeholders
	slots []string // placeholder names
	kind  string
}

var placeholder = "\x00P"

func makeEVETemplate(line []byte) (*eveTemplate, error) {
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, err
	}
	set := func(obj map[string]any, key, slot string) {
		if _, ok := obj[key]; ok {
			obj[key] = placeholder + slot + "\x00"
		}
	}
	set(m, "src_ip", "src")
	set(m, "dest_ip", "dst")
	kind, _ := m["event_type"].(string)
	if d, ok := m["dns"].(map[string]any); ok {
		set(d, "rrname", "domain")
		delete(d, "answers")
		delete(d, "grouped")
		delete(d, "rdata")
		delete(d, "queries")
	}
	if h, ok := m["http"].(map[string]any); ok {
		set(h, "hostname", "host")
		set(h, "url", "path")
		delete(h, "http_refer")
	}
	if t, ok := m["tls"].(map[string]any); ok {
		set(t, "sni", "sni")
		delete(t, "fingerprint")
	}
	if f, ok := m["fileinfo"].(map[string]any); ok {
		f["sha256"] = placeholder + "sha256\x00"
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	t := &eveTemplate{kind: kind}
	s := string(b)
	for {
		i := strings.Index(s, `\u0000P`)
		if i < 0 {
			t.parts = append(t.parts, s)
			break
		}
		j := strings.Index(s[i+7:], `\u0000`)
		t.parts = append(t.parts, s[:i])
		t.slots = append(t.slots, s[i+7:i+7+j])
		s = s[i+7+j+6:]
	}
	return t, nil
}

// maxInput is the most a compressed input of the shared data may inflate
// to.
const maxInput = 1 << 30

func (g *gen) writeEVE(n int) error {
	path := filepath.Join(g.data, "logs", "suricata", "slips-test6-malicious", "eve.json.gz")
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	zr, err := gunzip.Open(f, path, gunzip.Limits{MaxSize: maxInput})
	if err != nil {
		return err
	}
	var tmpls []*eveTemplate
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		t, err := makeEVETemplate(sc.Bytes())
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		tmpls = append(tmpls, t)
	}
	f.Close()
	out, err := os.Create(filepath.Join(g.dir, "eve.json"))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 4<<20)
	var lineBuf bytes.Buffer
	for line := 1; line <= n; line++ {
		t := tmpls[g.rng.IntN(len(tmpls))]
		vals := map[string]string{}
		var matched []string
		hit := g.rng.Float64() < g.hitRate
		// Choose which slot hits, among those of the template.
		hitSlot := ""
		if hit && len(t.slots) > 0 {
			hitSlot = t.slots[g.rng.IntN(len(t.slots))]
		}
		for _, s := range t.slots {
			switch s {
			case "src", "dst":
				vals[s] = g.pick(g.clean4)
				if s == hitSlot {
					v, m := g.hitIP()
					vals[s] = v
					matched = append(matched, m...)
				}
			case "domain", "sni":
				vals[s] = g.pick(g.cleanD)
				if s == hitSlot {
					v, m := g.hitDomain()
					vals[s] = v
					matched = append(matched, m...)
				}
			case "host", "path":
				if _, done := vals["host"]; done {
					continue
				}
				vals["host"] = g.pick(g.cleanD)
				vals["path"] = "/" + g.label(8)
				_, hasHost := slotIndex(t.slots, "host")
				_, hasPath := slotIndex(t.slots, "path")
				if (hitSlot == "host" || hitSlot == "path") && hasHost && hasPath {
					// An http(s) URL whose host has no port: an HTTP log
					// line cannot tell http://h:443/ from https://h/.
					var rest string
					var i int
					for {
						u := g.pick(g.s.lurl)
						rest = urlKey(u)
						i = strings.IndexByte(rest, '/')
						if rest != u && i > 0 && strings.IndexByte(rest[:i], ':') < 0 {
							break
						}
					}
					vals["host"], vals["path"] = rest[:i], rest[i:]
					matched = append(matched, "http://"+rest)
					// eveTruth adds what the host matches by itself.
				}
			case "sha256":
				vals[s] = g.hexs(32)
				if s == hitSlot {
					for {
						h := g.pick(g.s.lhash)
						if len(h) == 64 {
							vals[s] = h
							matched = append(matched, h)
							break
						}
					}
				}
			}
		}
		lineBuf.Reset()
		for i, p := range t.parts {
			lineBuf.WriteString(p)
			if i < len(t.slots) {
				writeJSONStringBody(&lineBuf, vals[t.slots[i]]) // the template keeps the quotes
			}
		}
		w.Write(lineBuf.Bytes())
		w.WriteByte('\n')
		if len(matched) > 0 {
			// The truth is what the line as written holds, decoded as
			// JSON: the values placed are not trusted to be all that a
			// line carries (a URL's host may itself be an indicator
			// address; a value may need escaping).
			full, err := g.eveTruth(lineBuf.Bytes(), matched)
			if err != nil {
				return fmt.Errorf("eve.json line %d: %w", line, err)
			}
			g.writeTruth("eve.json", line, full)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "eve.json: %d lines\n", n)
	return out.Close()
}

// writeJSONStringBody writes v escaped for the inside of a JSON string.
func writeJSONStringBody(w *bytes.Buffer, v string) {
	b, _ := json.Marshal(v)
	w.Write(b[1 : len(b)-1])
}

// eveTruth returns every indicator value that the EVE line holds, by the
// generator's own model of matching, after checking that the values the
// generator placed to hit (placed) are among them. The model: src_ip and
// dest_ip are addresses (exact or in a network); dns.rrname and tls.sni
// are names (or a parent domain); http.hostname is a name or an address,
// without its port; http.hostname (lower case, without a default port 80
// or 443) followed by http.url is a URL, looked up without its scheme;
// fileinfo hashes are looked up as they are.
func (g *gen) eveTruth(line []byte, placed []string) ([]string, error) {
	var ev struct {
		Src string `json:"src_ip"`
		Dst string `json:"dest_ip"`
		DNS *struct {
			RRName string `json:"rrname"`
		} `json:"dns"`
		TLS *struct {
			SNI string `json:"sni"`
		} `json:"tls"`
		HTTP *struct {
			Host string `json:"hostname"`
			URL  string `json:"url"`
		} `json:"http"`
		File *struct {
			MD5    string `json:"md5"`
			SHA1   string `json:"sha1"`
			SHA256 string `json:"sha256"`
		} `json:"fileinfo"`
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		return nil, fmt.Errorf("generated line is not valid JSON: %w", err)
	}
	var out []string
	ip := func(v string) {
		if a, err := netip.ParseAddr(v); err == nil {
			out = append(out, g.s.matchIP(a.Unmap())...)
		}
	}
	name := func(v string) {
		out = append(out, g.s.matchDomain(strings.TrimSuffix(strings.ToLower(v), "."))...)
	}
	ip(ev.Src)
	ip(ev.Dst)
	if ev.DNS != nil {
		name(ev.DNS.RRName)
	}
	if ev.TLS != nil {
		name(ev.TLS.SNI)
	}
	if h := ev.HTTP; h != nil && h.Host != "" {
		host := h.Host
		if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host[:i], ':') < 0 {
			host = host[:i]
		}
		if _, err := netip.ParseAddr(host); err == nil {
			ip(host)
		} else {
			name(host)
		}
		if strings.HasPrefix(h.URL, "/") {
			key := strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(h.Host), ":80"), ":443") + h.URL
			if _, ok := g.s.url[key]; ok {
				out = append(out, "http://"+key)
			}
		}
	}
	if f := ev.File; f != nil {
		for _, v := range []string{f.MD5, f.SHA1, f.SHA256} {
			if _, ok := g.s.hash[v]; ok && v != "" {
				out = append(out, v)
			}
		}
	}
	have := map[string]bool{}
	for _, v := range out {
		have[v] = true
	}
	for _, v := range placed {
		if !have[v] {
			return nil, fmt.Errorf("the line does not hold %q, which the generator placed in it", v)
		}
	}
	return out, nil
}

// ---------------------------------------------------------------- bench

func rssKB() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(l, "VmRSS:"), "kB")), &kb)
			return kb
		}
	}
	return -1
}

func runBench(dir string, workers int, check bool) error {
	rss0 := rssKB()
	start := time.Now()
	b := match.NewBuilder()
	lists, _ := filepath.Glob(filepath.Join(dir, "indicators_*.txt"))
	for _, l := range lists {
		f, err := os.Open(l)
		if err != nil {
			return err
		}
		st, err := match.LoadFile(b, l, f, time.Now())
		f.Close()
		if err != nil {
			return err
		}
		if st.Invalid > 0 {
			fmt.Printf("%s: %d invalid: %v\n", l, st.Invalid, st.Problems[:min(3, len(st.Problems))])
		}
	}
	snap := b.Snapshot()
	build := time.Since(start)
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("snapshot: %d values, built in %.2f s, heap in use %.0f MiB, process RSS %.0f MiB (before loading %.0f MiB)\n",
		snap.Len(), build.Seconds(), float64(ms.HeapInuse)/(1<<20), float64(rssKB())/1024, float64(rss0)/1024)
	encStart := time.Now()
	data, etag, err := snap.Encode()
	if err != nil {
		return err
	}
	fmt.Printf("serialised: %.0f MiB in %.2f s, etag %s\n", float64(len(data))/(1<<20), time.Since(encStart).Seconds(), etag)
	data = nil

	var truth map[string]bool
	if check {
		truth = map[string]bool{}
		tf, err := os.ReadFile(filepath.Join(dir, "truth.tsv"))
		if err != nil {
			return err
		}
		for _, l := range strings.Split(strings.TrimSpace(string(tf)), "\n") {
			if l != "" {
				truth[l] = true
			}
		}
	}
	allOK := true
	for _, name := range []string{"conn.log", "dns.log", "eve.json"} {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		// Warm the page cache so that the figure is the matcher's.
		if f, err := os.Open(path); err == nil {
			io.Copy(io.Discard, f)
			f.Close()
		}
		var hits bytes.Buffer
		cpu0 := cpuSeconds()
		t0 := time.Now()
		res, err := match.Run(context.Background(), match.Options{
			Snapshot: snap, Hits: &hits, Scan: sensor.Options{Workers: workers},
			Logs: []sensor.Input{{Name: name, Open: func() (io.ReadCloser, error) { return os.Open(path) }}},
		})
		el := time.Since(t0)
		cpu := cpuSeconds() - cpu0
		if err != nil {
			return err
		}
		fmt.Printf("%s: %.2f CPU seconds = %.0f lines per CPU second\n", name, cpu, float64(res.Stats.Lines)/cpu)
		fmt.Printf("%s: %d lines (%.0f MB) in %.2f s = %.0f lines/s (%.0f MB/s), %d hits, %d bad lines, %d workers\n",
			name, res.Stats.Lines, float64(res.Stats.Bytes)/1e6, el.Seconds(), float64(res.Stats.Lines)/el.Seconds(),
			float64(res.Stats.Bytes)/1e6/el.Seconds(), res.Hits, res.Stats.Bad, max(workers, runtime.GOMAXPROCS(0)*boolInt(workers == 0)))
		if !check {
			continue
		}
		got := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSpace(hits.String()), "\n") {
			if l == "" {
				continue
			}
			var h match.HitRecord
			if err := json.Unmarshal([]byte(l), &h); err != nil {
				return err
			}
			got[fmt.Sprintf("%s\t%d\t%s", h.File, h.Line, h.Matched)] = true
		}
		missed, extra, want := 0, 0, 0
		for k := range truth {
			if strings.HasPrefix(k, name+"\t") {
				want++
				if !got[k] {
					missed++
					if missed <= 5 {
						fmt.Printf("  missed: %s\n", k)
					}
				}
			}
		}
		for k := range got {
			if !truth[k] {
				extra++
				if extra <= 5 {
					fmt.Printf("  false positive: %s\n", k)
				}
			}
		}
		fmt.Printf("  exactness: %d expected (line, indicator) pairs, %d reported, %d missed, %d false positives\n", want, len(got), missed, extra)
		if missed+extra > 0 {
			allOK = false
		}
	}
	if !allOK {
		return fmt.Errorf("hits differ from the truth")
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func slotIndex(slots []string, name string) (int, bool) {
	for i, s := range slots {
		if s == name {
			return i, true
		}
	}
	return -1, false
}

// cpuSeconds returns the user and system CPU time of the process, so that
// throughput can be judged on a machine shared with other work.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
