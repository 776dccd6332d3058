package export

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"

	"github.com/entente-cti/entente/internal/observable"
)

// suriContent escapes s for a Suricata content string: the characters
// the rule parser treats specially are written as hex bytes.
func suriContent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', ';', '\\', '|', ':':
			fmt.Fprintf(&b, "|%02X|", c)
		default:
			if c < 0x20 || c >= 0x7f {
				fmt.Fprintf(&b, "|%02X|", c)
				continue
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

// suriMsg makes s safe for a msg option.
func suriMsg(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '"', ';', '\\', '\n', '\r':
			return '_'
		}
		if r < 0x20 || r >= 0x7f {
			return '_'
		}
		return r
	}, s)
}

// sids hands out signature ids: stable per value (a hash into a range of
// ten million above the base), probing past collisions.
type sids struct {
	base int
	used map[int]bool
}

func newSIDs(base int) *sids {
	if base <= 0 {
		base = 8_800_000
	}
	return &sids{base: base, used: map[int]bool{}}
}

func (s *sids) next(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	n := int(h.Sum32() % 10_000_000)
	for s.used[n] {
		n = (n + 1) % 10_000_000
	}
	s.used[n] = true
	return s.base + n
}

// ipRuleChunk is the number of networks per IP rule.
const ipRuleChunk = 200

// renderSuricata writes Suricata rules: IP networks in groups (traffic to
// or from them), a DNS-query, TLS-SNI and HTTP-host rule per domain
// (matching it and its subdomains), an HTTP rule per URL (host and path),
// and a file-hash rule per hash list is left to the datasets format.
func renderSuricata(w *bufio.Writer, items []Item, o *Options) error {
	action := o.Action
	if action == "" {
		action = "alert"
	}
	if action != "alert" && action != "drop" && action != "reject" {
		return fmt.Errorf("suricata action %q (want alert, drop or reject)", action)
	}
	ids := newSIDs(o.SIDBase)
	name := suriMsg(o.name())
	ps := Prefixes(items, o.NoAggregate)
	for i := 0; i < len(ps); i += ipRuleChunk {
		chunk := ps[i:min(i+ipRuleChunk, len(ps))]
		var list bytes.Buffer
		for j, p := range chunk {
			if j > 0 {
				list.WriteByte(',')
			}
			list.Write(p.AppendTo(nil))
		}
		key := chunk[0].String()
		fmt.Fprintf(w, "%s ip [%s] any -> $HOME_NET any (msg:\"%s blocklist: traffic from listed address (group %d)\"; threshold:type limit, track by_src, count 1, seconds 3600; classtype:misc-attack; sid:%d; rev:1;)\n",
			action, list.String(), name, i/ipRuleChunk+1, ids.next("src "+key))
		fmt.Fprintf(w, "%s ip $HOME_NET any -> [%s] any (msg:\"%s blocklist: traffic to listed address (group %d)\"; threshold:type limit, track by_dst, count 1, seconds 3600; classtype:trojan-activity; sid:%d; rev:1;)\n",
			action, list.String(), name, i/ipRuleChunk+1, ids.next("dst "+key))
	}
	for _, it := range sortedItems(items, nil) {
		meta := ""
		if it.IndicatorID != "" {
			meta = " metadata:entente_indicator " + it.IndicatorID + ";"
		}
		switch it.Kind {
		case observable.Domain:
			c := suriContent("." + it.Value)
			fmt.Fprintf(w, "%s dns $HOME_NET any -> any any (msg:\"%s blocklist: DNS query for %s\"; dns.query; dotprefix; content:\"%s\"; nocase; endswith;%s classtype:trojan-activity; sid:%d; rev:1;)\n",
				action, name, suriMsg(it.Value), c, meta, ids.next("dns "+it.Value))
			fmt.Fprintf(w, "%s tls $HOME_NET any -> any any (msg:\"%s blocklist: TLS SNI %s\"; tls.sni; dotprefix; content:\"%s\"; nocase; endswith;%s classtype:trojan-activity; sid:%d; rev:1;)\n",
				action, name, suriMsg(it.Value), c, meta, ids.next("tls "+it.Value))
			fmt.Fprintf(w, "%s http $HOME_NET any -> any any (msg:\"%s blocklist: HTTP host %s\"; http.host; dotprefix; content:\"%s\"; endswith;%s classtype:trojan-activity; sid:%d; rev:1;)\n",
				action, name, suriMsg(it.Value), c, meta, ids.next("http "+it.Value))
		case observable.URL:
			host, path := splitURL(it.Value)
			if host == "" {
				continue
			}
			fmt.Fprintf(w, "%s http $HOME_NET any -> any any (msg:\"%s blocklist: URL %s\"; http.host; content:\"%s\"; bsize:%d; http.uri; content:\"%s\"; startswith;%s classtype:trojan-activity; sid:%d; rev:1;)\n",
				action, name, suriMsg(it.Value), suriContent(host), len(host), suriContent(path), meta, ids.next("url "+it.Value))
		}
	}
	return nil
}

// splitURL splits a normalised URL into host (without a default port)
// and path with query.
func splitURL(u string) (host, path string) {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return "", ""
	}
	i := strings.IndexAny(rest, "/?")
	if i < 0 {
		return rest, "/"
	}
	return rest[:i], rest[i:]
}

// suricataDatasets renders Suricata datasets: one list file per kind
// (domains as base64 strings, addresses as ipv4/ipv6 datasets, hashes in
// the filemd5/filesha1/filesha256 list format) and a rules file that
// loads them.
func suricataDatasets(items []Item, o *Options) ([]File, error) {
	action := o.Action
	if action == "" {
		action = "alert"
	}
	name := o.name()
	ids := newSIDs(o.SIDBase)
	lists := map[string]*bytes.Buffer{}
	buf := func(n string) *bytes.Buffer {
		if lists[n] == nil {
			lists[n] = new(bytes.Buffer)
		}
		return lists[n]
	}
	var v4, v6 []netip.Prefix
	for _, it := range sortedItems(items, nil) {
		switch it.Kind {
		case observable.IPv4:
			v4 = append(v4, netip.PrefixFrom(netip.MustParseAddr(it.Value), 32))
		case observable.IPv6:
			v6 = append(v6, netip.PrefixFrom(netip.MustParseAddr(it.Value), 128))
		case observable.Domain:
			b := buf(name + "-domains.lst")
			b.WriteString(base64.StdEncoding.EncodeToString([]byte(it.Value)))
			b.WriteByte('\n')
		case observable.MD5, observable.SHA1, observable.SHA256:
			b := buf(name + "-" + string(it.Kind) + ".txt")
			b.WriteString(it.Value)
			b.WriteByte('\n')
		}
	}
	for _, p := range v4 {
		b := buf(name + "-ipv4.lst")
		b.WriteString(p.Addr().String())
		b.WriteByte('\n')
	}
	for _, p := range v6 {
		b := buf(name + "-ipv6.lst")
		b.WriteString(p.Addr().String())
		b.WriteByte('\n')
	}
	var rules bytes.Buffer
	ds := func(proto, buffer, set, typ, file, what string) {
		fmt.Fprintf(&rules, "%s %s any any -> any any (msg:\"%s blocklist: %s\"; %s; dataset:isset,%s,type %s,load %s; classtype:trojan-activity; sid:%d; rev:1;)\n",
			action, proto, suriMsg(name), what, buffer, set, typ, file, ids.next(set+" "+buffer))
	}
	if lists[name+"-domains.lst"] != nil {
		f := name + "-domains.lst"
		ds("dns", "dns.query", name+"-domains", "string", f, "DNS query for a listed domain")
		ds("tls", "tls.sni", name+"-domains", "string", f, "TLS SNI of a listed domain")
		ds("http", "http.host", name+"-domains", "string", f, "HTTP host of a listed domain")
	}
	if lists[name+"-ipv4.lst"] != nil {
		f := name + "-ipv4.lst"
		ds("ip", "ip.src", name+"-ipv4", "ipv4", f, "traffic from a listed IPv4 address")
		ds("ip", "ip.dst", name+"-ipv4", "ipv4", f, "traffic to a listed IPv4 address")
	}
	if lists[name+"-ipv6.lst"] != nil {
		f := name + "-ipv6.lst"
		ds("ip", "ip.src", name+"-ipv6", "ipv6", f, "traffic from a listed IPv6 address")
		ds("ip", "ip.dst", name+"-ipv6", "ipv6", f, "traffic to a listed IPv6 address")
	}
	for _, k := range []observable.Kind{observable.MD5, observable.SHA1, observable.SHA256} {
		f := name + "-" + string(k) + ".txt"
		if lists[f] != nil {
			fmt.Fprintf(&rules, "%s http any any -> any any (msg:\"%s blocklist: file with a listed %s\"; file%s:%s; classtype:trojan-activity; sid:%d; rev:1;)\n",
				action, suriMsg(name), strings.ToUpper(string(k)), k, f, ids.next("file"+string(k)))
		}
	}
	files := []File{{Name: name + "-datasets.rules", Data: rules.Bytes()}}
	for _, n := range sortedKeys(lists) {
		files = append(files, File{Name: n, Data: lists[n].Bytes()})
	}
	return files, nil
}
