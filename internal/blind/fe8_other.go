//go:build !amd64 || purego

package blind

// fe8's arithmetic is written for amd64 only: elsewhere the batch paths
// take one point at a time.
const (
	hasIFMA  = false
	hasAVX2  = false
	hasLanes = false
)

func mul8(z, x, y *fe8) { panic("blind: no eight-lane field arithmetic on this platform") }
func sqr8(z, x *fe8)    { panic("blind: no eight-lane field arithmetic on this platform") }
func add8(z, x, y *fe8) { panic("blind: no eight-lane field arithmetic on this platform") }
func sub8(z, x, y *fe8) { panic("blind: no eight-lane field arithmetic on this platform") }

func select8(out *cached8, tab *[8]cached8, abs, neg uint64) {
	panic("blind: no eight-lane field arithmetic on this platform")
}
