package blind

import (
	"math/big"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// This file multiplies many points by one scalar, for the set builder,
// which multiplies every input's point by the same k/2. The library's
// VarTimeDoubleScalarBaseMult (which the single-value path uses, with a
// zero base scalar) recomputes both scalars' non-adjacent forms on every
// call, doubles from the top bit of 256 and looks at the base point's
// digits at every bit; here the scalar's signed digits are computed once
// per key, as a chain of "double d times, then add digit", and each point
// follows it from its first digit. The point formulas are those of
// filippo.io/edwards25519 (the "extended", "completed" and "cached"
// coordinates of Hisil, Wong, Carter and Dawson, "Twisted Edwards curves
// revisited", 2008, with a = −1), copied because the library does not
// export them: a doubling from (X:Y:Z) costs four squarings and three
// multiplications, and T is computed only before an addition.
//
// The time of a multiplication depends on the scalar, which is the
// node's secret key: exactly as the library's VarTime call does, and for
// the same reason it is acceptable here — the chain serves only the
// node's own values when it builds a set, on its own machine, never a
// partner's request (those go through [ctMul] or [ctMul8], in constant
// time: ctmul.go).

// chainWidth is the width of the scalar's non-adjacent form: digits are
// odd, in (−2^(w−1), 2^(w−1)), and at least w−1 zeros separate two
// nonzero digits. Each point needs a table of its 2^(w−2) odd multiples;
// width 5 (a table of 8, about 42 additions for a 252-bit scalar) costs
// the fewest field operations: width 6 saves 6 additions but costs 8
// more table entries.
const chainWidth = 5

// extended is a point in extended coordinates: x = X/Z, y = Y/Z, T = XY/Z.
type extended struct{ X, Y, Z, T field.Element }

// projective is a point in projective coordinates (X:Y:Z), without T.
type projective struct{ X, Y, Z field.Element }

// completed is a point as an addition or doubling leaves it:
// x = X/Z, y = Y/T.
type completed struct{ X, Y, Z, T field.Element }

// cached is a point prepared to be added: (Y+X, Y−X, Z, 2d·T).
type cached struct{ YplusX, YminusX, Z, T2d field.Element }

// feD2 is 2d.
var feD2 = new(field.Element).Add(feD, feD)

func (v *projective) fromCompleted(p *completed) {
	v.X.Multiply(&p.X, &p.T)
	v.Y.Multiply(&p.Y, &p.Z)
	v.Z.Multiply(&p.Z, &p.T)
}

func (v *extended) fromCompleted(p *completed) {
	v.X.Multiply(&p.X, &p.T)
	v.Y.Multiply(&p.Y, &p.Z)
	v.Z.Multiply(&p.Z, &p.T)
	v.T.Multiply(&p.X, &p.Y)
}

func (v *cached) fromExtended(p *extended) {
	sumDiff(&v.YplusX, &v.YminusX, &p.Y, &p.X)
	v.Z.Set(&p.Z)
	v.T2d.Multiply(&p.T, feD2)
}

// double sets v = 2p.
func (v *completed) double(p *projective) {
	var xx, yy, zz, s field.Element
	xx.Square(&p.X)
	yy.Square(&p.Y)
	zz.Square(&p.Z)
	sum(&s, &p.X, &p.Y)
	s.Square(&s)
	doubleTail(v, &xx, &yy, &zz, &s)
}

// add sets v = p + q, or p − q if neg.
func (v *completed) add(p *extended, q *cached, neg bool) {
	qPlus, qMinus := &q.YplusX, &q.YminusX
	if neg { // −(x, y) = (−x, y): Y+X and Y−X swap, T changes sign
		qPlus, qMinus = qMinus, qPlus
	}
	var yPlusX, yMinusX, pp, mm, tt2d, zz field.Element
	sumDiff(&yPlusX, &yMinusX, &p.Y, &p.X)
	pp.Multiply(&yPlusX, qPlus)
	mm.Multiply(&yMinusX, qMinus)
	tt2d.Multiply(&p.T, &q.T2d)
	zz.Multiply(&p.Z, &q.Z)
	addTail(v, &pp, &mm, &tt2d, &zz, neg)
}

// addAffine sets v = p + q, or p − q if neg (p extended, q affine: its
// z is 1, so p's Z is the product ZZ).
func (v *completed) addAffine(p *extended, q *affineCached, neg bool) {
	qPlus, qMinus := &q.YplusX, &q.YminusX
	if neg {
		qPlus, qMinus = qMinus, qPlus
	}
	var yPlusX, yMinusX, pp, mm, tt2d field.Element
	sumDiff(&yPlusX, &yMinusX, &p.Y, &p.X)
	pp.Multiply(&yPlusX, qPlus)
	mm.Multiply(&yMinusX, qMinus)
	tt2d.Multiply(&p.T, &q.T2d)
	addTail(v, &pp, &mm, &tt2d, &p.Z, neg)
}

// scalarChain is a scalar's width-5 non-adjacent form as the steps of its
// multiplication: start from top·P, then for each step double the
// accumulator Double times and add Digit·P, then double Tail times.
type scalarChain struct {
	top   int8 // positive; 0: the scalar is 0
	steps []chainStep
	tail  int
}

// chainStep is one addition of a chain and the doublings before it.
type chainStep struct {
	double int
	digit  int8
}

// newScalarChain computes s's chain (once per key: math/big is plenty).
func newScalarChain(s *edwards25519.Scalar) *scalarChain {
	b := s.Bytes()
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	k := new(big.Int).SetBytes(b)
	var naf []int8 // naf[i] is the digit of 2^i
	const width = 1 << chainWidth
	for k.Sign() > 0 {
		var d int8
		if k.Bit(0) == 1 {
			m := int(k.Uint64() & (width - 1))
			if m >= width/2 {
				m -= width
			}
			d = int8(m)
			k.Sub(k, big.NewInt(int64(m)))
		}
		naf = append(naf, d)
		k.Rsh(k, 1)
	}
	c := &scalarChain{}
	run := 0 // doublings since the last nonzero digit
	for i := len(naf) - 1; i >= 0; i-- {
		switch {
		case naf[i] == 0:
			run++
		case c.top == 0:
			c.top, run = naf[i], 0
		default:
			c.steps = append(c.steps, chainStep{double: run + 1, digit: naf[i]})
			run = 0
		}
	}
	c.tail = run
	return c
}

// mul sets out = s·p, s the chain's scalar.
func (c *scalarChain) mul(out, p *extended) {
	if c.top == 0 {
		out.X.Zero()
		out.Y.One()
		out.Z.One()
		out.T.Zero()
		return
	}
	// The odd multiples P, 3P, …, 15P.
	var odd [1 << (chainWidth - 2)]extended
	var tab [len(odd)]cached
	var t completed
	var pp projective
	var twoP cached
	odd[0] = *p
	tab[0].fromExtended(p)
	pp.X, pp.Y, pp.Z = p.X, p.Y, p.Z
	t.double(&pp)
	odd[1].fromCompleted(&t) // 2P, for now
	twoP.fromExtended(&odd[1])
	for i := 1; i < len(odd); i++ {
		t.add(&odd[i-1], &twoP, false)
		odd[i].fromCompleted(&t)
		tab[i].fromExtended(&odd[i])
	}

	var acc projective
	var acc3 extended
	top := &odd[c.top/2]
	acc.X, acc.Y, acc.Z = top.X, top.Y, top.Z
	for si := range c.steps {
		s := &c.steps[si]
		for range s.double - 1 {
			t.double(&acc)
			acc.fromCompleted(&t)
		}
		t.double(&acc)
		acc3.fromCompleted(&t) // the addition needs T
		t.add(&acc3, &tab[abs8(s.digit)/2], s.digit < 0)
		if si < len(c.steps)-1 || c.tail > 0 {
			acc.fromCompleted(&t)
		}
	}
	if len(c.steps) == 0 {
		*out = *top // top·P alone
		if c.tail == 0 {
			return
		}
		acc.X, acc.Y, acc.Z = out.X, out.Y, out.Z
	} else if c.tail == 0 {
		out.fromCompleted(&t)
		return
	}
	for range c.tail - 1 {
		t.double(&acc)
		acc.fromCompleted(&t)
	}
	t.double(&acc)
	out.fromCompleted(&t)
}

func abs8(d int8) int {
	if d < 0 {
		return -int(d)
	}
	return int(d)
}
