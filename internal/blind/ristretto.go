package blind

import (
	crand "crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"sync"

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
	var e pointEncoder
	var pow field.Element
	base := e.start(p)
	pow.Pow22523(&base)
	e.finish(out, &pow)
}

// pointEncoder is [encodeElement] split around its inverse square root
// (SqrtRatio(1, u1·u2²)), so that eight encodings' exponentiations can
// run together (see [encodeAll]): the same formulas.
type pointEncoder struct {
	x0, y0, z0, t0, u1, u2 field.Element
	sr                     sqrtRatioOne
}

// start computes p's encoding up to the base of the exponentiation.
func (e *pointEncoder) start(p *edwards25519.Point) field.Element {
	x0, y0, z0, t0 := p.ExtendedCoordinates()
	e.x0, e.y0, e.z0, e.t0 = *x0, *y0, *z0, *t0
	var tmp, w field.Element
	e.u1.Multiply(tmp.Add(z0, y0), w.Subtract(z0, y0))
	e.u2.Multiply(x0, y0)
	tmp.Square(&e.u2)
	return e.sr.start(w.Multiply(&e.u1, &tmp))
}

// finish writes the encoding from pow, the base to the power (p−5)/8.
func (e *pointEncoder) finish(out *[32]byte, pow *field.Element) {
	var tmp, invsqrt, den1, den2, zInv, ix0, iy0, enchanted, x, y, denInv, s field.Element
	e.sr.finish(&invsqrt, pow)
	den1.Multiply(&invsqrt, &e.u1)
	den2.Multiply(&invsqrt, &e.u2)
	zInv.Multiply(tmp.Multiply(&den1, &den2), &e.t0)
	ix0.Multiply(&e.x0, feSqrtM1)
	iy0.Multiply(&e.y0, feSqrtM1)
	enchanted.Multiply(&den1, feInvSqrtAMinusD)
	rotate := tmp.Multiply(&e.t0, &zInv).IsNegative()
	x.Select(&iy0, &e.x0, rotate)
	y.Select(&ix0, &e.y0, rotate)
	denInv.Select(&enchanted, &den2, rotate)
	negY := tmp.Multiply(&x, &zInv).IsNegative()
	var yNeg field.Element
	yNeg.Negate(&y)
	y.Select(&yNeg, &y, negY)
	s.Absolute(s.Multiply(&denInv, tmp.Subtract(&e.z0, &y)))
	copy(out[:], s.Bytes())
}

// encodeAll writes the encodings of pts into out, the exponentiations
// eight at a time with lanes, else one at a time.
func encodeAll(out [][32]byte, pts []edwards25519.Point, lanes bool) {
	for lo := 0; lo < len(pts); lo += 8 {
		group := pts[lo:min(lo+8, len(pts))]
		var es [8]pointEncoder
		var bases, pows [8]field.Element
		for j := range group {
			bases[j] = es[j].start(&group[j])
		}
		pow22523Group(&pows, &bases, len(group), lanes)
		for j := range group {
			es[j].finish(&out[lo+j], &pows[j])
		}
	}
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
// partner's blinding (P = G) and unblinding (P = k·G): t[i][j] =
// (j+1)·256^i·P in affine coordinates, so that s·P is at most 32
// additions of table entries (a signed radix-256 comb) instead of a full
// multiplication. A table is 480 KiB, built in about a millisecond.
type fixedBase struct {
	t [fixedDigits][fixedHalf]affineCached
}

const (
	fixedDigits = 32  // signed radix-256 digits of a scalar below 2^253
	fixedHalf   = 128 // a digit's largest absolute value
)

// affineCached is a point (x, y) prepared to be added: y+x, y−x and
// 2d·x·y (z = 1).
type affineCached struct{ YplusX, YminusX, T2d field.Element }

func newFixedBase(p *edwards25519.Point) *fixedBase {
	f := &fixedBase{}
	pts := make([]extended, fixedDigits*fixedHalf)
	var base extended
	base.X, base.Y, base.Z, base.T = extendedOf(p)
	for i := range fixedDigits {
		row := pts[i*fixedHalf : (i+1)*fixedHalf]
		row[0] = base
		var bc cached
		var c completed
		bc.fromExtended(&base)
		for j := 1; j < fixedHalf; j++ {
			c.add(&row[j-1], &bc, false)
			row[j].fromCompleted(&c)
		}
		bc.fromExtended(&row[fixedHalf-1])
		c.add(&row[fixedHalf-1], &bc, false) // 2·128·base
		base.fromCompleted(&c)
	}
	// Z⁻¹ of every entry with one inversion (Montgomery's trick); no Z
	// is zero: every entry is a point.
	prefix := make([]field.Element, len(pts))
	var acc field.Element
	acc.One()
	for i := range pts {
		prefix[i] = acc
		acc.Multiply(&acc, &pts[i].Z)
	}
	acc.Invert(&acc)
	for i := len(pts) - 1; i >= 0; i-- {
		var zInv, x, y, xy field.Element
		zInv.Multiply(&acc, &prefix[i])
		acc.Multiply(&acc, &pts[i].Z)
		x.Multiply(&pts[i].X, &zInv)
		y.Multiply(&pts[i].Y, &zInv)
		e := &f.t[i/fixedHalf][i%fixedHalf]
		sumDiff(&e.YplusX, &e.YminusX, &y, &x)
		e.T2d.Multiply(xy.Multiply(&x, &y), feD2)
	}
	return f
}

// generatorTable is the fixed-base table of the generator G, built at
// its first use.
var generatorTable = sync.OnceValue(func() *fixedBase { return newFixedBase(edwards25519.NewGeneratorPoint()) })

// extendedOf returns p's extended coordinates.
func extendedOf(p *edwards25519.Point) (x, y, z, t field.Element) {
	px, py, pz, pt := p.ExtendedCoordinates()
	return *px, *py, *pz, *pt
}

// mul returns s·P. Its time depends on s: it serves the partner's own
// blinding scalars, on the partner's machine.
func (f *fixedBase) mul(s *edwards25519.Scalar) *edwards25519.Point {
	b := s.Bytes()
	var e [fixedDigits]int16
	for i, c := range b {
		e[i] = int16(c)
	}
	for i := range fixedDigits - 1 {
		carry := (e[i] + fixedHalf) >> 8 // 0 or 1
		e[i] -= carry << 8
		e[i+1] += carry
	}
	var acc extended
	acc.Y.One()
	acc.Z.One()
	var c completed
	for i, d := range e {
		switch {
		case d > 0:
			c.addAffine(&acc, &f.t[i][d-1], false)
			acc.fromCompleted(&c)
		case d < 0:
			c.addAffine(&acc, &f.t[i][-d-1], true)
			acc.fromCompleted(&c)
		}
	}
	out, err := new(edwards25519.Point).SetExtendedCoordinates(&acc.X, &acc.Y, &acc.Z, &acc.T)
	if err != nil {
		panic("blind: the fixed-base comb left the curve")
	}
	return out
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
	// lanes: the exponentiations of the hash to group and of the
	// encodings go eight at a time (hasLanes; the tests set each path).
	lanes bool
}

func newAdditiveClient(publicKey []byte) (*additiveClient, error) {
	p, err := decodeElement(publicKey)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return &additiveClient{pk: newFixedBase(p), lanes: hasLanes}, nil
}

// blind returns the blinded elements of inputs and the scalars that
// unblind them (r·G from a table: [fixedBase]). The hash to group and
// the encodings take their
// exponentiations eight at a time where the CPU has lanes (fe8.go).
func (c *additiveClient) blind(inputs []string) ([][]byte, []*edwards25519.Scalar, error) {
	seed := make([]byte, 64*len(inputs))
	if _, err := crand.Read(seed); err != nil {
		return nil, nil, fmt.Errorf("blind: random scalars: %w", err)
	}
	hs := newHasher()
	hashed := make([]extended, len(inputs))
	hs.hashAll(hashed, inputs, c.lanes)
	pts := make([]edwards25519.Point, len(inputs))
	rs := make([]*edwards25519.Scalar, len(inputs))
	g := generatorTable()
	for i := range inputs {
		r, err := new(edwards25519.Scalar).SetUniformBytes(seed[64*i : 64*i+64])
		if err != nil {
			return nil, nil, err
		}
		h := &hashed[i]
		if _, err := pts[i].SetExtendedCoordinates(&h.X, &h.Y, &h.Z, &h.T); err != nil {
			panic("blind: the ristretto255 map left the curve")
		}
		pts[i].Add(&pts[i], g.mul(r))
		rs[i] = r
	}
	encs := make([][32]byte, len(inputs))
	encodeAll(encs, pts, c.lanes)
	out := make([][]byte, len(inputs))
	for i := range encs {
		out[i] = encs[i][:]
	}
	return out, rs, nil
}

// finalizeAll returns the keys of the outputs of inputs from their
// evaluated elements and blinding scalars; a bad element is an error
// naming its index. The decodings and encodings take their
// exponentiations eight at a time where the CPU has lanes.
func (c *additiveClient) finalizeAll(inputs []string, evaluated [][]byte, rs []*edwards25519.Scalar) ([]uint64, error) {
	if len(evaluated) != len(inputs) || len(rs) != len(inputs) {
		return nil, fmt.Errorf("blind: %d evaluations and %d scalars for %d inputs", len(evaluated), len(rs), len(inputs))
	}
	decoded := make([]extended, len(inputs))
	if bad := decodeAll(decoded, evaluated, c.lanes); bad != nil {
		return nil, fmt.Errorf("blind: the peer's evaluation %d: %s", bad.Index, bad.Message)
	}
	pts := make([]edwards25519.Point, len(inputs))
	for i := range pts {
		d := &decoded[i]
		if _, err := pts[i].SetExtendedCoordinates(&d.X, &d.Y, &d.Z, &d.T); err != nil {
			return nil, fmt.Errorf("blind: the peer's evaluation %d: %w", i, errNotCanonical)
		}
		pts[i].Subtract(&pts[i], c.pk.mul(rs[i]))
	}
	encs := make([][32]byte, len(inputs))
	encodeAll(encs, pts, c.lanes)
	keys := make([]uint64, len(inputs))
	var buf []byte
	for i, in := range inputs {
		buf = appendFinalizeInput(buf[:0], in, &encs[i])
		o := sha512.Sum512(buf)
		keys[i] = Key(o[:])
	}
	return keys, nil
}
