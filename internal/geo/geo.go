// Package geo maps IP addresses to ISO 3166-1 alpha-2 country codes and
// countries to their address ranges, for enriching indicators and
// sightings, filtering exports by country and building country
// blocklists.
//
// Three sources are supported: range CSV files ("range_start,range_end,CC",
// inclusive, as the ip-location-db packages publish them, optionally
// gzip-compressed), directories of per-country CIDR files
// (ipv4/<cc>.cidr, ipv6/<cc>.cidr, as herrbischoff/country-ip-blocks lays
// them out) and MaxMind-format .mmdb databases supplied by the operator.
package geo

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/entente-cti/entente/internal/gunzip"

	"go4.org/netipx"
)

// Locator looks up the country of an address and lists a country's
// address space.
type Locator interface {
	// Lookup returns the upper-case country code of addr.
	Lookup(addr netip.Addr) (cc string, ok bool)
	// CountryPrefixes returns the address space of the given countries
	// (case-insensitive codes) as a minimal sorted list of prefixes.
	CountryPrefixes(cc ...string) []netip.Prefix
}

// span is an inclusive address range with its country.
type span struct {
	from, to netip.Addr
	cc       [2]byte
}

// Table is an in-memory Locator built from range or CIDR files: sorted,
// non-overlapping ranges searched by binary search. Build it with
// [Table.LoadCSV] and [Table.LoadCIDRDir], then call [Table.Freeze] (the
// loaders leave it frozen).
type Table struct {
	spans  []span
	sorted bool
	// The IPv4 ranges (the first n4 spans, as IPv4 sorts first) as
	// integers, for lookups that do not compare netip.Addr values: built
	// by Freeze, dropped by add.
	v4from, v4to []uint32
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{sorted: true} }

// Len returns the number of ranges in t.
func (t *Table) Len() int { return len(t.spans) }

// MaxCSVSize is the most a compressed range CSV may inflate to (the
// largest real one, IPv6 by ASN, is 13 MB).
const MaxCSVSize = 1 << 30

// LoadCSV reads range CSV rows "start,end,CC" from r (gzip-compressed or
// not: the gzip magic number is detected). name is used in errors. Rows
// whose country is not two letters are skipped; any other bad row is an
// error naming its line.
func (t *Table) LoadCSV(r io.Reader, name string) error {
	zr, err := gunzip.Open(r, name, gunzip.Limits{MaxSize: MaxCSVSize})
	if err != nil {
		return fmt.Errorf("geo: %w", err)
	}
	defer zr.Close()
	br := bufio.NewReaderSize(zr, 1<<16)
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		f := strings.Split(string(b), ",")
		if len(f) < 3 {
			return fmt.Errorf("geo %s:%d: want start,end,country, got %d fields", name, line, len(f))
		}
		from, err1 := netip.ParseAddr(strings.TrimSpace(f[0]))
		to, err2 := netip.ParseAddr(strings.TrimSpace(f[1]))
		if err1 != nil || err2 != nil {
			return fmt.Errorf("geo %s:%d: invalid address range %q-%q", name, line, f[0], f[1])
		}
		from, to = from.Unmap(), to.Unmap()
		if from.BitLen() != to.BitLen() || to.Less(from) {
			return fmt.Errorf("geo %s:%d: invalid address range %s-%s", name, line, from, to)
		}
		cc, ok := code(f[2])
		if !ok {
			continue
		}
		t.add(span{from, to, cc})
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("geo %s:%d: %w", name, line, err)
	}
	t.Freeze()
	return nil
}

// LoadCIDR reads one CIDR per line from r, all of country cc.
func (t *Table) LoadCIDR(r io.Reader, name, cc string) error {
	if err := t.loadCIDR(r, name, cc); err != nil {
		return err
	}
	t.Freeze()
	return nil
}

func (t *Table) loadCIDR(r io.Reader, name, cc string) error {
	c, ok := code(cc)
	if !ok {
		return fmt.Errorf("geo %s: %q is not a country code", name, cc)
	}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("geo %s:%d: %w", name, line, err)
		}
		p = p.Masked()
		rg := netipx.RangeOfPrefix(p)
		t.add(span{rg.From(), rg.To(), c})
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("geo %s:%d: %w", name, line, err)
	}
	return nil
}

// LoadCIDRDir loads every <cc>.cidr file in dir and in its ipv4 and ipv6
// subdirectories.
func (t *Table) LoadCIDRDir(dir string) error {
	var files []string
	for _, d := range []string{dir, filepath.Join(dir, "ipv4"), filepath.Join(dir, "ipv6")} {
		m, _ := filepath.Glob(filepath.Join(d, "*.cidr"))
		files = append(files, m...)
	}
	if len(files) == 0 {
		return fmt.Errorf("geo %s: no <country>.cidr files", dir)
	}
	for _, f := range files {
		cc := strings.TrimSuffix(filepath.Base(f), ".cidr")
		if _, ok := code(cc); !ok {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			return fmt.Errorf("geo: %w", err)
		}
		err = t.loadCIDR(fh, f, cc)
		fh.Close()
		if err != nil {
			return err
		}
	}
	t.Freeze()
	return nil
}

func code(s string) ([2]byte, bool) {
	s = strings.TrimSpace(s)
	if len(s) != 2 {
		return [2]byte{}, false
	}
	var c [2]byte
	for i := 0; i < 2; i++ {
		b := s[i]
		if b >= 'a' && b <= 'z' {
			b -= 'a' - 'A'
		}
		if b < 'A' || b > 'Z' {
			return [2]byte{}, false
		}
		c[i] = b
	}
	return c, true
}

func (t *Table) add(s span) {
	if n := len(t.spans); n > 0 && !t.spans[n-1].to.Less(s.from) {
		t.sorted = false
	}
	t.spans = append(t.spans, s)
	t.v4from, t.v4to = nil, nil
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// index builds the integer form of the IPv4 ranges.
func (t *Table) index() {
	n := 0
	for n < len(t.spans) && t.spans[n].from.Is4() {
		n++
	}
	t.v4from, t.v4to = make([]uint32, n), make([]uint32, n)
	for i := range n {
		t.v4from[i], t.v4to[i] = u32(t.spans[i].from), u32(t.spans[i].to)
	}
}

// Freeze sorts the ranges. Where two ranges overlap, the one that starts
// later wins from its start on, and the earlier one is cut short there
// (data sets normally have no overlaps; this only keeps look-ups
// well-defined).
func (t *Table) Freeze() {
	if t.sorted {
		if t.v4from == nil {
			t.index()
		}
		return
	}
	defer t.index()
	slices.SortStableFunc(t.spans, func(a, b span) int { return a.from.Compare(b.from) })
	out := t.spans[:0]
	for _, s := range t.spans {
		for len(out) > 0 {
			last := &out[len(out)-1]
			if last.from.BitLen() != s.from.BitLen() || last.to.Less(s.from) {
				break
			}
			if last.from == s.from {
				out = out[:len(out)-1]
				continue
			}
			last.to = s.from.Prev()
			break
		}
		out = append(out, s)
	}
	t.spans = out
	t.sorted = true
}

// Lookup returns the country of addr.
func (t *Table) Lookup(addr netip.Addr) (string, bool) {
	addr = addr.Unmap()
	if addr.Is4() && t.v4from != nil {
		v := u32(addr)
		// The last range starting at or before v.
		i, found := slices.BinarySearch(t.v4from, v)
		if !found {
			i--
		}
		if i < 0 || t.v4to[i] < v {
			return "", false
		}
		return string(t.spans[i].cc[:]), true
	}
	i, _ := slices.BinarySearchFunc(t.spans, addr, func(s span, a netip.Addr) int {
		return s.from.Compare(a)
	})
	// spans[i-1] is the last range starting at or before addr, unless
	// spans[i] starts exactly at addr.
	if i < len(t.spans) && t.spans[i].from == addr {
		return string(t.spans[i].cc[:]), true
	}
	if i == 0 {
		return "", false
	}
	s := t.spans[i-1]
	if s.from.BitLen() != addr.BitLen() || s.to.Less(addr) {
		return "", false
	}
	return string(s.cc[:]), true
}

// LookupRange4 returns the country of the IPv4 address v (ok false: none)
// and the range [lo, hi] around v that has the same answer: the geo
// data's range that holds v, or the gap between two ranges. A caller may
// cache the answer for the whole range; the device watch does, for the
// destinations of its connections.
func (t *Table) LookupRange4(v uint32) (cc [2]byte, lo, hi uint32, ok bool) {
	if t.v4from == nil {
		cs, ok := t.Lookup(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}))
		if ok {
			copy(cc[:], cs)
		}
		return cc, v, v, ok // not frozen: no ranges to give
	}
	i, found := slices.BinarySearch(t.v4from, v)
	if found {
		return t.spans[i].cc, v, t.v4to[i], true
	}
	// spans[i-1] is the last range starting before v.
	lo, hi = 0, ^uint32(0)
	if i < len(t.v4from) {
		hi = t.v4from[i] - 1
	}
	if i > 0 {
		if t.v4to[i-1] >= v {
			return t.spans[i-1].cc, t.v4from[i-1], t.v4to[i-1], true
		}
		lo = t.v4to[i-1] + 1
	}
	return cc, lo, hi, false
}

// CountryPrefixes returns the address space of the given countries,
// aggregated into a minimal sorted list of prefixes.
func (t *Table) CountryPrefixes(cc ...string) []netip.Prefix {
	want := map[[2]byte]bool{}
	for _, c := range cc {
		if k, ok := code(c); ok {
			want[k] = true
		}
	}
	var b netipx.IPSetBuilder
	for _, s := range t.spans {
		if want[s.cc] {
			b.AddRange(netipx.IPRangeFrom(s.from, s.to))
		}
	}
	set, _ := b.IPSet()
	return set.Prefixes()
}

// Countries returns the country codes t knows, sorted.
func (t *Table) Countries() []string {
	seen := map[[2]byte]bool{}
	for _, s := range t.spans {
		seen[s.cc] = true
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, string(c[:]))
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}

// LoadCSV returns a table of the range CSV in r (see [Table.LoadCSV]).
func LoadCSV(r io.Reader, name string) (*Table, error) {
	t := NewTable()
	if err := t.LoadCSV(r, name); err != nil {
		return nil, err
	}
	return t, nil
}

// LoadCIDRDir returns a table of the per-country CIDR files in dir (see
// [Table.LoadCIDRDir]).
func LoadCIDRDir(dir string) (*Table, error) {
	t := NewTable()
	if err := t.LoadCIDRDir(dir); err != nil {
		return nil, err
	}
	return t, nil
}

// LoadFiles returns one table of several range CSV files (plain or
// gzip), such as the IPv4 and IPv6 halves of a database.
func LoadFiles(paths ...string) (*Table, error) {
	t := NewTable()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("geo: %w", err)
		}
		err = t.LoadCSV(f, p)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}
