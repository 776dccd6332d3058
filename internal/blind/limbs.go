package blind

import (
	"unsafe"

	"filippo.io/edwards25519/field"
)

// This file adds and subtracts field elements for the set builder's
// point formulas (fixedmul.go) a few at a time: field.Element's Add and
// Subtract are calls that the compiler does not inline, each storing its
// sum and loading it again to propagate the carries, and a doubling makes
// six of them. Here the sums and differences a formula needs are made in
// one function, on the elements' limbs, each carried once.
//
// filippo.io/edwards25519/field does not export the limbs: limbsOf reads
// an Element as the five 51-bit limbs, least significant first, that it
// is in the version go.mod names (struct{ l0, l1, l2, l3, l4 uint64 }).
// init checks that layout, and the tests compare every helper with Add
// and Subtract; a new version of the library that changed it would fail
// both rather than compute wrong outputs.
//
// Bounds: Multiply, Square, Add and Subtract leave every limb below
// 2^51 + 2^18, so 2p's limbs (2^52 − 38 and 2^52 − 2) exceed any one
// limb, and sums of a few limbs plus 4p's stay far below 2^64; each result
// is carried as field.Element's carryPropagate does, which leaves its
// limbs below 2^52, as Multiply and Square require of their inputs.

const mask51 = 1<<51 - 1

// Limbs of 2p and 4p: adding them before subtracting keeps limbs
// positive.
const (
	twoP0   = 0xFFFFFFFFFFFDA // 2(2^51 − 19)
	twoPi   = 0xFFFFFFFFFFFFE // 2(2^51 − 1)
	fourP0  = 2 * twoP0
	fourPi  = 2 * twoPi
	limbLen = 5
)

func init() {
	var b [32]byte // 1 + 2^51 + 2^102 + 2^153 + 2^204: every limb 1
	for i := range limbLen {
		b[51*i/8] |= 1 << (51 * i % 8)
	}
	var x field.Element
	if _, err := x.SetBytes(b[:]); err != nil || unsafe.Sizeof(x) != limbLen*8 || *limbsOf(&x) != [limbLen]uint64{1, 1, 1, 1, 1} {
		panic("blind: filippo.io/edwards25519/field.Element is no longer five 51-bit limbs")
	}
}

// limbsOf is x's limbs (see the file's comment).
func limbsOf(x *field.Element) *[limbLen]uint64 {
	return (*[limbLen]uint64)(unsafe.Pointer(x))
}

// carry sets v to the limbs l, carried: each limb keeps its low 51 bits
// and passes the rest to the next, the top limb's to the lowest times 19
// (2^255 = 19 mod p).
func carry(v *[limbLen]uint64, l0, l1, l2, l3, l4 uint64) {
	v[0] = l0&mask51 + 19*(l4>>51)
	v[1] = l1&mask51 + l0>>51
	v[2] = l2&mask51 + l1>>51
	v[3] = l3&mask51 + l2>>51
	v[4] = l4&mask51 + l3>>51
}

// sum sets v = a + b, as field.Element's Add does, without loading v's
// limbs again to carry them.
func sum(v, a, b *field.Element) {
	x, y := limbsOf(a), limbsOf(b)
	carry(limbsOf(v), x[0]+y[0], x[1]+y[1], x[2]+y[2], x[3]+y[3], x[4]+y[4])
}

// sumDiff sets s = a + b and d = a − b.
func sumDiff(s, d, a, b *field.Element) {
	x, y := limbsOf(a), limbsOf(b)
	s0, s1, s2, s3, s4 := x[0]+y[0], x[1]+y[1], x[2]+y[2], x[3]+y[3], x[4]+y[4]
	d0 := x[0] + twoP0 - y[0]
	d1 := x[1] + twoPi - y[1]
	d2 := x[2] + twoPi - y[2]
	d3 := x[3] + twoPi - y[3]
	d4 := x[4] + twoPi - y[4]
	carry(limbsOf(s), s0, s1, s2, s3, s4)
	carry(limbsOf(d), d0, d1, d2, d3, d4)
}

// doubleTail finishes a doubling of (X:Y:Z) from xx = X², yy = Y²,
// zz = Z² and s = (X+Y)²: v.X = s − yy − xx, v.Y = yy + xx,
// v.Z = yy − xx, v.T = 2zz − v.Z.
func doubleTail(v *completed, xx, yy, zz, s *field.Element) {
	a, b, c, d := limbsOf(xx), limbsOf(yy), limbsOf(zz), limbsOf(s)
	carry(limbsOf(&v.X),
		d[0]+fourP0-b[0]-a[0], d[1]+fourPi-b[1]-a[1], d[2]+fourPi-b[2]-a[2],
		d[3]+fourPi-b[3]-a[3], d[4]+fourPi-b[4]-a[4])
	carry(limbsOf(&v.Y), b[0]+a[0], b[1]+a[1], b[2]+a[2], b[3]+a[3], b[4]+a[4])
	carry(limbsOf(&v.Z),
		b[0]+twoP0-a[0], b[1]+twoPi-a[1], b[2]+twoPi-a[2], b[3]+twoPi-a[3], b[4]+twoPi-a[4])
	carry(limbsOf(&v.T),
		2*c[0]+a[0]+twoP0-b[0], 2*c[1]+a[1]+twoPi-b[1], 2*c[2]+a[2]+twoPi-b[2],
		2*c[3]+a[3]+twoPi-b[3], 2*c[4]+a[4]+twoPi-b[4])
}

// addTail finishes an addition from pp, mm, tt2d and zz (see
// [completed.add]): v.X = pp − mm, v.Y = pp + mm, and v.Z = 2zz + tt2d,
// v.T = 2zz − tt2d, or the other way round if neg.
func addTail(v *completed, pp, mm, tt2d, zz *field.Element, neg bool) {
	p, m, t, z := limbsOf(pp), limbsOf(mm), limbsOf(tt2d), limbsOf(zz)
	carry(limbsOf(&v.X),
		p[0]+twoP0-m[0], p[1]+twoPi-m[1], p[2]+twoPi-m[2], p[3]+twoPi-m[3], p[4]+twoPi-m[4])
	carry(limbsOf(&v.Y), p[0]+m[0], p[1]+m[1], p[2]+m[2], p[3]+m[3], p[4]+m[4])
	plus, minus := limbsOf(&v.Z), limbsOf(&v.T)
	if neg {
		plus, minus = minus, plus
	}
	carry(plus, 2*z[0]+t[0], 2*z[1]+t[1], 2*z[2]+t[2], 2*z[3]+t[3], 2*z[4]+t[4])
	carry(minus,
		2*z[0]+twoP0-t[0], 2*z[1]+twoPi-t[1], 2*z[2]+twoPi-t[2], 2*z[3]+twoPi-t[3], 2*z[4]+twoPi-t[4])
}
