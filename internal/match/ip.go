package match

// parseIPv4 parses dotted-quad IPv4 without allocating, as strictly as
// net/netip (no leading zeros). Each number is read digit by digit
// without a loop or a switch per byte: a byte loop with a state cost
// twice the instructions of an address.
func parseIPv4(b []byte) (uint32, bool) {
	n := len(b)
	if n < len("0.0.0.0") || n > len("255.255.255.255") {
		return 0, false
	}
	var ip uint32
	i := 0
	for k := 0; k < 4; k++ {
		if k > 0 {
			if i >= n || b[i] != '.' {
				return 0, false
			}
			i++
		}
		if i >= n || b[i]-'0' > 9 {
			return 0, false
		}
		v := uint32(b[i] - '0')
		i++
		if i < n && b[i]-'0' <= 9 {
			if v == 0 {
				return 0, false // leading zero
			}
			v = v*10 + uint32(b[i]-'0')
			i++
			if i < n && b[i]-'0' <= 9 {
				v = v*10 + uint32(b[i]-'0')
				i++
				if v > 255 {
					return 0, false
				}
			}
		}
		ip = ip<<8 | v
	}
	return ip, i == n
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
// accepting what net/netip accepts. A group of four digits followed by
// a colon or the end, the common case, is read with four table loads
// and one test; other groups, "::" and an IPv4 tail digit by digit.
func parseIPv6(b []byte) (a [16]byte, ok bool) {
	n := len(b)
	if n == len("2001:0db8:0000:0000:0000:ff00:0042:8329") {
		// The full form, eight groups of four digits (random addresses,
		// privacy extensions): no search for where groups end.
		var bad byte
		for g := 0; g < 8; g++ {
			q := b[5*g : 5*g+4 : 5*g+4]
			v0, v1, v2, v3 := hexDigits[q[0]], hexDigits[q[1]], hexDigits[q[2]], hexDigits[q[3]]
			bad |= v0 | v1 | v2 | v3
			a[2*g], a[2*g+1] = v0<<4|v1, v2<<4|v3
			if g < 7 && b[5*g+4] != ':' {
				bad = 0xFF
			}
		}
		if bad&0x80 == 0 {
			return a, true
		}
		a = [16]byte{} // some other form of that length: read it below
	}
	ellipsis := -1
	i, p := 0, 0
	if n >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = 0
		p = 2
		if n == 2 {
			return a, true
		}
	}
	for i < 16 {
		var acc uint32
		q := p // the end of the group's digits
		if p+4 <= n {
			g := b[p : p+4 : p+4]
			v0, v1, v2, v3 := hexDigits[g[0]], hexDigits[g[1]], hexDigits[g[2]], hexDigits[g[3]]
			if (v0|v1|v2|v3)&0x80 == 0 && (p+4 == n || b[p+4] == ':') {
				acc, q = uint32(v0)<<12|uint32(v1)<<8|uint32(v2)<<4|uint32(v3), p+4
			}
		}
		if q == p {
			for q < n {
				v := hexDigits[b[q]]
				if v == 0xFF {
					break
				}
				acc = acc<<4 | uint32(v)
				q++
				if q-p > 4 {
					return a, false
				}
			}
			if q == p {
				return a, false
			}
			if q < n && b[q] == '.' {
				if ellipsis < 0 && i != 12 || i+4 > 16 {
					return a, false
				}
				v4, ok := parseIPv4(b[p:])
				if !ok {
					return a, false
				}
				a[i], a[i+1], a[i+2], a[i+3] = byte(v4>>24), byte(v4>>16), byte(v4>>8), byte(v4)
				i += 4
				p = n
				break
			}
		}
		a[i], a[i+1] = byte(acc>>8), byte(acc)
		i += 2
		p = q
		if p == n {
			break
		}
		if b[p] != ':' || p+1 == n {
			return a, false
		}
		p++
		if b[p] == ':' {
			if ellipsis >= 0 {
				return a, false
			}
			ellipsis = i
			p++
			if p == n {
				break
			}
		}
	}
	if p != n {
		return a, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return a, false
		}
		k := 16 - i
		copy(a[ellipsis+k:], a[ellipsis:i])
		clear(a[ellipsis : ellipsis+k])
	} else if ellipsis >= 0 {
		return a, false // "::" must stand for at least one group
	}
	return a, true
}
