package blind

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
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

// fe8EdgeLimbs are limb vectors at the edges of the lane arithmetic: 0,
// 1, p − 1, p, p + 1, 2^255 − 1, the largest limbs the functions take
// (2^52 − 1) alone and everywhere, 2^51 (a carry's worth) in each place,
// and the AVX2 code's split points (a limb's low 26 bits full or empty)
// and its outputs' bound (2^51 + 2^42).
func fe8EdgeLimbs() [][limbLen]uint64 {
	const m51, m52 = 1<<51 - 1, 1<<52 - 1
	es := [][limbLen]uint64{
		{}, {1}, {m51 - 19, m51, m51, m51, m51}, {m51 - 18, m51, m51, m51, m51}, {m51 - 17, m51, m51, m51, m51},
		{m51, m51, m51, m51, m51}, {m52, m52, m52, m52, m52}, {m52}, {0, 0, 0, 0, m52}, {19},
		{1<<26 - 1, 1<<26 - 1, 1<<26 - 1, 1<<26 - 1, 1<<26 - 1}, {m52 &^ (1<<26 - 1), m52 &^ (1<<26 - 1), m52 &^ (1<<26 - 1), m52 &^ (1<<26 - 1), m52 &^ (1<<26 - 1)},
		{1<<51 + 1<<42 - 1, 1<<51 + 1<<42 - 1, 1<<51 + 1<<42 - 1, 1<<51 + 1<<42 - 1, 1<<51 + 1<<42 - 1},
	}
	for i := range limbLen {
		var l [limbLen]uint64
		l[i] = 1 << 51
		es = append(es, l)
	}
	return es
}

// TestFe8Edges: on each backend, mul8, sqr8, add8 and sub8 give
// field.Element's results for every pair of edge values, in every lane,
// with limbs below 2^52 (sub8's subtrahend below 2^52 − 38, as it
// requires).
func TestFe8Edges(t *testing.T) { forEachBackend(t, testFe8Edges) }

func testFe8Edges(t *testing.T) {
	es := fe8EdgeLimbs()
	type pair struct{ x, y [limbLen]uint64 }
	var pairs []pair
	for _, x := range es {
		for _, y := range es {
			pairs = append(pairs, pair{x, y})
		}
	}
	for lo := 0; lo < len(pairs); lo += 8 {
		var x, y, ys fe8
		var xs, yss [8]field.Element
		for j := range 8 {
			pr := pairs[(lo+j)%len(pairs)]
			*limbsOf(&xs[j]) = pr.x
			x.set(j, &xs[j])
			y.set(j, elementOfLimbs(pr.y))
			for i, l := range pr.y {
				limbsOf(&yss[j])[i] = min(l, 1<<52-39)
			}
			ys.set(j, &yss[j])
		}
		var m, sq, a, s fe8
		mul8(&m, &x, &y)
		sqr8(&sq, &x)
		add8(&a, &x, &y)
		sub8(&s, &x, &ys)
		for j := range 8 {
			pr := pairs[(lo+j)%len(pairs)]
			ye := elementOfLimbs(pr.y)
			for _, c := range []struct {
				name string
				got  *fe8
				want *field.Element
			}{
				{"mul8", &m, new(field.Element).Multiply(&xs[j], ye)},
				{"sqr8", &sq, new(field.Element).Square(&xs[j])},
				{"add8", &a, new(field.Element).Add(&xs[j], ye)},
				{"sub8", &s, new(field.Element).Subtract(&xs[j], &yss[j])},
			} {
				var got field.Element
				c.got.get(j, &got)
				if got.Equal(c.want) != 1 {
					t.Errorf("%s(%x, %x): %x, field.Element %x", c.name, pr.x, pr.y, got.Bytes(), c.want.Bytes())
				}
				for i, l := range limbsOf(&got) {
					if l >= 1<<52 {
						t.Errorf("%s(%x, %x): limb %d is %#x, not below 2^52", c.name, pr.x, pr.y, i, l)
					}
				}
			}
		}
	}
}

// elementOfLimbs is the field element with limbs l (not reduced).
func elementOfLimbs(l [limbLen]uint64) *field.Element {
	var e field.Element
	*limbsOf(&e) = l
	return &e
}

// FuzzFe8 compares the lane arithmetic of each backend with
// field.Element's on raw limbs: the first 80 bytes are x's and y's five
// limbs, eight bytes each, cut to 52 bits (the largest the functions
// take). The lanes hold (x, y), (y, x), (x, x) and (y, y) twice over.
// Its seeds (testdata/fuzz/FuzzFe8) are pairs of edge values.
func FuzzFe8(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 80 {
			return
		}
		var xl, yl [limbLen]uint64
		for i := range limbLen {
			xl[i] = binary.LittleEndian.Uint64(data[8*i:]) & (1<<52 - 1)
			yl[i] = binary.LittleEndian.Uint64(data[40+8*i:]) & (1<<52 - 1)
		}
		xe, ye := elementOfLimbs(xl), elementOfLimbs(yl)
		lanes := [8][2]*field.Element{{xe, ye}, {ye, xe}, {xe, xe}, {ye, ye}, {xe, ye}, {ye, xe}, {xe, xe}, {ye, ye}}
		var x, y fe8
		for j, l := range lanes {
			x.set(j, l[0])
			y.set(j, l[1])
		}
		for _, b := range laneBackends() {
			restore := b.use()
			var m, sq, a, s fe8
			mul8(&m, &x, &y)
			sqr8(&sq, &x)
			add8(&a, &x, &y)
			sub8(&s, &x, &m) // sub8's subtrahend: a result, below 2^52 − 38
			restore()
			for j, l := range lanes {
				var got, prod, want field.Element
				m.get(j, &prod)
				for _, c := range []struct {
					name string
					got  *fe8
					want *field.Element
				}{
					{"mul8", &m, want.Multiply(l[0], l[1])},
					{"sqr8", &sq, new(field.Element).Square(l[0])},
					{"add8", &a, new(field.Element).Add(l[0], l[1])},
					{"sub8", &s, new(field.Element).Subtract(l[0], &prod)},
				} {
					c.got.get(j, &got)
					if got.Equal(c.want) != 1 {
						t.Fatalf("%s lane %d: %s %x, field.Element %x", b.name, j, c.name, got.Bytes(), c.want.Bytes())
					}
					for i, v := range limbsOf(&got) {
						if v >= 1<<52 {
							t.Fatalf("%s lane %d: %s limb %d is %#x", b.name, j, c.name, i, v)
						}
					}
				}
			}
		}
	})
}

// fe8FuzzSeeds are FuzzFe8's seeds: pairs of edge values.
func fe8FuzzSeeds() [][]byte {
	es := fe8EdgeLimbs()
	var seeds [][]byte
	for i, x := range es {
		y := es[(i*5+3)%len(es)]
		var b [80]byte
		for k := range limbLen {
			binary.LittleEndian.PutUint64(b[8*k:], x[k])
			binary.LittleEndian.PutUint64(b[40+8*k:], y[k])
		}
		seeds = append(seeds, b[:])
	}
	return seeds
}

// TestFe8AVX2Generated: fe8_avx2_amd64.s is what fe8_avx2_gen.go writes
// (run go generate after changing the generator).
func TestFe8AVX2Generated(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	out := filepath.Join(t.TempDir(), "fe8_avx2_amd64.s")
	if b, err := exec.Command("go", "run", "fe8_avx2_gen.go", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("go run fe8_avx2_gen.go: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("fe8_avx2_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("fe8_avx2_amd64.s is not what fe8_avx2_gen.go writes: run go generate ./internal/blind")
	}
}

// TestFe8StackGrowth: the lane functions give the same results when the
// goroutine's stack grows as they are called (the AVX2 multiplications
// have frames of about a kilobyte, so their prologue may grow the stack)
// with operands on the stack, which moves them: at every depth of a
// recursion on a new goroutine's small stack.
func TestFe8StackGrowth(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		var x, y, want, wantSq fe8
		for j := range 8 {
			var e field.Element
			e.Multiply(feD2, feSqrtM1)
			for range j {
				e.Square(&e)
			}
			x.set(j, &e)
			y.set(j, feD2)
		}
		mul8(&want, &x, &y)
		sqr8(&wantSq, &x)
		var recurse func(depth int) bool
		recurse = func(depth int) bool {
			var pad [40]uint64 // stack in every frame
			pad[depth%len(pad)] = uint64(depth)
			if depth > 0 {
				return recurse(depth-1) && pad[depth%len(pad)] == uint64(depth)
			}
			lx, ly := x, y // on this goroutine's stack
			var m, s fe8
			mul8(&m, &lx, &ly)
			sqr8(&s, &lx)
			return m == want && s == wantSq
		}
		for depth := range 120 {
			done := make(chan bool)
			go func() { done <- recurse(depth) }()
			if !<-done {
				t.Fatalf("depth %d: the lanes' results differ", depth)
			}
		}
	})
}
