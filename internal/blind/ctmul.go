package blind

import (
	"unsafe"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// This file multiplies the server's blinded elements by the key, in
// constant time in the key: partners send the elements and can time the
// answers. It is the method of filippo.io/edwards25519's ScalarMult
// (signed radix-16 digits in [−8, 8], a table of P, 2P, …, 8P, four
// doublings and one addition of a table entry per digit, the entry
// chosen by masked selection over the whole table), on this package's
// point formulas (fixedmul.go, limbs.go) and, on amd64 CPUs with AVX2 or
// AVX-512 IFMA, on eight points at once (fe8.go, either backend): the
// digits are the same for every point, so the eight multiplications make
// the same operations.
//
// The scalar is k/2 mod ℓ, not k: the batch encodes the doubles of the
// products with one field inversion for the batch (batch.go), and
// 2·(k/2)·P is k·P in ristretto255.
//
// Why the time does not depend on the key: the key enters only through
// its digits (ctDigits: byte arithmetic and shifts, no branch, no table),
// and each digit only through the selection of a table entry
// ([cached.ctSelect], [select8]): the absolute value and sign of the
// digit are made by arithmetic, every entry of the table is read, and
// masks made by arithmetic (never a comparison that could compile to a
// branch) keep the one wanted; the negation is a masked swap and a
// masked choice between 2dT and 2p − 2dT. No index into memory and no
// branch depends on a digit: the loops run a fixed number of times, and
// the point formulas make the same field operations whatever the
// operands are (filippo.io/edwards25519/field's are constant time, and
// so are the lanes' vector instructions, IFMA's and AVX2's: multiplies,
// adds, shifts, logic; the AVX2 select8 is unrolled, with no branch at
// all). TestConstantTimeSource checks these functions' source for
// branches and for indexing by anything but constants and loop counters,
// and TestConstantTimeAssembly the assembly's for branches (the AVX2
// code has none; IFMA's select8 has its loop's; the dispatch jumps on
// useIFMA, a public flag) and for indexed memory operands.

// ctDigitCount is the number of signed radix-16 digits of a scalar.
const ctDigitCount = 64

// ctDigits returns s's signed radix-16 digits, least significant first:
// s = Σ d[i]·16^i, each d[i] in [−8, 8) (the last in [−8, 8]), as
// filippo.io/edwards25519's ScalarMult computes them (s < 2^255).
func ctDigits(s *edwards25519.Scalar) [ctDigitCount]int8 {
	var d [ctDigitCount]int8
	b := s.Bytes()
	for i := range 32 {
		d[2*i] = int8(b[i] & 15)
		d[2*i+1] = int8(b[i] >> 4)
	}
	for i := range ctDigitCount - 1 {
		carry := (d[i] + 8) >> 4 // 0 or 1: arithmetic, no branch
		d[i] -= carry << 4
		d[i+1] += carry
	}
	return d
}

// ctAbsNeg returns |d| and a mask that is all ones if d < 0, else 0, by
// arithmetic.
func ctAbsNeg(d int8) (abs, neg uint64) {
	n := int64(d) >> 63
	return uint64((int64(d) ^ n) - n), uint64(n)
}

// ctEqMask returns all ones if a = b, else 0, for a and b below 2^62, by
// arithmetic: (a XOR b) − 1 is negative exactly when a = b.
func ctEqMask(a, b uint64) uint64 {
	return uint64(int64((a^b)-1) >> 63)
}

// ctTable is P, 2P, …, 8P, prepared to be added.
type ctTable [8]cached

// cachedLimbs is v's twenty limbs: Y+X, Y−X, Z and 2dT, five each (see
// limbsOf).
func cachedLimbs(v *cached) *[4 * limbLen]uint64 {
	return (*[4 * limbLen]uint64)(unsafe.Pointer(v))
}

func (t *ctTable) init(p *extended) {
	var q extended
	var s completed
	t[0].fromExtended(p)
	q = *p
	for i := 1; i < len(t); i++ {
		s.add(&q, &t[0], false)
		q.fromCompleted(&s)
		t[i].fromExtended(&q)
	}
}

// ctSelect sets v to d·P: the identity, or the table's entry |d|,
// negated if d < 0; in constant time in d (see the file's comment).
func (v *cached) ctSelect(t *ctTable, d int8) {
	abs, neg := ctAbsNeg(d)
	vl := cachedLimbs(v)
	tl := (*[len(t)][4 * limbLen]uint64)(unsafe.Pointer(t))
	m0, m1, m2, m3 := ctEqMask(abs, 1), ctEqMask(abs, 2), ctEqMask(abs, 3), ctEqMask(abs, 4)
	m4, m5, m6, m7 := ctEqMask(abs, 5), ctEqMask(abs, 6), ctEqMask(abs, 7), ctEqMask(abs, 8)
	for j := range vl {
		vl[j] = tl[0][j]&m0 | tl[1][j]&m1 | tl[2][j]&m2 | tl[3][j]&m3 |
			tl[4][j]&m4 | tl[5][j]&m5 | tl[6][j]&m6 | tl[7][j]&m7
	}
	one := 1 & ctEqMask(abs, 0) // the identity: Y+X = Y−X = Z = 1, 2dT = 0
	vl[0] |= one
	vl[limbLen] |= one
	vl[2*limbLen] |= one
	// −P: Y+X and Y−X swap, 2dT becomes 2p − 2dT (limbs below 2^52, as
	// Multiply requires).
	for j := range limbLen {
		x := (vl[j] ^ vl[limbLen+j]) & neg
		vl[j] ^= x
		vl[limbLen+j] ^= x
	}
	twoP := [limbLen]uint64{twoP0, twoPi, twoPi, twoPi, twoPi}
	for j := range limbLen {
		l := &vl[3*limbLen+j]
		*l ^= (*l ^ (twoP[j] - *l)) & neg
	}
}

// ctMul sets out = s·p, d the signed digits of s, in constant time in d;
// t is scratch space.
func ctMul(out, p *extended, d *[ctDigitCount]int8, t *ctTable) {
	t.init(p)
	var sel cached
	var sum completed
	var acc projective
	var acc3 extended
	acc3.X.Zero()
	acc3.Y.One()
	acc3.Z.One()
	acc3.T.Zero()
	sel.ctSelect(t, d[ctDigitCount-1])
	sum.add(&acc3, &sel, false)
	for i := ctDigitCount - 2; i >= 0; i-- {
		acc.fromCompleted(&sum)
		for range 3 {
			sum.double(&acc)
			acc.fromCompleted(&sum)
		}
		sum.double(&acc)
		acc3.fromCompleted(&sum)
		sel.ctSelect(t, d[i])
		sum.add(&acc3, &sel, false)
	}
	out.fromCompleted(&sum)
}

// ctLanes is the scratch space of [ctMul8] (about 25 KiB).
type ctLanes struct {
	tab    [8]cached8
	in     point8
	sel    cached8
	t, acc point8
}

// ctMul8 sets out[j] = s·p[j] for eight points, d the signed digits of s,
// as [ctMul] does for one, in constant time in d.
func ctMul8(sc *ctLanes, out, p *[8]extended, d *[ctDigitCount]int8) {
	in, tab, sel, t, acc := &sc.in, &sc.tab, &sc.sel, &sc.t, &sc.acc
	for j := range p {
		in.X.set(j, &p[j].X)
		in.Y.set(j, &p[j].Y)
		in.Z.set(j, &p[j].Z)
		in.T.set(j, &p[j].T)
	}
	tab[0].fromExtended(in)
	*acc = *in
	for i := 1; i < len(tab); i++ {
		t.add(acc, &tab[0], false)
		acc.toExtended(t)
		tab[i].fromExtended(acc)
	}
	// acc = the identity, in extended coordinates.
	*acc = point8{}
	for j := range 8 {
		acc.Y[0][j] = 1
		acc.Z[0][j] = 1
	}
	abs, neg := ctAbsNeg(d[ctDigitCount-1])
	select8(sel, tab, abs, neg)
	t.add(acc, sel, false)
	for i := ctDigitCount - 2; i >= 0; i-- {
		acc.toProjective(t)
		for range 3 {
			t.double(acc)
			acc.toProjective(t)
		}
		t.double(acc)
		acc.toExtended(t)
		abs, neg := ctAbsNeg(d[i])
		select8(sel, tab, abs, neg)
		t.add(acc, sel, false)
	}
	acc.toExtended(t)
	for j := range out {
		acc.X.get(j, &out[j].X)
		acc.Y.get(j, &out[j].Y)
		acc.Z.get(j, &out[j].Z)
		acc.T.get(j, &out[j].T)
	}
}

// sqrtRatioOne is field.Element's SqrtRatio(1, w), split around its
// exponentiation so that eight of those can run together: start returns
// the base w⁷ (u·v⁷ with u = 1), finish the root from the power
// (w⁷)^((p−5)/8), exactly as SqrtRatio computes it.
type sqrtRatioOne struct{ w, w3 field.Element }

func (q *sqrtRatioOne) start(w *field.Element) (base field.Element) {
	var w2 field.Element
	q.w.Set(w)
	w2.Square(w)
	q.w3.Multiply(&w2, w)
	base.Multiply(&q.w3, w2.Square(&w2))
	return base
}

func (q *sqrtRatioOne) finish(r *field.Element, pow *field.Element) (wasSquare int) {
	var rr, check, rPrime, tmp field.Element
	rr.Multiply(&q.w3, pow)
	check.Multiply(&q.w, tmp.Square(&rr))
	correct := check.Equal(feOne)
	flipped := check.Equal(feMinusOne)
	flippedI := check.Equal(feMinusSqrtM1)
	rPrime.Multiply(&rr, feSqrtM1)
	rr.Select(&rPrime, &rr, flipped|flippedI)
	r.Absolute(&rr)
	return correct | flipped
}

// feMinusSqrtM1 is −√−1.
var feMinusSqrtM1 = new(field.Element).Negate(feSqrtM1)
