//go:build amd64 && !purego

package blind

import "golang.org/x/sys/cpu"

//go:generate go run fe8_avx2_gen.go

var (
	// hasIFMA is whether this CPU (and its OS) runs fe8_amd64.s's IFMA
	// code: AVX-512F and IFMA.
	hasIFMA = cpu.X86.HasAVX512F && cpu.X86.HasAVX512IFMA
	// hasAVX2 is whether it runs fe8_avx2_amd64.s.
	hasAVX2 = cpu.X86.HasAVX2
	// hasLanes is whether fe8's arithmetic runs here at all: the batch
	// paths take the eight lanes if so, else one point at a time.
	hasLanes = hasIFMA || hasAVX2
	// useIFMA chooses the IFMA code (true) or the AVX2 code for mul8,
	// sqr8, add8, sub8 and select8 (fe8_amd64.s jumps on it). Set here,
	// once; the tests switch it to run both backends on an IFMA CPU.
	useIFMA = hasIFMA
)

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

// The two backends' versions of the above (fe8_amd64.s: IFMA,
// fe8_avx2_amd64.s: AVX2).

//go:noescape
func mul8IFMA(z, x, y *fe8)

//go:noescape
func sqr8IFMA(z, x *fe8)

//go:noescape
func add8IFMA(z, x, y *fe8)

//go:noescape
func sub8IFMA(z, x, y *fe8)

//go:noescape
func select8IFMA(out *cached8, tab *[8]cached8, abs, neg uint64)

//go:noescape
func mul8AVX2(z, x, y *fe8)

//go:noescape
func sqr8AVX2(z, x *fe8)

//go:noescape
func add8AVX2(z, x, y *fe8)

//go:noescape
func sub8AVX2(z, x, y *fe8)

//go:noescape
func select8AVX2(out *cached8, tab *[8]cached8, abs, neg uint64)
