package ingest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/entente-cti/entente"
	"github.com/google/uuid"
)

// recordCompact is the first byte of a status record in the compact
// encoding (appendRecord); a record in JSON, as the node wrote them before,
// begins with '{'.
const recordCompact = 0x01

// appendRecord appends to b r in the compact encoding that decodeRecord
// reads back: the record's strings and counts, then each list of details
// with every string of a detail front-coded against the same string of
// the detail before it (the length they share, then the rest), and a rest
// that is a canonical lowercase UUID (the end of a STIX id) written as its
// 16 bytes.
//
// Why: the writer stores the final status of every submission in the
// commit of its objects, and in JSON a status of 100 successes was a
// 9.6 KB record, a page and an overflow page of the database, 10 % of the
// log a TAXII POST wrote (docs/performance.md, "A warm heap, and where a
// commit's log frames go"). Compact, the same record is ~2.5 KB: the ids
// of one submission share their type, its versions most of their digits.
func (r statusRecord) appendRecord(b []byte) []byte {
	st := r.Status
	if st == nil {
		st = &entente.Status{}
	}
	b = append(b, recordCompact)
	if r.Status == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
	}
	for _, s := range []string{r.Owner, st.ID, st.Status, st.RequestTimestamp} {
		b = appendString(b, s)
	}
	for _, n := range []int{st.TotalCount, st.SuccessCount, st.FailureCount, st.PendingCount} {
		b = binary.AppendUvarint(b, uint64(max(n, 0)))
	}
	for _, ds := range [][]entente.StatusDetail{st.Successes, st.Failures, st.Pendings} {
		b = binary.AppendUvarint(b, uint64(len(ds)))
		var prev entente.StatusDetail
		for _, d := range ds {
			b = appendFront(b, prev.ID, d.ID)
			b = appendFront(b, prev.Version, d.Version)
			b = appendFront(b, prev.Message, d.Message)
			prev = d
		}
	}
	return b
}

// appendString appends s, its length first.
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendFront appends s front-coded against prev: the length of the
// prefix they share, then the length of the rest times two, plus one when
// the rest is a canonical UUID written as its 16 bytes, then the rest.
func appendFront(b []byte, prev, s string) []byte {
	n := 0
	for n < len(prev) && n < len(s) && prev[n] == s[n] {
		n++
	}
	if k := len(s) - 36; k >= 0 && n > k {
		// Shared no further than a UUID at the end, so that it packs.
		if _, ok := packUUID(s[k:]); ok {
			n = k
		}
	}
	rest := s[n:]
	b = binary.AppendUvarint(b, uint64(n))
	if u, ok := packUUID(rest); ok {
		b = binary.AppendUvarint(b, uint64(len(rest))<<1|1)
		return append(b, u[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(rest))<<1)
	return append(b, rest...)
}

// packUUID returns the 16 bytes of s when s is a UUID in canonical
// lowercase form (8-4-4-4-12 hexadecimal digits), the only form that
// unpackUUID gives back byte for byte (uuid.Parse also takes upper case,
// and other forms at other lengths).
func packUUID(s string) (u [16]byte, ok bool) {
	if len(s) != 36 || strings.ToLower(s) != s {
		return u, false
	}
	p, err := uuid.Parse(s)
	return p, err == nil
}

// unpackUUID appends the canonical lowercase form of u to b.
func unpackUUID(b []byte, u []byte) []byte {
	return append(b, uuid.UUID(u).String()...)
}

// errRecord is what decodeRecord returns for bytes that are not a record.
var errRecord = errors.New("not a status record")

// decodeRecord reads a stored status record: the compact encoding of
// appendRecord, or the JSON the node wrote before it.
func decodeRecord(body []byte) (statusRecord, error) {
	var rec statusRecord
	if len(body) == 0 || body[0] != recordCompact {
		if err := json.Unmarshal(body, &rec); err != nil {
			return statusRecord{}, err
		}
		return rec, nil
	}
	d := recordReader{b: body[1:], budget: maxDecoded(len(body))}
	hasStatus := d.byte()
	rec.Owner = d.string()
	st := &entente.Status{ID: d.string(), Status: d.string(), RequestTimestamp: d.string()}
	st.TotalCount, st.SuccessCount, st.FailureCount, st.PendingCount = d.count(), d.count(), d.count(), d.count()
	st.Successes, st.Failures, st.Pendings = d.details(), d.details(), d.details()
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d bytes after its end", errRecord, len(d.b))
	}
	if d.err != nil {
		return statusRecord{}, d.err
	}
	if hasStatus == 1 {
		rec.Status = st
	}
	return rec, nil
}

// recordReader reads what appendRecord wrote; its first error sticks.
type recordReader struct {
	b   []byte
	err error
	buf []byte // the string being rebuilt
	// budget is how many more bytes of strings the record may decode
	// to: front coding lets a few bytes repeat a long string, so a
	// corrupt record could otherwise decode to far more than any
	// status the node writes (maxDecoded).
	budget int
}

// maxDecoded bounds the bytes of strings a record of n bytes decodes to.
// A record appendRecord wrote decodes to at most ~40 times its size
// (a detail of the same long failure message as the detail before takes
// three bytes); the bound leaves room above that and for small records.
func maxDecoded(n int) int { return 256*n + 1<<20 }

func (d *recordReader) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errRecord, what)
	}
	d.b = nil
}

func (d *recordReader) byte() byte {
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *recordReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad length")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count, which must fit the record's own length (a count
// of details is followed by at least three bytes per detail).
func (d *recordReader) count() int {
	v := d.uvarint()
	if v > 1<<31 {
		d.fail("count out of range")
		return 0
	}
	return int(v)
}

func (d *recordReader) take(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail("truncated")
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *recordReader) string() string {
	return string(d.take(d.uvarint())) // no larger than the record
}

// front reads a string front-coded against prev (see appendFront).
func (d *recordReader) front(prev string) string {
	shared := d.uvarint()
	rest := d.uvarint()
	if shared > uint64(len(prev)) {
		d.fail("shared prefix longer than the string before")
		return ""
	}
	d.buf = append(d.buf[:0], prev[:shared]...)
	if rest&1 == 1 {
		if rest>>1 != 36 {
			d.fail("packed UUID of a wrong length")
			return ""
		}
		if u := d.take(16); d.err == nil {
			d.buf = unpackUUID(d.buf, u)
		}
	} else {
		d.buf = append(d.buf, d.take(rest>>1)...)
	}
	if d.err != nil {
		return ""
	}
	if d.budget -= len(d.buf); d.budget < 0 {
		d.fail("decodes to more than its size allows")
		return ""
	}
	return string(d.buf)
}

// details reads a list of details, nil when it is empty (as JSON's
// omitempty lists read back).
func (d *recordReader) details() []entente.StatusDetail {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(d.b))/6 { // each detail takes at least six bytes
		d.fail("more details than bytes")
		return nil
	}
	out := make([]entente.StatusDetail, n)
	var prev entente.StatusDetail
	for i := range out {
		out[i] = entente.StatusDetail{ID: d.front(prev.ID), Version: d.front(prev.Version), Message: d.front(prev.Message)}
		if d.err != nil {
			return nil
		}
		prev = out[i]
	}
	return out
}

// DecodeStatusRecord reads a status record as the node stores it (see
// [store.Store]'s PutStatus): the key that made the request, and the
// status.
func DecodeStatusRecord(body []byte) (owner string, st *entente.Status, err error) {
	rec, err := decodeRecord(body)
	if err != nil {
		return "", nil, fmt.Errorf("decode status record: %w", err)
	}
	return rec.Owner, rec.Status, nil
}
