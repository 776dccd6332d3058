package match

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
)

// recordObjects builds the cyber-observable objects of one log record
// (Zeek, by its field names, or Suricata EVE): the connection as
// network-traffic with its addresses, ports, protocols, byte and packet
// counts and HTTP request; names queried or served as domain-name; the
// HTTP URL; DNS answers; files by hashes, name and size; TLS
// certificates by fingerprint; e-mail addresses. setSep splits Zeek set
// fields (0 for JSON). Object ids are local to the record.
func recordObjects(rec map[string]any, setSep byte) []map[string]any {
	b := &scoBuilder{rec: rec, sep: setSep}
	_, b.eve = rec["event_type"]
	return b.build()
}

type scoBuilder struct {
	rec  map[string]any
	sep  byte
	objs []map[string]any
	n    int
	eve  bool // a Suricata EVE record, whose top-level names are not Zeek's
}

// zeekOnly lists the Zeek names that mean something else (or nothing)
// at the top of an EVE record ("host" is the sensor's name there).
var zeekOnly = map[string]bool{"host": true, "uri": true, "method": true, "query": true, "answers": true,
	"from": true, "to": true, "service": true, "user_agent": true, "server_name": true, "filename": true,
	"md5": true, "sha1": true, "sha256": true, "mime_type": true, "total_bytes": true, "seen_bytes": true,
	"mailfrom": true, "rcptto": true, "tx_hosts": true, "rx_hosts": true, "src": true, "dst": true, "orig_bytes": true, "resp_bytes": true, "orig_pkts": true, "resp_pkts": true}

// field returns the value at path: a Zeek name with dots ("id.orig_h")
// or a path into nested JSON ("http.hostname").
func (b *scoBuilder) field(path string) any {
	if b.eve && zeekOnly[path] {
		return nil
	}
	if v, ok := b.rec[path]; ok {
		return v
	}
	if !strings.Contains(path, ".") {
		return nil
	}
	var cur any = b.rec
	for rest := path; rest != ""; {
		var k string
		k, rest, _ = strings.Cut(rest, ".")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// str returns the first of paths that holds a string (or number), as a
// string.
func (b *scoBuilder) str(paths ...string) string {
	for _, p := range paths {
		switch v := b.field(p).(type) {
		case string:
			if v != "" {
				return v
			}
		case json.Number:
			return v.String()
		}
	}
	return ""
}

// strs returns every string that paths hold: Zeek sets split, JSON arrays
// flattened, a path through an array of objects followed in each.
func (b *scoBuilder) strs(paths ...string) []string {
	var out []string
	var walk func(v any, rest string)
	walk = func(v any, rest string) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				walk(e, rest)
			}
		case map[string]any:
			if rest != "" {
				k, more, _ := strings.Cut(rest, ".")
				walk(v[k], more)
			}
		case string:
			if rest != "" {
				return
			}
			if b.sep != 0 {
				for _, s := range strings.Split(v, string(b.sep)) {
					if s != "" {
						out = append(out, s)
					}
				}
			} else if v != "" {
				out = append(out, v)
			}
		}
	}
	for _, p := range paths {
		if b.eve && zeekOnly[p] {
			continue
		}
		if v, ok := b.rec[p]; ok {
			walk(v, "")
			continue
		}
		if k, more, ok := strings.Cut(p, "."); ok {
			walk(b.rec[k], more)
		}
	}
	return out
}

// sourced names a property of an object and the Zeek and EVE fields that
// give it.
type sourced struct{ prop, zeek, eve string }

var trafficNumbers = []sourced{
	{"src_port", "id.orig_p", "src_port"},
	{"dst_port", "id.resp_p", "dest_port"},
	{"src_byte_count", "orig_bytes", "flow.bytes_toserver"},
	{"dst_byte_count", "resp_bytes", "flow.bytes_toclient"},
	{"src_packets", "orig_pkts", "flow.pkts_toserver"},
	{"dst_packets", "resp_pkts", "flow.pkts_toclient"},
}

var fileHashes = []sourced{{"MD5", "md5", "fileinfo.md5"}, {"SHA-1", "sha1", "fileinfo.sha1"}, {"SHA-256", "sha256", "fileinfo.sha256"}}

func number(s string) any {
	if s == "" {
		return nil
	}
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return nil
	}
	return json.Number(s)
}

func (b *scoBuilder) add(o map[string]any) string {
	id := o["type"].(string) + "--" + strconv.Itoa(b.n)
	b.n++
	o["id"] = id
	b.objs = append(b.objs, o)
	return id
}

// addr adds an address object (once per address) and returns its id,
// or "" when v is not an address.
func (b *scoBuilder) addr(v string) string {
	a, err := netip.ParseAddr(v)
	if err != nil {
		return ""
	}
	a = a.WithZone("").Unmap()
	typ := "ipv6-addr"
	if a.Is4() {
		typ = "ipv4-addr"
	}
	s := a.String()
	if id := b.made(typ, s); id != "" {
		return id
	}
	return b.add(map[string]any{"type": typ, "value": s})
}

// made returns the id of the object of type typ and value v made
// already, or "". A record makes few objects: a scan beats a map.
func (b *scoBuilder) made(typ, v string) string {
	for _, o := range b.objs {
		if o["type"] == typ && o["value"] == v {
			return o["id"].(string)
		}
	}
	return ""
}

func (b *scoBuilder) domain(v string) {
	v = strings.TrimSuffix(strings.ToLower(v), ".")
	if v == "" || b.made("domain-name", v) != "" {
		return
	}
	if _, err := netip.ParseAddr(v); err == nil {
		b.addr(v)
		return
	}
	b.add(map[string]any{"type": "domain-name", "value": v})
}

func (b *scoBuilder) build() []map[string]any {
	// The connection.
	src := b.addr(b.str("id.orig_h", "src_ip"))
	dst := b.addr(b.str("id.resp_h", "dest_ip"))
	if src != "" || dst != "" {
		nt := map[string]any{"type": "network-traffic"}
		if src != "" {
			nt["src_ref"] = src
		}
		if dst != "" {
			nt["dst_ref"] = dst
		}
		for _, f := range trafficNumbers {
			if n := number(b.str(f.zeek, f.eve)); n != nil {
				nt[f.prop] = n
			}
		}
		var protos []any
		if p := b.str("proto"); p != "" {
			protos = append(protos, strings.ToLower(p))
		}
		for _, s := range b.strs("service", "app_proto") {
			if s = strings.ToLower(s); s != "failed" && s != "unknown" {
				protos = append(protos, s)
			}
		}
		if len(protos) > 0 {
			nt["protocols"] = protos
		}
		req := map[string]any{}
		hdr := map[string]any{}
		if m := b.str("method", "http.http_method"); m != "" {
			req["request_method"] = m
		}
		if u := b.str("uri", "http.url"); u != "" {
			req["request_value"] = u
		}
		if h := b.str("host", "http.hostname"); h != "" {
			hdr["Host"] = h
		}
		if ua := b.str("user_agent", "http.http_user_agent"); ua != "" {
			hdr["User-Agent"] = ua
		}
		if len(hdr) > 0 {
			req["request_header"] = hdr
		}
		if len(req) > 0 {
			nt["extensions"] = map[string]any{"http-request-ext": req}
		}
		b.add(nt)
	}
	// Names and URLs.
	for _, d := range b.strs("query", "dns.rrname", "dns.queries.rrname", "server_name", "tls.sni") {
		b.domain(d)
	}
	if h := b.str("host", "http.hostname"); h != "" {
		b.domain(string(hostOnly([]byte(h))))
		if u := b.str("uri", "http.url"); strings.HasPrefix(u, "/") {
			b.add(map[string]any{"type": "url", "value": "http://" + h + u})
		} else if strings.Contains(u, "://") {
			b.add(map[string]any{"type": "url", "value": u})
		}
	}
	// Other addresses a record names (Zeek files.log transfer hosts,
	// notice.log's src and dst).
	for _, a := range b.strs("tx_hosts", "rx_hosts", "src", "dst") {
		b.addr(a)
	}
	for _, a := range b.strs("answers", "dns.answers.rdata", "dns.grouped.A", "dns.grouped.AAAA", "dns.grouped.CNAME", "dns.rdata") {
		if b.addr(a) == "" {
			b.domain(a)
		}
	}
	// Files.
	hashes := map[string]any{}
	for _, f := range fileHashes {
		if h := b.str(f.zeek, f.eve); h != "" {
			hashes[f.prop] = strings.ToLower(h)
		}
	}
	if len(hashes) > 0 {
		f := map[string]any{"type": "file", "hashes": hashes}
		if n := b.str("filename", "fileinfo.filename"); n != "" {
			f["name"] = n
		}
		if s := number(b.str("total_bytes", "seen_bytes", "fileinfo.size")); s != nil {
			f["size"] = s
		}
		if m := b.str("mime_type"); m != "" {
			f["mime_type"] = m
		}
		b.add(f)
	}
	if fp := b.str("tls.fingerprint"); fp != "" {
		b.add(map[string]any{"type": "x509-certificate", "hashes": map[string]any{"SHA-1": strings.ToLower(strings.ReplaceAll(fp, ":", ""))}})
	}
	// E-mail addresses.
	for _, e := range b.strs("mailfrom", "rcptto", "from", "to", "smtp.mail_from", "smtp.rcpt_to", "email.from", "email.to") {
		if i := strings.LastIndexByte(e, '<'); i >= 0 {
			e = e[i+1:]
		}
		e = strings.Trim(e, "<> ")
		if strings.Contains(e, "@") && b.made("email-addr", e) == "" {
			b.add(map[string]any{"type": "email-addr", "value": e})
		}
	}
	return b.objs
}
