package blind

import (
	"crypto/sha512"
	"encoding"
	"hash"
	"math/big"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// This file evaluates the OPRF on many of the node's own inputs at once,
// for building a partner's set: the ristretto255 encoding of a point
// needs an inverse square root (an exponentiation, about a tenth of an
// evaluation), but the encodings of the doubles of many points need only
// one field inversion between them (Montgomery's trick), so the set
// builder multiplies each input's point by k/2 and encodes the doubles.
// The double-and-encode formulas are those of the Ristretto
// specification's batched encoding (ristretto.group, "Batched double-and-
// encode"), as curve25519-dalek's double_and_compress_batch computes
// them; the tests compare every output with [fullEvaluate]'s.
//
// The multiplication by k/2 follows a chain computed once per key
// (fixedmul.go); on amd64 CPUs with AVX2 or AVX-512 IFMA (hasLanes),
// eight inputs at a time go through it, and through their maps'
// exponentiations, on eight vector lanes (fe8.go: IFMA's backend where
// the CPU has it, else AVX2's).

// scalarHalf is (ℓ+1)/2, the inverse of 2 modulo the group order ℓ.
var scalarHalf = func() *edwards25519.Scalar {
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	h := new(big.Int).Rsh(new(big.Int).Add(l, big.NewInt(1)), 1)
	var le [32]byte
	b := h.Bytes()
	for i, c := range b {
		le[len(b)-1-i] = c
	}
	s, err := new(edwards25519.Scalar).SetCanonicalBytes(le[:])
	if err != nil {
		panic("blind: (l+1)/2: " + err.Error())
	}
	return s
}()

// batchEvaluator evaluates the OPRF under one key on batches of inputs;
// each worker has its own (it keeps scratch space between batches).
type batchEvaluator struct {
	half   *scalarChain // k/2, as the steps of its multiplication
	lanes  *chain8      // scratch space of the eight-lane multiplication; nil: one point at a time
	pts    []extended
	st     []doubleState
	prefix []field.Element
	encs   [][32]byte
	hasher
}

// hasher hashes inputs to the group many at a time (expand_message_xmd
// from a kept SHA-512 state, and the two maps' exponentiations eight at
// a time with lanes); the set builder and the partner's blinding each
// keep one.
type hasher struct {
	zpad []byte // SHA-512's state after expand_message_xmd's zero block
	h    hash.Hash
	buf  []byte // the messages hashed
}

func newHasher() hasher {
	h := sha512.New()
	var zpad [128]byte
	h.Write(zpad[:])
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic("blind: sha512 state: " + err.Error())
	}
	return hasher{zpad: state, h: h}
}

// hashAll sets pts[i] to HashToGroup(inputs[i]), eight at a time with
// lanes, else one at a time.
func (hs *hasher) hashAll(pts []extended, inputs []string, lanes bool) {
	if lanes {
		hs.mapLanes(pts, inputs)
		return
	}
	for i, in := range inputs {
		var u [64]byte
		hs.expandXMD(&u, in)
		var q extended
		mapToExtended(&pts[i], u[:32])
		mapToExtended(&q, u[32:])
		addMaps(&pts[i], &pts[i], &q)
	}
}

// doubleState is one point's part of a batched double-and-encode.
type doubleState struct {
	e, f, g, h, eg, fh field.Element
	slow               bool // e·f·g·h = 0: encoded alone
}

func newBatchEvaluator(k *edwards25519.Scalar) *batchEvaluator {
	half := new(edwards25519.Scalar).Multiply(k, scalarHalf)
	be := &batchEvaluator{half: newScalarChain(half), hasher: newHasher()}
	if hasLanes {
		be.lanes = new(chain8)
	}
	return be
}

// evaluate writes the keys of the OPRF outputs of inputs into out.
func (be *batchEvaluator) evaluate(out []uint64, inputs []string) {
	n := len(inputs)
	if cap(be.pts) < n {
		be.pts = make([]extended, n)
		be.st = make([]doubleState, n)
		be.prefix = make([]field.Element, n)
		be.encs = make([][32]byte, n)
	}
	pts := be.pts[:n]
	if be.lanes != nil {
		be.mapLanes(pts, inputs)
		be.mulLanes(pts)
	} else {
		for i, in := range inputs {
			var u [64]byte
			be.expandXMD(&u, in)
			var p, q extended
			mapToExtended(&p, u[:32])
			mapToExtended(&q, u[32:])
			addMaps(&p, &p, &q)
			be.half.mul(&pts[i], &p)
		}
	}
	encs := be.encs[:n]
	be.doubleEncode(encs, pts)
	for i, in := range inputs {
		be.buf = appendFinalizeInput(be.buf[:0], in, &encs[i])
		o := sha512.Sum512(be.buf)
		out[i] = Key(o[:])
	}
}

// addMaps sets v = p + q: the hash to group's sum of its two maps.
func addMaps(v, p, q *extended) {
	var qc cached
	var sum completed
	qc.fromExtended(q)
	sum.add(p, &qc, false)
	v.fromCompleted(&sum)
}

// mulLanes multiplies pts by k/2 in place, eight at a time (the last
// eight padded with copies of their first).
func (be *batchEvaluator) mulLanes(pts []extended) {
	for lo := 0; lo < len(pts); lo += 8 {
		var in, out [8]extended
		n := copy(in[:], pts[lo:])
		for j := n; j < len(in); j++ {
			in[j] = in[0]
		}
		be.half.mul8(be.lanes, &out, &in)
		copy(pts[lo:lo+n], out[:n])
	}
}

// expandXMD is [expandXMD] with the hash of the zero block computed once.
func (hs *hasher) expandXMD(out *[64]byte, msg string) {
	if err := hs.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(hs.zpad); err != nil {
		panic("blind: sha512 state: " + err.Error())
	}
	hs.buf = expandXMDAfterZeros(hs.h, out, msg, hashToGroupDST, hs.buf)
}

// doubleEncode writes the encoding of 2·pts[i] into out[i].
func (be *batchEvaluator) doubleEncode(out [][32]byte, pts []extended) {
	st := be.st[:len(pts)]
	prefix := be.prefix[:len(pts)]
	var acc, xx, yy, zz, dtt, tmp, prod field.Element
	acc.One()
	for i := range pts {
		x, y, z, t := &pts[i].X, &pts[i].Y, &pts[i].Z, &pts[i].T
		s := &st[i]
		xx.Square(x)
		yy.Square(y)
		zz.Square(z)
		dtt.Multiply(tmp.Square(t), feD)
		s.e.Multiply(x, tmp.Add(y, y)) // 2XY
		s.f.Add(&zz, &dtt)             // Z² + dT²
		s.g.Add(&yy, &xx)              // Y² − aX², a = −1
		s.h.Subtract(&zz, &dtt)        // Z² − dT²
		s.eg.Multiply(&s.e, &s.g)
		s.fh.Multiply(&s.f, &s.h)
		prod.Multiply(&s.eg, &s.fh)
		s.slow = prod.Equal(new(field.Element).Zero()) == 1
		prefix[i].Set(&acc) // the product of those before i
		if !s.slow {
			acc.Multiply(&acc, &prod)
		}
	}
	var inv field.Element
	inv.Invert(&acc) // 1 / the product of all
	for i := len(pts) - 1; i >= 0; i-- {
		s := &st[i]
		if s.slow {
			p, err := new(edwards25519.Point).SetExtendedCoordinates(&pts[i].X, &pts[i].Y, &pts[i].Z, &pts[i].T)
			if err != nil {
				panic("blind: a point of the batch left the curve")
			}
			encodeElement(&out[i], p.Add(p, p))
			continue
		}
		var own field.Element // 1 / (e·f·g·h) of this point
		own.Multiply(&inv, &prefix[i])
		prod.Multiply(&s.eg, &s.fh)
		inv.Multiply(&inv, &prod)
		doubleEncodeOne(&out[i], s, &own)
	}
}

// doubleEncodeOne encodes 2P from P's state and 1/(e·f·g·h).
func doubleEncodeOne(out *[32]byte, s *doubleState, inv *field.Element) {
	var zInv, tInv, tmp, tmp2, minusE, fSqrtA, e, g, h, magic, sv field.Element
	zInv.Multiply(&s.eg, inv)
	tInv.Multiply(&s.fh, inv)
	rotate := tmp.Multiply(&s.eg, &zInv).IsNegative()
	minusE.Negate(&s.e)
	fSqrtA.Multiply(&s.f, feSqrtM1)
	e.Select(&s.g, &s.e, rotate)
	g.Select(&minusE, &s.g, rotate)
	h.Select(&fSqrtA, &s.h, rotate)
	magic.Select(feSqrtM1, feInvSqrtAMinusD, rotate)
	negY := tmp.Multiply(tmp.Multiply(&h, &e), &zInv).IsNegative()
	tmp.Negate(&g)
	g.Select(&tmp, &g, negY)
	sv.Multiply(tmp.Subtract(&h, &g), magic.Multiply(&magic, tmp2.Multiply(&g, &tInv)))
	sv.Absolute(&sv)
	copy(out[:], sv.Bytes())
}
