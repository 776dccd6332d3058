package feed

import (
	"crypto/sha1"
	"encoding/hex"

	"github.com/google/uuid"
)

// typedUUID5 returns prefix + "--" + the version 5 UUID of name in ns,
// as uuid.NewSHA1 computes it, with fewer allocations (the hot path of
// an import computes two per value). scratch is reused between calls.
func typedUUID5(scratch *[]byte, prefix string, ns uuid.UUID, name string) string {
	buf := append(append((*scratch)[:0], ns[:]...), name...)
	*scratch = buf
	sum := sha1.Sum(buf)
	var u [16]byte
	copy(u[:], sum[:16])
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	out := make([]byte, 0, len(prefix)+2+36)
	out = append(out, prefix...)
	out = append(out, "--"...)
	var h [36]byte
	hex.Encode(h[0:8], u[0:4])
	h[8] = '-'
	hex.Encode(h[9:13], u[4:6])
	h[13] = '-'
	hex.Encode(h[14:18], u[6:8])
	h[18] = '-'
	hex.Encode(h[19:23], u[8:10])
	h[23] = '-'
	hex.Encode(h[24:], u[10:])
	out = append(out, h[:]...)
	return string(out)
}
