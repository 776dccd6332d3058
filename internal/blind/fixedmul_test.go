package blind

import (
	"fmt"
	"math/big"
	"testing"

	"filippo.io/edwards25519"
	"pgregory.net/rapid"
)

// scalarFromInt is n mod ℓ as a scalar.
func scalarFromInt(t testing.TB, n *big.Int) *edwards25519.Scalar {
	t.Helper()
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	b := new(big.Int).Mod(n, l).Bytes()
	var le [32]byte
	for i, c := range b {
		le[len(b)-1-i] = c
	}
	s, err := new(edwards25519.Scalar).SetCanonicalBytes(le[:])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// chainMul is c.mul on a library point; a result off the curve is an
// error.
func chainMul(c *scalarChain, p *edwards25519.Point) (*edwards25519.Point, error) {
	x, y, z, tt := p.ExtendedCoordinates()
	var out extended
	c.mul(&out, &extended{*x, *y, *z, *tt})
	return new(edwards25519.Point).SetExtendedCoordinates(&out.X, &out.Y, &out.Z, &out.T)
}

// TestScalarChainEdges: the chain's multiplication equals the library's
// for the scalars whose chains have no steps, no tail, a top digit of
// every value, the largest scalar and (ℓ+1)/2, on a point, the identity
// and a point of order 2.
func TestScalarChainEdges(t *testing.T) {
	two := new(big.Int).Lsh(big.NewInt(1), 251)
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	scalars := []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(3), big.NewInt(15), big.NewInt(16),
		big.NewInt(17), big.NewInt(31), big.NewInt(32), big.NewInt(33), big.NewInt(0x5555),
		big.NewInt(1 << 40), big.NewInt(-1 + 1<<40), two, new(big.Int).Add(two, big.NewInt(1)),
		new(big.Int).Sub(l, big.NewInt(1)), new(big.Int).Rsh(new(big.Int).Add(l, big.NewInt(1)), 1),
	}
	minusOne := [32]byte{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}
	order2, err := new(edwards25519.Point).SetBytes(minusOne[:])
	if err != nil {
		t.Fatal(err)
	}
	points := map[string]*edwards25519.Point{
		"H(x)":     hashToGroup([]byte("x")),
		"identity": edwards25519.NewIdentityPoint(),
		"order 2":  order2,
		"H(x)+T2":  new(edwards25519.Point).Add(hashToGroup([]byte("x")), order2),
	}
	for _, n := range scalars {
		s := scalarFromInt(t, n)
		c := newScalarChain(s)
		for name, p := range points {
			want := new(edwards25519.Point).ScalarMult(s, p)
			got, err := chainMul(c, p)
			if err != nil {
				t.Fatalf("%v·%s: %v", n, name, err)
			}
			if got.Equal(want) != 1 {
				t.Errorf("%v·%s: chain %x, library %x", n, name, got.Bytes(), want.Bytes())
			}
		}
	}
}

// TestScalarChainRandom: for random scalars and points, the chain's
// multiplication equals the library's.
func TestScalarChainRandom(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		kb := rapid.SliceOfN(rapid.Byte(), 64, 64).Draw(rt, "k")
		s, err := new(edwards25519.Scalar).SetUniformBytes(kb)
		if err != nil {
			rt.Fatal(err)
		}
		p := hashToGroup(fmt.Appendf(nil, "%d", rapid.Int().Draw(rt, "input")))
		want := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(s, p, zeroScalar)
		got, err := chainMul(newScalarChain(s), p)
		if err != nil {
			rt.Fatal(err)
		}
		if got.Equal(want) != 1 {
			rt.Fatalf("chain %x, library %x", got.Bytes(), want.Bytes())
		}
	})
}
