package sensor

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
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
	p.fast, p.std = false, false
	if p.kind != EventFlow || p.last < 0 || p.core < 0 || !fastSep(p.sep) ||
		string(p.unset) != "-" || string(p.empty) != "(empty)" {
		return
	}
	p.fast = true
	p.std = slices.Equal(p.cols[:p.core+1], stdConnCols)
}

// stdConnCols are the columns of Zeek's conn.log up to the byte counts,
// as Zeek writes them: connStd reads them without a loop over columns.
var stdConnCols = []evField{fTime, fNone, fSrc, fSrcPort, fDst, fDstPort, fProto, fNone, fDuration, fSrcBytes, fDstBytes}

// connStd is flowFast for the columns of Zeek's conn.log (stdConnCols),
// one after the other without a loop or a choice by column: on the
// generated day a loop over columns cost as much as the parsing of the
// values in them. Only the duration may be unset ("-", a connection
// without a reply); any other value it does not read makes it give up,
// and flowFast and flow read the line.
func (p *zeekEventParser) connStd(line []byte, ev *Event) bool {
	sep := p.sep
	pat := 0x0101010101010101 * uint64(sep)
	n := len(line)
	t, i, ok := scanSeconds(line, 0)
	if !ok || i >= n || line[i] != sep {
		return false
	}
	i = nextSep(line, i+1, pat) // uid
	if i >= n {
		return false
	}
	src, i, ok := addrAt(line, i+1, pat)
	if !ok {
		return false
	}
	sp, i, ok := scanPort(line, i+1)
	if !ok || i >= n || line[i] != sep {
		return false
	}
	dst, i, ok := addrAt(line, i+1, pat)
	if !ok {
		return false
	}
	dp, i, ok := scanPort(line, i+1)
	if !ok || i+4 >= n || line[i] != sep {
		return false
	}
	var proto uint8
	switch {
	case line[i+4] != sep:
		return false
	case line[i+1] == 't' && line[i+2] == 'c' && line[i+3] == 'p':
		proto = 6
	case line[i+1] == 'u' && line[i+2] == 'd' && line[i+3] == 'p':
		proto = 17
	default:
		return false
	}
	i = nextSep(line, i+5, pat) // service
	if i+2 >= n {
		return false
	}
	var dur int64
	unset := line[i+1] == '-' && line[i+2] == sep
	if unset {
		i += 2
	} else if dur, i, ok = scanSeconds(line, i+1); !ok || i >= n || line[i] != sep {
		return false
	}
	sb, i, ok := scanCount(line, i+1)
	if !ok || i >= n || line[i] != sep {
		return false
	}
	db, i, ok := scanCount(line, i+1)
	if !ok || i >= n || line[i] != sep {
		return false
	}
	if p.core < p.last && !hasSeps(line[i+1:], p.last-p.core-1, pat) {
		return false
	}
	ev.Time = t
	if !unset {
		ev.Duration = dur
	}
	ev.Src, ev.Dst = src, dst
	ev.SrcPort, ev.DstPort, ev.Proto = sp, dp, proto
	ev.SrcBytes, ev.DstBytes = sb, db
	return true
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

// addrAt parses the address at line[i:] up to its separator (pat: the
// separator in every byte), as flow does the field, and returns the
// separator's index; ok is false too when no separator follows.
func addrAt(line []byte, i int, pat uint64) (a netip.Addr, j int, ok bool) {
	if v, k, ok := scanIPv4(line, i); ok && k < len(line) && line[k] == byte(pat) {
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), k, true
	}
	j = nextSep(line, i, pat)
	a, ok = parseAddr(line[i:j])
	return a, j, ok && j < len(line)
}

// nextSep returns the index of the first separator (pat: the separator
// in every byte) in b from i, or len(b).
func nextSep(b []byte, i int, pat uint64) int {
	n := len(b)
	for ; i+8 <= n; i += 8 {
		if m := firstZeros(word8(b, i) ^ pat); m != 0 {
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
// separator in every byte). bytes.Count counts sixteen or thirty-two
// bytes at a time: half the instructions of a count by words here.
func hasSeps(b []byte, k int, pat uint64) bool {
	return k <= 0 || bytes.Count(b, []byte{byte(pat)}) >= k
}

// scanSecondsLoop parses the number of seconds at b[i:] as parseSecondsNanos
// does a whole field, up to the first byte that is not part of it, and
// returns its end; it refuses exponents (parseSecondsNanos's slower path).
func scanSecondsLoop(b []byte, i int) (int64, int, bool) {
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

// scanIPv4 parses the dotted-quad IPv4 address at b[i:], as strictly as
// net/netip (four numbers of one to three digits, none over 255 and none
// with a leading zero), up to the first byte after its last number, and
// returns its end. Each number is read digit by digit without a loop (a
// byte loop with a state per byte cost about 200 instructions an
// address).
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

// scanPortLoop parses a port at b[i:], one to five digits up to 65535, and
// returns its end (flow's count and test; longer numbers with leading
// zeros are left to it).
func scanPortLoop(b []byte, i int) (uint16, int, bool) {
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

// scanCountLoop parses a count at b[i:], one to 19 digits (parseUint's
// numbers that cannot overflow), and returns its end.
func scanCountLoop(b []byte, i int) (uint64, int, bool) {
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

// Numbers of the common lengths are read eight bytes at a time, without
// a branch per digit (a loop over digits costs 14 instructions a digit,
// and its exit is mispredicted when the lengths vary); the loops above
// read the others, and the bytes near the line's end. An IPv4 address is
// read by the loop: its numbers are too short for words to cost less.

const (
	lowNibbles  = 0x0f0f0f0f0f0f0f0f
	highNibbles = 0xf0f0f0f0f0f0f0f0
	asciiZeros  = 0x3030303030303030
)

// load64 returns the eight bytes at b[i:] as a little-endian word: the
// byte at i is the lowest.
func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

// digitsLen returns how many of the bytes of x, from the lowest, are
// ASCII digits before the first that is not (8 when all are).
func digitsLen(x uint64) int {
	// A byte is a digit when its high nibble is 3 and adding 6 to it
	// keeps it so; a byte of 0xfa or more carries into the next, which
	// only follows a byte that is no digit.
	t := (x&highNibbles ^ asciiZeros) | ((x+0x0606060606060606)&highNibbles ^ asciiZeros)
	return bits.TrailingZeros64(^sepMask(t)&0x8080808080808080) >> 3
}

// digitsValue returns the number the first k (1 to 8) bytes of x write,
// all ASCII digits, the lowest byte the most significant.
func digitsValue(x uint64, k int) uint64 {
	x = (x & lowNibbles) << (8 * (8 - k)) // the digits in the high bytes, zeros before them
	x = (x*10 + x>>8) & 0x00ff00ff00ff00ff
	x = (x*100 + x>>16) & 0x0000ffff0000ffff
	return (x*10000 + x>>32) & 0xffffffff
}

// scanCount parses a count at b[i:], one to 19 digits (parseUint's
// numbers that cannot overflow), and returns its end.
func scanCount(b []byte, i int) (uint64, int, bool) {
	if len(b)-i < 16 {
		return scanCountLoop(b, i)
	}
	x := load64(b, i)
	k := digitsLen(x)
	if k == 0 {
		return 0, 0, false
	}
	v := digitsValue(x, k)
	if k < 8 {
		return v, i + k, true
	}
	y := load64(b, i+8)
	k2 := digitsLen(y)
	if k2 == 8 {
		return scanCountLoop(b, i) // 16 digits or more
	}
	if k2 > 0 {
		v = v*uint64(pow10[k2]) + digitsValue(y, k2)
	}
	return v, i + 8 + k2, true
}

// scanPort parses a port at b[i:], one to five digits up to 65535, and
// returns its end (flow's count and test; longer numbers with leading
// zeros are left to it).
func scanPort(b []byte, i int) (uint16, int, bool) {
	if len(b)-i < 8 {
		return scanPortLoop(b, i)
	}
	x := load64(b, i)
	k := digitsLen(x)
	if k == 0 || k > 5 {
		return 0, 0, false
	}
	v := digitsValue(x, k)
	if v > 65535 {
		return 0, 0, false
	}
	return uint16(v), i + k, true
}

// scanSeconds parses the number of seconds at b[i:] as parseSecondsNanos
// does a whole field, up to the first byte that is not part of it, and
// returns its end; it refuses exponents (parseSecondsNanos's slower path).
func scanSeconds(b []byte, i int) (int64, int, bool) {
	if len(b)-i < 24 {
		return scanSecondsLoop(b, i)
	}
	// The whole seconds: up to 15 digits here (more than maxSeconds has
	// but for leading zeros, which the loop reads).
	x := load64(b, i)
	k := digitsLen(x)
	var sec uint64
	j := i + k
	if k > 0 {
		sec = digitsValue(x, k)
		if k == 8 {
			y := load64(b, j)
			k2 := digitsLen(y)
			if k2 == 8 {
				return scanSecondsLoop(b, i)
			}
			if k2 > 0 {
				sec = sec*uint64(pow10[k2]) + digitsValue(y, k2)
			}
			j += k2
		}
		if sec > maxSeconds {
			return 0, 0, false
		}
	}
	var frac int64
	if b[j] == '.' {
		j++
		y := load64(b, j)
		kf := digitsLen(y)
		if kf == 8 {
			return scanSecondsLoop(b, i) // eight digits or more of a fraction
		}
		if kf > 0 {
			frac = int64(digitsValue(y, kf)) * pow10[9-kf]
		}
		j += kf
		k += kf
	}
	if k == 0 {
		return 0, 0, false
	}
	return int64(sec)*1_000_000_000 + frac, j, true
}
