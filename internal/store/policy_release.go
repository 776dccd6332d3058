package store

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente"
)

// Release is one egress event of the audit log: the object versions that
// left the node together (one page of a read, one push), to one partner,
// at one time. The store keeps it as one append-only row with the
// versions packed compactly (see [PackRelease]) and an index by object,
// written in the same transaction: one row per release instead of one
// per object version is what keeps auditing cheap on large reads.
// [PolicyStore.QueryAudit] returns each version as its own
// [AuditRecord], as if it had been appended alone.
type Release struct {
	// Time is when the versions left.
	Time time.Time
	// Actor is the key that read them, or the peer they were pushed to.
	Actor string
	// Partner is the identity id of the organisation they went to.
	Partner string
	// Detail is the context shared by every version: the channel and
	// collection.
	Detail string
	// Versions are the object versions released, in the order sent.
	Versions []ReleasedVersion
}

// ReleasedVersion is one object version of a [Release].
type ReleasedVersion struct {
	ObjectID string
	Version  time.Time
	// Rule is the policy rule that released it.
	Rule string
	// Detail replaces the release's detail for this version when not
	// empty (e.g. the object a redaction introduced it for).
	Detail string
}

// Records returns the audit records r stands for, one per version, with
// Seq zero.
func (r Release) Records() []AuditRecord {
	out := make([]AuditRecord, len(r.Versions))
	for i, v := range r.Versions {
		out[i] = r.record(v)
	}
	return out
}

func (r Release) record(v ReleasedVersion) AuditRecord {
	d := r.Detail
	if v.Detail != "" {
		d = v.Detail
	}
	return AuditRecord{Time: r.Time, Actor: r.Actor, Action: AuditEgress, Partner: r.Partner, ObjectID: v.ObjectID, Version: v.Version, Rule: v.Rule, Detail: d}
}

// Audit sequence numbers. A row of the audit log holds one record (an
// administrative change) or one release of many versions; the record for
// version i of the release in row r has Seq r<<AuditSeqShift | i, so
// that every record has its own position and records sort in log order.
const (
	AuditSeqShift = 24
	// MaxReleaseVersions is the most versions one release row holds; a
	// larger release is kept as several rows.
	MaxReleaseVersions = 1<<AuditSeqShift - 1
)

// AuditSeq returns the Seq of the record at index i of audit row row.
func AuditSeq(row int64, i int) int64 { return row<<AuditSeqShift | int64(i) }

// AuditCursor returns the cursor of the audit page that follows the
// record with sequence seq.
func AuditCursor(seq int64) string { return "a" + strconv.FormatInt(seq, 10) }

// ParseAuditCursor returns the sequence of the last record before the
// page next asks for (0 for the first page). EINVALID if next is not an
// audit cursor.
func ParseAuditCursor(next string) (int64, error) {
	if next == "" {
		return -1, nil
	}
	seq, err := strconv.ParseInt(strings.TrimPrefix(next, "a"), 10, 64)
	if err != nil || !strings.HasPrefix(next, "a") || seq < 0 {
		return 0, entente.Errorf(entente.EINVALID, "next: %q is not an audit cursor", next)
	}
	return seq, nil
}

// AuditObjectBuckets is the number of buckets of the audit index by
// object: a release writes at most this many index rows, and a query by
// object reads the rows of one bucket.
const AuditObjectBuckets = 32

// ObjectHash is the 64-bit hash of an object id the audit index by
// object keeps (FNV-1a).
func ObjectHash(id string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= prime
	}
	return h
}

// ObjectBucket returns the bucket of the audit index by object that id
// falls in, and the value to look for in that bucket's hash lists: the
// upper 32 bits of its hash, 4 big-endian bytes (the lower bits chose
// the bucket). A match is a candidate: two ids may share it, and the
// reader compares the ids of the release.
func ObjectBucket(id string) (int, []byte) {
	h := ObjectHash(id)
	return int(h % AuditObjectBuckets), binary.BigEndian.AppendUint32(nil, uint32(h>>32))
}

// AuditIndexRow is one row of the audit index by object: the hashes (the
// upper 32 bits, 4 big-endian bytes each, sorted) of the objects of one
// release that fall in one bucket.
type AuditIndexRow struct {
	Bucket int
	Hashes []byte
}

// ReleaseIndex returns the index rows of a release's versions, by
// bucket.
func ReleaseIndex(vs []ReleasedVersion) []AuditIndexRow {
	var byBucket [AuditObjectBuckets][]uint32
	for _, v := range vs {
		h := ObjectHash(v.ObjectID)
		byBucket[h%AuditObjectBuckets] = append(byBucket[h%AuditObjectBuckets], uint32(h>>32))
	}
	var out []AuditIndexRow
	for b, hs := range byBucket {
		if len(hs) == 0 {
			continue
		}
		slices.Sort(hs)
		hs = slices.Compact(hs)
		buf := make([]byte, 0, 4*len(hs))
		for _, h := range hs {
			buf = binary.BigEndian.AppendUint32(buf, h)
		}
		out = append(out, AuditIndexRow{Bucket: b, Hashes: buf})
	}
	return out
}

// Validate checks a release before it is stored: a time in range, an
// actor and a partner, at least one version, each with an id.
func (r Release) Validate() error {
	if _, ok := UnixNano(r.Time); !ok || r.Time.IsZero() {
		return entente.Errorf(entente.EINVALID, "release to %s: time is missing or out of range", r.Partner)
	}
	if len(r.Versions) == 0 {
		return entente.Errorf(entente.EINVALID, "release to %s: no object versions", r.Partner)
	}
	for i, v := range r.Versions {
		if v.ObjectID == "" {
			return entente.Errorf(entente.EINVALID, "release to %s: version %d has no object id", r.Partner, i)
		}
		if _, ok := UnixNano(v.Version); !ok && !v.Version.IsZero() {
			return entente.Errorf(entente.EINVALID, "release to %s: version of %s out of range", r.Partner, v.ObjectID)
		}
	}
	return nil
}

// Split returns r as releases of at most MaxReleaseVersions versions.
func (r Release) Split() []Release {
	var out []Release
	for start := 0; start < len(r.Versions); start += MaxReleaseVersions {
		part := r
		part.Versions = r.Versions[start:min(start+MaxReleaseVersions, len(r.Versions))]
		out = append(out, part)
	}
	return out
}

// The packed form of a release's versions:
//
//	"R1" uvarint(#strings) { uvarint(len) bytes }   dictionary
//	uvarint(#versions) { version }
//	version: uvarint(rule) uvarint(detail+1, 0 = none) id varint(Δ version ns)
//	id: uvarint(type) 16 bytes of UUID   when the id is "<type>--<uuid>"
//	    uvarint(#strings + string index) otherwise
//
// Types, rules and details repeat across a release and go in the
// dictionary; ids are mostly STIX ids, kept as 16 bytes; versions are
// deltas from the previous one.
const packMagic = "R1"

// PackRelease encodes a release's versions compactly.
func PackRelease(vs []ReleasedVersion) []byte {
	var dict []string
	index := map[string]uint64{}
	// Consecutive versions mostly share their rule and type: a few
	// recent strings are checked before the map.
	type recent struct {
		s string
		i uint64
	}
	var cache [4]recent
	used := 0
	intern := func(s string) uint64 {
		for _, r := range cache[:used] {
			if r.s == s {
				return r.i
			}
		}
		i, ok := index[s]
		if !ok {
			i = uint64(len(dict))
			dict = append(dict, s)
			index[s] = i
		}
		if used < len(cache) {
			used++
		}
		copy(cache[1:used], cache[:used-1])
		cache[0] = recent{s, i}
		return i
	}
	body := make([]byte, 0, 24*len(vs))
	body = binary.AppendUvarint(body, uint64(len(vs)))
	var prev int64
	var u [16]byte
	for _, v := range vs {
		body = binary.AppendUvarint(body, intern(v.Rule))
		if v.Detail == "" {
			body = append(body, 0)
		} else {
			body = binary.AppendUvarint(body, intern(v.Detail)+1)
		}
		if typ, ok := splitSTIXID(v.ObjectID, &u); ok {
			body = binary.AppendUvarint(body, intern(typ)<<1)
			body = append(body, u[:]...)
		} else {
			body = binary.AppendUvarint(body, intern(v.ObjectID)<<1|1)
		}
		n, _ := UnixNano(v.Version)
		if v.Version.IsZero() {
			n = 0
		}
		body = binary.AppendVarint(body, n-prev)
		prev = n
	}
	out := make([]byte, 0, len(body)+16*len(dict)+8)
	out = append(out, packMagic...)
	out = binary.AppendUvarint(out, uint64(len(dict)))
	for _, s := range dict {
		out = binary.AppendUvarint(out, uint64(len(s)))
		out = append(out, s...)
	}
	return append(out, body...)
}

// splitSTIXID splits "<type>--<canonical lowercase UUID>" into its type
// and the UUID's 16 bytes; ok is false for any other form (which must be
// kept verbatim to be restored exactly).
func splitSTIXID(id string, u *[16]byte) (string, bool) {
	const uuidLen = 36
	if len(id) < uuidLen+3 || id[len(id)-uuidLen-2:len(id)-uuidLen] != "--" {
		return "", false
	}
	s := id[len(id)-uuidLen:]
	j := 0
	for i := 0; i < uuidLen; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return "", false
			}
			continue
		}
		hi, ok1 := lowerHex(s[i])
		lo, ok2 := lowerHex(s[i+1])
		if !ok1 || !ok2 {
			return "", false
		}
		u[j] = hi<<4 | lo
		j++
		i++
	}
	return id[:len(id)-uuidLen-2], true
}

// lowerHex is the value of a lower-case hex digit (upper case is not
// canonical: such ids are kept verbatim).
func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func joinSTIXID(typ string, u []byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:16])
	return typ + "--" + string(b[:])
}

var errPacked = errors.New("corrupt packed release")

// UnpackRelease decodes what PackRelease encoded.
func UnpackRelease(b []byte) ([]ReleasedVersion, error) {
	if len(b) < len(packMagic) || string(b[:len(packMagic)]) != packMagic {
		return nil, fmt.Errorf("%w: bad header", errPacked)
	}
	b = b[len(packMagic):]
	uv := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errPacked
		}
		b = b[n:]
		return v, nil
	}
	nd, err := uv()
	if err != nil || nd > uint64(len(b)) {
		return nil, errPacked
	}
	dict := make([]string, nd)
	for i := range dict {
		l, err := uv()
		if err != nil || l > uint64(len(b)) {
			return nil, errPacked
		}
		dict[i], b = string(b[:l]), b[l:]
	}
	str := func(i uint64) (string, error) {
		if i >= uint64(len(dict)) {
			return "", errPacked
		}
		return dict[i], nil
	}
	nv, err := uv()
	if err != nil || nv > uint64(len(b)) {
		return nil, errPacked
	}
	out := make([]ReleasedVersion, nv)
	var prev int64
	for i := range out {
		var v ReleasedVersion
		r, err := uv()
		if err != nil {
			return nil, err
		}
		if v.Rule, err = str(r); err != nil {
			return nil, err
		}
		d, err := uv()
		if err != nil {
			return nil, err
		}
		if d > 0 {
			if v.Detail, err = str(d - 1); err != nil {
				return nil, err
			}
		}
		id, err := uv()
		if err != nil {
			return nil, err
		}
		s, err := str(id >> 1)
		if err != nil {
			return nil, err
		}
		if id&1 == 1 {
			v.ObjectID = s
		} else {
			if len(b) < 16 {
				return nil, errPacked
			}
			v.ObjectID, b = joinSTIXID(s, b[:16]), b[16:]
		}
		delta, n := binary.Varint(b)
		if n <= 0 {
			return nil, errPacked
		}
		b = b[n:]
		prev += delta
		if prev != 0 {
			v.Version = FromUnixNano(prev)
		}
		out[i] = v
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errPacked, len(b))
	}
	return out, nil
}

// AuditRow is one row of the audit log as a backend reads it: a single
// record, or a release (Packed set) standing for several.
type AuditRow struct {
	Seq    int64 // the row's sequence
	Record AuditRecord
	Packed []byte
}

// AuditPager turns the rows of the audit log, read in order, into a page
// of records. Backends select rows with seq >= [AuditPager.FromRow] and
// the query's row conditions (partner, action, time; object id as a
// candidate filter), feed them in order to Add until it returns false,
// and return Page.
type AuditPager struct {
	q     AuditQuery
	after int64 // Seq of the last record before the page, -1 for none
	limit int
	page  AuditPage
	full  bool
}

// NewAuditPager starts a page of q. EINVALID for a bad cursor.
func NewAuditPager(q AuditQuery) (*AuditPager, error) {
	after, err := ParseAuditCursor(q.Next)
	if err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	return &AuditPager{q: q, after: after, limit: limit}, nil
}

// FromRow is the first row sequence the page may draw records from.
func (p *AuditPager) FromRow() int64 {
	if p.after < 0 {
		return 0
	}
	return p.after >> AuditSeqShift
}

// Limit is the page size.
func (p *AuditPager) Limit() int { return p.limit }

// Add adds the records of one row that match the query and reports
// whether the page wants more rows.
func (p *AuditPager) Add(r AuditRow) (bool, error) {
	if p.full {
		return false, nil
	}
	if r.Packed == nil {
		seq := AuditSeq(r.Seq, 0)
		if seq > p.after && (p.q.ObjectID == "" || r.Record.ObjectID == p.q.ObjectID) {
			rec := r.Record
			rec.Seq = seq
			p.add(rec)
		}
		return !p.full, nil
	}
	vs, err := UnpackRelease(r.Packed)
	if err != nil {
		return false, fmt.Errorf("audit row %d: %w", r.Seq, err)
	}
	rel := Release{Time: r.Record.Time, Actor: r.Record.Actor, Partner: r.Record.Partner, Detail: r.Record.Detail}
	for i, v := range vs {
		seq := AuditSeq(r.Seq, i)
		if seq <= p.after || (p.q.ObjectID != "" && v.ObjectID != p.q.ObjectID) {
			continue
		}
		rec := rel.record(v)
		rec.Seq = seq
		if p.add(rec); p.full {
			break
		}
	}
	return !p.full, nil
}

func (p *AuditPager) add(rec AuditRecord) {
	if len(p.page.Records) == p.limit {
		// One more record exists: the page is full and has a next.
		p.page.Next = AuditCursor(p.page.Records[p.limit-1].Seq)
		p.full = true
		return
	}
	p.page.Records = append(p.page.Records, rec)
}

// Page returns the page built.
func (p *AuditPager) Page() AuditPage { return p.page }
