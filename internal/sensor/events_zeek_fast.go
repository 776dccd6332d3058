package sensor

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// The one-pass reader of conn.log lines (flowFast): each value is parsed
// where it starts, up to the separator that ends it, instead of first
// finding the separators and then parsing the fields between them; the
// columns the connection does not need are stepped over eight bytes at a
// time, and nothing is read after the last column the plan needs but the
// separators that say the line has its columns. It reads the lines of
// the common shape (IPv4 or IPv6 addresses, counts and seconds written
// as digits, the byte counts set) and gives up on any other, which
// flow then reads: for the lines flowFast reads the event is the one
// flow makes, and the others get flow's event or error, so that the
// errors of malformed lines are those of flow.

// fastPlan decides whether flowFast may read the log's lines: a
// connection log whose separator is no byte of the values it reads and
// whose unset and empty values are Zeek's ("-" and "(empty)"), so that a
// value flowFast parses can be neither.
func (p *zeekEventParser) fastPlan() {
	p.fast = false
	if p.kind != EventFlow || p.last < 0 || p.core < 0 || !fastSep(p.sep) ||
		string(p.unset) != "-" || string(p.empty) != "(empty)" {
		return
	}
	p.fast = true
}

// fastSep reports whether c may separate the fields flowFast reads: not
// a byte of a number, an address, a MAC, a protocol name or the unset
// and empty values.
func fastSep(c byte) bool {
	switch {
	case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		return false
	}
	switch c {
	case '.', ':', '-', '+', '_', '(', ')':
		return false
	}
	return true
}

// flowFast reads a conn.log line into ev as flow does, in one pass, and
// reports whether it could; when not, the caller reads the line with
// flow. What flowFast wrote to ev before it gave up, flow writes again:
// each value it sets is one flow reads and sets alike.
func (p *zeekEventParser) flowFast(line []byte, ev *Event) bool {
	sep := p.sep
	pat := 0x0101010101010101 * uint64(sep)
	n := len(line)
	i := 0
	var have uint64
	cols := p.cols[:p.core+1]
	for c, fld := range cols {
		if i >= n {
			return false
		}
		// An empty or unset value: flow sets nothing.
		if b := line[i]; b == sep || b == '-' && i+1 < n && line[i+1] == sep {
			if b == '-' {
				i++
			}
			i++
			continue
		}
		var j int // the end of the value: its separator, or n
		switch fld {
		case fTime, fDuration:
			v, k, ok := scanSeconds(line, i)
			if !ok || k < n && line[k] != sep {
				return false
			}
			if fld == fTime {
				ev.Time = v
			} else {
				ev.Duration = v
			}
			j = k
		case fSrc, fDst:
			var a netip.Addr
			if v, k, ok := scanIPv4(line, i); ok && (k == n || line[k] == sep) {
				a = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
				j = k
			} else {
				j = nextSep(line, i, pat)
				var ok bool
				if a, ok = parseAddr(line[i:j]); !ok {
					return false
				}
			}
			if fld == fSrc {
				ev.Src = a
			} else {
				ev.Dst = a
			}
		case fSrcPort, fDstPort:
			v, k, ok := scanPort(line, i)
			if !ok || k < n && line[k] != sep {
				return false
			}
			if fld == fSrcPort {
				ev.SrcPort = v
			} else {
				ev.DstPort = v
			}
			j = k
		case fProto:
			if i+3 < n && line[i+3] == sep && (line[i] == 't' && line[i+1] == 'c' && line[i+2] == 'p') {
				ev.Proto, j = 6, i+3
			} else if i+3 < n && line[i+3] == sep && (line[i] == 'u' && line[i+1] == 'd' && line[i+2] == 'p') {
				ev.Proto, j = 17, i+3
			} else {
				j = nextSep(line, i, pat)
				pr, ok := protoNumber(line[i:j])
				if !ok {
					return false
				}
				ev.Proto = pr
			}
		case fSrcBytes, fDstBytes, fSrcPkts, fDstPkts:
			if p.noPkts && (fld == fSrcPkts || fld == fDstPkts) {
				j = nextSep(line, i, pat)
				break
			}
			v, k, ok := scanCount(line, i)
			if !ok || k < n && line[k] != sep {
				return false
			}
			switch fld {
			case fSrcBytes:
				ev.SrcBytes = v
			case fDstBytes:
				ev.DstBytes = v
			case fSrcPkts:
				ev.SrcPkts = v
			default:
				ev.DstPkts = v
			}
			j = k
		case fSrcMAC, fDstMAC:
			j = nextSep(line, i, pat)
			mac, ok := parseMAC(line[i:j])
			if !ok {
				return false
			}
			if fld == fSrcMAC {
				ev.SrcMAC = mac
			} else {
				ev.DstMAC = mac
			}
		default:
			// A column flow does not read (the IP byte counts are read only
			// when a byte count is unset, which flowFast leaves to flow).
			j = nextSep(line, i, pat)
		}
		// j is at a separator or n: a value that goes on past what its
		// parser read was given up above, before it was set.
		if fld != fNone {
			have |= 1 << fld
		}
		if j == n && c < len(cols)-1 {
			return false // the line ends early: flow says how
		}
		i = j + 1
	}
	const need = 1<<fSrc | 1<<fDst | 1<<fSrcBytes | 1<<fDstBytes
	if have&need != need {
		return false // an address missing (an error), or byte counts the IP byte counts stand in for
	}
	if p.core == p.last {
		return true
	}
	// The line must have the columns up to the last the header names that
	// the plan reads (flow's test): the separators after the core column's.
	if i > n {
		return false // the core column ended the line
	}
	return hasSeps(line[i:], p.last-p.core-1, pat)
}

// nextSep returns the index of the first separator (pat: the separator
// in every byte) in b from i, or len(b).
func nextSep(b []byte, i int, pat uint64) int {
	n := len(b)
	for ; i+8 <= n; i += 8 {
		if m := sepMask(binary.LittleEndian.Uint64(b[i:]) ^ pat); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	sep := byte(pat)
	for ; i < n; i++ {
		if b[i] == sep {
			return i
		}
	}
	return n
}

// hasSeps reports whether b holds at least k separators (pat: the
// separator in every byte).
func hasSeps(b []byte, k int, pat uint64) bool {
	if k <= 0 {
		return true
	}
	i, n := 0, len(b)
	for ; i+8 <= n; i += 8 {
		if k -= bits.OnesCount64(sepMask(binary.LittleEndian.Uint64(b[i:]) ^ pat)); k <= 0 {
			return true
		}
	}
	sep := byte(pat)
	for ; i < n; i++ {
		if b[i] == sep {
			if k--; k == 0 {
				return true
			}
		}
	}
	return false
}

// scanSeconds parses the number of seconds at b[i:] as parseSecondsNanos
// does a whole field, up to the first byte that is not part of it, and
// returns its end; it refuses exponents (parseSecondsNanos's slower path).
func scanSeconds(b []byte, i int) (int64, int, bool) {
	n := len(b)
	var sec int64
	start := i
	for i < n && b[i]-'0' <= 9 {
		sec = sec*10 + int64(b[i]-'0')
		if sec > maxSeconds {
			return 0, 0, false
		}
		i++
	}
	digits := i - start
	var frac int64
	if i < n && b[i] == '.' {
		i++
		f0 := i
		for i < n && b[i]-'0' <= 9 {
			if i-f0 < 9 {
				frac = frac*10 + int64(b[i]-'0')
			}
			i++
		}
		k := i - f0
		frac *= pow10[9-min(k, 9)]
		digits += k
	}
	if digits == 0 {
		return 0, 0, false
	}
	return sec*1_000_000_000 + frac, i, true
}

// scanIPv4 parses the dotted-quad IPv4 address at b[i:] as
// parseIPv4Bytes does a whole field, up to the first byte after its last
// number, and returns its end.
func scanIPv4(b []byte, i int) (uint32, int, bool) {
	var ip uint32
	n := len(b)
	for k := 0; k < 4; k++ {
		if k > 0 {
			if i >= n || b[i] != '.' {
				return 0, 0, false
			}
			i++
		}
		if i >= n || b[i]-'0' > 9 {
			return 0, 0, false
		}
		v := uint32(b[i] - '0')
		i++
		if i < n && b[i]-'0' <= 9 {
			if v == 0 {
				return 0, 0, false // leading zero
			}
			v = v*10 + uint32(b[i]-'0')
			i++
			if i < n && b[i]-'0' <= 9 {
				v = v*10 + uint32(b[i]-'0')
				i++
				if v > 255 || i < n && b[i]-'0' <= 9 {
					return 0, 0, false
				}
			}
		}
		ip = ip<<8 | v
	}
	return ip, i, true
}

// scanPort parses a port at b[i:], one to five digits up to 65535, and
// returns its end (flow's count and test; longer numbers with leading
// zeros are left to it).
func scanPort(b []byte, i int) (uint16, int, bool) {
	n := len(b)
	var v uint32
	start := i
	for i < n && b[i]-'0' <= 9 {
		v = v*10 + uint32(b[i]-'0')
		i++
		if i-start > 5 {
			return 0, 0, false
		}
	}
	if i == start || v > 65535 {
		return 0, 0, false
	}
	return uint16(v), i, true
}

// scanCount parses a count at b[i:], one to 19 digits (parseUint's
// numbers that cannot overflow), and returns its end.
func scanCount(b []byte, i int) (uint64, int, bool) {
	n := len(b)
	var v uint64
	start := i
	for i < n && b[i]-'0' <= 9 {
		v = v*10 + uint64(b[i]-'0')
		i++
	}
	if k := i - start; k == 0 || k > 19 {
		return 0, 0, false
	}
	return v, i, true
}
