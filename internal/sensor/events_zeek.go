package sensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// evField names a value an event reader extracts. The same field may
// come from differently named members of different logs.
type evField uint8

const (
	fNone evField = iota
	fTime
	fStart // EVE flow.start: the flow's time when present
	fEnd   // EVE flow.end
	fSrc
	fDst
	fSrcPort
	fDstPort
	fProto
	fDuration
	fSrcBytes
	fDstBytes
	fSrcPkts
	fDstPkts
	fSrcIPBytes
	fDstIPBytes
	fSrcMAC
	fDstMAC
	fConnState
	fPath      // Zeek JSON _path
	fEventType // EVE event_type
	fMAC       // dhcp mac, known_devices mac, EVE dhcp.client_mac
	fAssigned  // dhcp assigned_addr, EVE dhcp.assigned_ip
	fClient    // dhcp client_addr, EVE dhcp.client_ip
	fRequested // dhcp requested_addr
	fHostName  // dhcp host_name, known_devices dhcp_host_name, EVE dhcp.hostname
	fFQDN
	fFingerprint // parameter request list (dhcp fingerprint)
	fVendorClass // DHCP option 60 (Zeek client_software, EVE vendor_class_identifier)
	fMsgTypes
	fLeaseTime
	fQuery
	fAnswer
	fDNSType // EVE dns.type
	fHost    // software host
	fSoftType
	fSoftName
	fSoftVersion
	fieldCount
)

// zeekEventFields maps the Zeek field names of the logs the event readers
// read to fields. "host" is the host address of software.log (http.log's
// host header is never read: http.log carries no events).
var zeekEventFields = map[string]evField{
	"ts":               fTime,
	"_path":            fPath,
	"id.orig_h":        fSrc,
	"id.orig_p":        fSrcPort,
	"id.resp_h":        fDst,
	"id.resp_p":        fDstPort,
	"proto":            fProto,
	"duration":         fDuration,
	"orig_bytes":       fSrcBytes,
	"resp_bytes":       fDstBytes,
	"orig_pkts":        fSrcPkts,
	"resp_pkts":        fDstPkts,
	"orig_ip_bytes":    fSrcIPBytes,
	"resp_ip_bytes":    fDstIPBytes,
	"orig_l2_addr":     fSrcMAC,
	"resp_l2_addr":     fDstMAC,
	"conn_state":       fConnState,
	"mac":              fMAC,
	"assigned_addr":    fAssigned,
	"client_addr":      fClient,
	"requested_addr":   fRequested,
	"host_name":        fHostName,
	"dhcp_host_name":   fHostName,
	"client_fqdn":      fFQDN,
	"fingerprint":      fFingerprint,
	"dhcp_fingerprint": fFingerprint,
	"params":           fFingerprint,
	"client_software":  fVendorClass,
	"msg_types":        fMsgTypes,
	"lease_time":       fLeaseTime,
	"query":            fQuery,
	"answers":          fAnswer,
	"host":             fHost,
	"software_type":    fSoftType,
	"name":             fSoftName,
	"unparsed_version": fSoftVersion,
}

// zeekPathKinds maps Zeek log paths to the kind of their events; logs of
// other paths carry none.
var zeekPathKinds = map[string]EventKind{
	"conn":          EventFlow,
	"dhcp":          EventLease,
	"known_devices": EventDevice,
	"dns":           EventDNS,
	"software":      EventSoftware,
}

// fieldSet records which fields a record has and their raw values.
type fieldSet struct {
	have uint64
	val  [fieldCount][]byte
}

func (s *fieldSet) set(f evField, v []byte) {
	s.have |= 1 << f
	s.val[f] = v
}

func (s *fieldSet) has(f evField) bool { return s.have&(1<<f) != 0 }

// inferKind decides the kind of a record from the fields it has, for
// logs that do not name their path: a conn_state makes a connection, a
// query a DNS record, a software_type a software record, DHCP message
// types or an assigned address a lease, a MAC with a DHCP host name (and
// nothing else) a known device.
func inferKind(s *fieldSet) EventKind {
	switch {
	case s.has(fConnState) && s.has(fSrc) && s.has(fDst):
		return EventFlow
	case s.has(fQuery) && !s.has(fConnState):
		return EventDNS
	case s.has(fSoftType) && s.has(fHost):
		return EventSoftware
	case s.has(fMAC) && (s.has(fMsgTypes) || s.has(fAssigned) || s.has(fLeaseTime) || s.has(fClient)):
		return EventLease
	case s.has(fMAC) && !s.has(fSrc) && !s.has(fDst):
		return EventDevice
	}
	return 0
}

// ZeekTSVEvents reads Zeek TSV conn, dhcp, known_devices, dns and
// software logs as events, by the #path and #fields headers (a log
// without #path is recognised by its fields). Lines of other logs are
// skipped.
var ZeekTSVEvents EventFormat = zeekEventFormat{}

type zeekEventFormat struct{}

// Name, Stateful, NewParser and NewEventParser make zeekEventFormat an
// EventFormat.
func (zeekEventFormat) Name() string                { return "zeek" }
func (zeekEventFormat) Stateful() bool              { return true }
func (zeekEventFormat) NewParser() Parser           { return newZeekParser() }
func (zeekEventFormat) NewEventParser() EventParser { return newZeekEventParser() }

type zeekEventParser struct {
	sep     byte
	setSep  byte
	unset   []byte
	empty   []byte
	path    []byte
	names   [][]byte
	kind    EventKind // the kind of the log's records, 0 for none
	cols    []evField // per column, the field it holds
	last    int       // last column needed
	core    int       // last column needed when the byte counts are set (see skipPackets)
	noPkts  bool
	fast    bool // flowFast may read the lines (see fastPlan)
	std     bool // and connStd (Zeek's conn.log columns)
	nfields int
	fs      fieldSet
}

func newZeekEventParser() *zeekEventParser {
	return &zeekEventParser{sep: '\t', setSep: ',', unset: []byte("-"), empty: []byte("(empty)")}
}

func (p *zeekEventParser) header(line []byte) error {
	if bytes.HasPrefix(line, []byte("#separator ")) {
		v := headerValue(line[len("#separator "):])
		if len(v) != 1 {
			return fmt.Errorf("unsupported #separator %q (want one byte)", line[len("#separator "):])
		}
		p.sep = v[0]
		p.fastPlan()
		return nil
	}
	name, value, _ := bytes.Cut(line[1:], []byte{p.sep})
	switch string(name) {
	case "set_separator":
		v := headerValue(value)
		if len(v) != 1 {
			return fmt.Errorf("unsupported #set_separator %q (want one byte)", value)
		}
		p.setSep = v[0]
	case "unset_field":
		p.unset = bytes.Clone(value)
		p.fastPlan()
	case "empty_field":
		p.empty = bytes.Clone(value)
		p.fastPlan()
	case "path":
		p.path = bytes.Clone(value)
		p.plan()
	case "fields":
		p.names = p.names[:0]
		for _, f := range bytes.Split(value, []byte{p.sep}) {
			p.names = append(p.names, bytes.Clone(f))
		}
		p.nfields = len(p.names)
		p.plan()
	}
	return nil
}

// plan decides the log's kind and the columns to read from #path and
// #fields.
func (p *zeekEventParser) plan() {
	p.cols = p.cols[:0]
	p.last = -1
	p.kind = 0
	defer p.fastPlan()
	if len(p.names) == 0 {
		return
	}
	var probe fieldSet
	for i, n := range p.names {
		f := zeekEventFields[string(n)]
		p.cols = append(p.cols, f)
		if f != fNone {
			p.last = i
			probe.set(f, nil)
		}
	}
	if len(p.path) > 0 {
		p.kind = zeekPathKinds[string(p.path)]
	} else {
		p.kind = inferKind(&probe)
	}
	p.core = p.last
	if p.noPkts {
		p.core = -1
		for i, f := range p.cols {
			switch f {
			case fTime, fSrc, fSrcPort, fDst, fDstPort, fProto, fDuration, fSrcBytes, fDstBytes, fSrcMAC, fDstMAC:
				p.core = i
			}
		}
	}
}

// skipPackets makes the parser leave out the packet counts of
// connections and stop reading a conn.log line after the last column it
// needs once the byte counts are set (otherwise the IP byte counts after
// them stand in); see Options.SkipPackets.
func (p *zeekEventParser) skipPackets() {
	p.noPkts = true
	p.plan()
}

// ParseEvent reads one line of a Zeek TSV log.
func (p *zeekEventParser) ParseEvent(line []byte, ev *Event) (bool, error) {
	if len(line) == 0 {
		return false, nil
	}
	if line[0] == '#' {
		return false, p.header(line)
	}
	if line[0] == '\t' || line[0] == ' ' {
		if t := bytes.TrimLeft(line, " \t"); len(t) > 0 && t[0] == '#' {
			return false, p.header(t)
		}
	}
	if p.nfields == 0 {
		return false, errors.New("data line before any #fields header")
	}
	if p.kind == 0 {
		return false, nil
	}
	if p.kind == EventFlow {
		if p.fast {
			ev.Kind = EventFlow
			if p.std && p.connStd(line, ev) || p.flowFast(line, ev) {
				return true, nil
			}
		}
		return p.flow(line, ev)
	}
	fs := &p.fs
	fs.have = 0
	rest := line
	col := 0
	for col <= p.last {
		i := bytes.IndexByte(rest, p.sep)
		var f []byte
		if i < 0 {
			f, rest = rest, nil
		} else {
			f, rest = rest[:i], rest[i+1:]
		}
		if fld := p.cols[col]; fld != fNone && len(f) > 0 && !bytes.Equal(f, p.unset) && !bytes.Equal(f, p.empty) {
			fs.set(fld, f)
		}
		if i < 0 {
			break
		}
		col++
	}
	if col < p.last {
		return false, fmt.Errorf("line has %d fields, the #fields header names %d", col+1, p.nfields)
	}
	return fillEvent(p.kind, fs, ev, p.setSep)
}

// flow reads a conn.log line straight into ev: the hot path of the
// device watch, without the intermediate field set of the other logs.
func (p *zeekEventParser) flow(line []byte, ev *Event) (bool, error) {
	ev.Kind = EventFlow
	if p.last < 0 {
		return false, errors.New("connection without both addresses")
	}
	var have uint64
	var srcIP, dstIP []byte // the IP byte counts, used when payload counts are unset
	// The separators are found eight bytes at a time: mask has 0x80 at
	// each separator of the word at base not yet taken; the bytes before
	// covered are in masks already. Most fields are a few bytes long: a
	// search per field, or a loop over bytes, costs more.
	n := len(line)
	pat := 0x0101010101010101 * uint64(p.sep)
	var mask uint64
	base, covered := 0, 0
	start, col := 0, 0
	for {
		for mask == 0 && covered < n {
			if n-covered >= 8 {
				base = covered
				mask = sepMask(binary.LittleEndian.Uint64(line[base:]) ^ pat)
				covered += 8
			} else {
				base, mask = tailSeps(line, covered, p.sep)
				covered = n
			}
		}
		j := n
		if mask != 0 {
			j = base + bits.TrailingZeros64(mask)>>3
			mask &= mask - 1
		}
		f := line[start:j]
		if fld := p.cols[col]; fld != fNone && len(f) > 0 && !p.missing(f) {
			have |= 1 << fld
			if err := p.flowField(fld, f, ev, &srcIP, &dstIP); err != nil {
				return false, err
			}
		}
		if j == n || col == p.last {
			break
		}
		const bytesSet = 1<<fSrcBytes | 1<<fDstBytes
		if col >= p.core && have&bytesSet == bytesSet {
			// Nothing after this column is read: count the separators
			// left, so that a line short of the header's columns is still
			// a bad line.
			left := bits.OnesCount64(mask)
			for covered < n {
				if n-covered >= 8 {
					left += bits.OnesCount64(sepMask(binary.LittleEndian.Uint64(line[covered:]) ^ pat))
					covered += 8
				} else {
					_, m := tailSeps(line, covered, p.sep)
					left += bits.OnesCount64(m)
					covered = n
				}
			}
			col = min(p.last, col+1+left) // the separator at j, and those left
			break
		}
		start = j + 1
		col++
	}
	if col < p.last {
		return false, fmt.Errorf("line has %d fields, the #fields header names %d", col+1, p.nfields)
	}
	if have&(1<<fSrc) == 0 || have&(1<<fDst) == 0 {
		return false, errors.New("connection without both addresses")
	}
	if have&(1<<fSrcBytes) == 0 && srcIP != nil {
		v, ok := parseUint(srcIP)
		if !ok {
			return false, fmt.Errorf("originator IP bytes %q is not a count", clip(srcIP))
		}
		ev.SrcBytes = v
	}
	if have&(1<<fDstBytes) == 0 && dstIP != nil {
		v, ok := parseUint(dstIP)
		if !ok {
			return false, fmt.Errorf("responder IP bytes %q is not a count", clip(dstIP))
		}
		ev.DstBytes = v
	}
	return true, nil
}

// missing reports whether f is the unset or the empty value: most
// often a one-byte "-", compared without a call.
func (p *zeekEventParser) missing(f []byte) bool {
	if len(f) == 1 {
		return len(p.unset) == 1 && f[0] == p.unset[0] || len(p.empty) == 1 && f[0] == p.empty[0]
	}
	return bytes.Equal(f, p.unset) || bytes.Equal(f, p.empty)
}

// sepMask has 0x80 in each byte of x that is zero and nothing else
// (exact: unlike (x-0x01…)&^x&0x80…, no borrow crosses bytes).
func sepMask(x uint64) uint64 {
	const low7 = 0x7f7f7f7f7f7f7f7f
	return ^((x&low7 + low7) | x | low7)
}

// tailSeps returns the separators of line[covered:], fewer than eight
// bytes at its end, as a mask over the word at base.
func tailSeps(line []byte, covered int, sep byte) (base int, mask uint64) {
	n := len(line)
	if n >= 8 {
		// The line's last word, without the bytes already covered.
		base = n - 8
		mask = sepMask(binary.LittleEndian.Uint64(line[base:])^0x0101010101010101*uint64(sep)) & (^uint64(0) << (8 * (covered - base)))
		return base, mask
	}
	for k := covered; k < n; k++ {
		if line[k] == sep {
			mask |= 0x80 << (8 * k)
		}
	}
	return 0, mask
}

// flowField reads one field of a conn.log line.
func (p *zeekEventParser) flowField(fld evField, f []byte, ev *Event, srcIP, dstIP *[]byte) error {
	var err error
	switch fld {
	case fTime:
		ev.Time, err = timeValue(f)
	case fSrc, fDst:
		a, ok := parseAddr(f)
		if !ok {
			name := "originator"
			if fld == fDst {
				name = "responder"
			}
			return fmt.Errorf("%s %q is not an IP address", name, clip(f))
		}
		if fld == fSrc {
			ev.Src = a
		} else {
			ev.Dst = a
		}
	case fSrcPort, fDstPort:
		name := "originator port"
		if fld == fDstPort {
			name = "responder port"
		}
		v, err := countValue(name, f)
		if err != nil {
			return err
		}
		if v > 65535 {
			return fmt.Errorf("%s %d is over 65535", name, v)
		}
		if fld == fSrcPort {
			ev.SrcPort = uint16(v)
		} else {
			ev.DstPort = uint16(v)
		}
	case fProto:
		pr, ok := protoNumber(f)
		if !ok && !bytes.EqualFold(f, []byte("unknown_transport")) {
			return fmt.Errorf("protocol %q is unknown", clip(f))
		}
		ev.Proto = pr
	case fDuration:
		d, ok := parseSecondsNanos(f)
		if !ok {
			return fmt.Errorf("duration %q is not a number of seconds", clip(f))
		}
		ev.Duration = d
	case fSrcBytes:
		ev.SrcBytes, err = countValue("originator bytes", f)
	case fDstBytes:
		ev.DstBytes, err = countValue("responder bytes", f)
	case fSrcPkts:
		if !p.noPkts {
			ev.SrcPkts, err = countValue("originator packets", f)
		}
	case fDstPkts:
		if !p.noPkts {
			ev.DstPkts, err = countValue("responder packets", f)
		}
	case fSrcIPBytes:
		*srcIP = f
	case fDstIPBytes:
		*dstIP = f
	case fSrcMAC, fDstMAC:
		mac, ok := parseMAC(f)
		if !ok {
			return fmt.Errorf("link-layer address %q is not a MAC address", clip(f))
		}
		if fld == fSrcMAC {
			ev.SrcMAC = mac
		} else {
			ev.DstMAC = mac
		}
	}
	return err
}

// countValue parses the count f of the field called name (for the
// error). A function, not a closure over f: building the closure on every
// field cost more than the parse.
func countValue(name string, f []byte) (uint64, error) {
	v, ok := parseUint(f)
	if !ok {
		return 0, fmt.Errorf("%s %q is not a count", name, clip(f))
	}
	return v, nil
}

// fillEvent builds the event of a record of kind k from its raw fields.
// setSep separates the values of a Zeek set field (answers); 0 when the
// values were collected one by one (JSON arrays).
func fillEvent(k EventKind, fs *fieldSet, ev *Event, setSep byte) (bool, error) {
	ev.Kind = k
	if fs.has(fTime) {
		t, err := timeValue(fs.val[fTime])
		if err != nil {
			return false, err
		}
		ev.Time = t
	}
	addr := func(f evField, name string) (bool, error) {
		if !fs.has(f) {
			return false, nil
		}
		a, ok := parseAddr(fs.val[f])
		if !ok {
			return false, fmt.Errorf("%s %q is not an IP address", name, clip(fs.val[f]))
		}
		if f == fDst {
			ev.Dst = a
		} else {
			ev.Src = a
		}
		return true, nil
	}
	switch k {
	case EventFlow:
		okS, err := addr(fSrc, "originator")
		if err != nil {
			return false, err
		}
		okD, err := addr(fDst, "responder")
		if err != nil {
			return false, err
		}
		if !okS || !okD {
			return false, errors.New("connection without both addresses")
		}
		if fs.has(fStart) {
			t, ok := parseRFC3339Nanos(fs.val[fStart])
			if !ok {
				return false, fmt.Errorf("flow start %q is not a timestamp", clip(fs.val[fStart]))
			}
			ev.Time = t
			if fs.has(fEnd) {
				if e, ok := parseRFC3339Nanos(fs.val[fEnd]); ok && e >= t {
					ev.Duration = e - t
				}
			}
		}
		var err2 error
		num := func(f evField, name string) uint64 {
			if !fs.has(f) || err2 != nil {
				return 0
			}
			v, ok := parseUint(fs.val[f])
			if !ok {
				err2 = fmt.Errorf("%s %q is not a count", name, clip(fs.val[f]))
			}
			return v
		}
		if p := num(fSrcPort, "originator port"); p <= 65535 {
			ev.SrcPort = uint16(p)
		} else {
			return false, fmt.Errorf("originator port %d is over 65535", p)
		}
		if p := num(fDstPort, "responder port"); p <= 65535 {
			ev.DstPort = uint16(p)
		} else {
			return false, fmt.Errorf("responder port %d is over 65535", p)
		}
		ev.SrcBytes = num(fSrcBytes, "originator bytes")
		ev.DstBytes = num(fDstBytes, "responder bytes")
		if !fs.has(fSrcBytes) {
			ev.SrcBytes = num(fSrcIPBytes, "originator IP bytes")
		}
		if !fs.has(fDstBytes) {
			ev.DstBytes = num(fDstIPBytes, "responder IP bytes")
		}
		ev.SrcPkts = num(fSrcPkts, "originator packets")
		ev.DstPkts = num(fDstPkts, "responder packets")
		if err2 != nil {
			return false, err2
		}
		if fs.has(fProto) {
			p, ok := protoNumber(fs.val[fProto])
			if !ok && !bytes.EqualFold(fs.val[fProto], []byte("unknown_transport")) {
				return false, fmt.Errorf("protocol %q is unknown", clip(fs.val[fProto]))
			}
			ev.Proto = p
		}
		if fs.has(fDuration) {
			d, ok := parseSecondsNanos(fs.val[fDuration])
			if !ok {
				return false, fmt.Errorf("duration %q is not a number of seconds", clip(fs.val[fDuration]))
			}
			ev.Duration = d
		}
		for _, m := range [...]struct {
			f   evField
			dst *MAC
		}{{fSrcMAC, &ev.SrcMAC}, {fDstMAC, &ev.DstMAC}} {
			if fs.has(m.f) {
				mac, ok := parseMAC(fs.val[m.f])
				if !ok {
					return false, fmt.Errorf("link-layer address %q is not a MAC address", clip(fs.val[m.f]))
				}
				*m.dst = mac
			}
		}
	case EventLease:
		if !fs.has(fMAC) {
			return false, errors.New("DHCP record without a MAC address")
		}
		mac, ok := parseMAC(fs.val[fMAC])
		if !ok {
			return false, fmt.Errorf("DHCP MAC %q is not a MAC address", clip(fs.val[fMAC]))
		}
		ev.SrcMAC = mac
		for _, f := range [...]evField{fAssigned, fClient, fRequested} {
			if !fs.has(f) {
				continue
			}
			a, ok := parseAddr(fs.val[f])
			if !ok {
				return false, fmt.Errorf("DHCP address %q is not an IP address", clip(fs.val[f]))
			}
			if a.IsUnspecified() {
				continue
			}
			ev.Src = a
			break
		}
		switch {
		case fs.has(fHostName):
			ev.Name = fs.val[fHostName]
		case fs.has(fFQDN):
			ev.Name = fs.val[fFQDN]
		}
		switch {
		case fs.has(fFingerprint):
			ev.Aux = fs.val[fFingerprint]
		case fs.has(fVendorClass):
			ev.Aux = fs.val[fVendorClass]
		}
	case EventDevice:
		mac, ok := parseMAC(fs.val[fMAC])
		if !ok {
			return false, fmt.Errorf("device MAC %q is not a MAC address", clip(fs.val[fMAC]))
		}
		ev.SrcMAC = mac
		ev.Name = fs.val[fHostName]
	case EventDNS:
		if !fs.has(fQuery) {
			return false, nil
		}
		if _, err := addr(fSrc, "client"); err != nil {
			return false, err
		}
		ev.Name = fs.val[fQuery]
		if fs.has(fAnswer) {
			v := fs.val[fAnswer]
			if setSep == 0 {
				// collected one by one: already in ev.Addrs
				break
			}
			for len(v) > 0 {
				var a []byte
				if j := bytes.IndexByte(v, setSep); j >= 0 {
					a, v = v[:j], v[j+1:]
				} else {
					a, v = v, nil
				}
				if ip, ok := parseAddr(a); ok {
					ev.Addrs = append(ev.Addrs, ip)
				}
			}
		}
		if len(ev.Addrs) == 0 {
			return false, nil // a query without address answers resolves nothing
		}
	case EventSoftware:
		if !fs.has(fHost) || !fs.has(fSoftName) {
			return false, nil
		}
		a, ok := parseAddr(fs.val[fHost])
		if !ok {
			return false, fmt.Errorf("software host %q is not an IP address", clip(fs.val[fHost]))
		}
		ev.Src = a
		ev.Name = fs.val[fSoftName]
		ev.Aux = fs.val[fSoftVersion]
	default:
		return false, nil
	}
	return true, nil
}

// timeValue parses a record time: seconds since the epoch (Zeek) or an
// RFC 3339 timestamp (Suricata, JSON lines). Captures that log seconds
// since their start (small numbers) are read as such: only differences
// of times matter to the watch.
func timeValue(v []byte) (int64, error) {
	if t, ok := parseSecondsNanos(v); ok {
		return t, nil
	}
	if t, ok := parseRFC3339Nanos(v); ok {
		return t, nil
	}
	return 0, fmt.Errorf("time %q is neither seconds since the epoch nor an RFC 3339 timestamp", clip(v))
}

// clip shortens a value quoted in an error.
func clip(v []byte) []byte {
	if len(v) > 64 {
		return v[:64]
	}
	return v
}
