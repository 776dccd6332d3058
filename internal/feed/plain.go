package feed

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/entente-cti/entente/internal/observable"
)

// plain imports a list with one value per line. Besides bare values it
// understands the shapes blocklists are published in: hosts files
// ("0.0.0.0 name"), RPZ zones ("name CNAME ."), BIND zone statements,
// dnsmasq address=/name/, unbound local-zone, adblock ||name^, wildcards
// (*.name), IP:port, "value<TAB>count" and trailing # comments.
func (b *batch) plain(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		b.im.maybeSettle()
		values, ok := plainValues(sc.Text())
		if !ok {
			continue
		}
		for _, v := range values {
			b.res.Stats.Records++
			if isURLPath(v) {
				// A URL path without a host (Maltrail trails): an
				// indicator on HTTP requests for it.
				if err := checkURLPath(v); err != nil {
					b.reject(fmt.Sprintf("%s:line %d", b.name, line), err.Error())
					continue
				}
				b.add(obs{kind: URLPath, value: v, indicator: true, confidence: -1})
				continue
			}
			k, n, err := detect(v)
			if err != nil {
				b.reject(fmt.Sprintf("%s:line %d", b.name, line), err.Error())
				continue
			}
			b.add(obs{kind: k, value: n, indicator: true, confidence: -1})
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return nil
}

// isURLPath reports whether v is a URL path without a host: "/x.php",
// not "//host/x" (a network-path reference).
func isURLPath(v string) bool {
	return strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "//")
}

// maxURLPath bounds a URL path's length (servers refuse request lines
// much longer).
const maxURLPath = 8192

// checkURLPath checks that v can be an HTTP request target in origin form
// (RFC 9112, 3.2.1): visible ASCII only, no fragment.
func checkURLPath(v string) error {
	if len(v) > maxURLPath {
		return fmt.Errorf("URL path of %d bytes is longer than %d", len(v), maxURLPath)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return fmt.Errorf("URL path %q: byte %d (%q) cannot be in an HTTP request target", v, i, c)
		}
	}
	return nil
}

// detect is observable.Detect that also accepts IP:port and [IPv6]:port
// (the port is dropped) and wildcard names.
func detect(v string) (observable.Kind, string, error) {
	v = strings.TrimPrefix(v, "*.")
	if i := strings.LastIndexByte(v, ':'); i > 0 && isPort(v[i+1:]) {
		host := strings.Trim(v[:i], "[]")
		if a, err := netip.ParseAddr(host); err == nil && (a.Is4() || strings.HasPrefix(v, "[")) {
			v = host
		}
	}
	return observable.Detect(v)
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535 && len(s) <= 5
}

var sinkholes = map[string]bool{"0.0.0.0": true, "127.0.0.1": true, "::": true, "::1": true, "0": true}

// plainValues extracts the values of one line; ok is false for blank,
// comment and zone-header lines.
func plainValues(line string) (vals []string, ok bool) {
	s := strings.TrimSpace(line)
	if s == "" {
		return nil, false
	}
	switch s[0] {
	case '#', '!', ';', '$', '@':
		return nil, false
	}
	if strings.HasPrefix(s, "//") {
		return nil, false
	}
	if i := strings.Index(s, " #"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	} else if i := strings.Index(s, "\t#"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	switch {
	case strings.HasPrefix(s, "||"):
		s = s[2:]
		if i := strings.IndexAny(s, "^$"); i >= 0 {
			s = s[:i]
		}
		return []string{s}, s != ""
	case strings.HasPrefix(s, "address=/"), strings.HasPrefix(s, "server=/"), strings.HasPrefix(s, "local=/"):
		parts := strings.Split(s, "/")
		if len(parts) >= 2 && parts[1] != "" {
			return []string{parts[1]}, true
		}
		return nil, false
	case strings.HasPrefix(s, "local-zone:"), strings.HasPrefix(s, "zone "):
		i := strings.IndexByte(s, '"')
		j := -1
		if i >= 0 {
			j = strings.IndexByte(s[i+1:], '"')
		}
		if j <= 0 {
			return []string{s}, true // rejected with its reason later
		}
		return []string{s[i+1 : i+1+j]}, true
	case strings.HasPrefix(s, "local-data:"):
		return nil, false
	}
	f := strings.Fields(s)
	if len(f) == 1 {
		return f, true
	}
	switch strings.ToUpper(f[0]) {
	case "NS", "SOA", "IN", "TXT", "MX":
		return nil, false
	}
	// RPZ and zone records: owner [ttl] [IN] type rdata.
	for i := 1; i < len(f) && i <= 3; i++ {
		switch strings.ToUpper(f[i]) {
		case "CNAME", "A", "AAAA":
			return []string{rpzOwner(f[0])}, true
		case "NS", "SOA", "TXT", "MX":
			return nil, false
		}
	}
	if sinkholes[f[0]] {
		var out []string
		for _, h := range f[1:] {
			if h != "localhost" && h != "localhost.localdomain" && h != "local" && h != "broadcasthost" {
				out = append(out, h)
			}
		}
		return out, len(out) > 0
	}
	return f[:1], true
}

// rpzOwner turns an RPZ owner name into the value it blocks: the name
// itself (a leading "*." dropped, a trailing dot too), or for an rpz-ip
// trigger ("32.4.3.2.1.rpz-ip") the address or network.
func rpzOwner(owner string) string {
	o := strings.TrimSuffix(owner, ".")
	o = strings.TrimPrefix(o, "*.")
	if rest, ok := strings.CutSuffix(o, ".rpz-ip"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) == 5 {
			return labels[4] + "." + labels[3] + "." + labels[2] + "." + labels[1] + "/" + labels[0]
		}
	}
	return o
}
