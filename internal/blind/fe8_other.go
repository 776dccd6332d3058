//go:build !amd64 || purego

package blind

// hasIFMA is false: fe8's arithmetic is written for amd64 only, and the
// set builder uses the one-point chain.
const hasIFMA = false

func mul8(z, x, y *fe8) { panic("blind: no eight-lane field arithmetic on this platform") }
func sqr8(z, x *fe8)    { panic("blind: no eight-lane field arithmetic on this platform") }
func add8(z, x, y *fe8) { panic("blind: no eight-lane field arithmetic on this platform") }
func sub8(z, x, y *fe8) { panic("blind: no eight-lane field arithmetic on this platform") }

func select8(out *cached8, tab *[8]cached8, abs, neg uint64) {
	panic("blind: no eight-lane field arithmetic on this platform")
}
