package export

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/google/uuid"
)

// renderPlain writes one value per line: IP items as aggregated CIDR
// blocks (single addresses without a prefix length), then the others.
func renderPlain(w *bufio.Writer, items []Item, o *Options) error {
	var buf []byte
	for _, p := range Prefixes(items, o.NoAggregate) {
		buf = appendPrefix(buf[:0], p)
		buf = append(buf, '\n')
		w.Write(buf)
	}
	for _, it := range sortedItems(items, notIP) {
		w.WriteString(it.Value)
		w.WriteByte('\n')
	}
	return nil
}

// appendPrefix appends a prefix, or its address alone for a single host.
func appendPrefix(b []byte, p netip.Prefix) []byte {
	if p.IsSingleIP() {
		return p.Addr().AppendTo(b)
	}
	return p.AppendTo(b)
}

// renderCSV writes one row per item with its metadata.
func renderCSV(w *bufio.Writer, items []Item, o *Options) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"value", "kind", "indicator_id", "confidence", "tlp", "country", "sources", "labels", "valid_from", "valid_until"})
	for _, it := range sortedItems(items, nil) {
		vu := ""
		if !it.ValidUntil.IsZero() {
			vu = stix.FormatTimestamp(it.ValidUntil)
		}
		vf := ""
		if !it.ValidFrom.IsZero() {
			vf = stix.FormatTimestamp(it.ValidFrom)
		}
		cw.Write([]string{it.Value, string(it.Kind), it.IndicatorID, strconv.Itoa(it.Confidence), it.TLP.String(), it.Country,
			strings.Join(it.Sources, ";"), strings.Join(it.Labels, ";"), vf, vu})
	}
	cw.Flush()
	return cw.Error()
}

// nftName makes s usable as an nftables identifier.
func nftName(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 || s[0] >= '0' && s[0] <= '9' {
		return "t_" + b.String()
	}
	return b.String()
}

// renderNftables writes a complete ruleset for `nft -f`: it replaces the
// table (so reloading is atomic and idempotent) with two interval sets of
// the blocked networks and chains that drop traffic from and to them.
func renderNftables(w *bufio.Writer, items []Item, o *Options) error {
	table := nftName(o.name())
	ps := Prefixes(items, o.NoAggregate)
	fmt.Fprintf(w, "#!/usr/sbin/nft -f\n# Entente blocklist: %d networks\n", len(ps))
	fmt.Fprintf(w, "table inet %s\ndelete table inet %s\n\ntable inet %s {\n", table, table, table)
	set := func(name, typ string, want func(netip.Prefix) bool) {
		fmt.Fprintf(w, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n", name, typ)
		n := 0
		var buf []byte
		for _, p := range ps {
			if !want(p) {
				continue
			}
			buf = buf[:0]
			if n == 0 {
				buf = append(buf, "\t\telements = {\n\t\t\t"...)
			} else if n%8 == 0 {
				buf = append(buf, ",\n\t\t\t"...)
			} else {
				buf = append(buf, ", "...)
			}
			buf = appendPrefix(buf, p)
			w.Write(buf)
			n++
		}
		if n > 0 {
			w.WriteString("\n\t\t}\n")
		}
		w.WriteString("\t}\n\n")
	}
	set("blocklist_v4", "ipv4_addr", func(p netip.Prefix) bool { return p.Addr().Is4() })
	set("blocklist_v6", "ipv6_addr", func(p netip.Prefix) bool { return p.Addr().Is6() })
	w.WriteString(`	chain input {
		type filter hook input priority filter - 10; policy accept;
		ip saddr @blocklist_v4 counter drop
		ip6 saddr @blocklist_v6 counter drop
	}

	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		ip saddr @blocklist_v4 counter drop
		ip daddr @blocklist_v4 counter drop
		ip6 saddr @blocklist_v6 counter drop
		ip6 daddr @blocklist_v6 counter drop
	}

	chain output {
		type filter hook output priority filter - 10; policy accept;
		ip daddr @blocklist_v4 counter reject
		ip6 daddr @blocklist_v6 counter reject
	}
}
`)
	return nil
}

// renderIPSet writes `ipset restore` input: two hash:net sets, created if
// missing, flushed, and filled.
func renderIPSet(w *bufio.Writer, items []Item, o *Options) error {
	ps := Prefixes(items, o.NoAggregate)
	var n4, n6 int
	for _, p := range ps {
		if p.Addr().Is4() {
			n4++
		} else {
			n6++
		}
	}
	base := o.name()
	for _, fam := range []struct {
		suffix, family string
		n              int
		is4            bool
	}{{"-v4", "inet", n4, true}, {"-v6", "inet6", n6, false}} {
		name := base + fam.suffix
		if len(name) > 31 {
			name = name[len(name)-31:]
		}
		fmt.Fprintf(w, "create %s hash:net family %s hashsize 1024 maxelem %d -exist\nflush %s\n", name, fam.family, max(65536, fam.n), name)
		var buf []byte
		for _, p := range ps {
			if p.Addr().Is4() != fam.is4 {
				continue
			}
			buf = append(append(append(buf[:0], "add "...), name...), ' ')
			buf = append(p.AppendTo(buf), " -exist\n"...)
			w.Write(buf)
		}
	}
	return nil
}

// zeekType is the Zeek Intel type of each kind.
var zeekType = map[observable.Kind]string{
	observable.IPv4: "Intel::ADDR", observable.IPv6: "Intel::ADDR",
	observable.CIDR4: "Intel::SUBNET", observable.CIDR6: "Intel::SUBNET",
	observable.Domain: "Intel::DOMAIN", observable.URL: "Intel::URL", observable.Email: "Intel::EMAIL",
	observable.MD5: "Intel::FILE_HASH", observable.SHA1: "Intel::FILE_HASH", observable.SHA256: "Intel::FILE_HASH", observable.SHA512: "Intel::FILE_HASH",
}

// zeekField makes s safe for a tab-separated Zeek field ("-" when empty).
func zeekField(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// renderZeek writes an Intel framework input file. URLs are written as
// Zeek sees them (host and path, without the scheme).
func renderZeek(w *bufio.Writer, items []Item, o *Options) error {
	w.WriteString("#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\n")
	for _, it := range sortedItems(items, nil) {
		typ, ok := zeekType[it.Kind]
		if !ok {
			continue
		}
		v := it.Value
		if it.Kind == observable.URL {
			if _, rest, ok := strings.Cut(v, "://"); ok {
				v = rest
			}
		}
		src := strings.Join(it.Sources, ",")
		if src == "" {
			src = o.name()
		}
		desc := it.IndicatorID
		if len(it.Labels) > 0 {
			desc += " " + strings.Join(it.Labels, ",")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t-\n", zeekField(v), typ, zeekField(src), zeekField(desc))
	}
	return nil
}

// rpzIP returns the owner name of an rpz-ip trigger for p, relative to
// the zone: prefix length, then the address labels reversed ("zz" for the
// longest run of zero IPv6 words).
func rpzIP(p netip.Prefix) string {
	return string(appendRPZIP(nil, p))
}

// appendRPZIP appends the rpz-ip owner name of p to dst.
func appendRPZIP(dst []byte, p netip.Prefix) []byte {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		dst = strconv.AppendInt(dst, int64(p.Bits()), 10)
		for i := 3; i >= 0; i-- {
			dst = append(dst, '.')
			dst = strconv.AppendUint(dst, uint64(b[i]), 10)
		}
		return append(dst, ".rpz-ip"...)
	}
	return append(dst, rpzIP6(p)...)
}

func rpzIP6(p netip.Prefix) string {
	a := p.Addr()
	b := a.As16()
	words := make([]string, 8)
	for i := range 8 {
		words[i] = strconv.FormatUint(uint64(b[2*i])<<8|uint64(b[2*i+1]), 16)
	}
	// Replace the longest run (at least two) of zero words with "zz".
	bestStart, bestLen := -1, 1
	for i := 0; i < 8; {
		if words[i] != "0" {
			i++
			continue
		}
		j := i
		for j < 8 && words[j] == "0" {
			j++
		}
		if j-i > bestLen {
			bestStart, bestLen = i, j-i
		}
		i = j
	}
	var labels []string
	for i := 7; i >= 0; i-- {
		if bestStart >= 0 && i == bestStart+bestLen-1 {
			labels = append(labels, "zz")
			i = bestStart
			continue
		}
		labels = append(labels, words[i])
	}
	return strconv.Itoa(p.Bits()) + "." + strings.Join(labels, ".") + ".rpz-ip"
}

// renderRPZ writes a Response Policy Zone: NXDOMAIN for each domain and
// its subdomains, and an rpz-ip trigger for each network. URL, e-mail and
// hash items have no RPZ form and are left out; so are names too long to
// fit under the zone's origin.
func renderRPZ(w *bufio.Writer, items []Item, o *Options) error {
	zone := strings.TrimSuffix(o.Zone, ".")
	if zone == "" {
		zone = o.name() + ".rpz"
	}
	now := o.now()
	fmt.Fprintf(w, "$TTL 300\n@ IN SOA localhost. hostmaster.localhost. %d 3600 600 86400 300\n@ IN NS localhost.\n", now.Unix()&0x7fffffff)
	var buf []byte
	for _, p := range Prefixes(items, o.NoAggregate) {
		buf = appendRPZIP(buf[:0], p)
		buf = append(buf, " CNAME .\n"...)
		w.Write(buf)
	}
	maxName := 253 - len(zone) - 1 - 2
	for _, it := range sortedItems(items, isDomain) {
		if len(it.Value) > maxName {
			continue
		}
		w.WriteString(it.Value)
		w.WriteString(" CNAME .\n*.")
		w.WriteString(it.Value)
		w.WriteString(" CNAME .\n")
	}
	return nil
}

// renderHosts writes a hosts file mapping each domain to a sinkhole
// address.
func renderHosts(w *bufio.Writer, items []Item, o *Options) error {
	addr := o.HostsAddress
	if addr == "" {
		addr = "0.0.0.0"
	}
	w.WriteString("# Entente blocklist\n")
	for _, it := range sortedItems(items, isDomain) {
		w.WriteString(addr)
		w.WriteByte(' ')
		w.WriteString(it.Value)
		w.WriteByte('\n')
	}
	return nil
}

// stixIndicator builds the STIX indicator of an item (one per value).
func stixIndicator(it *Item, now string) map[string]any {
	id := it.IndicatorID
	if id == "" {
		id = feed.IndicatorID(it.Kind, it.Value)
	}
	vf := now
	if !it.ValidFrom.IsZero() {
		vf = stix.FormatTimestamp(it.ValidFrom)
	}
	mod := vf
	if !it.Modified.IsZero() {
		mod = stix.FormatTimestamp(it.Modified)
	}
	m := map[string]any{"type": "indicator", "spec_version": "2.1", "id": id, "created": vf, "modified": mod,
		"name": it.Value, "indicator_types": []string{"malicious-activity"}, "pattern": feed.Pattern(it.Kind, it.Value),
		"pattern_type": "stix", "pattern_version": "2.1", "valid_from": vf, "object_marking_refs": []string{it.TLP.MarkingID()}}
	if !it.ValidUntil.IsZero() {
		m["valid_until"] = stix.FormatTimestamp(it.ValidUntil)
	}
	if it.Confidence > 0 {
		m["confidence"] = it.Confidence
	}
	if len(it.Labels) > 0 {
		m["labels"] = it.Labels
	}
	var refs []feed.ExtRef
	for _, s := range it.Sources {
		refs = append(refs, feed.ExtRef{SourceName: s})
	}
	if len(refs) > 0 {
		m["external_references"] = refs
	}
	return m
}

// renderSTIX writes a STIX 2.1 bundle of the items' indicators (items of
// one indicator are written once, with the first item's metadata) and the
// TLP marking definitions they use.
func renderSTIX(w *bufio.Writer, items []Item, o *Options) error {
	now := stix.FormatTimestamp(o.now())
	fmt.Fprintf(w, `{"type":"bundle","id":"bundle--%s","objects":[`, uuid.New())
	first := true
	tlps := map[stix.TLP]bool{}
	seen := map[string]bool{}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, it := range sortedItems(items, nil) {
		m := stixIndicator(it, now)
		id := m["id"].(string)
		if seen[id] {
			continue
		}
		seen[id] = true
		tlps[it.TLP] = true
		if !first {
			w.WriteByte(',')
		}
		first = false
		w.WriteByte('\n')
		if err := enc.Encode(m); err != nil {
			return err
		}
	}
	for t := stix.TLPClear; t <= stix.TLPRed; t++ {
		if tlps[t] {
			if !first {
				w.WriteByte(',')
			}
			first = false
			w.WriteByte('\n')
			w.Write(stix.TLPMarkingObject(t))
		}
	}
	w.WriteString("\n]}\n")
	return nil
}
