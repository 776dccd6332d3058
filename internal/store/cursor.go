package store

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"strings"

	"github.com/entente-cti/entente"
)

// Cursor is a keyset position in a collection: the (date_added,
// insertion sequence) of the last entry of a page. The next page starts
// strictly after it.
type Cursor struct {
	DateAdded int64 // Unix nanoseconds
	Seq       int64
}

const (
	cursorVersion = 1
	cursorMACLen  = 8
	cursorLen     = 1 + 8 + 8 + cursorMACLen
	// cursorSalt makes the checksum specific to Entente cursors. It is a
	// checksum against corrupted or hand-edited cursors, not a secret: a
	// forged cursor can only move a reader within the query it is
	// already allowed to run.
	cursorSalt = "entente store cursor v1\x00"
)

// EncodeCursor returns the opaque token for c, bound to the collection
// (by its ID) and the filters of q: a token presented with another
// collection or other filters is refused by [DecodeCursor]. Limit, Next
// and MetadataOnly are not part of the binding. The token is the same
// whichever backend or replica issues it.
func EncodeCursor(c Cursor, collectionID string, q entente.ObjectQuery) string {
	var b [cursorLen]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(c.DateAdded))
	binary.BigEndian.PutUint64(b[9:17], uint64(c.Seq))
	mac := cursorMAC(b[:17], collectionID, q)
	copy(b[17:], mac[:cursorMACLen])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// DecodeCursor parses a token made by [EncodeCursor] for the same
// collection and filters. It returns an EINVALID *entente.Error when the
// token is malformed, altered or was issued for another query.
func DecodeCursor(s, collectionID string, q entente.ObjectQuery) (Cursor, error) {
	invalid := entente.Errorf(entente.EINVALID, "next %q is not a valid cursor for this query", truncate(s, 64))
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != cursorLen || b[0] != cursorVersion {
		return Cursor{}, invalid
	}
	mac := cursorMAC(b[:17], collectionID, q)
	if string(mac[:cursorMACLen]) != string(b[17:]) {
		return Cursor{}, invalid
	}
	c := Cursor{
		DateAdded: int64(binary.BigEndian.Uint64(b[1:9])),
		Seq:       int64(binary.BigEndian.Uint64(b[9:17])),
	}
	return c, nil
}

func cursorMAC(payload []byte, collectionID string, q entente.ObjectQuery) [32]byte {
	h := sha256.New()
	h.Write([]byte(cursorSalt))
	h.Write(payload)
	writeField := func(parts ...string) {
		for _, p := range parts {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(len(p)))
			h.Write(n[:])
			h.Write([]byte(p))
		}
		h.Write([]byte{0xff})
	}
	writeField(collectionID)
	writeField(sortedCopy(q.IDs)...)
	writeField(sortedCopy(q.Types)...)
	writeField(sortedCopy(q.SpecVersions)...)
	var added string
	if !q.AddedAfter.IsZero() {
		added = q.AddedAfter.UTC().Format("2006-01-02T15:04:05.999999999Z")
	}
	writeField(added)
	v := q.Versions
	flags := []byte{'0', '0', '0'}
	if v.All {
		flags[0] = '1'
	}
	if v.First {
		flags[1] = '1'
	}
	if v.Last {
		flags[2] = '1'
	}
	at := make([]string, len(v.At))
	for i, t := range v.At {
		at[i] = t.UTC().Format("2006-01-02T15:04:05.999999999Z")
	}
	slices.Sort(at)
	writeField(append([]string{string(flags)}, at...)...)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
