package match

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/gaissmai/bart"
	"github.com/google/uuid"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix/pattern"
)

// Ref refers to the indicators that an entry of a snapshot belongs to.
type Ref uint32

const (
	// DerivedRef marks a value from a plain list: its indicator id is
	// derived from the value itself (see [DerivedID]).
	DerivedRef Ref = 0xFFFFFFFF
	multiBit   Ref = 0x80000000
	maxRefs        = 0x7FFFFFF0
)

// derivedNamespace is the UUIDv5 namespace of the ids of plain-list values.
var derivedNamespace = uuid.MustParse("6c1d5ad6-3e0e-5b6e-9c59-1f6e8b2c0a11")

// DerivedID returns the indicator id given to a plain-list value of kind
// k: a UUIDv5 of "kind:value", so that every sensor names it alike.
func DerivedID(k observable.Kind, value string) string {
	return "indicator--" + uuid.NewSHA1(derivedNamespace, []byte(string(k)+":"+value)).String()
}

// Snapshot is a compiled, immutable set of indicator values built for
// lookup: exact addresses and hashes in open-addressing tables, networks
// in a prefix table, domains, URLs and e-mail addresses in string tables.
// A Snapshot is safe for concurrent use.
type Snapshot struct {
	idData []byte
	idOff  []uint32 // len = indicators+1
	multi  [][]Ref

	v4     fixedTable[uint32]
	v6     fixedTable[[16]byte]
	md5    fixedTable[[16]byte]
	sha1   fixedTable[[20]byte]
	sha256 fixedTable[[32]byte]
	sha512 fixedTable[[64]byte]
	domain *strTable
	url    *strTable
	email  *strTable
	nets   bart.Table[Ref]
	// net24 has a bit for every IPv4 /24 that some network indicator
	// overlaps, so that most addresses skip the prefix table.
	net24 []uint64
	nets4 int
	nets6 int
	// net32 has a bit for the hash of the first 32 bits of every IPv6
	// network indicator of /32 or longer (and of every /32 inside a
	// shorter one down to /16), so that most addresses skip the prefix
	// table; short6 is set when some network is shorter than /16, which
	// turns the filter off.
	net32  []uint64
	short6 bool
	// tlds is set when some domain value is a single label, so that
	// lookups of the last label can be skipped otherwise.
	tlds bool
	// patterns are the indicators for the evaluator, when the builder
	// collected them; they travel with the snapshot.
	patterns *PatternSet
}

// Patterns returns the indicators whose patterns the snapshot cannot
// hold, for the evaluator (nil when none were collected; see
// [Builder.CollectPatterns]).
func (s *Snapshot) Patterns() *PatternSet { return s.patterns }

func newSnapshot() *Snapshot {
	return &Snapshot{
		v4:     fixedTable[uint32]{hash: hashU32},
		v6:     fixedTable[[16]byte]{hash: hash16},
		md5:    fixedTable[[16]byte]{hash: hashMD5},
		sha1:   fixedTable[[20]byte]{hash: hash20},
		sha256: fixedTable[[32]byte]{hash: hash32},
		sha512: fixedTable[[64]byte]{hash: hash64},
		domain: newStrTable(),
		url:    newStrTable(),
		email:  newStrTable(),
		net24:  make([]uint64, 1<<24/64),
		idOff:  []uint32{0},
	}
}

// Indicators returns the number of indicators with ids in the snapshot.
func (s *Snapshot) Indicators() int { return len(s.idOff) - 1 }

// ID returns the id of indicator i.
func (s *Snapshot) ID(i uint32) string { return string(s.idData[s.idOff[i]:s.idOff[i+1]]) }

// Counts returns the number of values of each kind.
func (s *Snapshot) Counts() map[observable.Kind]int {
	return map[observable.Kind]int{
		observable.IPv4: s.v4.len(), observable.IPv6: s.v6.len(),
		observable.CIDR4: s.nets4, observable.CIDR6: s.nets6,
		observable.Domain: s.domain.n, observable.URL: s.url.n, observable.Email: s.email.n,
		observable.MD5: s.md5.len(), observable.SHA1: s.sha1.len(),
		observable.SHA256: s.sha256.len(), observable.SHA512: s.sha512.len(),
	}
}

// Len returns the number of values in the snapshot.
func (s *Snapshot) Len() int {
	n := 0
	for _, c := range s.Counts() {
		n += c
	}
	return n
}

// IndicatorID returns the id of indicator reference r for a hit on value
// (canonical) of kind k.
func (s *Snapshot) IndicatorID(r Ref, k observable.Kind, value string) string {
	if r == DerivedRef {
		return DerivedID(k, value)
	}
	return s.ID(uint32(r))
}

// Builder builds a [Snapshot]. Its zero value is not usable: call
// [NewBuilder].
type Builder struct {
	s        *Snapshot
	ids      map[string]uint32
	patterns *PatternSet
	guard    Guard
}

// Guard decides what of each indicator may be compiled into a snapshot,
// so that matching never hits on protected space: the node's safety net
// (internal/safety) is one. It applies when the snapshot is built, never
// per log line.
type Guard interface {
	// Admit reports whether value (normalised, of kind k) may be matched
	// as it is and, when it may not, what of it may: the addresses and
	// networks that remain of a network once protected ranges are cut
	// out (canonical), or nothing.
	Admit(k observable.Kind, value string) (whole bool, parts []string)
	// AdmitPattern reports whether a pattern evaluated against whole
	// records (it cannot be cut) may be matched.
	AdmitPattern(p *pattern.Pattern) bool
}

// Guard makes [AddObject] and [LoadFile] compile only what g admits:
// protected values are left out, networks around protected space are
// cut, patterns that name protected values are left out; each is
// counted in [LoadStats.Protected]. [Builder.Add] itself is not guarded.
func (b *Builder) Guard(g Guard) { b.guard = g }

// guarded adds value for r through the guard: it returns the number of
// values added, -1 when the guard left value out or cut it.
func (b *Builder) guarded(k observable.Kind, value string, r Ref) (int, error) {
	if b.guard == nil {
		return 1, b.Add(k, value, r)
	}
	whole, parts := b.guard.Admit(k, value)
	if whole {
		return 1, b.Add(k, value, r)
	}
	for _, p := range parts {
		nk, n, err := observable.NormalizeKind(k, p)
		if err != nil {
			return -1, fmt.Errorf("%s value %q: cut part %q: %w", k, value, p, err)
		}
		if err := b.Add(nk, n, r); err != nil {
			return -1, err
		}
	}
	return -1, nil
}

// CollectPatterns makes [AddObject] and [LoadFile] add the indicators
// whose patterns the snapshot cannot hold to ps, for the evaluator; the
// snapshot built then carries them ([Snapshot.Patterns]), serialised too.
func (b *Builder) CollectPatterns(ps *PatternSet) { b.patterns = ps }

// NewBuilder returns an empty builder.
func NewBuilder() *Builder { return &Builder{s: newSnapshot(), ids: map[string]uint32{}} }

// Indicator returns the reference of the indicator with the given id,
// adding it to the id table the first time.
func (b *Builder) Indicator(id string) (Ref, error) {
	if i, ok := b.ids[id]; ok {
		return Ref(i), nil
	}
	n := len(b.ids)
	if n >= maxRefs {
		return 0, errors.New("too many indicators in one snapshot")
	}
	b.s.idData = append(b.s.idData, id...)
	b.s.idOff = append(b.s.idOff, uint32(len(b.s.idData)))
	b.ids[id] = uint32(n)
	return Ref(n), nil
}

// Add adds value (in the canonical form of kind k, see
// [observable.Normalize]) for indicator r. It returns an error when the
// value is not canonical for its kind.
func (b *Builder) Add(k observable.Kind, value string, r Ref) error {
	s := b.s
	switch k {
	case observable.IPv4, observable.IPv6:
		a, err := netip.ParseAddr(value)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			return fmt.Errorf("%s value %q is not a canonical address", k, value)
		}
		if a.Is4() {
			v := binary.BigEndian.Uint32(a.AsSlice())
			p, added := s.v4.slot(&v)
			b.merge(p, added, r)
		} else {
			v := a.As16()
			p, added := s.v6.slot(&v)
			b.merge(p, added, r)
		}
	case observable.CIDR4, observable.CIDR6:
		p, err := netip.ParsePrefix(value)
		if err != nil || p.Masked() != p || p.Addr().Is4In6() {
			return fmt.Errorf("%s value %q is not a canonical network", k, value)
		}
		old, ok := s.nets.Get(p)
		v := uint32(old)
		b.merge(&v, !ok, r)
		s.nets.Insert(p, Ref(v))
		if !ok {
			if p.Addr().Is4() {
				s.nets4++
				b.mark24(p)
			} else {
				s.nets6++
				b.mark32(p)
			}
		}
	case observable.Domain, observable.URL, observable.Email:
		t := s.domain
		if k == observable.URL {
			t = s.url
			value = urlKey(value)
		} else if k == observable.Email {
			t = s.email
		}
		if value == "" {
			return fmt.Errorf("empty %s value", k)
		}
		if k == observable.Domain && strings.IndexByte(value, '.') < 0 {
			s.tlds = true
		}
		if t.full([]byte(value)) {
			return fmt.Errorf("%s table full (4 GiB of values)", k)
		}
		p, added := t.slot([]byte(value))
		b.merge(p, added, r)
	case observable.MD5, observable.SHA1, observable.SHA256, observable.SHA512:
		raw, err := hex.DecodeString(value)
		if err != nil || len(raw) != observable.HashLen(k) {
			return fmt.Errorf("%s value %q is not %d hex bytes", k, value, observable.HashLen(k))
		}
		switch k {
		case observable.MD5:
			p, added := s.md5.slot((*[16]byte)(raw))
			b.merge(p, added, r)
		case observable.SHA1:
			p, added := s.sha1.slot((*[20]byte)(raw))
			b.merge(p, added, r)
		case observable.SHA256:
			p, added := s.sha256.slot((*[32]byte)(raw))
			b.merge(p, added, r)
		default:
			p, added := s.sha512.slot((*[64]byte)(raw))
			b.merge(p, added, r)
		}
	default:
		return fmt.Errorf("unknown observable kind %q", k)
	}
	return nil
}

// merge records r in the value slot p (new when added).
func (b *Builder) merge(p *uint32, added bool, r Ref) {
	if added {
		*p = uint32(r)
		return
	}
	old := Ref(*p)
	if old == r {
		return
	}
	s := b.s
	if old != DerivedRef && old&multiBit != 0 {
		list := s.multi[old&^multiBit]
		for _, x := range list {
			if x == r {
				return
			}
		}
		s.multi[old&^multiBit] = append(list, r)
		return
	}
	s.multi = append(s.multi, []Ref{old, r})
	*p = uint32(Ref(len(s.multi)-1) | multiBit)
}

func (b *Builder) mark24(p netip.Prefix) {
	a := p.Addr().As4()
	base := uint32(a[0])<<16 | uint32(a[1])<<8 | uint32(a[2])
	n := uint32(1)
	if p.Bits() < 24 {
		n = 1 << (24 - p.Bits())
	}
	for i := base; i < base+n; i++ {
		b.s.net24[i/64] |= 1 << (i % 64)
	}
}

func (b *Builder) mark32(p netip.Prefix) {
	s := b.s
	if p.Bits() < 16 {
		s.short6 = true
		return
	}
	if s.net32 == nil {
		s.net32 = make([]uint64, net32Bits/64)
	}
	a := p.Addr().As16()
	base := binary.BigEndian.Uint32(a[:4])
	n := uint32(1)
	if p.Bits() < 32 {
		n = 1 << (32 - p.Bits())
	}
	for i := uint32(0); i < n; i++ {
		h := hash32of6(base + i)
		s.net32[h/64] |= 1 << (h % 64)
	}
}

// net32Bits is the size of the IPv6 network filter.
const net32Bits = 1 << 24

// hash32of6 maps the first 32 bits of an IPv6 address to a bit of the
// IPv6 network filter.
func hash32of6(top uint32) uint32 { return uint32(mix64(uint64(top)) & (net32Bits - 1)) }

// mayNet6 reports whether some IPv6 network indicator may contain the
// address whose first 32 bits are top.
func (s *Snapshot) mayNet6(top uint32) bool {
	if s.nets6 == 0 {
		return false
	}
	if s.short6 || s.net32 == nil {
		return true
	}
	h := hash32of6(top)
	return s.net32[h/64]&(1<<(h%64)) != 0
}

// Snapshot returns the built snapshot; the builder must not be used after.
func (b *Builder) Snapshot() *Snapshot {
	s := b.s
	s.domain.compact()
	s.url.compact()
	s.email.compact()
	if b.patterns.Len() > 0 {
		s.patterns = b.patterns
	}
	b.s = nil
	return s
}

// urlKey is the key of a canonical URL in the URL table: the URL without
// its scheme for http and https, so that a URL indicator matches whatever
// scheme a log shows for the same host and path (logs of TLS traffic
// often cannot tell).
func urlKey(u string) string {
	if len(u) > 7 && u[:7] == "http://" {
		return u[7:]
	}
	if len(u) > 8 && u[:8] == "https://" {
		return u[8:]
	}
	return u
}

// Holder publishes the current snapshot to many readers; a new snapshot
// built in the background replaces the old one atomically.
type Holder struct{ p atomic.Pointer[Snapshot] }

// Load returns the current snapshot (nil before the first Store).
func (h *Holder) Load() *Snapshot { return h.p.Load() }

// Store makes s the current snapshot.
func (h *Holder) Store(s *Snapshot) { h.p.Store(s) }

// Serialised form: magic, then uvarint counts and entries; see WriteTo.
var magic = []byte("ENTSNAP1")

const (
	secV4 byte = iota + 1
	secV6
	secNet
	secDomain
	secURL
	secEmail
	secMD5
	secSHA1
	secSHA256
	secSHA512
	secEnd
	// secPattern holds the patterns for the evaluator: indicator id and
	// pattern text. It is written after the other sections, only when
	// there are patterns.
	secPattern
)

// WriteTo writes the snapshot in its compact binary form, which
// [ReadSnapshot] reads back. It implements [io.WriterTo].
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: bufio.NewWriterSize(w, 1<<20)}
	bw := cw.w.(*bufio.Writer)
	var tmp [binary.MaxVarintLen64]byte
	uv := func(x uint64) { cw.Write(binary.AppendUvarint(tmp[:0], x)) }
	bytesv := func(b []byte) { uv(uint64(len(b))); cw.Write(b) }
	cw.Write(magic)
	uv(uint64(s.Indicators()))
	for i := 0; i < s.Indicators(); i++ {
		bytesv(s.idData[s.idOff[i]:s.idOff[i+1]])
	}
	uv(uint64(len(s.multi)))
	for _, l := range s.multi {
		uv(uint64(len(l)))
		for _, r := range l {
			uv(uint64(r))
		}
	}
	fixed := func(sec byte, n int, each func(func([]byte, uint32))) {
		cw.Write([]byte{sec})
		uv(uint64(n))
		each(func(k []byte, v uint32) { cw.Write(k); uv(uint64(v)) })
	}
	fixed(secV4, s.v4.len(), func(f func([]byte, uint32)) {
		s.v4.each(func(k *uint32, v uint32) { var b [4]byte; binary.BigEndian.PutUint32(b[:], *k); f(b[:], v) })
	})
	fixed(secV6, s.v6.len(), func(f func([]byte, uint32)) { s.v6.each(func(k *[16]byte, v uint32) { f(k[:], v) }) })
	cw.Write([]byte{secNet})
	uv(uint64(s.nets.Size()))
	for p, v := range s.nets.All() {
		a := p.Addr().AsSlice()
		cw.Write([]byte{byte(len(a)), byte(p.Bits())})
		cw.Write(a)
		uv(uint64(v))
	}
	for _, st := range []struct {
		sec byte
		t   *strTable
	}{{secDomain, s.domain}, {secURL, s.url}, {secEmail, s.email}} {
		cw.Write([]byte{st.sec})
		uv(uint64(st.t.n))
		st.t.each(func(k []byte, v uint32) { bytesv(k); uv(uint64(v)) })
	}
	fixed(secMD5, s.md5.len(), func(f func([]byte, uint32)) { s.md5.each(func(k *[16]byte, v uint32) { f(k[:], v) }) })
	fixed(secSHA1, s.sha1.len(), func(f func([]byte, uint32)) { s.sha1.each(func(k *[20]byte, v uint32) { f(k[:], v) }) })
	fixed(secSHA256, s.sha256.len(), func(f func([]byte, uint32)) { s.sha256.each(func(k *[32]byte, v uint32) { f(k[:], v) }) })
	fixed(secSHA512, s.sha512.len(), func(f func([]byte, uint32)) { s.sha512.each(func(k *[64]byte, v uint32) { f(k[:], v) }) })
	if n := s.patterns.Len(); n > 0 {
		cw.Write([]byte{secPattern})
		uv(uint64(n))
		for _, p := range s.patterns.pats {
			bytesv([]byte(p.id))
			bytesv([]byte(p.src))
		}
	}
	cw.Write([]byte{secEnd})
	if cw.err == nil {
		cw.err = bw.Flush()
	}
	return cw.n, cw.err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// Encode returns the serialised snapshot and its ETag (a quoted SHA-256
// of the bytes).
func (s *Snapshot) Encode() ([]byte, string, error) {
	var buf bytesBuffer
	if _, err := s.WriteTo(&buf); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(buf.b)
	return buf.b, `"` + hex.EncodeToString(sum[:16]) + `"`, nil
}

type bytesBuffer struct{ b []byte }

func (b *bytesBuffer) Write(p []byte) (int, error) { b.b = append(b.b, p...); return len(p), nil }

// ReadSnapshot reads a snapshot written by [Snapshot.WriteTo]. Corrupt or
// truncated input gives an error saying where.
func ReadSnapshot(r io.Reader) (*Snapshot, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	d := &decoder{r: br}
	m := make([]byte, len(magic))
	if _, err := io.ReadFull(br, m); err != nil || string(m) != string(magic) {
		return nil, errors.New("read snapshot: not an entente snapshot (bad magic)")
	}
	b := NewBuilder()
	n := d.uv("indicator count")
	for i := uint64(0); i < n && d.err == nil; i++ {
		id := d.bytes("indicator id", 1024)
		if d.err == nil {
			if _, err := b.Indicator(string(id)); err != nil {
				return nil, fmt.Errorf("read snapshot: %w", err)
			}
		}
	}
	nm := d.uv("multi count")
	for i := uint64(0); i < nm && d.err == nil; i++ {
		c := d.uv("multi length")
		if c > 1<<24 {
			d.fail("multi length too large")
		}
		l := make([]Ref, 0, min(c, 64))
		for j := uint64(0); j < c && d.err == nil; j++ {
			l = append(l, d.ref(n))
		}
		b.s.multi = append(b.s.multi, l)
	}
	checkRef := func(v Ref) Ref {
		if v != DerivedRef && v&multiBit != 0 && uint64(v&^multiBit) >= nm {
			d.fail("reference to a missing multi list")
		}
		return v
	}
	// set stores v for a value just added (entries are unique in the input).
	set := func(p *uint32, added bool, v Ref) {
		if !added {
			d.fail("duplicate value")
		}
		*p = uint32(checkRef(v))
	}
	for d.err == nil {
		sec := d.byte()
		if sec == secEnd || d.err != nil {
			break
		}
		cnt := d.uv("entry count")
		for i := uint64(0); i < cnt && d.err == nil; i++ {
			switch sec {
			case secV4:
				k := binary.BigEndian.Uint32(d.fixed(4))
				p, added := b.s.v4.slot(&k)
				set(p, added, d.ref(n))
			case secV6:
				k := [16]byte(d.fixed(16))
				p, added := b.s.v6.slot(&k)
				set(p, added, d.ref(n))
			case secNet:
				hdr := [2]byte(d.fixed(2))
				if d.err != nil {
					break
				}
				if hdr[0] != 4 && hdr[0] != 16 || int(hdr[1]) > 8*int(hdr[0]) {
					d.fail("bad network")
					break
				}
				a, _ := netip.AddrFromSlice(d.fixed(int(hdr[0])))
				v := checkRef(d.ref(n))
				if d.err != nil {
					break
				}
				p := netip.PrefixFrom(a, int(hdr[1]))
				if p.Masked() != p {
					d.fail("network not masked")
					break
				}
				b.s.nets.Insert(p, v)
				if a.Is4() {
					b.s.nets4++
					b.mark24(p)
				} else {
					b.s.nets6++
					b.mark32(p)
				}
			case secDomain, secURL, secEmail:
				t := map[byte]*strTable{secDomain: b.s.domain, secURL: b.s.url, secEmail: b.s.email}[sec]
				k := d.bytes("value", 1<<16)
				if d.err != nil {
					break
				}
				if t.full(k) {
					d.fail("string table full")
					break
				}
				if sec == secDomain && bytes.IndexByte(k, '.') < 0 {
					b.s.tlds = true
				}
				p, added := t.slot(k)
				set(p, added, d.ref(n))
			case secMD5:
				k := [16]byte(d.fixed(16))
				p, added := b.s.md5.slot(&k)
				set(p, added, d.ref(n))
			case secSHA1:
				k := [20]byte(d.fixed(20))
				p, added := b.s.sha1.slot(&k)
				set(p, added, d.ref(n))
			case secSHA256:
				k := [32]byte(d.fixed(32))
				p, added := b.s.sha256.slot(&k)
				set(p, added, d.ref(n))
			case secSHA512:
				k := [64]byte(d.fixed(64))
				p, added := b.s.sha512.slot(&k)
				set(p, added, d.ref(n))
			case secPattern:
				id := d.bytes("pattern indicator id", 1024)
				src := d.bytes("pattern", 1<<16)
				if d.err != nil {
					break
				}
				pt, err := pattern.Parse(string(src))
				if err != nil {
					d.fail(fmt.Sprintf("pattern of %s: %v", id, err))
					break
				}
				if b.patterns == nil {
					b.CollectPatterns(NewPatternSet())
				}
				if err := b.patterns.Add(string(id), pt); err != nil {
					d.fail(err.Error())
				}
			default:
				d.fail(fmt.Sprintf("unknown section %d", sec))
			}
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("read snapshot: at byte %d: %w", d.off, d.err)
	}
	return b.Snapshot(), nil
}

type decoder struct {
	r   *bufio.Reader
	off int64
	err error
	buf [64]byte
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	c, err := d.r.ReadByte()
	if err != nil {
		d.err = fmt.Errorf("truncated: %w", err)
		return 0
	}
	d.off++
	return c
}

func (d *decoder) uv(what string) uint64 {
	if d.err != nil {
		return 0
	}
	x, err := binary.ReadUvarint(d)
	if err != nil {
		d.err = fmt.Errorf("%s: %w", what, err)
	}
	return x
}

// ReadByte lets binary.ReadUvarint read from the decoder.
func (d *decoder) ReadByte() (byte, error) {
	c, err := d.r.ReadByte()
	if err == nil {
		d.off++
	}
	return c, err
}

func (d *decoder) ref(n uint64) Ref {
	v := d.uv("reference")
	if v > 0xFFFFFFFF {
		d.fail("reference out of range")
	}
	r := Ref(v)
	if r != DerivedRef && r&multiBit == 0 && uint64(r) >= n {
		d.fail("reference to a missing indicator")
	}
	return r
}

// fixed reads n ≤ 64 bytes; the result is valid until the next read.
func (d *decoder) fixed(n int) []byte {
	b := d.buf[:n]
	if d.err != nil {
		return b
	}
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.err = fmt.Errorf("truncated: %w", err)
	}
	d.off += int64(n)
	return b
}

func (d *decoder) bytes(what string, limit uint64) []byte {
	l := d.uv(what + " length")
	if d.err != nil {
		return nil
	}
	if l > limit {
		d.fail(what + " too long")
		return nil
	}
	b := make([]byte, l)
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.err = fmt.Errorf("%s: truncated: %w", what, err)
	}
	d.off += int64(l)
	return b
}
