package sensor

import (
	"encoding/binary"
	"unsafe"
)

// word8 returns the eight bytes at b[i:] as a little-endian word, for the
// loops that search a line eight bytes at a time. The caller guarantees
// 0 <= i and i+8 <= len(b): word8 does not check, and so spares the
// bounds checks and slice arithmetic of binary.LittleEndian.Uint64(b[i:]),
// which cost more than the search itself (one load on amd64).
func word8(b []byte, i int) uint64 {
	return binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))[:])
}

// firstZeros returns a word whose lowest set bit, if any, is the high bit
// of the lowest zero byte of x. Bits above that one may be set wrongly
// (a borrow from the zero byte), never bits below it: a search for the
// first byte of a kind, or for whether some byte below the first of
// another kind is of this kind, reads it exactly, in three operations
// where sepMask's exact mask of every zero byte takes five.
func firstZeros(x uint64) uint64 {
	return (x - 0x0101010101010101) &^ x & 0x8080808080808080
}
