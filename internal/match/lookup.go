package match

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"hash/maphash"
	"net/netip"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/sensor"
)

// Hit is one observed value that matched one indicator.
type Hit struct {
	// Kind is the kind of the indicator value that matched.
	Kind observable.Kind
	// Observed is the value as the log holds it (normalised).
	Observed string
	// Matched is the indicator value, canonical: a network for an address
	// inside it, a parent domain for a subdomain.
	Matched string
	// Ref is the indicator reference; see [Snapshot.IndicatorID].
	Ref Ref
}

// Matcher looks observed values up in a snapshot. It keeps scratch space
// and so is not safe for concurrent use: make one per goroutine. Lookups
// that miss do not allocate.
type Matcher struct {
	s       *Snapshot
	scratch []byte
	hits    []Hit
	sink    uint64 // keeps the loads of touch
	// Slots noted by prefetch: of the IPv4 table, of the /24 bitmap, of
	// the domain table, of the IPv6 table and of the IPv6 network filter.
	pf, pf24, pfs, pf6, pf32 []uint32
	// pre holds what prefetch parsed, one entry per value, in order.
	pre []parsed
}

// NewMatcher returns a matcher on s.
func NewMatcher(s *Snapshot) *Matcher { return &Matcher{s: s, scratch: make([]byte, 0, 512)} }

// Match looks o up and appends a hit for each indicator it matches to
// hits.
func (m *Matcher) Match(o sensor.Obs, hits []Hit) []Hit {
	m.hits = hits
	m.match(o)
	hits = m.hits
	m.hits = nil
	return hits
}

func (m *Matcher) match(o sensor.Obs) {
	switch o.Kind {
	case sensor.ObsIP:
		m.ip(o.Value)
	case sensor.ObsDomain:
		m.domain(o.Value)
	case sensor.ObsAny:
		if !m.ip(o.Value) {
			m.domain(o.Value)
		}
	case sensor.ObsHost:
		h := hostOnly(o.Value)
		if !m.ip(h) {
			m.domain(h)
		}
	case sensor.ObsURL:
		m.url(o.Value, o.Aux)
	case sensor.ObsEmail:
		m.email(o.Value)
	case sensor.ObsHash:
		m.hash(o.Value)
	}
}

// prefetch notes the table slots that matching o will read, without
// looking o up, and appends what it parsed of o to m.pre; it reports
// whether o was parsed as an address (matching then needs only m.pre).
// Touching the slots of many values one after the other ([Matcher.touch])
// lets their cache misses overlap, so that matching them afterwards finds
// the slots in cache. It changes no result.
func (m *Matcher) prefetch(o *sensor.Obs) bool {
	var p parsed
	switch o.Kind {
	case sensor.ObsIP, sensor.ObsAny, sensor.ObsHost:
		b := o.Value
		if o.Kind == sensor.ObsHost {
			b = hostOnly(b)
		}
		// sensor.ParseIPv6 refuses a value without a colon as fast as a
		// search for one would.
		if v, ok := sensor.ParseIPv4(b); ok {
			p.fam, p.v4, p.h = 4, v, hashU32(&v)
			m.prefetch4(v, p.h)
		} else if a, ok := sensor.ParseIPv6(b); ok && len(b) <= 64 {
			if v, ok := mapped4(&a); ok {
				p.fam, p.v4, p.h = 4, v, hashU32(&v)
				m.prefetch4(v, p.h)
			} else {
				p.fam, p.v6, p.h = 6, a, hash16(&a)
				m.prefetch6(&a, p.h)
			}
		} else if o.Kind != sensor.ObsIP {
			m.prefetchDomain(b)
		}
	case sensor.ObsDomain:
		m.prefetchDomain(o.Value)
	}
	m.pre = append(m.pre, p)
	return p.fam != 0
}

// parsed is the address that prefetch found in an observed value, so
// that matching it need not parse it again.
type parsed struct {
	fam uint8 // 4 or 6; 0 when the value was not parsed as an address
	v4  uint32
	v6  [16]byte
	h   uint64 // the hash of v4 or v6 in its table
}

// matchParsed is Match for an observed value that prefetch parsed into p.
func (m *Matcher) matchParsed(o *sensor.Obs, p *parsed, hits []Hit) []Hit {
	m.hits = hits
	switch p.fam {
	case 4:
		m.ip4h(p.v4, p.h)
	case 6:
		m.ip6h(&p.v6, p.h)
	default:
		m.match(*o)
	}
	hits = m.hits
	m.hits = nil
	return hits
}

// prefetch4 notes the slots of an IPv4 address whose hash is h.
func (m *Matcher) prefetch4(v uint32, h uint64) {
	s := m.s
	if n := uint64(len(s.v4.keys)); n > 0 {
		m.pf = append(m.pf, uint32(h&(n-1)))
	}
	m.pf24 = append(m.pf24, v>>14)
}

// prefetch6 notes the slots of an IPv6 address whose hash is h.
func (m *Matcher) prefetch6(a *[16]byte, h uint64) {
	s := m.s
	if n := uint64(len(s.v6.keys)); n > 0 {
		m.pf6 = append(m.pf6, uint32(h&(n-1)))
	}
	if s.net32 != nil {
		m.pf32 = append(m.pf32, hash32of6(binary.BigEndian.Uint32(a[:4]))/64)
	}
}

// mapped4 returns the IPv4 address that an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) maps, tested on the bytes as netip.Addr.Unmap does.
func mapped4(a *[16]byte) (uint32, bool) {
	if binary.LittleEndian.Uint64(a[:8]) == 0 && binary.LittleEndian.Uint32(a[8:12]) == 0xffff0000 {
		return binary.BigEndian.Uint32(a[12:]), true
	}
	return 0, false
}

// prefetchDomain notes the slots of the names that domain looks up, as
// long as the name needs no normalising beyond lower case.
func (m *Matcher) prefetchDomain(b []byte) {
	t := m.s.domain
	if t.n == 0 || len(b) == 0 || len(b) > 253+1 {
		return
	}
	d, ascii := m.lower(b)
	if !ascii {
		return
	}
	if d[len(d)-1] == '.' {
		d = d[:len(d)-1]
	}
	mask := uint64(len(t.slots) - 1)
	for k := d; len(k) > 0; {
		i := bytes.IndexByte(k, '.')
		if i < 0 && !m.s.tlds {
			break
		}
		m.pfs = append(m.pfs, uint32(maphash.Bytes(t.seed, k)&mask))
		if i < 0 {
			break
		}
		k = k[i+1:]
	}
}

// touch loads the slots noted by prefetch in tight loops, whose loads
// the processor can have many of in flight at once.
func (m *Matcher) touch() {
	var sink uint64
	if keys := m.s.v4.keys; len(keys) > 0 {
		for _, i := range m.pf {
			sink += uint64(keys[i&uint32(len(keys)-1)])
		}
	}
	if keys := m.s.v6.keys; len(keys) > 0 {
		for _, i := range m.pf6 {
			sink += uint64(keys[i&uint32(len(keys)-1)][0])
		}
	}
	if net32 := m.s.net32; len(net32) > 0 {
		for _, i := range m.pf32 {
			sink += net32[i&uint32(len(net32)-1)]
		}
	}
	net24 := m.s.net24
	for _, i := range m.pf24 {
		sink += net24[i&(1<<18-1)]
	}
	if slots := m.s.domain.slots; len(slots) > 0 {
		for _, i := range m.pfs {
			sink += slots[i&uint32(len(slots)-1)]
		}
	}
	m.sink += sink
	m.pf, m.pf24, m.pfs = m.pf[:0], m.pf24[:0], m.pfs[:0]
	m.pf6, m.pf32 = m.pf6[:0], m.pf32[:0]
}

// hostOnly strips a port (and IPv6 brackets) from an HTTP host.
func hostOnly(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.IndexByte(h[:i], ':') < 0 {
		return h[:i]
	}
	return h
}

// ip looks up an address; it reports whether b was an address at all.
func (m *Matcher) ip(b []byte) bool {
	if v, ok := sensor.ParseIPv4(b); ok {
		m.ip4(v)
		return true
	}
	if bytes.IndexByte(b, ':') < 0 || len(b) > 64 {
		return false
	}
	if raw, ok := sensor.ParseIPv6(b); ok {
		m.ip6(raw)
		return true
	}
	if bytes.IndexByte(b, '%') >= 0 {
		// A zone: rare enough to parse the slow way.
		z, err := netip.ParseAddr(string(b))
		if err != nil {
			return false
		}
		m.ip6(z.WithZone("").As16())
		return true
	}
	return false
}

func (m *Matcher) ip4(v uint32) { m.ip4h(v, hashU32(&v)) }

// ip4h looks up an IPv4 address whose hash is h.
func (m *Matcher) ip4h(v uint32, h uint64) {
	s := m.s
	if r, ok := s.v4.getHashed(&v, h); ok {
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
		m.emit(Ref(r), observable.IPv4, a, a)
	}
	// A snapshot without IPv4 networks (the evaluator's anchors, often)
	// spares the bitmap's cache miss.
	if i := v >> 8; s.nets4 > 0 && s.net24[i/64]&(1<<(i%64)) != 0 {
		m.nets(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}))
	}
}

// ip6 looks up an IPv6 address, or the IPv4 address it maps.
func (m *Matcher) ip6(raw [16]byte) {
	if v, ok := mapped4(&raw); ok {
		m.ip4(v)
		return
	}
	m.ip6h(&raw, hash16(&raw))
}

// ip6h looks up an IPv6 address that maps no IPv4 address, whose hash
// is h.
func (m *Matcher) ip6h(raw *[16]byte, h uint64) {
	s := m.s
	if r, ok := s.v6.getHashed(raw, h); ok {
		a := netip.AddrFrom16(*raw).String()
		m.emit(Ref(r), observable.IPv6, a, a)
	}
	if s.mayNet6(binary.BigEndian.Uint32(raw[:4])) {
		m.nets(netip.AddrFrom16(*raw))
	}
}

func (m *Matcher) nets(a netip.Addr) {
	if _, ok := m.s.nets.Lookup(a); !ok {
		return
	}
	obs := a.String()
	kind := observable.CIDR4
	if a.Is6() {
		kind = observable.CIDR6
	}
	for p, r := range m.s.nets.Supernets(netip.PrefixFrom(a, a.BitLen())) {
		m.emit(r, kind, obs, p.String())
	}
}

func (m *Matcher) emit(r Ref, k observable.Kind, observed, matched string) {
	if r != DerivedRef && r&multiBit != 0 {
		for _, x := range m.s.multi[r&^multiBit] {
			m.hits = append(m.hits, Hit{Kind: k, Observed: observed, Matched: matched, Ref: x})
		}
		return
	}
	m.hits = append(m.hits, Hit{Kind: k, Observed: observed, Matched: matched, Ref: r})
}

// lower copies b into the scratch space in lower case, reporting whether
// it is all ASCII.
func (m *Matcher) lower(b []byte) ([]byte, bool) {
	out := m.scratch[:0]
	ascii := true
	for _, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		} else if c >= 0x80 {
			ascii = false
		}
		out = append(out, c)
	}
	m.scratch = out[:0]
	return out, ascii
}

func (m *Matcher) domain(b []byte) {
	t := m.s.domain
	if t.n == 0 || len(b) == 0 || len(b) > 253+1 {
		return
	}
	d, ascii := m.lower(b)
	if !ascii {
		n, err := observable.Normalize(observable.Domain, string(b))
		if err != nil {
			return
		}
		d = []byte(n)
	}
	if d[len(d)-1] == '.' {
		d = d[:len(d)-1]
	}
	for k := d; len(k) > 0; {
		i := bytes.IndexByte(k, '.')
		if i >= 0 || m.s.tlds {
			if r, ok := t.get(k); ok {
				m.emit(Ref(r), observable.Domain, string(d), string(k))
			}
		}
		if i < 0 {
			break
		}
		k = k[i+1:]
	}
}

func (m *Matcher) url(host, target []byte) {
	t := m.s.url
	if t.n == 0 || len(target) == 0 {
		return
	}
	var key []byte
	if bytes.Contains(target, []byte("://")) {
		n, err := observable.Normalize(observable.URL, string(target))
		if err != nil {
			return
		}
		key = []byte(urlKey(n))
	} else {
		if target[0] != '/' || len(host) == 0 {
			return
		}
		h, ascii := m.lower(host)
		if !ascii {
			return
		}
		if bytes.HasSuffix(h, []byte(":80")) || bytes.HasSuffix(h, []byte(":443")) {
			h = h[:bytes.LastIndexByte(h, ':')]
		}
		if i := bytes.IndexByte(target, '#'); i >= 0 {
			target = target[:i]
		}
		key = append(h, target...)
		m.scratch = key[:0]
	}
	if r, ok := t.get(key); ok {
		u := "http://" + string(key)
		m.emit(Ref(r), observable.URL, u, u)
	}
}

func (m *Matcher) email(b []byte) {
	t := m.s.email
	if t.n == 0 {
		return
	}
	if i := bytes.LastIndexByte(b, '<'); i >= 0 {
		if j := bytes.IndexByte(b[i:], '>'); j > 0 {
			b = b[i+1 : i+j]
		}
	}
	b = bytes.TrimSpace(b)
	at := bytes.LastIndexByte(b, '@')
	if at <= 0 {
		return
	}
	out := append(m.scratch[:0], b[:at+1]...)
	for _, c := range b[at+1:] {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		out = append(out, c)
	}
	m.scratch = out[:0]
	if r, ok := t.get(out); ok {
		m.emit(Ref(r), observable.Email, string(out), string(out))
	}
}

func (m *Matcher) hash(b []byte) {
	if bytes.IndexByte(b, ':') >= 0 {
		out := m.scratch[:0]
		for _, c := range b {
			if c != ':' {
				out = append(out, c)
			}
		}
		m.scratch = out[:0]
		b = out
	}
	var raw [64]byte
	n := len(b) / 2
	if len(b)%2 != 0 || n > 64 {
		return
	}
	if _, err := hex.Decode(raw[:n], b); err != nil {
		return
	}
	s := m.s
	var r Ref
	var ok bool
	var k observable.Kind
	switch n {
	case 16:
		var r0 uint32
		r0, ok = s.md5.get((*[16]byte)(raw[:16]))
		r, k = Ref(r0), observable.MD5
	case 20:
		var r0 uint32
		r0, ok = s.sha1.get((*[20]byte)(raw[:20]))
		r, k = Ref(r0), observable.SHA1
	case 32:
		var r0 uint32
		r0, ok = s.sha256.get((*[32]byte)(raw[:32]))
		r, k = Ref(r0), observable.SHA256
	case 64:
		var r0 uint32
		r0, ok = s.sha512.get((*[64]byte)(raw[:64]))
		r, k = Ref(r0), observable.SHA512
	}
	if ok {
		v := hex.EncodeToString(raw[:n])
		m.emit(r, k, v, v)
	}
}
