package match

// parseIPv4 parses dotted-quad IPv4 without allocating, as strictly as
// net/netip (no leading zeros).
func parseIPv4(b []byte) (uint32, bool) {
	var ip uint32
	var part uint32
	digits, dots := 0, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if digits > 0 && part == 0 {
				return 0, false // leading zero
			}
			part = part*10 + uint32(c-'0')
			digits++
			if digits > 3 || part > 255 {
				return 0, false
			}
		case c == '.':
			if digits == 0 || dots == 3 {
				return 0, false
			}
			ip = ip<<8 | part
			part, digits = 0, 0
			dots++
		default:
			return 0, false
		}
	}
	if dots != 3 || digits == 0 {
		return 0, false
	}
	return ip<<8 | part, true
}

// hexDigits maps a byte to its value as a hex digit, 0xFF if it is none.
var hexDigits = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
		t[c-'a'+'A'] = byte(c-'a') + 10
	}
	return t
}()

func hexVal(c byte) (uint32, bool) {
	v := hexDigits[c]
	return uint32(v), v != 0xFF
}

// parseIPv6 parses an IPv6 address without a zone, without allocating,
// accepting what net/netip accepts.
func parseIPv6(b []byte) (a [16]byte, ok bool) {
	ellipsis := -1
	i := 0
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = 0
		b = b[2:]
		if len(b) == 0 {
			return a, true
		}
	}
	for i < 16 {
		var acc uint32
		j := 0
		for j < len(b) {
			v, ok := hexVal(b[j])
			if !ok {
				break
			}
			acc = acc<<4 | v
			j++
			if j > 4 {
				return a, false
			}
		}
		if j == 0 {
			return a, false
		}
		if j < len(b) && b[j] == '.' {
			if ellipsis < 0 && i != 12 || i+4 > 16 {
				return a, false
			}
			v4, ok := parseIPv4(b)
			if !ok {
				return a, false
			}
			a[i], a[i+1], a[i+2], a[i+3] = byte(v4>>24), byte(v4>>16), byte(v4>>8), byte(v4)
			i += 4
			b = nil
			break
		}
		a[i], a[i+1] = byte(acc>>8), byte(acc)
		i += 2
		b = b[j:]
		if len(b) == 0 {
			break
		}
		if b[0] != ':' || len(b) == 1 {
			return a, false
		}
		b = b[1:]
		if b[0] == ':' {
			if ellipsis >= 0 {
				return a, false
			}
			ellipsis = i
			b = b[1:]
			if len(b) == 0 {
				break
			}
		}
	}
	if len(b) != 0 {
		return a, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return a, false
		}
		n := 16 - i
		copy(a[ellipsis+n:], a[ellipsis:i])
		clear(a[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return a, false // "::" must stand for at least one group
	}
	return a, true
}
