package blind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/entente-cti/entente/internal/observable"
)

// Params fix how networks become OPRF inputs. A network indicator is
// expanded into the prefixes that cover it at the shortest length of the
// list that is at least its own length (a /13 with lengths 8, 16, 24
// becomes eight /16s; a /25 becomes its 128 addresses); a partner asks for
// an address at every length of the list besides the address itself. More
// lengths mean fewer inputs per network and more evaluations per address.
type Params struct {
	// V4Lengths and V6Lengths are the prefix lengths, strictly
	// increasing, shorter than the address (1-31 and 1-127).
	V4Lengths []int `json:"v4_lengths"`
	V6Lengths []int `json:"v6_lengths"`
}

// DefaultParams returns lengths that suit the network blocklists seen in
// practice: IPv4 /8, /16, /24 (at most 128 inputs per network, three
// prefix evaluations per address, most of them shared between the
// addresses of a log) and IPv6 every 8 bits from /24 to /64.
func DefaultParams() Params {
	return Params{V4Lengths: []int{8, 16, 24}, V6Lengths: []int{24, 32, 40, 48, 56, 64}}
}

// MaxExpansion is the most inputs one network may expand into. A network
// that would need more (an IPv6 /96 between /64 and /128, say) is refused
// with an error naming it.
const MaxExpansion = 4096

// maxLengths bounds the number of prefix lengths of each family.
const maxLengths = 16

// Validate checks the lengths.
func (p Params) Validate() error {
	if err := checkLengths("v4_lengths", p.V4Lengths, 32); err != nil {
		return err
	}
	return checkLengths("v6_lengths", p.V6Lengths, 128)
}

func checkLengths(field string, l []int, bits int) error {
	if len(l) > maxLengths {
		return fmt.Errorf("%s: %d lengths (at most %d)", field, len(l), maxLengths)
	}
	for i, n := range l {
		if n < 1 || n >= bits {
			return fmt.Errorf("%s: length %d out of range 1-%d", field, n, bits-1)
		}
		if i > 0 && n <= l[i-1] {
			return fmt.Errorf("%s: lengths must be strictly increasing (%d after %d)", field, n, l[i-1])
		}
	}
	return nil
}

// Input tags: the first bytes of an OPRF input name the kind of its value,
// so that equal strings of different kinds never collide.
const (
	tagIPv4   = "ipv4"
	tagIPv6   = "ipv6"
	tagNet4   = "net4"
	tagNet6   = "net6"
	tagDomain = "domain"
	tagURL    = "url"
	tagEmail  = "email"
)

// Input returns the OPRF input of an atomic value in the canonical form of
// its kind (see [observable.Normalize]): "kind" 0x00 value, where a URL is
// written without an http or https scheme so that a URL indicator matches
// whatever scheme a log shows. Networks have several inputs: see
// [Params.Expand].
func Input(k observable.Kind, canonical string) string {
	switch k {
	case observable.URL:
		return tagURL + "\x00" + urlKey(canonical)
	case observable.IPv4:
		return tagIPv4 + "\x00" + canonical
	case observable.IPv6:
		return tagIPv6 + "\x00" + canonical
	}
	return string(k) + "\x00" + canonical
}

func urlKey(u string) string {
	if s, ok := strings.CutPrefix(u, "http://"); ok && s != "" {
		return s
	}
	if s, ok := strings.CutPrefix(u, "https://"); ok && s != "" {
		return s
	}
	return u
}

// ParseInput returns the kind and canonical value that an input (from
// [Input], [Params.Expand] or [Params.Queries]) stands for: a network
// input is a cidr4 or cidr6 value, a URL has its scheme back.
func ParseInput(in string) (observable.Kind, string, error) {
	tag, v, ok := strings.Cut(in, "\x00")
	if !ok || v == "" {
		return "", "", errors.New("blind input without a kind tag")
	}
	switch tag {
	case tagNet4:
		return observable.CIDR4, v, nil
	case tagNet6:
		return observable.CIDR6, v, nil
	case tagURL:
		if !strings.Contains(v, "://") {
			v = "http://" + v
		}
		return observable.URL, v, nil
	}
	k, err := observable.ParseKind(tag)
	if err != nil || k == observable.CIDR4 || k == observable.CIDR6 {
		return "", "", fmt.Errorf("blind input with unknown kind tag %q", tag)
	}
	return k, v, nil
}

// Expand appends to dst the OPRF inputs of an indicator value of kind k in
// canonical form: one input for an atomic value, the covering prefixes for
// a network. It refuses a network that would expand into more than
// [MaxExpansion] inputs, and single-label domains (a partner never asks
// for a top-level domain alone).
func (p Params) Expand(k observable.Kind, canonical string, dst []string) ([]string, error) {
	switch k {
	case observable.CIDR4, observable.CIDR6:
		pf, err := netip.ParsePrefix(canonical)
		if err != nil || pf.Masked() != pf || pf.Addr().Zone() != "" {
			return dst, fmt.Errorf("%s value %q is not a canonical network", k, canonical)
		}
		return p.expandPrefix(pf, dst)
	case observable.IPv4, observable.IPv6:
		a, err := netip.ParseAddr(canonical)
		var text [64]byte // the address's text, on the stack: no allocation
		if err != nil || a.Zone() != "" || a.Is4In6() || string(a.AppendTo(text[:0])) != canonical {
			return dst, fmt.Errorf("%s value %q is not a canonical address", k, canonical)
		}
		if a.Is4() != (k == observable.IPv4) {
			return dst, fmt.Errorf("%s value %q is of the other address family", k, canonical)
		}
		return append(dst, Input(k, canonical)), nil
	case observable.Domain:
		if strings.IndexByte(canonical, '.') < 0 {
			return dst, fmt.Errorf("domain %q is a single label: blind matching looks up names of two labels or more", canonical)
		}
	case observable.URL, observable.Email, observable.MD5, observable.SHA1, observable.SHA256, observable.SHA512:
	default:
		return dst, fmt.Errorf("unknown observable kind %q", k)
	}
	if n, err := observable.Normalize(k, canonical); err != nil || n != canonical {
		if err == nil {
			err = fmt.Errorf("canonical form is %q", n)
		}
		return dst, fmt.Errorf("%s value %q is not canonical: %w", k, canonical, err)
	}
	return append(dst, Input(k, canonical)), nil
}

func (p Params) expandPrefix(pf netip.Prefix, dst []string) ([]string, error) {
	a := pf.Addr()
	bits, lengths, tagNet, tagAddr := 32, p.V4Lengths, tagNet4, tagIPv4
	if a.Is6() {
		bits, lengths, tagNet, tagAddr = 128, p.V6Lengths, tagNet6, tagIPv6
	}
	if pf.Bits() == bits {
		return append(dst, tagAddr+"\x00"+a.String()), nil
	}
	l := bits
	if i, _ := slices.BinarySearch(lengths, pf.Bits()); i < len(lengths) {
		l = lengths[i]
	}
	if l-pf.Bits() > 12 || 1<<(l-pf.Bits()) > MaxExpansion {
		return dst, fmt.Errorf("network %s would expand into 2^%d prefixes at /%d (at most %d): choose other prefix lengths", pf, l-pf.Bits(), l, MaxExpansion)
	}
	n := uint64(1) << (l - pf.Bits())
	base := a.As16()
	for i := uint64(0); i < n; i++ {
		b := addShifted(base, i, bits-l)
		x := netip.AddrFrom16(b)
		if bits == 32 {
			x = x.Unmap()
		}
		if l == bits {
			dst = append(dst, tagAddr+"\x00"+x.String())
		} else {
			dst = append(dst, tagNet+"\x00"+netip.PrefixFrom(x, l).String())
		}
	}
	return dst, nil
}

// addShifted returns a + (i << s) for a 128-bit big-endian a.
func addShifted(a [16]byte, i uint64, s int) [16]byte {
	hi := binary.BigEndian.Uint64(a[:8])
	lo := binary.BigEndian.Uint64(a[8:])
	var ahi, alo uint64
	switch {
	case s >= 128:
	case s >= 64:
		ahi = i << (s - 64)
	case s == 0:
		alo = i
	default:
		alo = i << s
		ahi = i >> (64 - s)
	}
	nlo := lo + alo
	if nlo < lo {
		ahi++
	}
	var out [16]byte
	binary.BigEndian.PutUint64(out[:8], hi+ahi)
	binary.BigEndian.PutUint64(out[8:], nlo)
	return out
}

// Queries appends to dst the inputs that a partner looks up for a value it
// observed, of kind k in canonical form: an address and its prefixes at
// every length of p, a domain and each of its parents of two labels or
// more, or the value itself. It returns dst unchanged for kinds that are
// never observed (networks).
func (p Params) Queries(k observable.Kind, canonical string, dst []string) []string {
	switch k {
	case observable.IPv4, observable.IPv6:
		a, err := netip.ParseAddr(canonical)
		if err != nil {
			return dst
		}
		a = a.Unmap()
		lengths, tag, tagA := p.V4Lengths, tagNet4, tagIPv4
		if a.Is6() {
			lengths, tag, tagA = p.V6Lengths, tagNet6, tagIPv6
		}
		dst = append(dst, tagA+"\x00"+a.String())
		for _, l := range lengths {
			pf, _ := a.Prefix(l)
			dst = append(dst, tag+"\x00"+pf.String())
		}
		return dst
	case observable.Domain:
		for d := canonical; ; {
			i := strings.IndexByte(d, '.')
			if i < 0 {
				return dst
			}
			dst = append(dst, tagDomain+"\x00"+d)
			d = d[i+1:]
		}
	case observable.CIDR4, observable.CIDR6:
		return dst
	}
	return append(dst, Input(k, canonical))
}
