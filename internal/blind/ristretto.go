package blind

import (
	crand "crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math/big"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"github.com/cloudflare/circl/oprf"
)

// This file is the suite's group arithmetic on filippo.io/edwards25519
// (assembly field arithmetic on amd64 and arm64): ristretto255 encoding
// and decoding (RFC 9496, section 4.3), hash to group (RFC 9497's
// HashToGroup: expand_message_xmd with SHA-512, then the one-way map of
// RFC 9496, section 4.3.4), the server's evaluation and Finalize. They
// compute exactly what circl's ristretto255 suite computes (the tests
// compare them on the RFC 9497 vectors and on random inputs, and fuzz
// the decoder against circl's), in about two thirds of its time: building
// a partner's set of a million indicators is a million scalar
// multiplications, and translating a log's values two per value.

// fe returns the field element of a decimal constant of RFC 9496.
func fe(decimal string) *field.Element {
	n, ok := new(big.Int).SetString(decimal, 10)
	if !ok {
		panic("blind: bad constant " + decimal)
	}
	var le [32]byte
	b := n.Bytes()
	for i, c := range b {
		le[len(b)-1-i] = c
	}
	e, err := new(field.Element).SetBytes(le[:])
	if err != nil {
		panic(err)
	}
	return e
}

// The constants of RFC 9496, section 4.1.
var (
	feD               = fe("37095705934669439343138083508754565189542113879843219016388785533085940283555")
	feSqrtM1          = fe("19681161376707505956807079304988542015446066515923890162744021073123829784752")
	feSqrtADMinusOne  = fe("25063068953384623474111414158702152701244531502492656460079210482610430750235")
	feInvSqrtAMinusD  = fe("54469307008909316920995813868745141605393597292927456921205312896311721017578")
	feOneMinusDSq     = fe("1159843021668779879193775521855586647937357759715417654439879720876111806838")
	feDMinusOneSq     = fe("40440834346308536858101042469323190826248399146238708352240133220865137265952")
	feOne             = new(field.Element).One()
	feMinusOne        = new(field.Element).Negate(feOne)
	hashToGroupDST    = []byte("HashToGroup-OPRFV1-\x00-ristretto255-SHA512")
	errNotCanonical   = errors.New("not the canonical encoding of a ristretto255 element")
	errIdentityDecode = errors.New("the identity element")
)

// encodeElement writes p's ristretto255 encoding into out (RFC 9496,
// section 4.3.2).
func encodeElement(out *[32]byte, p *edwards25519.Point) {
	x0, y0, z0, t0 := p.ExtendedCoordinates()
	var u1, u2, tmp, invsqrt, den1, den2, zInv, ix0, iy0, enchanted, x, y, denInv, s field.Element
	u1.Multiply(tmp.Add(z0, y0), new(field.Element).Subtract(z0, y0))
	u2.Multiply(x0, y0)
	tmp.Square(&u2)
	invsqrt.SqrtRatio(feOne, tmp.Multiply(&u1, &tmp))
	den1.Multiply(&invsqrt, &u1)
	den2.Multiply(&invsqrt, &u2)
	zInv.Multiply(tmp.Multiply(&den1, &den2), t0)
	ix0.Multiply(x0, feSqrtM1)
	iy0.Multiply(y0, feSqrtM1)
	enchanted.Multiply(&den1, feInvSqrtAMinusD)
	rotate := tmp.Multiply(t0, &zInv).IsNegative()
	x.Select(&iy0, x0, rotate)
	y.Select(&ix0, y0, rotate)
	denInv.Select(&enchanted, &den2, rotate)
	negY := tmp.Multiply(&x, &zInv).IsNegative()
	var yNeg field.Element
	yNeg.Negate(&y)
	y.Select(&yNeg, &y, negY)
	s.Absolute(s.Multiply(&denInv, tmp.Subtract(z0, &y)))
	copy(out[:], s.Bytes())
}

// decodeElement decodes a ristretto255 encoding (RFC 9496, section
// 4.3.1), refusing non-canonical and negative field elements and strings
// that are no element's encoding, and the identity.
func decodeElement(b []byte) (*edwards25519.Point, error) {
	if len(b) != ElementLen {
		return nil, errNotCanonical
	}
	var s field.Element
	if _, err := s.SetBytes(b); err != nil {
		return nil, errNotCanonical
	}
	var enc [32]byte
	copy(enc[:], s.Bytes())
	if enc != [32]byte(b) || s.IsNegative() == 1 {
		return nil, errNotCanonical // s >= p, the top bit set, or negative
	}
	var ss, u1, u2, u2sqr, v, tmp, invsqrt, denX, denY, x, y, t field.Element
	ss.Square(&s)
	u1.Subtract(feOne, &ss)
	u2.Add(feOne, &ss)
	u2sqr.Square(&u2)
	v.Negate(tmp.Multiply(feD, tmp.Square(&u1)))
	v.Subtract(&v, &u2sqr)
	_, wasSquare := invsqrt.SqrtRatio(feOne, tmp.Multiply(&v, &u2sqr))
	denX.Multiply(&invsqrt, &u2)
	denY.Multiply(tmp.Multiply(&invsqrt, &denX), &v)
	x.Absolute(x.Multiply(tmp.Add(&s, &s), &denX))
	y.Multiply(&u1, &denY)
	t.Multiply(&x, &y)
	if wasSquare == 0 || t.IsNegative() == 1 || y.Equal(new(field.Element).Zero()) == 1 {
		return nil, errNotCanonical
	}
	p, err := new(edwards25519.Point).SetExtendedCoordinates(&x, &y, feOne, &t)
	if err != nil {
		return nil, errNotCanonical
	}
	if x.Equal(new(field.Element).Zero()) == 1 {
		return nil, errIdentityDecode // s = 0
	}
	return p, nil
}

// mapToPoint is the map of RFC 9496, section 4.3.4, of 32 bytes.
func mapToPoint(b []byte) *edwards25519.Point {
	var e extended
	mapToExtended(&e, b)
	p, err := new(edwards25519.Point).SetExtendedCoordinates(&e.X, &e.Y, &e.Z, &e.T)
	if err != nil {
		panic("blind: the ristretto255 map left the curve")
	}
	return p
}

// mapToExtended is mapToPoint without the library's check that the
// point is on the curve (the set builder's batches skip it; mapToPoint
// checks the same formulas on every other path, and the tests compare
// the two paths).
func mapToExtended(out *extended, b []byte) {
	var m elligator
	var pow field.Element
	m.start(b)
	pow.Pow22523(&m.uv7)
	m.finish(out, &pow)
}

// elligator is the map of RFC 9496, section 4.3.4, split around its one
// exponentiation (in SQRT_RATIO_M1: a quarter of an evaluation's time),
// which the set builder makes for eight maps at once (see [pow22523x8]).
// SQRT_RATIO_M1(u, v) is computed as field.Element's SqrtRatio computes
// it.
type elligator struct{ t, r, u, v, uv3, uv7 field.Element }

// start computes the map of 32 bytes up to the base of the
// exponentiation, uv7 = u·v⁷.
func (m *elligator) start(b []byte) {
	if _, err := m.t.SetBytes(b); err != nil { // the top bit is ignored
		panic(err)
	}
	var tmp, tmp2 field.Element
	m.r.Multiply(feSqrtM1, tmp.Square(&m.t))
	m.u.Multiply(tmp.Add(&m.r, feOne), feOneMinusDSq)
	m.v.Multiply(tmp.Subtract(feMinusOne, tmp2.Multiply(&m.r, feD)), tmp2.Add(&m.r, feD))
	var v2 field.Element
	v2.Square(&m.v)
	m.uv3.Multiply(&m.u, tmp.Multiply(&v2, &m.v))
	m.uv7.Multiply(&m.uv3, tmp.Square(&v2))
}

// finish completes the map from pow = uv7^((p−5)/8).
func (m *elligator) finish(out *extended, pow *field.Element) {
	// s = SQRT_RATIO_M1(u, v): u·v³·pow is √(u/v) or √(−u/v) if u/v is a
	// square, else √(i·u/v) or √(−i·u/v); choose by v·s², take |s|.
	var s, check, uNeg, tmp, sPrime field.Element
	s.Multiply(&m.uv3, pow)
	check.Multiply(&m.v, tmp.Square(&s))
	uNeg.Negate(&m.u)
	correctSign := check.Equal(&m.u)
	flippedSign := check.Equal(&uNeg)
	flippedSignI := check.Equal(tmp.Multiply(&uNeg, feSqrtM1))
	sPrime.Multiply(&s, feSqrtM1)
	s.Select(&sPrime, &s, flippedSign|flippedSignI)
	s.Absolute(&s)
	wasSquare := correctSign | flippedSign

	var c, n, w0, w1, w2, w3 field.Element
	sPrime.Negate(sPrime.Absolute(sPrime.Multiply(&s, &m.t)))
	s.Select(&s, &sPrime, wasSquare)
	c.Select(feMinusOne, &m.r, wasSquare)
	n.Subtract(n.Multiply(n.Multiply(&c, tmp.Subtract(&m.r, feOne)), feDMinusOneSq), &m.v)
	w0.Multiply(tmp.Add(&s, &s), &m.v)
	w1.Multiply(&n, feSqrtADMinusOne)
	ss := tmp.Square(&s)
	w2.Subtract(feOne, ss)
	w3.Add(feOne, ss)
	out.X.Multiply(&w0, &w3)
	out.Y.Multiply(&w2, &w1)
	out.Z.Multiply(&w1, &w3)
	out.T.Multiply(&w0, &w2)
}

// hashToGroup is RFC 9497's HashToGroup for ristretto255-SHA512: 64
// bytes of expand_message_xmd (RFC 9380, section 5.3.1) mapped to two
// points (RFC 9496, section 4.3.4) and added.
func hashToGroup(input []byte) *edwards25519.Point {
	var u [64]byte
	expandXMD(&u, input, hashToGroupDST)
	p := mapToPoint(u[:32])
	return p.Add(p, mapToPoint(u[32:]))
}

// expandXMD is expand_message_xmd with SHA-512 for 64 bytes (one block
// of the hash: ell = 1).
func expandXMD(out *[64]byte, msg, dst []byte) {
	h := sha512.New()
	var zpad [128]byte
	h.Write(zpad[:])
	expandXMDAfterZeros(h, out, msg, dst, nil)
}

// expandXMDAfterZeros is expandXMD from h, a SHA-512 that has hashed its
// zero block (Z_pad) and nothing else; it leaves h to be reset. It builds
// each message in buf (scratch space, returned for reuse): the set
// builder calls it for every input, and bytes written to a hash.Hash
// escape, so that literals and conversions would each be allocated.
func expandXMDAfterZeros[T string | []byte](h hash.Hash, out *[64]byte, msg T, dst, buf []byte) []byte {
	buf = append(buf[:0], msg...)
	buf = append(buf, 0, 64, 0)
	buf = append(buf, dst...)
	buf = append(buf, byte(len(dst)))
	h.Write(buf)
	buf = h.Sum(buf[:0]) // b0
	h.Reset()
	buf = append(buf, 1)
	buf = append(buf, dst...)
	buf = append(buf, byte(len(dst)))
	h.Write(buf)
	buf = h.Sum(buf[:0])
	copy(out[:], buf)
	return buf
}

// finalize is RFC 9497's Finalize hash of an input and its unblinded
// element's encoding.
func finalize(out *[64]byte, input []byte, unblinded *[32]byte) {
	*out = sha512.Sum512(appendFinalizeInput(nil, input, unblinded))
}

// appendFinalizeInput appends the bytes that Finalize hashes to buf.
func appendFinalizeInput[T string | []byte](buf []byte, input T, unblinded *[32]byte) []byte {
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(input)))
	buf = append(buf, input...)
	buf = append(buf, 0, 32)
	buf = append(buf, unblinded[:]...)
	return append(buf, "Finalize"...)
}

// scalarOf returns the scalar of a key's encoding (32 bytes, little
// endian, canonical).
func scalarOf(b []byte) (*edwards25519.Scalar, error) {
	return new(edwards25519.Scalar).SetCanonicalBytes(b)
}

// fullEvaluate computes OPRF(k, input) (RFC 9497 FullEvaluate, base mode)
// with a multiplication whose time depends on k: it serves the node's
// own values when it builds a set, never a partner's request (see
// [EvaluateElements]).
func fullEvaluate(out *[64]byte, k *edwards25519.Scalar, input []byte) {
	p := hashToGroup(input)
	p.VarTimeDoubleScalarBaseMult(k, p, zeroScalar)
	var enc [32]byte
	encodeElement(&enc, p)
	finalize(out, input, &enc)
}

var zeroScalar = edwards25519.NewScalar()

// evaluateElement evaluates one blinded element under k in constant
// time (RFC 9497 BlindEvaluate): out = encode(k · decode(blinded)), with
// the library's ScalarMult. The server evaluates batches ([EvaluateElements],
// ctmul.go); the tests hold them to this.
func evaluateElement(out *[32]byte, k *edwards25519.Scalar, blinded *edwards25519.Point) {
	var q edwards25519.Point
	q.ScalarMult(k, blinded)
	encodeElement(out, &q)
}

// fixedBase is a table of multiples of a fixed point P, for the
// partner's unblinding: t[i][j] = (j+1)·16^i·P, so that s·P is at most
// 64 additions of table entries (a signed radix-16 comb) instead of a
// full multiplication.
type fixedBase struct {
	t [64][8]edwards25519.Point
}

func newFixedBase(p *edwards25519.Point) *fixedBase {
	f := &fixedBase{}
	base := new(edwards25519.Point).Set(p)
	for i := range f.t {
		f.t[i][0].Set(base)
		for j := 1; j < 8; j++ {
			f.t[i][j].Add(&f.t[i][j-1], base)
		}
		base.Add(&f.t[i][7], &f.t[i][7]) // 16·base
	}
	return f
}

// mul returns s·P. Its time depends on s: it serves the partner's own
// blinding scalars, on the partner's machine.
func (f *fixedBase) mul(s *edwards25519.Scalar) *edwards25519.Point {
	b := s.Bytes()
	var e [64]int8
	for i, c := range b {
		e[2*i] = int8(c & 15)
		e[2*i+1] = int8(c >> 4)
	}
	for i := 0; i < 63; i++ {
		carry := (e[i] + 8) >> 4
		e[i] -= carry << 4
		e[i+1] += carry
	}
	acc := edwards25519.NewIdentityPoint()
	for i, d := range e {
		switch {
		case d > 0:
			acc.Add(acc, &f.t[i][d-1])
		case d < 0:
			acc.Subtract(acc, &f.t[i][-d-1])
		}
	}
	return acc
}

// PublicKey returns the encoding of k·G, the public key of OPRF key k,
// which a partner needs to blind additively (see [Translator]).
func PublicKey(key *oprf.PrivateKey) ([]byte, error) {
	kb, err := key.MarshalBinary()
	if err != nil {
		return nil, err
	}
	k, err := scalarOf(kb)
	if err != nil {
		return nil, err
	}
	var enc [32]byte
	encodeElement(&enc, new(edwards25519.Point).ScalarBaseMult(k))
	return enc[:], nil
}

// additiveClient blinds and finalises with additive blinding: an input x
// is sent as B = H(x) + r·G for a random scalar r, which is uniformly
// random whatever x is, exactly as r·H(x) is; the node computes k·B as
// for any blinded element (RFC 9497's BlindEvaluate, unchanged), and the
// partner unblinds k·B − r·(k·G) = k·H(x) with the node's public key
// k·G. The output is RFC 9497's OPRF(k, x). It costs the partner two
// fixed-base multiplications (tables of G and of k·G) instead of two
// variable-base ones.
type additiveClient struct {
	pk *fixedBase
}

func newAdditiveClient(publicKey []byte) (*additiveClient, error) {
	p, err := decodeElement(publicKey)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return &additiveClient{pk: newFixedBase(p)}, nil
}

// blind returns the blinded elements of inputs and the scalars that
// unblind them.
func (c *additiveClient) blind(inputs []string) ([][]byte, []*edwards25519.Scalar, error) {
	seed := make([]byte, 64*len(inputs))
	if _, err := crand.Read(seed); err != nil {
		return nil, nil, fmt.Errorf("blind: random scalars: %w", err)
	}
	out := make([][]byte, len(inputs))
	rs := make([]*edwards25519.Scalar, len(inputs))
	var g edwards25519.Point
	for i, in := range inputs {
		r, err := new(edwards25519.Scalar).SetUniformBytes(seed[64*i : 64*i+64])
		if err != nil {
			return nil, nil, err
		}
		p := hashToGroup([]byte(in))
		p.Add(p, g.ScalarBaseMult(r))
		var enc [32]byte
		encodeElement(&enc, p)
		out[i], rs[i] = enc[:], r
	}
	return out, rs, nil
}

// finalize returns the key of the output of input from its evaluated
// element and its blinding scalar.
func (c *additiveClient) finalize(input string, evaluated []byte, r *edwards25519.Scalar) (uint64, error) {
	z, err := decodeElement(evaluated)
	if err != nil {
		return 0, err
	}
	z.Subtract(z, c.pk.mul(r))
	var enc [32]byte
	encodeElement(&enc, z)
	var out [64]byte
	finalize(&out, []byte(input), &enc)
	return Key(out[:]), nil
}
