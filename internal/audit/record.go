package audit

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente"
)

// Audit actions.
const (
	// Egress records one object version that left the node.
	Egress = "egress"
	// Admin records an administrative change.
	Admin = "admin"
	// Blind records blind access (internal/blind): a partner's batch of
	// evaluations, the blinded set served to it, a request to resolve
	// blinded references. It names the partner and counts; no value and
	// no object version, since none leaves.
	Blind = "blind"
)

// Record is one entry of the audit log.
type Record struct {
	// Seq is the record's position in the log, assigned by the store
	// (see [Seq]).
	Seq int64 `json:"seq"`
	// Time is when the event happened.
	Time time.Time `json:"time"`
	// Actor is who acted: the key id and organisation, or a peer.
	Actor string `json:"actor"`
	// Action is Egress or Admin.
	Action string `json:"action"`
	// Partner is the identity id of the organisation the object went to
	// (egress) or the change concerns.
	Partner string `json:"partner,omitempty"`
	// ObjectID and Version name the object version that left.
	ObjectID string    `json:"object_id,omitempty"`
	Version  time.Time `json:"version,omitzero"`
	// Rule is the policy rule that released the object, or the kind of
	// administrative change ("agreement.put", "peer.add", ...).
	Rule string `json:"rule"`
	// Detail adds context: the channel (taxii, push) or what changed.
	Detail string `json:"detail,omitempty"`
}

// Query selects audit records. Zero fields do not restrict.
type Query struct {
	Partner  string
	ObjectID string
	Action   string
	// From and To bound Time: From <= Time < To.
	From, To time.Time
	// Limit is the page size (default and maximum MaxPage).
	Limit int
	// Next is the cursor of a previous page.
	Next string
}

// Page is one page of audit records.
type Page struct {
	Records []Record `json:"records"`
	// Next is the cursor of the following page, "" on the last page.
	Next string `json:"next,omitempty"`
}

// Release is one egress event of the audit log: the object versions that
// left the node together (one page of a read, one push), to one partner,
// at one time. The store keeps it as one append-only row with the
// versions packed compactly (see [PackRelease]) and an index by object,
// written in the same transaction: one row per release instead of one
// per object version is what keeps auditing cheap on large reads.
// [PolicyStore.QueryAudit] returns each version as its own
// [Record], as if it had been appended alone.
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

	// packed holds the versions already packed, when they were added to
	// a [Packer] instead of listed in Versions.
	packed *packed
}

// packed is a release's versions in their stored form.
type packed struct {
	blob  []byte
	index []IndexRow
	n     int
}

// Len returns the number of versions r releases.
func (r Release) Len() int {
	if r.packed != nil {
		return r.packed.n
	}
	return len(r.Versions)
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
func (r Release) Records() []Record {
	vs := r.Versions
	if r.packed != nil {
		vs, _ = UnpackRelease(r.packed.blob)
	}
	out := make([]Record, len(vs))
	for i, v := range vs {
		out[i] = r.record(v)
	}
	return out
}

func (r Release) record(v ReleasedVersion) Record {
	d := r.Detail
	if v.Detail != "" {
		d = v.Detail
	}
	return Record{Time: r.Time, Actor: r.Actor, Action: Egress, Partner: r.Partner, ObjectID: v.ObjectID, Version: v.Version, Rule: v.Rule, Detail: d}
}

// Audit sequence numbers. A row of the audit log holds one record (an
// administrative change) or one release of many versions; the record for
// version i of the release in row r has Seq r<<SeqShift | i, so
// that every record has its own position and records sort in log order.
const (
	SeqShift = 24
	// MaxReleaseVersions is the most versions one release row holds; a
	// larger release is kept as several rows.
	MaxReleaseVersions = 1<<SeqShift - 1
)

// Seq returns the Seq of the record at index i of audit row row.
func Seq(row int64, i int) int64 { return row<<SeqShift | int64(i) }

// Cursor returns the cursor of the audit page that follows the
// record with sequence seq.
func Cursor(seq int64) string { return "a" + strconv.FormatInt(seq, 10) }

// ParseCursor returns the sequence of the last record before the
// page next asks for (0 for the first page). EINVALID if next is not an
// audit cursor.
func ParseCursor(next string) (int64, error) {
	if next == "" {
		return -1, nil
	}
	seq, err := strconv.ParseInt(strings.TrimPrefix(next, "a"), 10, 64)
	if err != nil || !strings.HasPrefix(next, "a") || seq < 0 {
		return 0, entente.Errorf(entente.EINVALID, "next: %q is not an audit cursor", next)
	}
	return seq, nil
}

// Buckets is the number of buckets of the audit index by
// object per hash generation: a release writes at most this many index
// rows, and a query by object reads the rows of one bucket per
// generation.
//
// Releases are indexed by [IndexHash] in buckets Buckets to
// 2×Buckets−1. Releases appended by earlier versions were
// indexed by [ObjectHash] in buckets 0 to Buckets−1; their
// rows stay as they are, and a query by object looks in both (see
// [ObjectBuckets]).
const Buckets = 32

// ObjectHash is the 64-bit FNV-1a hash of a string: the hash of object
// ids in the first generation of the audit index by object.
func ObjectHash(id string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= prime
	}
	return h
}

// IndexHash is the 64-bit hash of an object id that the audit index by
// object keeps. A STIX id's UUID is already 128 bits that differ between
// objects: it is mixed with the hash of the type instead of hashed byte
// by byte, which is what keeps indexing a 10,000-object release cheap.
// Other ids are hashed with [ObjectHash].
func IndexHash(id string) uint64 {
	var u [16]byte
	if typ, ok := splitSTIXID(id, &u); ok {
		return uuidHash(ObjectHash(typ), &u)
	}
	return ObjectHash(id)
}

// uuidHash mixes a STIX id's UUID with the hash of its type (splitmix64's
// finaliser, applied twice).
func uuidHash(typeHash uint64, u *[16]byte) uint64 {
	a, b := binary.BigEndian.Uint64(u[:8]), binary.BigEndian.Uint64(u[8:])
	return mix64(a ^ mix64(b^typeHash))
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// BucketKey is where an object's releases are listed in the audit index
// by object: the bucket, and the value to look for in that bucket's hash
// lists (the upper 32 bits of the object's hash, 4 big-endian bytes; the
// lower bits chose the bucket). A match is a candidate: two ids may
// share it, and the reader compares the ids of the release.
type BucketKey struct {
	Bucket int
	Key    []byte
}

// ObjectBuckets returns where id's releases are listed in the audit index
// by object: in the current generation ([IndexHash]) and in the first
// ([ObjectHash]), which older releases use.
func ObjectBuckets(id string) [2]BucketKey {
	return [2]BucketKey{bucketKey(IndexHash(id), Buckets), bucketKey(ObjectHash(id), 0)}
}

func bucketKey(h uint64, base int) BucketKey {
	return BucketKey{Bucket: base + int(h%Buckets), Key: binary.BigEndian.AppendUint32(nil, uint32(h>>32))}
}

// IndexRow is one row of the audit index by object: the hashes (the
// upper 32 bits, 4 big-endian bytes each) of the objects of one release
// that fall in one bucket.
type IndexRow struct {
	Bucket int
	Hashes []byte
}

// ReleaseIndex returns the index rows of a release's versions, by
// bucket.
func ReleaseIndex(vs []ReleasedVersion) []IndexRow {
	hs := make([]uint64, len(vs))
	for i, v := range vs {
		hs[i] = IndexHash(v.ObjectID)
	}
	return indexRows(hs)
}

// indexRows groups the hashes of a release's objects by bucket. The
// hashes of an object listed twice are listed twice: a query only looks
// for a hash in the list.
func indexRows(hs []uint64) []IndexRow {
	var count [Buckets]int
	for _, h := range hs {
		count[h%Buckets]++
	}
	buf := make([]byte, 4*len(hs))
	var at [Buckets]int
	var out []IndexRow
	off := 0
	for b, n := range count {
		at[b] = off
		if n > 0 {
			out = append(out, IndexRow{Bucket: Buckets + b, Hashes: buf[off : off+4*n]})
		}
		off += 4 * n
	}
	for _, h := range hs {
		b := h % Buckets
		binary.BigEndian.PutUint32(buf[at[b]:], uint32(h>>32))
		at[b] += 4
	}
	return out
}

// Validate checks a release before it is stored: a time in range, an
// actor and a partner, at least one version, each with an id.
func (r Release) Validate() error {
	if err := r.validateHeader(); err != nil {
		return err
	}
	if r.packed != nil {
		return nil // each version was checked when it was added
	}
	for i, v := range r.Versions {
		if err := r.validateVersion(i, v); err != nil {
			return err
		}
	}
	return nil
}

func (r Release) validateHeader() error {
	if _, ok := UnixNano(r.Time); !ok || r.Time.IsZero() {
		return entente.Errorf(entente.EINVALID, "release to %s: time is missing or out of range", r.Partner)
	}
	if r.Len() == 0 {
		return entente.Errorf(entente.EINVALID, "release to %s: no object versions", r.Partner)
	}
	return nil
}

func (r Release) validateVersion(i int, v ReleasedVersion) error {
	if v.ObjectID == "" {
		return entente.Errorf(entente.EINVALID, "release to %s: version %d has no object id", r.Partner, i)
	}
	if _, ok := UnixNano(v.Version); !ok && !v.Version.IsZero() {
		return entente.Errorf(entente.EINVALID, "release to %s: version of %s out of range", r.Partner, v.ObjectID)
	}
	return nil
}

// Pack validates r (see [Release.Validate]) and returns its versions
// packed (see [PackRelease]) and its index by object, in one pass over
// the versions. r must hold at most MaxReleaseVersions versions (see
// [Release.Split]).
func (r Release) Pack() ([]byte, []IndexRow, error) {
	if err := r.validateHeader(); err != nil {
		return nil, nil, err
	}
	if r.packed != nil {
		return r.packed.blob, r.packed.index, nil
	}
	var p Packer
	if err := p.Add(r, r.Versions); err != nil {
		return nil, nil, err
	}
	b, idx := p.finish()
	return b, idx, nil
}

// Split returns r as releases of at most MaxReleaseVersions versions (r
// itself when it has none, so that packing it reports the error).
func (r Release) Split() []Release {
	if r.packed != nil || len(r.Versions) <= MaxReleaseVersions {
		return []Release{r}
	}
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
	var p Packer
	p.pack(vs, false)
	b, _ := p.finish()
	return b
}

// A Packer packs the versions of one release as they become known, part
// by part (see [Packer.Add]), so that a large release is ready to store
// as soon as its last part is: [Packer.Seal] returns the release,
// packed, with its index by object. The zero Packer is empty and ready.
type Packer struct {
	dict  []string
	index map[string]uint64
	// Consecutive versions mostly share their rule and type: a few
	// recent strings are checked before the map.
	cache    [4]recentString
	used     int
	body     []byte
	hashes   []uint64
	n        int
	prev     int64
	lastType string
	typeHash uint64
	invalid  error
}

type recentString struct {
	s string
	i uint64
}

// Add packs versions, the next part of the release, checking each as
// [Release.Validate] does (r names the partner in errors). After an
// error the Packer refuses everything.
func (p *Packer) Add(r Release, vs []ReleasedVersion) error {
	if p.invalid != nil {
		return p.invalid
	}
	if p.n+len(vs) > MaxReleaseVersions {
		p.invalid = entente.Errorf(entente.EINVALID, "release to %s: more than %d versions", r.Partner, MaxReleaseVersions)
		return p.invalid
	}
	for i, v := range vs {
		if err := r.validateVersion(p.n+i, v); err != nil {
			p.invalid = err
			return err
		}
	}
	p.pack(vs, true)
	return nil
}

// Len returns the number of versions packed so far.
func (p *Packer) Len() int { return p.n }

// Seal returns r (its time, actor, partner and detail) releasing the
// versions packed, ready for [PolicyStore.AppendRelease]; r's own
// Versions are ignored. The Packer must not be used after.
func (p *Packer) Seal(r Release) Release {
	b, idx := p.finish()
	r.Versions = nil
	r.packed = &packed{blob: b, index: idx, n: p.n}
	return r
}

func (p *Packer) intern(s string) uint64 {
	for _, r := range p.cache[:p.used] {
		if r.s == s {
			return r.i
		}
	}
	if p.index == nil {
		p.index = map[string]uint64{}
	}
	i, ok := p.index[s]
	if !ok {
		i = uint64(len(p.dict))
		p.dict = append(p.dict, s)
		p.index[s] = i
	}
	if p.used < len(p.cache) {
		p.used++
	}
	copy(p.cache[1:p.used], p.cache[:p.used-1])
	p.cache[0] = recentString{s, i}
	return i
}

// pack appends vs to the body, and their [IndexHash]es when hash is set.
func (p *Packer) pack(vs []ReleasedVersion, hash bool) {
	if p.body == nil {
		p.body = make([]byte, 0, 24*len(vs))
	}
	var u [16]byte
	for _, v := range vs {
		p.body = binary.AppendUvarint(p.body, p.intern(v.Rule))
		if v.Detail == "" {
			p.body = append(p.body, 0)
		} else {
			p.body = binary.AppendUvarint(p.body, p.intern(v.Detail)+1)
		}
		if typ, ok := splitSTIXID(v.ObjectID, &u); ok {
			p.body = binary.AppendUvarint(p.body, p.intern(typ)<<1)
			p.body = append(p.body, u[:]...)
			if hash {
				if typ != p.lastType || p.typeHash == 0 {
					p.lastType, p.typeHash = typ, ObjectHash(typ)
				}
				p.hashes = append(p.hashes, uuidHash(p.typeHash, &u))
			}
		} else {
			p.body = binary.AppendUvarint(p.body, p.intern(v.ObjectID)<<1|1)
			if hash {
				p.hashes = append(p.hashes, ObjectHash(v.ObjectID))
			}
		}
		var n int64
		if !v.Version.IsZero() {
			n, _ = UnixNano(v.Version)
		}
		p.body = binary.AppendVarint(p.body, n-p.prev)
		p.prev = n
	}
	p.n += len(vs)
}

// finish returns the packed form and the index rows.
func (p *Packer) finish() ([]byte, []IndexRow) {
	out := make([]byte, 0, len(p.body)+16*len(p.dict)+16)
	out = append(out, packMagic...)
	out = binary.AppendUvarint(out, uint64(len(p.dict)))
	for _, s := range p.dict {
		out = binary.AppendUvarint(out, uint64(len(s)))
		out = append(out, s...)
	}
	out = binary.AppendUvarint(out, uint64(p.n))
	return append(out, p.body...), indexRows(p.hashes)
}

// uuidPairs are the offsets of the 16 hex-digit pairs of a canonical
// UUID.
var uuidPairs = [16]uint8{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// hexValue maps the lower-case hex digits to their values and every other
// byte to 0xff (upper case is not canonical: such ids are kept verbatim).
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()

// splitSTIXID splits "<type>--<canonical lowercase UUID>" into its type
// and the UUID's 16 bytes; ok is false for any other form (which must be
// kept verbatim to be restored exactly).
func splitSTIXID(id string, u *[16]byte) (string, bool) {
	const uuidLen = 36
	if len(id) < uuidLen+3 || id[len(id)-uuidLen-2:len(id)-uuidLen] != "--" {
		return "", false
	}
	s := id[len(id)-uuidLen:]
	if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return "", false
	}
	var bad byte
	for j, o := range uuidPairs {
		hi, lo := hexValue[s[o]], hexValue[s[o+1]]
		bad |= hi | lo
		u[j] = hi<<4 | lo
	}
	if bad&0xf0 != 0 {
		return "", false
	}
	return id[:len(id)-uuidLen-2], true
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

// Row is one row of the audit log as a backend reads it: a single
// record, or a release (Packed set) standing for several.
type Row struct {
	Seq    int64 // the row's sequence
	Record Record
	Packed []byte
}

// Pager turns the rows of the audit log, read in order, into a page
// of records. Backends select rows with seq >= [Pager.FromRow] and
// the query's row conditions (partner, action, time; object id as a
// candidate filter), feed them in order to Add until it returns false,
// and return Page.
type Pager struct {
	q     Query
	after int64 // Seq of the last record before the page, -1 for none
	limit int
	page  Page
	full  bool
}

// NewPager starts a page of q. EINVALID for a bad cursor.
func NewPager(q Query) (*Pager, error) {
	after, err := ParseCursor(q.Next)
	if err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	return &Pager{q: q, after: after, limit: limit}, nil
}

// FromRow is the first row sequence the page may draw records from.
func (p *Pager) FromRow() int64 {
	if p.after < 0 {
		return 0
	}
	return p.after >> SeqShift
}

// Limit is the page size.
func (p *Pager) Limit() int { return p.limit }

// Add adds the records of one row that match the query and reports
// whether the page wants more rows.
func (p *Pager) Add(r Row) (bool, error) {
	if p.full {
		return false, nil
	}
	if r.Packed == nil {
		seq := Seq(r.Seq, 0)
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
		seq := Seq(r.Seq, i)
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

func (p *Pager) add(rec Record) {
	if len(p.page.Records) == p.limit {
		// One more record exists: the page is full and has a next.
		p.page.Next = Cursor(p.page.Records[p.limit-1].Seq)
		p.full = true
		return
	}
	p.page.Records = append(p.page.Records, rec)
}

// Page returns the page built.
func (p *Pager) Page() Page { return p.page }
