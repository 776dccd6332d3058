package sensor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"runtime/debug"
	"sync"
)

// EventKind says what an [Event] describes.
type EventKind uint8

// The kinds of events the event readers extract.
const (
	// EventFlow is a connection: Zeek conn.log, a Suricata EVE flow (or
	// netflow) event, a JSON line mapped with [JSONLinesEvents].
	EventFlow EventKind = iota + 1
	// EventLease binds an address to a MAC address, with the client's
	// host name and fingerprint: Zeek dhcp.log, Suricata EVE dhcp.
	EventLease
	// EventDevice is a MAC address seen on the network, with its DHCP
	// host name: Zeek known_devices.log.
	EventDevice
	// EventDNS is a name and the addresses it resolved to: Zeek dns.log,
	// Suricata EVE dns answers.
	EventDNS
	// EventSoftware is software seen on a host: Zeek software.log.
	EventSoftware
)

var eventKindNames = [...]string{EventFlow: "flow", EventLease: "lease", EventDevice: "device", EventDNS: "dns", EventSoftware: "software"}

// String returns the kind's name.
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return "invalid"
}

// MAC is an Ethernet (EUI-48) address. The zero MAC stands for "none".
type MAC [6]byte

// IsZero reports whether m is the zero MAC (no address).
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

// ParseMAC parses a MAC address written as six hex bytes separated by
// ':' or '-' (00:80:f0:12:34:56), or as three groups of four hex digits
// separated by '.' (0080.f012.3456).
func ParseMAC(s string) (MAC, bool) { return parseMAC([]byte(s)) }

func parseMAC(b []byte) (MAC, bool) {
	var m MAC
	switch len(b) {
	case 17:
		sep := b[2]
		if sep != ':' && sep != '-' {
			return m, false
		}
		for i := 0; i < 6; i++ {
			if i > 0 && b[3*i-1] != sep {
				return m, false
			}
			h, ok1 := hexVal(b[3*i])
			l, ok2 := hexVal(b[3*i+1])
			if !ok1 || !ok2 {
				return m, false
			}
			m[i] = h<<4 | l
		}
		return m, true
	case 14:
		if b[4] != '.' || b[9] != '.' {
			return m, false
		}
		j := 0
		for i := 0; i < 14; i += 2 {
			if i == 4 || i == 9 {
				i--
				continue
			}
			h, ok1 := hexVal(b[i])
			l, ok2 := hexVal(b[i+1])
			if !ok1 || !ok2 || j >= 6 {
				return m, false
			}
			m[j] = h<<4 | l
			j++
		}
		return m, j == 6
	}
	return m, false
}

// Event is one record of a log, reduced to what the device watch needs.
// Which fields are set depends on Kind:
//
//   - EventFlow: Time (start of the connection), Src and Dst (originator
//     and responder), ports, Proto, Duration, bytes and packets each way
//     (payload bytes where the log has them), SrcMAC and DstMAC when the
//     log carries link-layer addresses.
//   - EventLease: Time, Src (the address leased or used by the client),
//     SrcMAC, Name (host name), Aux (client fingerprint: the DHCP
//     parameter request list, else the vendor class).
//   - EventDevice: Time, SrcMAC, Name (DHCP host name).
//   - EventDNS: Time, Src (the client), Name (the query), Addrs (the
//     addresses among the answers).
//   - EventSoftware: Time, Src (the host), Name (software name), Aux (its
//     version as the log wrote it).
//
// Name, Aux and Addrs point into the line or the parser's scratch space:
// they are valid only until the parser parses its next line.
type Event struct {
	Kind               EventKind
	Time               int64 // Unix nanoseconds; 0 when the record has no time
	Src, Dst           netip.Addr
	SrcPort, DstPort   uint16
	Proto              uint8 // IANA protocol number; 0 when unknown
	Duration           int64 // nanoseconds
	SrcBytes, DstBytes uint64
	SrcPkts, DstPkts   uint64
	SrcMAC, DstMAC     MAC
	Name, Aux          []byte
	Addrs              []netip.Addr
}

// reset clears ev for the next line, keeping the capacity of Addrs.
func (ev *Event) reset() {
	addrs := ev.Addrs[:0]
	*ev = Event{Addrs: addrs}
}

// EventParser reads the events of the lines of one log format. It is used
// by one goroutine at a time.
type EventParser interface {
	// ParseEvent fills ev from line (without its newline) and reports
	// whether the line is an event. Header lines (Zeek TSV) and records
	// of kinds the reader does not extract return false without error;
	// a line that cannot be read is an error (a bad line).
	ParseEvent(line []byte, ev *Event) (bool, error)
}

// EventFormat is a log format whose lines are read as [Event]s. It is
// also a [Format] (its observables are those of the underlying format),
// so that it can be given as [Options.Format].
type EventFormat interface {
	Format
	NewEventParser() EventParser
}

// EventFormatOf returns the event reader of a log format: the Zeek TSV,
// Zeek JSON and Suricata EVE formats have one; a format made by
// [JSONLinesEvents] is its own.
func EventFormatOf(f Format) (EventFormat, bool) {
	switch f {
	case ZeekTSV:
		return ZeekTSVEvents, true
	case ZeekJSON:
		return ZeekJSONEvents, true
	case EVE:
		return EVEEvents, true
	}
	ef, ok := f.(EventFormat)
	return ef, ok
}

// EventHandler receives the events of the chunks one worker parses.
type EventHandler interface {
	// Event is called for every event, in the order of the chunk's
	// lines. Nothing it is passed may be kept after it returns.
	Event(c *Chunk, line int64, ev *Event)
	// ChunkDone is called after the last line of a chunk; the chunk's
	// data is reused after it returns.
	ChunkDone(c *Chunk)
}

// ScanEvents reads every input as [Scan] does (blocks split at line
// boundaries, gzip, bad lines counted and reported with their file and
// line) and parses the chunks on Options.Workers goroutines with the
// event reader of each chunk's format (see [EventFormatOf]), calling
// newHandler once per worker. Stats.Records counts the events.
func ScanEvents(ctx context.Context, inputs []Input, opts Options, newHandler func(worker int) EventHandler) (Stats, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 4 << 20
	}
	if opts.MaxLineSize <= 0 {
		opts.MaxLineSize = 1 << 20
	}
	if opts.MaxLineSize > opts.ChunkSize {
		opts.MaxLineSize = opts.ChunkSize
	}
	if opts.MaxBadReports <= 0 {
		opts.MaxBadReports = 100
	}
	s := &scanner{opts: opts}
	s.pool.New = func() any { b := make([]byte, opts.ChunkSize); return &b }

	chunks := make(chan *Chunk, opts.Workers*2)
	var wg sync.WaitGroup
	var formatErrs sync.Map // input index → error, for inputs without events
	for w := 0; w < opts.Workers; w++ {
		h := newHandler(w)
		wg.Go(func() { s.workEvents(chunks, h, &formatErrs) })
	}
	stats := Stats{Inputs: len(inputs)}
	var errs []error
	seq := 0
	var gen uint64
	for i, in := range inputs {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		n, lines, err := s.read(ctx, i, in, chunks, &seq, &gen)
		stats.Bytes += n
		stats.Lines += lines
		if err != nil {
			errs = append(errs, err)
		}
	}
	close(chunks)
	wg.Wait()
	errs = append(errs, s.faults...)
	for i := range inputs {
		if err, ok := formatErrs.Load(i); ok {
			errs = append(errs, err.(error))
		}
	}
	stats.Bad = s.bad.Load()
	stats.Records = s.records.Load()
	stats.BadLines = s.badList
	return stats, errors.Join(errs...)
}

func (s *scanner) workEvents(chunks <-chan *Chunk, h EventHandler, formatErrs *sync.Map) {
	parsers := map[Format]EventParser{}
	gens := map[Format]uint64{}
	var ev Event
	debug.SetPanicOnFault(true) // see scanner.work
	for c := range chunks {
		ef, ok := EventFormatOf(c.Format)
		if !ok {
			formatErrs.LoadOrStore(c.Input, fmt.Errorf("%s: the %s format has no event reader", c.File, c.Format.Name()))
			h.ChunkDone(c)
			s.done(c)
			continue
		}
		p := parsers[ef]
		if p == nil || (ef.Stateful() && gens[ef] != c.headerGen) {
			p = ef.NewEventParser()
			if q, ok := p.(interface{ skipPackets() }); ok && s.opts.SkipPackets {
				q.skipPackets()
			}
			for _, l := range c.header {
				_, _ = p.ParseEvent(l, &ev)
			}
			parsers[ef] = p
			gens[ef] = c.headerGen
		}
		s.chunkEvents(c, p, h, &ev)
		if ef.Stateful() {
			gens[ef] = 0
		}
		h.ChunkDone(c)
		s.done(c)
	}
}

// chunkEvents reads the events of c's lines and hands them to h; a chunk
// of a mapped file that faults is cut there, as in [scanner.chunk].
func (s *scanner) chunkEvents(c *Chunk, p EventParser, h EventHandler, ev *Event) {
	line := c.FirstLine
	if c.m != nil {
		defer s.recoverFault(c, &line)
	}
	data := c.Data
	var records int64
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var l []byte
		if i < 0 {
			l, data = data, nil
		} else {
			l, data = data[:i], data[i+1:]
		}
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if len(l) > s.opts.MaxLineSize {
			s.reportBad(BadLine{File: c.File, Line: line, Err: fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLong, len(l), s.opts.MaxLineSize)})
			line++
			continue
		}
		ev.reset()
		ok, err := p.ParseEvent(l, ev)
		if err != nil {
			s.reportBad(BadLine{File: c.File, Line: line, Err: err})
		} else if ok {
			records++
			h.Event(c, line, ev)
		}
		line++
	}
	s.records.Add(records)
}

// ---------------------------------------------------------------- values

// parseAddr parses an IPv4 or IPv6 address (no zone) without allocating.
func parseAddr(b []byte) (netip.Addr, bool) {
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	// IPv4 first, without a search for ':' before (a dotted quad never
	// has one): most addresses of most logs are IPv4.
	if v, ok := ParseIPv4(b); ok {
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
	}
	if bytes.IndexByte(b, ':') < 0 {
		return netip.Addr{}, false
	}
	a, ok := ParseIPv6(b)
	if !ok {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(a).Unmap(), true
}

// ParseIPv4 parses dotted-quad IPv4 without allocating, as strictly as
// net/netip: four numbers of one to three digits, none over 255 and none
// with a leading zero. The log readers and the matcher (internal/match)
// share it. It is [scanIPv4]'s reading of a whole value, written out
// rather than calling it, as the matcher had it: a value of the wrong
// length is refused before any digit is read, and the matcher's path per
// value keeps the instructions it was measured with (callgrind could not
// tell a call to scanIPv4 apart from this within its run-to-run spread).
func ParseIPv4(b []byte) (uint32, bool) {
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
	if i != n {
		return 0, false
	}
	return ip, true
}

var hexTable = func() (t [256]byte) {
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

func hexVal(c byte) (byte, bool) {
	v := hexTable[c]
	return v, v != 0xFF
}

// ParseIPv6 parses an IPv6 address without a zone, without allocating,
// accepting what net/netip accepts; the log readers and the matcher share
// it. A group of four digits followed by
// a colon or the end, the common case, is read with four table loads
// and one test; other groups, "::" and an IPv4 tail digit by digit.
func ParseIPv6(b []byte) (a [16]byte, ok bool) {
	n := len(b)
	if n == len("2001:0db8:0000:0000:0000:ff00:0042:8329") {
		// The full form, eight groups of four digits (random addresses,
		// privacy extensions): no search for where groups end.
		var bad byte
		for g := 0; g < 8; g++ {
			q := b[5*g : 5*g+4 : 5*g+4]
			v0, v1, v2, v3 := hexTable[q[0]], hexTable[q[1]], hexTable[q[2]], hexTable[q[3]]
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
			v0, v1, v2, v3 := hexTable[g[0]], hexTable[g[1]], hexTable[g[2]], hexTable[g[3]]
			if (v0|v1|v2|v3)&0x80 == 0 && (p+4 == n || b[p+4] == ':') {
				acc, q = uint32(v0)<<12|uint32(v1)<<8|uint32(v2)<<4|uint32(v3), p+4
			}
		}
		if q == p {
			for q < n {
				v := hexTable[b[q]]
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
				v4, ok := ParseIPv4(b[p:])
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

// parseUint parses a decimal unsigned integer; values over 2^64-1 are
// refused. Up to 19 digits cannot overflow and skip the check.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	if len(b) < 20 {
		for _, c := range b {
			d := c - '0'
			if d > 9 {
				return 0, false
			}
			v = v*10 + uint64(d)
		}
		return v, true
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// maxSeconds bounds the seconds parseSecondsNanos accepts (a little over
// 292 years, so that nanoseconds fit an int64).
const maxSeconds = 9_000_000_000

// parseSecondsNanos parses a non-negative decimal number of seconds
// ("1601998366.785668", "0.5", "12") as nanoseconds, without allocating.
// Exponents are accepted ("1.6e9") by a slower path.
func parseSecondsNanos(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var sec int64
	i, n := 0, len(b)
	for i < n && b[i]-'0' <= 9 {
		sec = sec*10 + int64(b[i]-'0')
		if sec > maxSeconds {
			return 0, false
		}
		i++
	}
	digits := i
	var frac int64
	if i < n && b[i] == '.' {
		// The first nine digits of the fraction, as nanoseconds; the rest
		// are cut off.
		i++
		k := 0
		for i < n && b[i]-'0' <= 9 {
			if k < 9 {
				frac = frac*10 + int64(b[i]-'0')
			}
			k++
			i++
		}
		frac *= pow10[9-min(k, 9)]
		digits += k
	}
	if digits == 0 {
		return 0, false
	}
	if i < n {
		if b[i] != 'e' && b[i] != 'E' {
			return 0, false
		}
		return parseExpSeconds(b)
	}
	return sec*1_000_000_000 + frac, true
}

// pow10 holds the powers of ten up to 10^9.
var pow10 = [10]int64{1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000}

func parseExpSeconds(b []byte) (int64, bool) {
	var mant, exp int64
	var fracDigits int64
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if mant < 1e17 {
			mant = mant*10 + int64(b[i]-'0')
		} else {
			exp++
		}
		i++
	}
	if i < len(b) && b[i] == '.' {
		i++
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if mant < 1e17 {
				mant = mant*10 + int64(b[i]-'0')
				fracDigits++
			}
			i++
		}
	}
	if i >= len(b) || (b[i] != 'e' && b[i] != 'E') {
		return 0, false
	}
	i++
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	var e int64
	if i >= len(b) {
		return 0, false
	}
	for ; i < len(b); i++ {
		if b[i] < '0' || b[i] > '9' {
			return 0, false
		}
		e = e*10 + int64(b[i]-'0')
		if e > 40 {
			return 0, false
		}
	}
	if neg {
		e = -e
	}
	// value = mant * 10^(exp + e - fracDigits) seconds; in ns add 9.
	p := exp + e - fracDigits + 9
	v := mant
	for ; p > 0; p-- {
		if v > (1<<63-1)/10 {
			return 0, false
		}
		v *= 10
	}
	for ; p < 0; p++ {
		v /= 10
	}
	if v/1_000_000_000 > maxSeconds {
		return 0, false
	}
	return v, true
}

// protoNumber returns the IANA number of a protocol written by name
// ("tcp", "UDP", "icmp", "IPv6-ICMP") or as a number.
func protoNumber(b []byte) (uint8, bool) {
	switch len(b) {
	case 3:
		switch b[0] | 0x20 {
		case 't':
			if b[1]|0x20 == 'c' && b[2]|0x20 == 'p' {
				return 6, true
			}
		case 'u':
			if b[1]|0x20 == 'd' && b[2]|0x20 == 'p' {
				return 17, true
			}
		}
	case 4:
		if bytes.EqualFold(b, []byte("icmp")) {
			return 1, true
		}
		if bytes.EqualFold(b, []byte("sctp")) {
			return 132, true
		}
	case 6:
		if bytes.EqualFold(b, []byte("icmpv6")) {
			return 58, true
		}
	case 9:
		if bytes.EqualFold(b, []byte("ipv6-icmp")) {
			return 58, true
		}
	}
	if v, ok := parseUint(b); ok && v <= 255 {
		return uint8(v), true
	}
	return 0, false
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic
// Gregorian date (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// parseRFC3339Nanos parses the timestamps Suricata and JSON logs write
// ("2021-06-06T20:45:12.198137+0200", "2024-01-02T03:04:05Z",
// "...+02:00") as Unix nanoseconds, without allocating.
func parseRFC3339Nanos(b []byte) (int64, bool) {
	num := func(s []byte) (int64, bool) {
		var v int64
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int64(c-'0')
		}
		return v, len(s) > 0
	}
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ') || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[5:7])
	d, ok3 := num(b[8:10])
	h, ok4 := num(b[11:13])
	mi, ok5 := num(b[14:16])
	s, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 {
		return 0, false
	}
	i := 19
	var frac int64
	if i < len(b) && b[i] == '.' {
		i++
		scale := int64(100_000_000)
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			frac += int64(b[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == start {
			return 0, false
		}
	}
	var off int64
	switch {
	case i == len(b):
	case b[i] == 'Z' || b[i] == 'z':
		if i+1 != len(b) {
			return 0, false
		}
	case b[i] == '+' || b[i] == '-':
		sign := int64(1)
		if b[i] == '-' {
			sign = -1
		}
		z := b[i+1:]
		var oh, om int64
		var ok bool
		switch {
		case len(z) == 4:
			oh, ok = num(z[0:2])
			if ok {
				om, ok = num(z[2:4])
			}
		case len(z) == 5 && z[2] == ':':
			oh, ok = num(z[0:2])
			if ok {
				om, ok = num(z[3:5])
			}
		case len(z) == 2:
			oh, ok = num(z)
		}
		if !ok || oh > 23 || om > 59 {
			return 0, false
		}
		off = sign * (oh*3600 + om*60)
	default:
		return 0, false
	}
	secs := daysFromCivil(y, mo, d)*86400 + h*3600 + mi*60 + s - off
	if secs < 0 || secs > maxSeconds {
		return 0, false
	}
	return secs*1_000_000_000 + frac, true
}
