package observable

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		kind     Kind
		in       string
		wantKind Kind
		want     string
	}{
		{IPv4, "1.2.3.4", IPv4, "1.2.3.4"},
		{IPv4, " 10.0.0.1 ", IPv4, "10.0.0.1"},
		{IPv4, "10.1.2.3/8", CIDR4, "10.0.0.0/8"},
		{IPv4, "10.1.2.3/32", IPv4, "10.1.2.3"},
		{IPv6, "2001:DB8::1", IPv6, "2001:db8::1"},
		{IPv6, "::ffff:1.2.3.4", IPv4, "1.2.3.4"},
		{IPv6, "2001:db8:0:0:0:0:0:1/32", CIDR6, "2001:db8::/32"},
		{CIDR6, "2001:db8::1/128", IPv6, "2001:db8::1"},
		{CIDR4, "192.168.1.77/24", CIDR4, "192.168.1.0/24"},
		{Domain, "Evil.COM.", Domain, "evil.com"},
		{Domain, "bücher.example", Domain, "xn--bcher-kva.example"},
		{Domain, "_dmarc.example.org", Domain, "_dmarc.example.org"},
		{URL, "HTTP://Evil.COM:80/a/B?x=1#frag", URL, "http://evil.com/a/B?x=1"},
		{URL, "https://evil.com:443", URL, "https://evil.com/"},
		{URL, "https://evil.com:8443/x", URL, "https://evil.com:8443/x"},
		{URL, "evil.com/path", URL, "http://evil.com/path"},
		{URL, "http://user:pw@evil.com/p", URL, "http://evil.com/p"},
		{URL, "http://[2001:DB8::1]:80/x", URL, "http://[2001:db8::1]/x"},
		{URL, "http://evil.com?q", URL, "http://evil.com/?q"},
		{URL, "http://1.2.3.4:8080/x", URL, "http://1.2.3.4:8080/x"},
		{Email, "Bob@Example.COM", Email, "Bob@example.com"},
		{MD5, "D41D8CD98F00B204E9800998ECF8427E", MD5, "d41d8cd98f00b204e9800998ecf8427e"},
		{SHA256, strings.Repeat("AB", 32), SHA256, strings.Repeat("ab", 32)},
	}
	for _, tt := range tests {
		k, got, err := NormalizeKind(tt.kind, tt.in)
		if err != nil {
			t.Errorf("NormalizeKind(%s, %q): %v", tt.kind, tt.in, err)
			continue
		}
		if k != tt.wantKind || got != tt.want {
			t.Errorf("NormalizeKind(%s, %q) = %s %q, want %s %q", tt.kind, tt.in, k, got, tt.wantKind, tt.want)
		}
		// The canonical form is a fixed point.
		if again, err := Normalize(k, got); err != nil || again != got {
			t.Errorf("Normalize(%s, %q) = %q, %v; want it unchanged", k, got, again, err)
		}
	}
}

func TestNormalizeErrors(t *testing.T) {
	tests := []struct {
		kind Kind
		in   string
	}{
		{IPv4, ""},
		{IPv4, "1.2.3"},
		{IPv4, "1.2.3.4/33"},
		{IPv6, "fe80::1%eth0"},
		{Domain, "a..b"},
		{Domain, "evil com"},
		{Domain, strings.Repeat("a", 64) + ".com"},
		{URL, "http://evil.com:99999999/"},
		{URL, "1nvalid scheme://x"},
		{URL, "http://[::1/"},
		{Email, "@example.com"},
		{Email, "bob@"},
		{MD5, "abc"},
		{SHA1, strings.Repeat("g", 40)},
		{"bogus", "x"},
	}
	for _, tt := range tests {
		if got, err := Normalize(tt.kind, tt.in); err == nil {
			t.Errorf("Normalize(%s, %q) = %q, want an error", tt.kind, tt.in, got)
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		in   string
		kind Kind
		want string
	}{
		{"1.2.3.4", IPv4, "1.2.3.4"},
		{"10.0.0.0/8", CIDR4, "10.0.0.0/8"},
		{"2001:db8::/32", CIDR6, "2001:db8::/32"},
		{"2001:DB8::5", IPv6, "2001:db8::5"},
		{"Evil.com", Domain, "evil.com"},
		{"evil.com/x.exe", URL, "http://evil.com/x.exe"},
		{"https://evil.com/", URL, "https://evil.com/"},
		{"bob@evil.com", Email, "bob@evil.com"},
		{strings.Repeat("a", 32), MD5, strings.Repeat("a", 32)},
		{strings.Repeat("B", 40), SHA1, strings.Repeat("b", 40)},
		{strings.Repeat("c", 64), SHA256, strings.Repeat("c", 64)},
		{strings.Repeat("d", 128), SHA512, strings.Repeat("d", 128)},
	}
	for _, tt := range tests {
		k, got, err := Detect(tt.in)
		if err != nil || k != tt.kind || got != tt.want {
			t.Errorf("Detect(%q) = %s %q %v, want %s %q", tt.in, k, got, err, tt.kind, tt.want)
		}
	}
	for _, bad := range []string{"", "localhost", "not a value", "abc def.com"} {
		if k, got, err := Detect(bad); err == nil {
			t.Errorf("Detect(%q) = %s %q, want an error", bad, k, got)
		}
	}
}

func TestFromComparison(t *testing.T) {
	tests := []struct {
		typ, path string
		want      Kind
		ok        bool
	}{
		{"ipv4-addr", "value", IPv4, true},
		{"ipv6-addr", "value", IPv6, true},
		{"domain-name", "value", Domain, true},
		{"url", "value", URL, true},
		{"email-addr", "value", Email, true},
		{"email-message", "from_ref.value", Email, true},
		{"file", "hashes.SHA-256", SHA256, true},
		{"file", "hashes.'SHA-1'", SHA1, true},
		{"file", "hashes.md5", MD5, true},
		{"file", "hashes.SHA-512", SHA512, true},
		{"file", "hashes.SSDEEP", "", false},
		{"file", "name", "", false},
		{"process", "name", "", false},
		{"ipv4-addr", "resolves_to_refs", "", false},
	}
	for _, tt := range tests {
		got, ok := FromComparison(tt.typ, tt.path)
		if got != tt.want || ok != tt.ok {
			t.Errorf("FromComparison(%q, %q) = %q, %v; want %q, %v", tt.typ, tt.path, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "10.0.0.0/8", "::1", "evil.com", "http://Evil.com:80/x#y", "bob@x.org",
		"d41d8cd98f00b204e9800998ecf8427e", "bücher.example", "http://[::1]:8080/", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, k := range Kinds {
			nk, n, err := NormalizeKind(k, v)
			if err != nil {
				continue
			}
			// Canonical forms are fixed points of normalisation.
			nk2, n2, err := NormalizeKind(nk, n)
			if err != nil || n2 != n || nk2 != nk {
				t.Fatalf("NormalizeKind(%s, %q) = %s %q, but normalising that gives %s %q %v", k, v, nk, n, nk2, n2, err)
			}
		}
		if k, n, err := Detect(v); err == nil {
			if n2, err := Normalize(k, n); err != nil || n2 != n {
				t.Fatalf("Detect(%q) = %s %q, not a fixed point: %q %v", v, k, n, n2, err)
			}
		}
	})
}
