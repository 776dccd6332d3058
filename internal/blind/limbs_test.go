package blind

import (
	"testing"

	"filippo.io/edwards25519/field"
	"pgregory.net/rapid"
)

// elementGen draws field elements: from 32 random bytes (the top bit
// ignored), as Multiply leaves them (limbs up to the bound the helpers
// assume), and the extremes 0, 1 and p − 1.
func elementGen() *rapid.Generator[*field.Element] {
	return rapid.Custom(func(rt *rapid.T) *field.Element {
		var e field.Element
		switch rapid.IntRange(0, 4).Draw(rt, "kind") {
		case 0:
			return e.Zero()
		case 1:
			return e.One()
		case 2:
			return e.Negate(feOne)
		}
		b := rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(rt, "bytes")
		if _, err := e.SetBytes(b); err != nil {
			rt.Fatal(err)
		}
		if rapid.Bool().Draw(rt, "product") {
			e.Multiply(&e, feD)
		}
		return &e
	})
}

// checkLimbs fails if e's limbs are not below 2^52, as Multiply and
// Square require.
func checkLimbs(rt *rapid.T, name string, e *field.Element) {
	for i, l := range limbsOf(e) {
		if l >= 1<<52 {
			rt.Fatalf("%s: limb %d is %#x, not below 2^52", name, i, l)
		}
	}
}

// TestLimbHelpers: sum, sumDiff, doubleTail and addTail give what Add and
// Subtract give, with limbs that Multiply accepts.
func TestLimbHelpers(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		a := elementGen().Draw(rt, "a")
		b := elementGen().Draw(rt, "b")
		c := elementGen().Draw(rt, "c")
		d := elementGen().Draw(rt, "d")
		var want, want2, tmp field.Element

		var s, d2, s2 field.Element
		sumDiff(&s, &d2, a, b)
		if s.Equal(want.Add(a, b)) != 1 || d2.Equal(want2.Subtract(a, b)) != 1 {
			rt.Fatal("sumDiff differs from Add and Subtract")
		}
		checkLimbs(rt, "sumDiff's sum", &s)
		checkLimbs(rt, "sumDiff's difference", &d2)
		sum(&s2, a, b)
		if s2 != *want.Add(a, b) { // the same limbs
			rt.Fatal("sum differs from Add")
		}

		// doubleTail(xx=a, yy=b, zz=c, s=d)
		var dbl completed
		doubleTail(&dbl, a, b, c, d)
		var y, z field.Element
		y.Add(b, a)
		z.Subtract(b, a)
		for name, pair := range map[string][2]*field.Element{
			"X": {&dbl.X, new(field.Element).Subtract(d, &y)},
			"Y": {&dbl.Y, &y},
			"Z": {&dbl.Z, &z},
			"T": {&dbl.T, new(field.Element).Subtract(tmp.Add(c, c), &z)},
		} {
			if pair[0].Equal(pair[1]) != 1 {
				rt.Fatalf("doubleTail: %s differs", name)
			}
			checkLimbs(rt, "doubleTail "+name, pair[0])
		}

		// addTail(pp=a, mm=b, tt2d=c, zz=d), both signs
		neg := rapid.Bool().Draw(rt, "neg")
		var add completed
		addTail(&add, a, b, c, d, neg)
		var zz2, plus, minus field.Element
		zz2.Add(d, d)
		plus.Add(&zz2, c)
		minus.Subtract(&zz2, c)
		if neg {
			plus, minus = minus, plus
		}
		for name, pair := range map[string][2]*field.Element{
			"X": {&add.X, new(field.Element).Subtract(a, b)},
			"Y": {&add.Y, new(field.Element).Add(a, b)},
			"Z": {&add.Z, &plus},
			"T": {&add.T, &minus},
		} {
			if pair[0].Equal(pair[1]) != 1 {
				rt.Fatalf("addTail(neg=%v): %s differs", neg, name)
			}
			checkLimbs(rt, "addTail "+name, pair[0])
		}
	})
}
