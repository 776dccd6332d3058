package blind

import "filippo.io/edwards25519/field"

// This file multiplies eight points at once by the chain's scalar, on
// amd64 CPUs with AVX2 or AVX-512 IFMA: the scalar is the same for every
// point of a set, so the eight multiplications make the same field
// operations in the same order, and each operation is one set of vector
// instructions on eight lanes. The formulas are those of fixedmul.go,
// operation for operation, and the time depends on the key as there (and
// for the same reason it may). The hash to group's exponentiations (one
// per map, the same exponent for all) go eight at a time too. The tests
// compare the lanes' arithmetic with field.Element's, the eight-lane
// chain with the library's multiplication, and the batch with the
// single-value path, on each backend the CPU has.
//
// The lane arithmetic (mul8, sqr8, add8, sub8, select8) has two backends,
// on the same memory (fe8 below), chosen once at start-up (hasIFMA,
// useIFMA in fe8_amd64.go; fe8_amd64.s jumps to one or the other):
//   - AVX-512 IFMA (fe8_amd64.s): one register holds one limb of the
//     eight lanes; the multiplications are 52-bit multiply-adds.
//   - AVX2 (fe8_avx2_amd64.s, written by fe8_avx2_gen.go): one register
//     holds one limb of four lanes, and each function does lanes 0–3,
//     then 4–7. Additions, subtractions and selections work on the 51-bit
//     limbs; the multiplications split each into two (26 and 25 bits:
//     radix 2^25.5) as they load, multiply with VPMULUDQ (32×32 → 64
//     bits), reduce, and join the halves as they store.
// Other CPUs, purego builds and other architectures take the one-point
// path (hasLanes is false).
//
// The server's constant-time multiplication (ctmul.go, [ctMul8]) runs on
// the same lane arithmetic, whose instructions take the same time
// whatever the operands, with [select8] choosing table entries.

// fe8 is eight field elements: fe8[i][j] is limb i (radix 2^51) of
// element j, on both backends. Limbs stay below 2^52, as field.Element's
// do: the functions take limbs below 2^52 and return limbs below 2^51 +
// 2^15 (IFMA) or 2^51 + 2^42 (AVX2's multiplications).
type fe8 [limbLen][8]uint64

// point8 is eight points in extended or completed coordinates (see
// [extended] and [completed]), or in projective ones (T unused).
type point8 struct{ X, Y, Z, T fe8 }

// cached8 is eight points prepared to be added (see [cached]).
type cached8 struct{ YplusX, YminusX, Z, T2d fe8 }

// feD2x8 is 2d in every lane.
var feD2x8 = func() (v fe8) {
	for i, l := range limbsOf(feD2) {
		for j := range v[i] {
			v[i][j] = l
		}
	}
	return v
}()

// set puts e into lane j.
func (v *fe8) set(j int, e *field.Element) {
	for i, l := range limbsOf(e) {
		v[i][j] = l
	}
}

// get takes lane j into e.
func (v *fe8) get(j int, e *field.Element) {
	l := limbsOf(e)
	for i := range l {
		l[i] = v[i][j]
	}
}

// toProjective sets v = p (completed) in projective coordinates.
func (v *point8) toProjective(p *point8) {
	mul8(&v.X, &p.X, &p.T)
	mul8(&v.Y, &p.Y, &p.Z)
	mul8(&v.Z, &p.Z, &p.T)
}

// toExtended sets v = p (completed) in extended coordinates.
func (v *point8) toExtended(p *point8) {
	mul8(&v.X, &p.X, &p.T)
	mul8(&v.Y, &p.Y, &p.Z)
	mul8(&v.Z, &p.Z, &p.T)
	mul8(&v.T, &p.X, &p.Y)
}

func (v *cached8) fromExtended(p *point8) {
	add8(&v.YplusX, &p.Y, &p.X)
	sub8(&v.YminusX, &p.Y, &p.X)
	v.Z = p.Z
	mul8(&v.T2d, &p.T, &feD2x8)
}

// double sets v = 2p (completed; p projective).
func (v *point8) double(p *point8) {
	var xx, yy, zz, s fe8
	sqr8(&xx, &p.X)
	sqr8(&yy, &p.Y)
	sqr8(&zz, &p.Z)
	add8(&s, &p.X, &p.Y)
	sqr8(&s, &s)
	add8(&v.Y, &yy, &xx)
	sub8(&v.Z, &yy, &xx)
	sub8(&v.X, &s, &v.Y)
	add8(&zz, &zz, &zz)
	sub8(&v.T, &zz, &v.Z)
}

// add sets v = p + q, or p − q if neg (completed; p extended).
func (v *point8) add(p *point8, q *cached8, neg bool) {
	qPlus, qMinus := &q.YplusX, &q.YminusX
	if neg {
		qPlus, qMinus = qMinus, qPlus
	}
	var yPlusX, yMinusX, pp, mm, tt2d, zz2 fe8
	add8(&yPlusX, &p.Y, &p.X)
	sub8(&yMinusX, &p.Y, &p.X)
	mul8(&pp, &yPlusX, qPlus)
	mul8(&mm, &yMinusX, qMinus)
	mul8(&tt2d, &p.T, &q.T2d)
	mul8(&zz2, &p.Z, &q.Z)
	add8(&zz2, &zz2, &zz2)
	sub8(&v.X, &pp, &mm)
	add8(&v.Y, &pp, &mm)
	if neg {
		sub8(&v.Z, &zz2, &tt2d)
		add8(&v.T, &zz2, &tt2d)
	} else {
		add8(&v.Z, &zz2, &tt2d)
		sub8(&v.T, &zz2, &tt2d)
	}
}

// chain8 is the scratch space of [scalarChain.mul8] (about 25 KiB).
type chain8 struct {
	odd [1 << (chainWidth - 2)]point8
	tab [1 << (chainWidth - 2)]cached8
	in  point8
}

// mul8 sets out[j] = s·p[j] for the eight points, s the chain's scalar,
// as [scalarChain.mul] does for one.
func (c *scalarChain) mul8(sc *chain8, out, p *[8]extended) {
	if c.top == 0 {
		for j := range out {
			c.mul(&out[j], &p[j])
		}
		return
	}
	in := &sc.in
	for j := range p {
		in.X.set(j, &p[j].X)
		in.Y.set(j, &p[j].Y)
		in.Z.set(j, &p[j].Z)
		in.T.set(j, &p[j].T)
	}
	odd, tab := &sc.odd, &sc.tab
	var t, acc point8
	var twoP cached8
	odd[0] = *in
	tab[0].fromExtended(in)
	t.double(in)
	odd[1].toExtended(&t) // 2P, for now
	twoP.fromExtended(&odd[1])
	for i := 1; i < len(odd); i++ {
		t.add(&odd[i-1], &twoP, false)
		odd[i].toExtended(&t)
		tab[i].fromExtended(&odd[i])
	}

	res := &sc.in // the input is in the table now
	top := &odd[c.top/2]
	acc.X, acc.Y, acc.Z = top.X, top.Y, top.Z
	for si := range c.steps {
		s := &c.steps[si]
		for range s.double - 1 {
			t.double(&acc)
			acc.toProjective(&t)
		}
		t.double(&acc)
		acc.toExtended(&t) // the addition needs T
		t.add(&acc, &tab[abs8(s.digit)/2], s.digit < 0)
		if si < len(c.steps)-1 || c.tail > 0 {
			acc.toProjective(&t)
		}
	}
	switch {
	case len(c.steps) == 0 && c.tail == 0:
		*res = *top
	case c.tail == 0:
		res.toExtended(&t)
	default:
		if len(c.steps) == 0 {
			acc.X, acc.Y, acc.Z = top.X, top.Y, top.Z
		}
		for range c.tail - 1 {
			t.double(&acc)
			acc.toProjective(&t)
		}
		t.double(&acc)
		res.toExtended(&t)
	}
	for j := range out {
		res.X.get(j, &out[j].X)
		res.Y.get(j, &out[j].Y)
		res.Z.get(j, &out[j].Z)
		res.T.get(j, &out[j].T)
	}
}

// pow22523x8 sets v = x^((p−5)/8) = x^(2^252 − 3) in every lane, with
// field.Element's Pow22523's chain of squarings and multiplications.
func pow22523x8(v, x *fe8) {
	var t0, t1, t2 fe8
	sq := func(v, x *fe8, n int) { // v = x^(2^n)
		sqr8(v, x)
		for range n - 1 {
			sqr8(v, v)
		}
	}
	sq(&t0, x, 1)       // x^2
	sq(&t1, &t0, 2)     // x^8
	mul8(&t1, x, &t1)   // x^9
	mul8(&t0, &t0, &t1) // x^11
	sq(&t0, &t0, 1)     // x^22
	mul8(&t0, &t1, &t0) // x^31 = x^(2^5 − 1)
	sq(&t1, &t0, 5)     //
	mul8(&t0, &t1, &t0) // 2^10 − 1
	sq(&t1, &t0, 10)    //
	mul8(&t1, &t1, &t0) // 2^20 − 1
	sq(&t2, &t1, 20)    //
	mul8(&t1, &t2, &t1) // 2^40 − 1
	sq(&t1, &t1, 10)    //
	mul8(&t0, &t1, &t0) // 2^50 − 1
	sq(&t1, &t0, 50)    //
	mul8(&t1, &t1, &t0) // 2^100 − 1
	sq(&t2, &t1, 100)   //
	mul8(&t1, &t2, &t1) // 2^200 − 1
	sq(&t1, &t1, 50)    //
	mul8(&t0, &t1, &t0) // 2^250 − 1
	sq(&t0, &t0, 2)     // 2^252 − 4
	mul8(v, &t0, x)     // 2^252 − 3
}

// pow22523Group sets pows[j] = bases[j]^((p−5)/8) for j < n (n ≤ 8):
// eight together on the lanes (the rest padded with 1), else one at a
// time. The decodings and encodings of a batch take their inverse square
// roots' exponentiations through it.
func pow22523Group(pows, bases *[8]field.Element, n int, lanes bool) {
	if !lanes {
		for j := range n {
			pows[j].Pow22523(&bases[j])
		}
		return
	}
	var base, pow fe8
	for j := range 8 {
		if j < n {
			base.set(j, &bases[j])
		} else {
			base.set(j, feOne)
		}
	}
	pow22523x8(&pow, &base)
	for j := range n {
		pow.get(j, &pows[j])
	}
}

// mapLanes sets pts[i] to the sum of the two maps of inputs[i]'s
// expand_message_xmd bytes (hash to group), eight inputs at a time: the
// sixteen maps' exponentiations are two [pow22523x8].
func (hs *hasher) mapLanes(pts []extended, inputs []string) {
	for lo := 0; lo < len(inputs); lo += 8 {
		group := inputs[lo:min(lo+8, len(inputs))]
		var ms [2][8]elligator // first and second map of each input
		var base, pow [2]fe8
		for j, in := range group {
			var u [64]byte
			hs.expandXMD(&u, in)
			for h := range ms {
				ms[h][j].start(u[32*h : 32*h+32])
				base[h].set(j, &ms[h][j].uv7)
			}
		}
		for h := range pow {
			pow22523x8(&pow[h], &base[h])
		}
		for j := range group {
			var p, q extended
			var e field.Element
			pow[0].get(j, &e)
			ms[0][j].finish(&p, &e)
			pow[1].get(j, &e)
			ms[1][j].finish(&q, &e)
			addMaps(&pts[lo+j], &p, &q)
		}
	}
}
