// Package warninglist loads MISP warninglists (lists of well-known,
// benign values such as public DNS resolvers, RFC 1918 networks or the
// most popular domains) and tells, fast, which lists a normalised
// observable value hits, so that an indicator for such a value can be
// flagged and left out of blocklists.
//
// A list is a MISP list.json file: {"name", "type", "matching_attributes",
// "list": [...]} where type is one of string (exact match), cidr (address
// inside a network), hostname (the name or any of its subdomains),
// substring and regex. Matching is by map look-up, a label-suffix walk for
// host names and a radix trie (bart) for networks.
package warninglist

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/entente-cti/entente/internal/gunzip"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/gaissmai/bart"
)

// List is one MISP warninglist as read from its list.json.
type List struct {
	Name               string   `json:"name"`
	Version            int      `json:"version"`
	Description        string   `json:"description"`
	Type               string   `json:"type"`
	MatchingAttributes []string `json:"matching_attributes"`
	Entries            []string `json:"list"`
}

// Parse decodes one list.json. It checks the list's name and type; the
// entries are checked when the list is added to a [Set].
func Parse(r io.Reader) (*List, error) {
	var l List
	dec := json.NewDecoder(r)
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("decode warninglist: %w", err)
	}
	if strings.TrimSpace(l.Name) == "" {
		return nil, fmt.Errorf("warninglist has no name")
	}
	switch l.Type {
	case "string", "cidr", "hostname", "substring", "regex":
	default:
		return nil, fmt.Errorf("warninglist %q: unknown type %q (want string, cidr, hostname, substring or regex)", l.Name, l.Type)
	}
	return &l, nil
}

// group is a class of observable kinds that MISP attribute types map to.
type group uint8

const (
	gIP group = 1 << iota
	gDomain
	gURL
	gEmail
	gHash
	gAll = gIP | gDomain | gURL | gEmail | gHash
)

// groupOf returns the group of an observable kind.
func groupOf(k observable.Kind) group {
	switch k {
	case observable.IPv4, observable.IPv6, observable.CIDR4, observable.CIDR6:
		return gIP
	case observable.Domain:
		return gDomain
	case observable.URL:
		return gURL
	case observable.Email:
		return gEmail
	case observable.MD5, observable.SHA1, observable.SHA256, observable.SHA512:
		return gHash
	}
	return 0
}

// groupsOf returns the groups a list applies to, from its MISP
// matching_attributes (all groups when it names none).
func groupsOf(attrs []string) group {
	if len(attrs) == 0 {
		return gAll
	}
	var g group
	for _, a := range attrs {
		switch {
		case strings.HasPrefix(a, "ip-"):
			g |= gIP
		case a == "domain|ip":
			g |= gIP | gDomain
		case a == "domain", a == "hostname":
			g |= gDomain
		case a == "url", a == "uri", a == "link":
			g |= gURL
		case strings.HasPrefix(a, "email") || strings.HasSuffix(a, "-email") || a == "target-email":
			g |= gEmail
		case a == "md5", a == "sha1", a == "sha256", a == "sha512", strings.HasPrefix(a, "filename|"), strings.HasPrefix(a, "x509-fingerprint-"):
			g |= gHash
		}
	}
	return g
}

// entry is one list's membership, for the maps keyed by value.
type ref struct {
	list   uint16
	groups group
}

// Set is a set of warninglists compiled for matching. The zero Set
// matches nothing; use [New] and [Set.Add], or [LoadDir].
type Set struct {
	names   []string
	groups  []group
	exact   map[string][]ref // string lists, and hostname lists (matched by suffix walk)
	suffix  map[string][]ref // hostname lists and string entries with a leading dot
	nets    []*bart.Lite     // cidr lists, by list index (nil for other types)
	subs    map[string][]ref // substring entries of every list
	subLens []int            // the distinct lengths of those entries, ascending
	regexes [][]*regexp.Regexp
	// Skipped counts entries that could not be used, by list name.
	Skipped map[string]int
}

// New returns an empty Set.
func New() *Set {
	return &Set{exact: map[string][]ref{}, suffix: map[string][]ref{}, subs: map[string][]ref{}, Skipped: map[string]int{}}
}

// Len returns the number of lists in s.
func (s *Set) Len() int { return len(s.names) }

// Names returns the names of the lists in s, sorted.
func (s *Set) Names() []string {
	n := slices.Clone(s.names)
	sort.Strings(n)
	return n
}

// Add compiles l into s. Entries that cannot be used (an invalid CIDR, a
// regular expression Go cannot compile) are counted in s.Skipped under the
// list's name.
func (s *Set) Add(l *List) error {
	if len(s.names) >= 1<<16-1 {
		return fmt.Errorf("too many warninglists")
	}
	idx := uint16(len(s.names))
	g := groupsOf(l.MatchingAttributes)
	s.names = append(s.names, l.Name)
	s.groups = append(s.groups, g)
	s.nets = append(s.nets, nil)
	s.regexes = append(s.regexes, nil)
	r := ref{list: idx, groups: g}
	for _, e := range l.Entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		switch l.Type {
		case "cidr":
			p, err := parseNet(e)
			if err != nil {
				s.Skipped[l.Name]++
				continue
			}
			if s.nets[idx] == nil {
				s.nets[idx] = new(bart.Lite)
			}
			s.nets[idx].Insert(p)
		case "string":
			v := strings.ToLower(e)
			if strings.HasPrefix(v, ".") {
				s.suffix[strings.Trim(v, ".")] = appendRef(s.suffix[strings.Trim(v, ".")], r)
				continue
			}
			s.exact[v] = appendRef(s.exact[v], r)
		case "hostname":
			v := strings.Trim(strings.ToLower(e), ".")
			if v == "" {
				continue
			}
			s.suffix[v] = appendRef(s.suffix[v], r)
		case "substring":
			v := strings.ToLower(e)
			if _, ok := s.subs[v]; !ok {
				if i, found := slices.BinarySearch(s.subLens, len(v)); !found {
					s.subLens = slices.Insert(s.subLens, i, len(v))
				}
			}
			s.subs[v] = appendRef(s.subs[v], r)
		case "regex":
			re, err := compileMISPRegex(e)
			if err != nil {
				s.Skipped[l.Name]++
				continue
			}
			s.regexes[idx] = append(s.regexes[idx], re)
		}
	}
	return nil
}

func appendRef(rs []ref, r ref) []ref {
	if n := len(rs); n > 0 && rs[n-1].list == r.list {
		return rs
	}
	return append(rs, r)
}

func parseNet(e string) (netip.Prefix, error) {
	if strings.IndexByte(e, '/') >= 0 {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(e)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// compileMISPRegex compiles a PCRE-style "/expr/flags" entry; only the i
// flag changes the meaning (g is ignored).
func compileMISPRegex(e string) (*regexp.Regexp, error) {
	expr := e
	if strings.HasPrefix(e, "/") {
		end := strings.LastIndexByte(e, '/')
		if end <= 0 {
			return nil, fmt.Errorf("regex %q: no closing '/'", e)
		}
		expr = e[1:end]
		if strings.Contains(e[end+1:], "i") {
			expr = "(?i)" + expr
		}
	}
	expr = strings.ReplaceAll(expr, `\@`, `@`)
	return regexp.Compile(expr)
}

// Match returns the names of the lists that value, a normalised
// observable of kind k, hits; nil when it hits none. A URL is also
// matched by its host; an e-mail address also by its domain; a network by
// any list network that contains it entirely.
func (s *Set) Match(k observable.Kind, value string) []string {
	if s == nil || len(s.names) == 0 {
		return nil
	}
	g := groupOf(k)
	if g == 0 {
		return nil
	}
	var hits []uint16
	add := func(i uint16) {
		if s.groups[i]&g == 0 || slices.Contains(hits, i) {
			return
		}
		hits = append(hits, i)
	}
	v := strings.ToLower(value)
	switch g {
	case gIP:
		p, err := parseNet(v)
		if err != nil {
			return nil
		}
		for i, n := range s.nets {
			if n != nil && n.LookupPrefix(p) {
				add(uint16(i))
			}
		}
		for _, r := range s.exact[v] {
			add(r.list)
		}
	case gDomain:
		s.matchHost(v, add)
	case gURL:
		for _, r := range s.exact[v] {
			add(r.list)
		}
		if h := urlHost(v); h != "" {
			s.matchHost(h, add)
		}
	case gEmail:
		for _, r := range s.exact[v] {
			add(r.list)
		}
		if i := strings.LastIndexByte(v, '@'); i >= 0 {
			s.matchHost(v[i+1:], add)
		}
	case gHash:
		for _, r := range s.exact[v] {
			add(r.list)
		}
	}
	// Substring entries: every window of v of every entry length is
	// looked up (cheaper than scanning thousands of entries).
	if len(s.subs) > 0 {
		for _, n := range s.subLens {
			if n > len(v) {
				break
			}
			for i := 0; i+n <= len(v); i++ {
				for _, r := range s.subs[v[i:i+n]] {
					add(r.list)
				}
			}
		}
	}
	for i, res := range s.regexes {
		if s.groups[i]&g == 0 {
			continue
		}
		for _, re := range res {
			if re.MatchString(value) {
				add(uint16(i))
				break
			}
		}
	}
	if len(hits) == 0 {
		return nil
	}
	names := make([]string, len(hits))
	for i, h := range hits {
		names[i] = s.names[h]
	}
	sort.Strings(names)
	return names
}

// matchHost looks host up exactly and walks its parent domains in the
// suffix map.
func (s *Set) matchHost(host string, add func(uint16)) {
	for _, r := range s.exact[host] {
		add(r.list)
	}
	for h := host; h != ""; {
		for _, r := range s.suffix[h] {
			add(r.list)
		}
		i := strings.IndexByte(h, '.')
		if i < 0 {
			break
		}
		h = h[i+1:]
	}
}

// urlHost returns the host of a normalised URL ("scheme://host[:port]/..."),
// without brackets for an IPv6 host.
func urlHost(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return ""
	}
	rest := u[i+3:]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		rest = rest[:j]
	}
	if strings.HasPrefix(rest, "[") {
		return ""
	}
	if j := strings.LastIndexByte(rest, ':'); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// LoadDir loads every list.json (or list.json.gz) below dir, as the MISP
// warninglists repository lays them out (lists/<name>/list.json). It
// stops at the first file that cannot be read or parsed, naming it.
func LoadDir(dir string) (*Set, error) {
	lists, files, err := loadLists(dir)
	if err != nil {
		return nil, err
	}
	s := New()
	for i, l := range lists {
		if err := s.Add(l); err != nil {
			return nil, fmt.Errorf("warninglist %s: %w", files[i], err)
		}
	}
	return s, nil
}

// LoadLists reads every list.json (or list.json.gz) below dir, as
// [LoadDir] does, and returns the lists themselves, in the order of
// their paths, for callers that compile them their own way.
func LoadLists(dir string) ([]*List, error) {
	lists, _, err := loadLists(dir)
	return lists, err
}

func loadLists(dir string) ([]*List, []string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (d.Name() == "list.json" || d.Name() == "list.json.gz") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("walk warninglists %s: %w", dir, err)
	}
	sort.Strings(files)
	lists := make([]*List, 0, len(files))
	for _, f := range files {
		l, err := loadFile(f)
		if err != nil {
			return nil, nil, err
		}
		lists = append(lists, l)
	}
	return lists, files, nil
}

// MaxListSize is the most a compressed warninglist may inflate to.
const MaxListSize = 1 << 30

func loadFile(name string) (*List, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read warninglist: %w", err)
	}
	if gunzip.Magic(data) {
		zr, err := gunzip.Open(bytes.NewReader(data), name, gunzip.Limits{MaxSize: MaxListSize})
		if err != nil {
			return nil, fmt.Errorf("warninglist: %w", err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("warninglist: %w", err)
		}
	}
	l, err := Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("warninglist %s: %w", name, err)
	}
	return l, nil
}
