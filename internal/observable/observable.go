// Package observable names the kinds of observable values that indicators
// match on (IP addresses and networks, domain names, URLs, e-mail
// addresses and file hashes) and puts each value into one canonical form,
// so that an indicator's value and a value read from a log compare equal
// exactly when they denote the same thing.
//
// The canonical forms are:
//
//   - ipv4, ipv6: the address as [netip.Addr.String] writes it (IPv4-mapped
//     IPv6 addresses are unmapped to IPv4);
//   - cidr4, cidr6: the masked prefix as [netip.Prefix.String] writes it;
//   - domain: lower case, IDNA (punycode) A-labels, no trailing dot;
//   - url: scheme and host in lower case, the host as a domain (or IP),
//     the scheme's default port dropped, no fragment, "/" for an empty path;
//   - email: the local part as given, the domain as a domain;
//   - md5, sha1, sha256, sha512: lower-case hexadecimal of the right length.
package observable

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// Kind is the kind of an observable value.
type Kind string

// The kinds of observable values.
const (
	IPv4   Kind = "ipv4"
	IPv6   Kind = "ipv6"
	CIDR4  Kind = "cidr4"
	CIDR6  Kind = "cidr6"
	Domain Kind = "domain"
	URL    Kind = "url"
	Email  Kind = "email"
	MD5    Kind = "md5"
	SHA1   Kind = "sha1"
	SHA256 Kind = "sha256"
	SHA512 Kind = "sha512"
)

// Kinds lists every kind, in a fixed order.
var Kinds = []Kind{IPv4, IPv6, CIDR4, CIDR6, Domain, URL, Email, MD5, SHA1, SHA256, SHA512}

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown observable kind %q (want one of ipv4, ipv6, cidr4, cidr6, domain, url, email, md5, sha1, sha256, sha512)", s)
}

// HashLen returns the length in bytes of a hash of kind k, or 0 when k is
// not a hash kind.
func HashLen(k Kind) int {
	switch k {
	case MD5:
		return 16
	case SHA1:
		return 20
	case SHA256:
		return 32
	case SHA512:
		return 64
	}
	return 0
}

// maxValueLen bounds the length of any value (a URL can be long; nothing
// legitimate is longer than this).
const maxValueLen = 8192

// Normalize returns the canonical form of v as an observable of kind k, or
// an error saying why v is not one. For ipv4 and ipv6, a value written
// with a prefix length is accepted: "/32" and "/128" denote the address
// itself, a shorter prefix is returned as a masked network (use
// [NormalizeKind] to learn the refined kind).
func Normalize(k Kind, v string) (string, error) {
	_, n, err := NormalizeKind(k, v)
	return n, err
}

// NormalizeKind is [Normalize] that also returns the refined kind of the
// value: an ipv4 value that is a network is a cidr4, a cidr4 value that is
// a single address (/32) is an ipv4, an IPv4-mapped IPv6 address is an
// ipv4, and so on.
func NormalizeKind(k Kind, v string) (Kind, string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", "", fmt.Errorf("empty %s value", k)
	}
	if len(v) > maxValueLen {
		return "", "", fmt.Errorf("%s value is %d bytes long (at most %d)", k, len(v), maxValueLen)
	}
	switch k {
	case IPv4, IPv6, CIDR4, CIDR6:
		nk, n, err := normalizeIPOrPrefix(v)
		if err != nil {
			return "", "", fmt.Errorf("%s value %q: %w", k, v, err)
		}
		return nk, n, nil
	case Domain:
		n, err := normalizeDomain(v)
		if err != nil {
			return "", "", fmt.Errorf("domain %q: %w", v, err)
		}
		return Domain, n, nil
	case URL:
		n, err := normalizeURL(v)
		if err != nil {
			return "", "", fmt.Errorf("url %q: %w", v, err)
		}
		return URL, n, nil
	case Email:
		n, err := normalizeEmail(v)
		if err != nil {
			return "", "", fmt.Errorf("email %q: %w", v, err)
		}
		return Email, n, nil
	case MD5, SHA1, SHA256, SHA512:
		n, err := normalizeHash(k, v)
		if err != nil {
			return "", "", fmt.Errorf("%s %q: %w", k, v, err)
		}
		return k, n, nil
	}
	return "", "", fmt.Errorf("unknown observable kind %q", k)
}

func normalizeIPOrPrefix(v string) (Kind, string, error) {
	if strings.IndexByte(v, '/') >= 0 {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return "", "", errors.New("not an IP network")
		}
		a := p.Addr()
		if a.Zone() != "" {
			return "", "", errors.New("IP address with a zone")
		}
		bits := p.Bits()
		if a.Is4In6() && bits >= 96 {
			a = a.Unmap()
			bits -= 96
		}
		if a.Is4() {
			if bits == 32 {
				return IPv4, a.String(), nil
			}
			return CIDR4, netip.PrefixFrom(a, bits).Masked().String(), nil
		}
		if bits == 128 {
			return IPv6, a.String(), nil
		}
		return CIDR6, netip.PrefixFrom(a, bits).Masked().String(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return "", "", errors.New("not an IP address")
	}
	if a.Zone() != "" {
		return "", "", errors.New("IP address with a zone")
	}
	a = a.Unmap()
	if a.Is4() {
		return IPv4, a.String(), nil
	}
	return IPv6, a.String(), nil
}

// idnaProfile converts internationalised names to A-labels without the
// STD3 rules, which would reject the underscores found in real DNS names.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false))

// normalizeDomain lower-cases v, converts it to A-labels and checks its
// shape: labels of letters, digits, '-' and '_', 1 to 63 bytes each, at
// most 253 bytes in all, no trailing dot.
func normalizeDomain(v string) (string, error) {
	v = strings.TrimSuffix(v, ".")
	ascii := true
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		v = strings.ToLower(v)
	} else {
		a, err := idnaProfile.ToASCII(v)
		if err != nil {
			return "", fmt.Errorf("not a valid internationalised domain name: %v", err)
		}
		v = strings.ToLower(a)
	}
	if err := checkDomain(v); err != nil {
		return "", err
	}
	return v, nil
}

func checkDomain(v string) error {
	if v == "" {
		return errors.New("empty domain name")
	}
	if len(v) > 253 {
		return fmt.Errorf("domain name is %d bytes long (at most 253)", len(v))
	}
	label := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '.':
			if label == 0 {
				return errors.New("empty label")
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return fmt.Errorf("character %q not allowed in a domain name", c)
		}
		label++
		if label > 63 {
			return errors.New("label longer than 63 bytes")
		}
	}
	if label == 0 {
		return errors.New("empty label")
	}
	return nil
}

// defaultPorts maps schemes to the port that a URL may leave out.
var defaultPorts = map[string]string{"http": "80", "https": "443", "ftp": "21", "ws": "80", "wss": "443"}

// normalizeURL puts v in canonical form. A value without a scheme is taken
// to be an http URL (as plain lists of URLs often write them).
func normalizeURL(v string) (string, error) {
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] == 0x7f {
			return "", fmt.Errorf("control character or space at byte %d", i)
		}
	}
	scheme := "http"
	rest := v
	if i := strings.Index(v, "://"); i >= 0 {
		scheme = strings.ToLower(v[:i])
		if !validScheme(scheme) {
			return "", fmt.Errorf("invalid scheme %q", v[:i])
		}
		rest = v[i+3:]
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	end := strings.IndexAny(rest, "/?")
	authority, path := rest, "/"
	if end >= 0 {
		authority, path = rest[:end], rest[end:]
		if path[0] == '?' {
			path = "/" + path
		}
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:] // user information is not part of what is matched
	}
	host, port := authority, ""
	if strings.HasPrefix(authority, "[") {
		j := strings.IndexByte(authority, ']')
		if j < 0 {
			return "", errors.New("unclosed '[' in host")
		}
		host = authority[1:j]
		tail := authority[j+1:]
		if tail != "" {
			if tail[0] != ':' {
				return "", errors.New("garbage after IPv6 host")
			}
			port = tail[1:]
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", fmt.Errorf("invalid IPv6 host %q", host)
		}
		host = "[" + a.String() + "]"
	} else {
		if i := strings.LastIndexByte(authority, ':'); i >= 0 {
			host, port = authority[:i], authority[i+1:]
		}
		if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
			host = a.String()
		} else {
			h, err := normalizeDomain(host)
			if err != nil {
				return "", fmt.Errorf("host: %w", err)
			}
			host = h
		}
	}
	if port != "" {
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return "", fmt.Errorf("invalid port %q", port)
			}
		}
		port = strings.TrimLeft(port, "0")
		if port == "" {
			port = "0"
		}
		if len(port) > 5 {
			return "", fmt.Errorf("invalid port %q", port)
		}
		if defaultPorts[scheme] == port {
			port = ""
		}
	}
	var b strings.Builder
	b.Grow(len(scheme) + 3 + len(host) + 1 + len(port) + len(path))
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(path)
	return b.String(), nil
}

func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func normalizeEmail(v string) (string, error) {
	i := strings.LastIndexByte(v, '@')
	if i <= 0 || i == len(v)-1 {
		return "", errors.New("not of the form local@domain")
	}
	local := v[:i]
	for j := 0; j < len(local); j++ {
		if local[j] <= ' ' || local[j] == 0x7f || local[j] == '@' && !strings.HasPrefix(local, "\"") {
			return "", fmt.Errorf("character %q not allowed in the local part", local[j])
		}
	}
	d, err := normalizeDomain(v[i+1:])
	if err != nil {
		return "", fmt.Errorf("domain: %w", err)
	}
	return local + "@" + d, nil
}

func normalizeHash(k Kind, v string) (string, error) {
	want := 2 * HashLen(k)
	if len(v) != want {
		return "", fmt.Errorf("%d hex digits, want %d", len(v), want)
	}
	b := []byte(v)
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			b[i] = c + ('a' - 'A')
		default:
			return "", fmt.Errorf("character %q at %d is not a hex digit", c, i)
		}
	}
	return string(b), nil
}

// Detect guesses the kind of a value from a plain list (one value per
// line, as blocklists publish them) and returns it with its canonical
// form. It recognises, in this order: hashes by their hex length (32, 40,
// 64, 128), IP addresses and networks, e-mail addresses, URLs (a scheme,
// or a '/' after a host) and domain names.
func Detect(v string) (Kind, string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", "", errors.New("empty value")
	}
	if len(v) > maxValueLen {
		return "", "", fmt.Errorf("value is %d bytes long (at most %d)", len(v), maxValueLen)
	}
	if isHex(v) {
		var k Kind
		switch len(v) {
		case 32:
			k = MD5
		case 40:
			k = SHA1
		case 64:
			k = SHA256
		case 128:
			k = SHA512
		}
		if k != "" {
			n, err := normalizeHash(k, v)
			return k, n, err
		}
	}
	if k, n, err := normalizeIPOrPrefix(v); err == nil {
		return k, n, nil
	}
	if strings.Contains(v, "://") || strings.ContainsAny(v, "/?") {
		n, err := normalizeURL(v)
		if err != nil {
			return "", "", fmt.Errorf("value %q looks like a URL: %w", v, err)
		}
		return URL, n, nil
	}
	if strings.IndexByte(v, '@') >= 0 {
		n, err := normalizeEmail(v)
		if err != nil {
			return "", "", fmt.Errorf("value %q looks like an e-mail address: %w", v, err)
		}
		return Email, n, nil
	}
	n, err := normalizeDomain(v)
	if err != nil {
		return "", "", fmt.Errorf("value %q is not a hash, IP address, network, URL, e-mail address or domain name: %w", v, err)
	}
	if strings.IndexByte(n, '.') < 0 {
		return "", "", fmt.Errorf("value %q is a single label, not a domain name", v)
	}
	return Domain, n, nil
}

func isHex(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// FromComparison returns the kind of observable that a STIX pattern
// comparison of objectType:path compares, e.g. ("ipv4-addr", "value") is
// ipv4 and ("file", "hashes.SHA-256") is sha256. It reports false for a
// comparison that the matcher does not compile. Hash algorithm names are
// compared without regard to case or hyphens ("SHA-256", "sha256").
func FromComparison(objectType, path string) (Kind, bool) {
	switch objectType {
	case "ipv4-addr":
		if path == "value" {
			return IPv4, true
		}
	case "ipv6-addr":
		if path == "value" {
			return IPv6, true
		}
	case "domain-name":
		if path == "value" {
			return Domain, true
		}
	case "url":
		if path == "value" {
			return URL, true
		}
	case "email-addr":
		if path == "value" {
			return Email, true
		}
	case "email-message":
		switch path {
		case "from_ref.value", "sender_ref.value":
			return Email, true
		}
	case "file", "artifact", "x509-certificate":
		alg, ok := strings.CutPrefix(path, "hashes.")
		if !ok {
			return "", false
		}
		alg = strings.ToLower(strings.ReplaceAll(strings.Trim(alg, "'\""), "-", ""))
		switch alg {
		case "md5":
			return MD5, true
		case "sha1":
			return SHA1, true
		case "sha256":
			return SHA256, true
		case "sha512":
			return SHA512, true
		}
	}
	return "", false
}
