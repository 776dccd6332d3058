//go:build amd64 && !purego

package blind

import "golang.org/x/sys/cpu"

// hasIFMA is whether this CPU (and its OS) runs fe8_amd64.s: AVX-512F
// and IFMA.
var hasIFMA = cpu.X86.HasAVX512F && cpu.X86.HasAVX512IFMA

// mul8 sets z = x·y, lane by lane.
//
//go:noescape
func mul8(z, x, y *fe8)

// sqr8 sets z = x², lane by lane.
//
//go:noescape
func sqr8(z, x *fe8)

// add8 sets z = x + y, lane by lane.
//
//go:noescape
func add8(z, x, y *fe8)

// sub8 sets z = x − y, lane by lane.
//
//go:noescape
func sub8(z, x, y *fe8)

// select8 sets out to the identity if abs = 0, else to tab[abs−1], then
// negates it if neg is all ones (neg is 0 or ^0), in constant time in abs
// and neg: every entry is read and masked (see [cached.ctSelect]).
//
//go:noescape
func select8(out *cached8, tab *[8]cached8, abs, neg uint64)
