package devices

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"strings"
)

// MAC is an Ethernet (EUI-48) address; the zero MAC stands for none.
type MAC [6]byte

// IsZero reports whether m is the zero MAC.
func (m MAC) IsZero() bool { return m == MAC{} }

// String returns m as six colon-separated lower-case hex bytes.
func (m MAC) String() string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, c := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[c>>4], hex[c&15])
	}
	return string(b)
}

// ParseMAC parses six hex bytes separated by ':' or '-'.
func ParseMAC(s string) (MAC, error) {
	var m MAC
	p, err := ParseMACPrefix(s)
	if err != nil {
		return m, err
	}
	if p.Bits != 48 {
		return m, fmt.Errorf("MAC address %q: want six bytes", s)
	}
	return p.MAC, nil
}

// MACPrefix is a range of MAC addresses sharing their first Bits bits,
// such as a vendor's OUI (24 bits).
type MACPrefix struct {
	MAC  MAC
	Bits int
}

// ParseMACPrefix parses a MAC prefix: one to six hex bytes separated by
// ':' or '-' ("bc:ad:28" is the 24-bit prefix of that OUI), optionally
// followed by "/bits" ("bc:ad:28:a0/28").
func ParseMACPrefix(s string) (MACPrefix, error) {
	var p MACPrefix
	body, bitsText, hasBits := strings.Cut(strings.TrimSpace(s), "/")
	parts := strings.FieldsFunc(body, func(r rune) bool { return r == ':' || r == '-' })
	if len(parts) == 0 || len(parts) > 6 || strings.Count(body, ":")+strings.Count(body, "-") != len(parts)-1 {
		return p, fmt.Errorf("MAC prefix %q: want one to six hex bytes separated by ':'", s)
	}
	for i, part := range parts {
		if len(part) != 2 {
			return p, fmt.Errorf("MAC prefix %q: byte %q is not two hex digits", s, part)
		}
		var v byte
		for _, c := range []byte(part) {
			var d byte
			switch {
			case c >= '0' && c <= '9':
				d = c - '0'
			case c >= 'a' && c <= 'f':
				d = c - 'a' + 10
			case c >= 'A' && c <= 'F':
				d = c - 'A' + 10
			default:
				return p, fmt.Errorf("MAC prefix %q: byte %q is not two hex digits", s, part)
			}
			v = v<<4 | d
		}
		p.MAC[i] = v
	}
	p.Bits = 8 * len(parts)
	if hasBits {
		var n int
		if _, err := fmt.Sscanf(bitsText, "%d", &n); err != nil || fmt.Sprint(n) != bitsText || n < 1 || n > p.Bits {
			return p, fmt.Errorf("MAC prefix %q: length %q is not between 1 and %d", s, bitsText, p.Bits)
		}
		p.Bits = n
	}
	p.MAC = p.mask(p.MAC)
	return p, nil
}

func (p MACPrefix) mask(m MAC) MAC {
	for i := range m {
		keep := p.Bits - 8*i
		switch {
		case keep >= 8:
		case keep <= 0:
			m[i] = 0
		default:
			m[i] &= byte(0xFF << (8 - keep))
		}
	}
	return m
}

// Contains reports whether m starts with the prefix.
func (p MACPrefix) Contains(m MAC) bool { return p.mask(m) == p.MAC }

// Last returns the last MAC address of the prefix.
func (p MACPrefix) Last() MAC {
	m := p.MAC
	for i := range m {
		keep := p.Bits - 8*i
		switch {
		case keep >= 8:
		case keep <= 0:
			m[i] = 0xFF
		default:
			m[i] |= byte(0xFF >> keep)
		}
	}
	return m
}

// String returns the prefix as its bytes and, when not a whole number of
// bytes, its length.
func (p MACPrefix) String() string {
	n := (p.Bits + 7) / 8
	s := p.MAC.String()[:3*n-1]
	if p.Bits%8 != 0 {
		s += fmt.Sprintf("/%d", p.Bits)
	}
	return s
}

// DeviceID identifies a device: by its MAC address where the logs give
// one, else by its address inside the constituency.
type DeviceID struct {
	k [17]byte // kind (1 MAC, 4 IPv4, 6 IPv6), then the bytes
}

// MACDevice returns the identity of the device with MAC m.
func MACDevice(m MAC) DeviceID {
	var d DeviceID
	d.k[0] = 1
	copy(d.k[1:], m[:])
	return d
}

// AddrDevice returns the identity of the device known by its address.
func AddrDevice(a netip.Addr) DeviceID {
	var d DeviceID
	a = a.Unmap()
	if a.Is4() {
		d.k[0] = 4
		b := a.As4()
		copy(d.k[1:], b[:])
	} else {
		d.k[0] = 6
		b := a.As16()
		copy(d.k[1:], b[:])
	}
	return d
}

// MAC returns the device's MAC, when it is known by one.
func (d DeviceID) MAC() (MAC, bool) {
	var m MAC
	if d.k[0] != 1 {
		return m, false
	}
	copy(m[:], d.k[1:7])
	return m, true
}

// Addr returns the device's address, when it is known by one.
func (d DeviceID) Addr() (netip.Addr, bool) {
	switch d.k[0] {
	case 4:
		return netip.AddrFrom4([4]byte(d.k[1:5])), true
	case 6:
		return netip.AddrFrom16([16]byte(d.k[1:17])), true
	}
	return netip.Addr{}, false
}

// IsZero reports whether d identifies nothing.
func (d DeviceID) IsZero() bool { return d.k[0] == 0 }

// String returns the MAC or the address.
func (d DeviceID) String() string {
	if m, ok := d.MAC(); ok {
		return m.String()
	}
	if a, ok := d.Addr(); ok {
		return a.String()
	}
	return "(none)"
}

// ParseDeviceID parses a MAC address or an IP address.
func ParseDeviceID(s string) (DeviceID, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return AddrDevice(a), nil
	}
	if m, err := ParseMAC(s); err == nil {
		return MACDevice(m), nil
	}
	return DeviceID{}, fmt.Errorf("device %q is neither a MAC address nor an IP address", s)
}

// MinKeySize is the shortest pseudonym key accepted, in bytes.
const MinKeySize = 16

var pseudoEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Pseudonym returns the device's pseudonym under key: "dev-" and 16
// base32 characters of HMAC-SHA-256(key, device). Without the key it
// cannot be reversed (nor checked against a guessed device); with the
// same key it is stable across runs, so that sightings of one device
// over time count as one organisation's device.
func Pseudonym(key []byte, d DeviceID) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("entente device v1\x00"))
	m.Write(d.k[:])
	sum := m.Sum(nil)
	return "dev-" + pseudoEncoding.EncodeToString(sum[:10])
}
