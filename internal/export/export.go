// Package export renders indicators as blocklists and rule sets for the
// enforcement points that consume them: plain lists, CSV, an nftables
// ruleset, ipset restore files, Suricata rules and datasets, the Zeek
// Intel framework, a DNS RPZ zone, a hosts file, a MISP feed and a STIX
// bundle.
//
// Renderers work on [Item]s (one normalised observable value of an
// indicator with what an export needs to know about it), filtered by a
// [Filter]. [FromIndicator] turns a STIX indicator into items. Revoked and
// expired items are never exported; warninglisted ones are left out unless
// the filter says otherwise. IP addresses and networks are aggregated into
// the fewest CIDR blocks for the set-based formats.
package export

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
	"go4.org/netipx"
)

// Item is one observable value to export.
type Item struct {
	Kind        observable.Kind
	Value       string // normalised (observable.Normalize)
	IndicatorID string
	Confidence  int
	TLP         stix.TLP
	Sources     []string
	Labels      []string
	Collection  string
	Country     string   // ISO 3166-1 alpha-2 of an IP value, "" when unknown
	Warning     []string // names of the warninglists the value hits
	ValidFrom   time.Time
	ValidUntil  time.Time // zero: no end
	Modified    time.Time
	Revoked     bool
}

// Live reports whether it is neither revoked nor expired at now.
func (it *Item) Live(now time.Time) bool {
	return !it.Revoked && (it.ValidUntil.IsZero() || it.ValidUntil.After(now))
}

// Filter selects the items of an export. Zero fields do not filter.
type Filter struct {
	Kinds         []observable.Kind
	Collections   []string
	MaxTLP        *stix.TLP // only items at this TLP or less restrictive
	MinConfidence int
	Sources       []string      // items with at least one of these sources
	MaxAge        time.Duration // items valid_from (or modified) within this age
	Countries     []string      // IP items located in one of these countries
	// IncludeWarninglisted keeps items that hit a warninglist.
	IncludeWarninglisted bool
	// Now is the time to judge expiry and age by; time.Now when zero.
	Now time.Time
}

// Apply returns the items f selects: live ones only, always.
func (f *Filter) Apply(items []Item) []Item {
	keep := f.Matcher()
	out := make([]Item, 0, len(items))
	for i := range items {
		if keep(&items[i]) {
			out = append(out, items[i])
		}
	}
	return out
}

// Matcher returns the test Apply applies to each item, for callers that
// select items as they gather them.
func (f *Filter) Matcher() func(*Item) bool {
	now := f.Now
	if now.IsZero() {
		now = time.Now()
	}
	var countries map[string]bool
	if len(f.Countries) > 0 {
		countries = map[string]bool{}
		for _, c := range f.Countries {
			countries[strings.ToUpper(strings.TrimSpace(c))] = true
		}
	}
	return func(it *Item) bool {
		if !it.Live(now) {
			return false
		}
		if len(it.Warning) > 0 && !f.IncludeWarninglisted {
			return false
		}
		if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, it.Kind) {
			return false
		}
		if len(f.Collections) > 0 && !slices.Contains(f.Collections, it.Collection) {
			return false
		}
		if f.MaxTLP != nil && it.TLP > *f.MaxTLP {
			return false
		}
		if it.Confidence < f.MinConfidence {
			return false
		}
		if len(f.Sources) > 0 && !slices.ContainsFunc(it.Sources, func(s string) bool { return slices.Contains(f.Sources, s) }) {
			return false
		}
		if f.MaxAge > 0 {
			t := it.ValidFrom
			if it.Modified.After(t) {
				t = it.Modified
			}
			if now.Sub(t) > f.MaxAge {
				return false
			}
		}
		return countries == nil || countries[it.Country]
	}
}

// liveOnly returns items without the revoked and expired ones (items
// itself when all are live): renderers never export those, filtered or
// not.
func liveOnly(items []Item, now time.Time) []Item {
	for i := range items {
		if !items[i].Live(now) {
			out := slices.Clone(items[:i])
			for j := i + 1; j < len(items); j++ {
				if items[j].Live(now) {
					out = append(out, items[j])
				}
			}
			return out
		}
	}
	return items
}

// Options controls rendering.
type Options struct {
	// Name names the set, table, zone, feed or event ("entente" when
	// empty): nftables table, ipset set prefix, RPZ origin
	// ("<name>.rpz" when Zone is empty), MISP event info.
	Name string
	// Zone is the RPZ zone origin.
	Zone string
	// Now stamps the output (SOA serial, MISP timestamps); time.Now when
	// zero.
	Now time.Time
	// NoAggregate keeps IP addresses and networks as they are instead of
	// merging them into the fewest CIDR blocks.
	NoAggregate bool
	// Action is the Suricata rule action: "alert" (default) or "drop".
	Action string
	// SIDBase is the first Suricata signature id (default 8_800_000).
	SIDBase int
	// HostsAddress is the address of hosts-file lines (default 0.0.0.0).
	HostsAddress string
	// Org names the organisation of MISP events and the STIX identity.
	Org string
}

func (o *Options) name() string {
	if o.Name == "" {
		return "entente"
	}
	return o.Name
}

func (o *Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now().UTC()
	}
	return o.Now.UTC()
}

// File is one file of a multi-file export.
type File struct {
	Name string
	Data []byte
}

// The export formats.
const (
	FormatPlain           = "plain"
	FormatCSV             = "csv"
	FormatNftables        = "nftables"
	FormatIPSet           = "ipset"
	FormatSuricata        = "suricata"
	FormatSuricataDataset = "suricata-dataset"
	FormatZeek            = "zeek"
	FormatRPZ             = "rpz"
	FormatHosts           = "hosts"
	FormatMISPFeed        = "misp-feed"
	FormatSTIX            = "stix"
)

// Formats lists every format, single-stream ones first.
var Formats = []string{FormatPlain, FormatCSV, FormatNftables, FormatIPSet, FormatSuricata, FormatZeek, FormatRPZ, FormatHosts, FormatSTIX, FormatSuricataDataset, FormatMISPFeed}

// MultiFile reports whether format renders to several files (use
// [RenderFiles]).
func MultiFile(format string) bool {
	return format == FormatMISPFeed || format == FormatSuricataDataset
}

// Render writes items in a single-stream format to w.
func Render(w io.Writer, format string, items []Item, opts Options) error {
	items = liveOnly(items, opts.now())
	bw := bufio.NewWriterSize(w, 1<<16)
	var err error
	switch format {
	case FormatPlain:
		err = renderPlain(bw, items, &opts)
	case FormatCSV:
		err = renderCSV(bw, items, &opts)
	case FormatNftables:
		err = renderNftables(bw, items, &opts)
	case FormatIPSet:
		err = renderIPSet(bw, items, &opts)
	case FormatSuricata:
		err = renderSuricata(bw, items, &opts)
	case FormatZeek:
		err = renderZeek(bw, items, &opts)
	case FormatRPZ:
		err = renderRPZ(bw, items, &opts)
	case FormatHosts:
		err = renderHosts(bw, items, &opts)
	case FormatSTIX:
		err = renderSTIX(bw, items, &opts)
	case FormatMISPFeed, FormatSuricataDataset:
		return fmt.Errorf("export format %s has several files: use RenderFiles", format)
	default:
		return fmt.Errorf("unknown export format %q (want one of %s)", format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", format, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export %s: %w", format, err)
	}
	return nil
}

// RenderFiles renders items in any format as a list of files (one, named
// after the format, for the single-stream ones).
func RenderFiles(format string, items []Item, opts Options) ([]File, error) {
	items = liveOnly(items, opts.now())
	switch format {
	case FormatMISPFeed:
		return mispFeed(items, &opts)
	case FormatSuricataDataset:
		return suricataDatasets(items, &opts)
	}
	var b strings.Builder
	if err := Render(&b, format, items, opts); err != nil {
		return nil, err
	}
	ext := map[string]string{FormatPlain: "txt", FormatCSV: "csv", FormatNftables: "nft", FormatIPSet: "ipset",
		FormatSuricata: "rules", FormatZeek: "intel", FormatRPZ: "zone", FormatHosts: "hosts", FormatSTIX: "json"}[format]
	return []File{{Name: opts.name() + "." + ext, Data: []byte(b.String())}}, nil
}

// ETag returns a strong HTTP entity tag for an export's bytes.
func ETag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// isIP reports whether k is an address or network kind.
func isIP(k observable.Kind) bool {
	return k == observable.IPv4 || k == observable.IPv6 || k == observable.CIDR4 || k == observable.CIDR6
}

// Prefixes returns the IP items' values as prefixes, aggregated unless
// noAggregate, IPv4 first, sorted.
func Prefixes(items []Item, noAggregate bool) []netip.Prefix {
	ps := make([]netip.Prefix, 0, len(items))
	for i := range items {
		it := &items[i]
		if !isIP(it.Kind) {
			continue
		}
		if p, ok := prefixOf(it.Value); ok {
			ps = append(ps, p)
		}
	}
	if noAggregate {
		slices.SortFunc(ps, comparePrefix)
		return slices.Compact(ps)
	}
	return Aggregate(ps)
}

func prefixOf(v string) (netip.Prefix, bool) {
	if strings.IndexByte(v, '/') >= 0 {
		p, err := netip.ParsePrefix(v)
		return p.Masked(), err == nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// Aggregate merges prefixes into the fewest that cover exactly the same
// addresses: overlapping and adjacent networks become one CIDR block
// where they align. The result is sorted, IPv4 first.
func Aggregate(ps []netip.Prefix) []netip.Prefix {
	if len(ps) == 0 {
		return nil
	}
	// IPv4 ranges as lo<<32|hi, sorted as integers (fast); IPv6 as IPRanges.
	v4 := make([]uint64, 0, len(ps))
	var v6 []netipx.IPRange
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		p = p.Masked()
		if p.Addr().Is4() {
			b := p.Addr().As4()
			lo := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			hi := lo | uint32(uint64(1)<<(32-p.Bits())-1)
			v4 = append(v4, uint64(lo)<<32|uint64(hi))
			continue
		}
		v6 = append(v6, netipx.RangeOfPrefix(p))
	}
	out := make([]netip.Prefix, 0, len(v4)/2+len(v6)+1)
	if len(v4) > 0 {
		slices.Sort(v4)
		lo, hi := uint32(v4[0]>>32), uint32(v4[0])
		for _, r := range v4[1:] {
			rlo, rhi := uint32(r>>32), uint32(r)
			if hi == math.MaxUint32 || rlo <= hi+1 {
				hi = max(hi, rhi)
				continue
			}
			out = appendRange4(out, lo, hi)
			lo, hi = rlo, rhi
		}
		out = appendRange4(out, lo, hi)
	}
	if len(v6) > 0 {
		slices.SortFunc(v6, func(a, b netipx.IPRange) int { return a.From().Compare(b.From()) })
		cur := v6[0]
		for _, r := range v6[1:] {
			next := cur.To().Next()
			if !next.IsValid() || !next.Less(r.From()) {
				if cur.To().Less(r.To()) {
					cur = netipx.IPRangeFrom(cur.From(), r.To())
				}
				continue
			}
			out = cur.AppendPrefixes(out)
			cur = r
		}
		out = cur.AppendPrefixes(out)
	}
	return out
}

// appendRange4 appends the fewest prefixes covering lo..hi (inclusive).
func appendRange4(out []netip.Prefix, lo, hi uint32) []netip.Prefix {
	for {
		k := bits.TrailingZeros32(lo) // alignment of lo
		if lo == 0 {
			k = 32
		}
		span := uint64(hi) - uint64(lo) + 1
		if s := bits.Len64(span) - 1; s < k {
			k = s
		}
		a := netip.AddrFrom4([4]byte{byte(lo >> 24), byte(lo >> 16), byte(lo >> 8), byte(lo)})
		out = append(out, netip.PrefixFrom(a, 32-k))
		end := uint64(lo) + uint64(1)<<k - 1
		if end >= uint64(hi) {
			return out
		}
		lo = uint32(end + 1)
	}
}

// kindOrder is the position of each kind in observable.Kinds.
var kindOrder = func() map[observable.Kind]int {
	m := map[observable.Kind]int{}
	for i, k := range observable.Kinds {
		m[k] = i
	}
	return m
}()

// sortedItems returns pointers to the items that keep returns true for,
// sorted by kind (in observable.Kinds order), then value, without
// duplicate values. keep nil keeps all.
func sortedItems(items []Item, keep func(*Item) bool) []*Item {
	type entry struct {
		order int
		it    *Item
	}
	es := make([]entry, 0, len(items))
	for i := range items {
		it := &items[i]
		if keep == nil || keep(it) {
			es = append(es, entry{kindOrder[it.Kind], it})
		}
	}
	slices.SortFunc(es, func(a, b entry) int {
		if c := cmp.Compare(a.order, b.order); c != 0 {
			return c
		}
		return strings.Compare(a.it.Value, b.it.Value)
	})
	es = slices.CompactFunc(es, func(a, b entry) bool { return a.order == b.order && a.it.Value == b.it.Value })
	out := make([]*Item, len(es))
	for i, e := range es {
		out[i] = e.it
	}
	return out
}

func notIP(it *Item) bool    { return !isIP(it.Kind) }
func isDomain(it *Item) bool { return it.Kind == observable.Domain }
