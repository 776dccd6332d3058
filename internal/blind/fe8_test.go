package blind

import (
	"fmt"
	"math/big"
	"testing"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"pgregory.net/rapid"
)

// limbGen draws inputs of the eight-lane arithmetic: elements as
// field.Element leaves them, and raw limbs up to 2^52 − 1, the largest
// IFMA takes.
func limbGen() *rapid.Generator[[limbLen]uint64] {
	return rapid.Custom(func(rt *rapid.T) [limbLen]uint64 {
		if rapid.Bool().Draw(rt, "raw") {
			var l [limbLen]uint64
			for i := range l {
				l[i] = rapid.OneOf(rapid.Just(uint64(1<<52-1)), rapid.Just(uint64(0)),
					rapid.Uint64Range(0, 1<<52-1)).Draw(rt, fmt.Sprint("limb", i))
			}
			return l
		}
		return *limbsOf(elementGen().Draw(rt, "element"))
	})
}

// TestFe8MatchesField: mul8, sqr8, add8, sub8 and pow22523x8 compute, in
// every lane, what field.Element's Multiply, Square, Add, Subtract and
// Pow22523 do, with limbs below 2^52.
func TestFe8MatchesField(t *testing.T) { forEachBackend(t, testFe8MatchesField) }

func testFe8MatchesField(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var x, y fe8
		var xs, ys [8]field.Element
		for j := range 8 {
			*limbsOf(&xs[j]) = limbGen().Draw(rt, "x")
			*limbsOf(&ys[j]) = limbGen().Draw(rt, "y")
			x.set(j, &xs[j])
			y.set(j, &ys[j])
		}
		var m, sq, a, s, pw fe8
		mul8(&m, &x, &y)
		sqr8(&sq, &x)
		pow22523x8(&pw, &x)
		add8(&a, &x, &y)
		// sub8's subtrahend is a result of the arithmetic (below 2^51 + 2^15).
		sub8(&s, &x, &m)
		for j := range 8 {
			var got, want field.Element
			m.get(j, &got)
			want.Multiply(&xs[j], &ys[j])
			if got.Equal(&want) != 1 {
				rt.Fatalf("lane %d: mul8 %x, Multiply %x", j, got.Bytes(), want.Bytes())
			}
			checkLimbs(rt, "mul8", &got)
			sq.get(j, &got)
			if got.Equal(want.Square(&xs[j])) != 1 {
				rt.Fatalf("lane %d: sqr8 %x, Square %x", j, got.Bytes(), want.Bytes())
			}
			checkLimbs(rt, "sqr8", &got)
			a.get(j, &got)
			if got.Equal(want.Add(&xs[j], &ys[j])) != 1 {
				rt.Fatalf("lane %d: add8 differs", j)
			}
			checkLimbs(rt, "add8", &got)
			var prod field.Element
			m.get(j, &prod)
			s.get(j, &got)
			if got.Equal(want.Subtract(&xs[j], &prod)) != 1 {
				rt.Fatalf("lane %d: sub8 differs", j)
			}
			checkLimbs(rt, "sub8", &got)
			pw.get(j, &got)
			if got.Equal(want.Pow22523(&xs[j])) != 1 {
				rt.Fatalf("lane %d: pow22523x8 differs", j)
			}
		}
	})
}

// mul8Points is c.mul8 on eight library points.
func mul8Points(c *scalarChain, ps []*edwards25519.Point) ([8]*edwards25519.Point, error) {
	var in, out [8]extended
	for j, p := range ps {
		x, y, z, t := p.ExtendedCoordinates()
		in[j] = extended{*x, *y, *z, *t}
	}
	c.mul8(new(chain8), &out, &in)
	var res [8]*edwards25519.Point
	for j := range out {
		var err error
		if res[j], err = new(edwards25519.Point).SetExtendedCoordinates(&out[j].X, &out[j].Y, &out[j].Z, &out[j].T); err != nil {
			return res, fmt.Errorf("lane %d: %w", j, err)
		}
	}
	return res, nil
}

// TestScalarChain8: the eight-lane multiplication equals the library's,
// for the edge scalars of TestScalarChainEdges and random ones, on random
// points, the identity and a point of order 2 side by side.
func TestScalarChain8(t *testing.T) { forEachBackend(t, testScalarChain8) }

func testScalarChain8(t *testing.T) {
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	check := func(fatalf func(string, ...any), s *edwards25519.Scalar, ps []*edwards25519.Point) {
		got, err := mul8Points(newScalarChain(s), ps)
		if err != nil {
			fatalf("%v", err)
		}
		for j, p := range ps {
			if want := new(edwards25519.Point).ScalarMult(s, p); got[j].Equal(want) != 1 {
				fatalf("lane %d: chain8 %x, library %x", j, got[j].Bytes(), want.Bytes())
			}
		}
	}
	minusOne := [32]byte{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}
	order2, err := new(edwards25519.Point).SetBytes(minusOne[:])
	if err != nil {
		t.Fatal(err)
	}
	ps := []*edwards25519.Point{edwards25519.NewIdentityPoint(), order2}
	for i := range 6 {
		ps = append(ps, hashToGroup(fmt.Appendf(nil, "p%d", i)))
	}
	for _, n := range []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(3), big.NewInt(17),
		big.NewInt(32), new(big.Int).Sub(l, big.NewInt(1)), new(big.Int).Rsh(new(big.Int).Add(l, big.NewInt(1)), 1)} {
		check(t.Fatalf, scalarFromInt(t, n), ps)
	}
	rapid.Check(t, func(rt *rapid.T) {
		s, err := new(edwards25519.Scalar).SetUniformBytes(rapid.SliceOfN(rapid.Byte(), 64, 64).Draw(rt, "k"))
		if err != nil {
			rt.Fatal(err)
		}
		var ps []*edwards25519.Point
		for range 8 {
			ps = append(ps, hashToGroup(fmt.Appendf(nil, "%d", rapid.Int().Draw(rt, "input"))))
		}
		check(rt.Fatalf, s, ps)
	})
}

// BenchmarkFe8 measures the lane arithmetic's functions, eight lanes a
// call, on each backend.
func BenchmarkFe8(b *testing.B) {
	var x, y, z fe8
	for j := range 8 {
		var e field.Element
		e.Multiply(feD2, feSqrtM1)
		x.set(j, &e)
		y.set(j, feD2)
	}
	var tab [8]cached8
	var sel cached8
	for _, be := range laneBackends() {
		restore := be.use()
		b.Run(be.name+"/mul8", func(b *testing.B) {
			for b.Loop() {
				mul8(&z, &x, &y)
			}
		})
		b.Run(be.name+"/sqr8", func(b *testing.B) {
			for b.Loop() {
				sqr8(&z, &x)
			}
		})
		b.Run(be.name+"/add8", func(b *testing.B) {
			for b.Loop() {
				add8(&z, &x, &y)
			}
		})
		b.Run(be.name+"/select8", func(b *testing.B) {
			for b.Loop() {
				select8(&sel, &tab, 3, 0)
			}
		})
		restore()
	}
	b.Run("field/Multiply", func(b *testing.B) {
		var e, f field.Element
		x.get(0, &e)
		for b.Loop() {
			f.Multiply(&e, &e)
		}
	})
	b.Run("field/Square", func(b *testing.B) {
		var e, f field.Element
		x.get(0, &e)
		for b.Loop() {
			f.Square(&e)
		}
	})
}
