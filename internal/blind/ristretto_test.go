package blind

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"github.com/cloudflare/circl/oprf"
)

// TestRistrettoConstants checks the constants of RFC 9496, section 4.1,
// against their definitions.
func TestRistrettoConstants(t *testing.T) {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	mod := func(x *big.Int) *big.Int { return x.Mod(x, p) }
	val := func(f interface{ Bytes() []byte }) *big.Int {
		b := f.Bytes()
		be := make([]byte, len(b))
		for i, c := range b {
			be[len(b)-1-i] = c
		}
		return new(big.Int).SetBytes(be)
	}
	d := mod(new(big.Int).Mul(big.NewInt(-121665), new(big.Int).ModInverse(big.NewInt(121666), p)))
	if val(feD).Cmp(d) != 0 {
		t.Error("D")
	}
	sq := func(x *big.Int) *big.Int { return mod(new(big.Int).Mul(x, x)) }
	if sq(val(feSqrtM1)).Cmp(mod(big.NewInt(-1))) != 0 {
		t.Error("SQRT_M1")
	}
	// a = -1: SQRT_AD_MINUS_ONE^2 = -d - 1; INVSQRT_A_MINUS_D^2 * (-1 - d) = 1.
	if sq(val(feSqrtADMinusOne)).Cmp(mod(new(big.Int).Sub(new(big.Int).Neg(d), big.NewInt(1)))) != 0 {
		t.Error("SQRT_AD_MINUS_ONE")
	}
	if mod(new(big.Int).Mul(sq(val(feInvSqrtAMinusD)), mod(new(big.Int).Sub(big.NewInt(-1), d)))).Cmp(big.NewInt(1)) != 0 {
		t.Error("INVSQRT_A_MINUS_D")
	}
	if val(feOneMinusDSq).Cmp(mod(new(big.Int).Sub(big.NewInt(1), sq(d)))) != 0 {
		t.Error("ONE_MINUS_D_SQ")
	}
	if val(feDMinusOneSq).Cmp(sq(new(big.Int).Sub(d, big.NewInt(1)))) != 0 {
		t.Error("D_MINUS_ONE_SQ")
	}
}

// TestFastMatchesCircl: the OPRF outputs, evaluations, encodings and
// hash to group of this package's arithmetic equal circl's, on random
// keys and inputs.
func TestFastMatchesCircl(t *testing.T) {
	for i := range 200 {
		key, err := oprf.GenerateKey(suite, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := key.MarshalBinary()
		k, err := scalarOf(kb)
		if err != nil {
			t.Fatal(err)
		}
		in := []byte(fmt.Sprintf("ipv4\x00%d.%d.%d.%d", i, i*7%256, i*13%256, i*31%256))
		if i%3 == 0 {
			in = make([]byte, i)
			rand.Read(in)
		}
		want, err := oprf.NewServer(suite, key).FullEvaluate(in)
		if err != nil {
			t.Fatal(err)
		}
		var got [64]byte
		fullEvaluate(&got, k, in)
		if !bytes.Equal(got[:], want) {
			t.Fatalf("input %x: output %x, circl %x", in, got, want)
		}
		// Evaluation of a client's blinded element.
		_, req, err := oprf.NewClient(suite).Blind([][]byte{in})
		if err != nil {
			t.Fatal(err)
		}
		bl, _ := req.Elements[0].MarshalBinaryCompress()
		p, err := decodeElement(bl)
		if err != nil {
			t.Fatalf("decode a valid element: %v", err)
		}
		var enc [32]byte
		encodeElement(&enc, p)
		if !bytes.Equal(enc[:], bl) {
			t.Fatalf("re-encoding %x gives %x", bl, enc)
		}
		ev, err := oprf.NewServer(suite, key).Evaluate(req)
		if err != nil {
			t.Fatal(err)
		}
		wantEv, _ := ev.Elements[0].MarshalBinaryCompress()
		evaluateElement(&enc, k, p)
		if !bytes.Equal(enc[:], wantEv) {
			t.Fatalf("evaluation %x, circl %x", enc, wantEv)
		}
	}
}

// TestDecodeMatchesCircl: the decoder accepts exactly what circl's
// accepts, on the encodings of RFC 9496's test vectors of bad encodings,
// random strings and near-valid strings.
func TestDecodeMatchesCircl(t *testing.T) {
	var cases [][]byte
	for range 2000 {
		b := make([]byte, 32)
		rand.Read(b)
		cases = append(cases, b)
	}
	g := edwards25519.NewGeneratorPoint()
	for i := range 200 {
		var enc [32]byte
		encodeElement(&enc, g)
		cases = append(cases, bytes.Clone(enc[:]))
		flip := bytes.Clone(enc[:])
		flip[i%32] ^= 1 << (i % 8)
		cases = append(cases, flip)
		g.Add(g, edwards25519.NewGeneratorPoint())
	}
	cases = append(cases, make([]byte, 32), bytes.Repeat([]byte{0xff}, 32), append([]byte{0xed}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...))
	for _, c := range cases {
		e := newElement()
		circlErr := e.UnmarshalBinary(c)
		circlOK := circlErr == nil && !e.IsIdentity()
		_, err := decodeElement(c)
		if (err == nil) != circlOK {
			t.Errorf("%x: decode %v, circl %v (identity %v)", c, err, circlErr, circlErr == nil && e.IsIdentity())
		}
	}
}

func BenchmarkFullEvaluateFast(b *testing.B) {
	key, _ := oprf.GenerateKey(suite, rand.Reader)
	kb, _ := key.MarshalBinary()
	k, _ := scalarOf(kb)
	var out [64]byte
	for b.Loop() {
		fullEvaluate(&out, k, []byte("ipv4\x001.2.3.4"))
	}
}

func BenchmarkFullEvaluateCircl(b *testing.B) {
	key, _ := oprf.GenerateKey(suite, rand.Reader)
	s := oprf.NewServer(suite, key)
	for b.Loop() {
		s.FullEvaluate([]byte("ipv4\x001.2.3.4"))
	}
}

func BenchmarkEvaluateElementFast(b *testing.B) {
	key, _ := oprf.GenerateKey(suite, rand.Reader)
	kb, _ := key.MarshalBinary()
	k, _ := scalarOf(kb)
	var enc [32]byte
	encodeElement(&enc, hashToGroup([]byte("x")))
	for b.Loop() {
		p, _ := decodeElement(enc[:])
		evaluateElement(&enc, k, p)
	}
}

func BenchmarkHashToGroupFast(b *testing.B) {
	for b.Loop() {
		hashToGroup([]byte("ipv4\x001.2.3.4"))
	}
}

// TestAdditiveBlinding: additive blinding gives RFC 9497's output, as
// circl's server computes it, through circl's evaluation of the blinded
// elements; its blinded elements are valid and differ for one input.
func TestAdditiveBlinding(t *testing.T) {
	key, err := oprf.GenerateKey(suite, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := PublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	circlPK, _ := key.Public().MarshalBinary()
	if !bytes.Equal(pk, circlPK) {
		t.Fatalf("public key %x, circl %x", pk, circlPK)
	}
	for _, path := range pathsToTest() {
		t.Run(path.String(), func(t *testing.T) {
			defer path.use()()
			c, err := newAdditiveClient(pk)
			if err != nil {
				t.Fatal(err)
			}
			c.lanes = path.lanes
			var inputs []string
			for i := range 100 {
				inputs = append(inputs, fmt.Sprintf("domain\x00host%d.example.org", i))
			}
			inputs = append(inputs, inputs[0])
			els, rs, err := c.blind(inputs)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(els[0], els[len(els)-1]) {
				t.Fatal("one input blinded twice gave the same element")
			}
			ev, err := EvaluateElements(key, els)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.finalizeAll(inputs, ev, rs)
			if err != nil {
				t.Fatal(err)
			}
			srv := oprf.NewServer(suite, key)
			for i, in := range inputs {
				want, _ := srv.FullEvaluate([]byte(in))
				if got[i] != Key(want) {
					t.Fatalf("input %q: key %x, want %x", in, got[i], Key(want))
				}
			}
			// A bad evaluation is refused, naming its index.
			bad := slices.Clone(ev)
			bad[9] = bytes.Repeat([]byte{0xff}, ElementLen)
			if _, err := c.finalizeAll(inputs, bad, rs); err == nil || !strings.Contains(err.Error(), "evaluation 9:") {
				t.Fatalf("a non-canonical evaluation at 9: %v", err)
			}
			if _, err := c.finalizeAll(inputs, ev[1:], rs); err == nil {
				t.Fatal("one evaluation too few accepted")
			}
		})
	}
	// The fixed-base comb is scalar multiplication, of G and of
	// another point, on random scalars and on those whose digits sit at
	// the radix's edges (0, 1, 127, 128, 255, 256, …, ℓ−1).
	var rb [64]byte
	rand.Read(rb[:])
	r, _ := edwards25519.NewScalar().SetUniformBytes(rb[:])
	other := new(edwards25519.Point).ScalarBaseMult(r)
	var scalars []*edwards25519.Scalar
	for _, v := range []int64{0, 1, 2, 127, 128, 129, 255, 256, 257, 32767, 32768, 65535, 1 << 40} {
		scalars = append(scalars, scalarFromInt(t, big.NewInt(v)), scalarFromInt(t, big.NewInt(-v))) // v and ℓ − v
	}
	for range 50 {
		var b [64]byte
		rand.Read(b[:])
		s, _ := edwards25519.NewScalar().SetUniformBytes(b[:])
		scalars = append(scalars, s)
	}
	for _, p := range []*edwards25519.Point{edwards25519.NewGeneratorPoint(), other} {
		fb := newFixedBase(p)
		for _, s := range scalars {
			want := new(edwards25519.Point).ScalarMult(s, p)
			if fb.mul(s).Equal(want) != 1 {
				t.Fatalf("fixed-base multiplication by %x differs", s.Bytes())
			}
		}
	}
	if generatorTable().mul(r).Equal(other) != 1 {
		t.Fatal("the generator's table differs from ScalarBaseMult")
	}
}

// TestEncodeAll: the batched encodings are encodeElement's, on each path,
// for groups of eight and partial ones, the identity and the generator
// among them.
func TestEncodeAll(t *testing.T) {
	for _, path := range pathsToTest() {
		t.Run(path.String(), func(t *testing.T) {
			defer path.use()()
			for _, n := range []int{0, 1, 2, 7, 8, 9, 16, 21} {
				pts := make([]edwards25519.Point, n)
				for i := range pts {
					switch i % 5 {
					case 0:
						pts[i].Set(edwards25519.NewIdentityPoint())
					case 1:
						pts[i].Set(edwards25519.NewGeneratorPoint())
					default:
						var b [64]byte
						rand.Read(b[:])
						s, _ := edwards25519.NewScalar().SetUniformBytes(b[:])
						pts[i].ScalarBaseMult(s)
					}
				}
				got := make([][32]byte, n)
				encodeAll(got, pts, path.lanes)
				for i := range pts {
					var want [32]byte
					encodeElement(&want, &pts[i])
					if got[i] != want {
						t.Fatalf("n=%d, point %d: %x, want %x", n, i, got[i], want)
					}
				}
			}
		})
	}
}
