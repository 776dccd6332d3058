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
