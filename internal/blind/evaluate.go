package blind

import (
	"fmt"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/oprf"
)

// DecodeElement decodes one blinded element: exactly ElementLen bytes,
// the canonical ristretto255 encoding of a group element (RFC 9496
// rejects every other string: values not on the curve, non-canonical
// field elements, negative ones), and not the identity (RFC 9497,
// DeserializeElement).
func DecodeElement(b []byte) (group.Element, *Error) {
	if len(b) != ElementLen {
		return nil, refuse(ReasonLength, -1, "%d bytes, a ristretto255 element has %d", len(b), ElementLen)
	}
	e := newElement()
	if err := e.UnmarshalBinary(b); err != nil {
		return nil, refuse(ReasonElement, -1, "not the canonical encoding of a ristretto255 element")
	}
	if e.IsIdentity() {
		return nil, refuse(ReasonIdentity, -1, "the identity element")
	}
	return e, nil
}

// decodeBlinded is [DecodeElement] on this package's arithmetic (see
// ristretto.go), for the server's path: the same checks and reasons.
func decodeBlinded(b []byte) (*edwards25519.Point, *Error) {
	if len(b) != ElementLen {
		return nil, refuse(ReasonLength, -1, "%d bytes, a ristretto255 element has %d", len(b), ElementLen)
	}
	p, err := decodeElement(b)
	if err != nil {
		return nil, refuseDecode(err)
	}
	return p, nil
}

// refuseDecode is the refusal of an element that decodeElement refused
// with err.
func refuseDecode(err error) *Error {
	if err == errIdentityDecode {
		return refuse(ReasonIdentity, -1, "the identity element")
	}
	return refuse(ReasonElement, -1, "not the canonical encoding of a ristretto255 element")
}

// blindedDecoder is [decodeBlinded] split around its inverse square root,
// so that eight elements' exponentiations can run together (fe8.go): the
// same formulas, checks and refusals.
type blindedDecoder struct {
	s, u1, u2, v field.Element
	sr           sqrtRatioOne
}

// start checks b's length and encoding and returns the base of the
// exponentiation, or the refusal.
func (d *blindedDecoder) start(b []byte) (field.Element, *Error) {
	if len(b) != ElementLen {
		return field.Element{}, refuse(ReasonLength, -1, "%d bytes, a ristretto255 element has %d", len(b), ElementLen)
	}
	if _, err := d.s.SetBytes(b); err != nil {
		return field.Element{}, refuseDecode(errNotCanonical)
	}
	if [32]byte(d.s.Bytes()) != [32]byte(b) || d.s.IsNegative() == 1 {
		return field.Element{}, refuseDecode(errNotCanonical) // s >= p, the top bit set, or negative
	}
	var ss, u2sqr, tmp, w field.Element
	ss.Square(&d.s)
	d.u1.Subtract(feOne, &ss)
	d.u2.Add(feOne, &ss)
	u2sqr.Square(&d.u2)
	d.v.Negate(tmp.Multiply(feD, tmp.Square(&d.u1)))
	d.v.Subtract(&d.v, &u2sqr)
	return d.sr.start(w.Multiply(&d.v, &u2sqr)), nil
}

// finish decodes the element from pow, the base to the power (p−5)/8.
func (d *blindedDecoder) finish(out *extended, pow *field.Element) *Error {
	var invsqrt, denX, denY, x, y, t, tmp field.Element
	wasSquare := d.sr.finish(&invsqrt, pow)
	denX.Multiply(&invsqrt, &d.u2)
	denY.Multiply(tmp.Multiply(&invsqrt, &denX), &d.v)
	x.Absolute(x.Multiply(tmp.Add(&d.s, &d.s), &denX))
	y.Multiply(&d.u1, &denY)
	t.Multiply(&x, &y)
	if wasSquare == 0 || t.IsNegative() == 1 || y.Equal(new(field.Element).Zero()) == 1 {
		return refuseDecode(errNotCanonical)
	}
	var p edwards25519.Point
	if _, err := p.SetExtendedCoordinates(&x, &y, feOne, &t); err != nil {
		return refuseDecode(errNotCanonical)
	}
	if x.Equal(new(field.Element).Zero()) == 1 {
		return refuseDecode(errIdentityDecode) // s = 0
	}
	out.X, out.Y, out.T = x, y, t
	out.Z.One()
	return nil
}

// decodeAll decodes elements into pts, eight at a time with lanes (the
// eight exponentiations together) or one at a time; the first bad
// element, in index order, is refused, naming its index.
func decodeAll(pts []extended, elements [][]byte, lanes bool) *Error {
	for lo := 0; lo < len(elements); lo += 8 {
		group := elements[lo:min(lo+8, len(elements))]
		var ds [8]blindedDecoder
		var errs [8]*Error
		var bases, pows [8]field.Element
		for j, b := range group {
			bases[j], errs[j] = ds[j].start(b)
			if errs[j] != nil {
				bases[j].One()
			}
		}
		pow22523Group(&pows, &bases, len(group), lanes)
		for j := range group {
			err := errs[j]
			if err == nil {
				err = ds[j].finish(&pts[lo+j], &pows[j])
			}
			if err != nil {
				err.Index = lo + j
				err.Message = fmt.Sprintf("elements[%d]: %s", lo+j, err.Message)
				return err
			}
		}
	}
	return nil
}

// EvaluateElements decodes and evaluates blinded elements under key (the
// OPRF's BlindEvaluate, RFC 9497 section 3.3.1), in constant time in
// the key, returning the encoded evaluations. A bad element is an
// *Error naming its index; nothing is evaluated then.
//
// The elements are decoded eight at a time where the CPU has AVX2 or
// AVX-512 IFMA (amd64), multiplied by k/2 (ctmul.go: constant time in the
// key; eight at a time there too) and their doubles encoded with one
// field inversion for the batch (batch.go).
func EvaluateElements(key *oprf.PrivateKey, elements [][]byte) ([][]byte, error) {
	return evaluateElements(key, elements, hasLanes)
}

func evaluateElements(key *oprf.PrivateKey, elements [][]byte, lanes bool) ([][]byte, error) {
	pts := make([]extended, len(elements))
	if err := decodeAll(pts, elements, lanes); err != nil {
		return nil, err
	}
	kb, err := key.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("blind: key: %w", err)
	}
	k, err := scalarOf(kb)
	if err != nil {
		return nil, fmt.Errorf("blind: key: %w", err)
	}
	half := new(edwards25519.Scalar).Multiply(k, scalarHalf)
	d := ctDigits(half)
	if lanes {
		sc := new(ctLanes)
		for lo := 0; lo < len(pts); lo += 8 {
			var in, res [8]extended
			n := copy(in[:], pts[lo:])
			for j := n; j < len(in); j++ {
				in[j] = in[0]
			}
			ctMul8(sc, &res, &in, &d)
			copy(pts[lo:lo+n], res[:n])
		}
	} else {
		var t ctTable
		for i := range pts {
			ctMul(&pts[i], &pts[i], &d, &t)
		}
	}
	// doubleEncode branches on whether a product's e·f·g·h is 0 (encoded
	// alone then): a property of the evaluation, which the partner
	// receives, not of the key beyond it.
	encs := make([][32]byte, len(pts))
	be := batchEvaluator{st: make([]doubleState, len(pts)), prefix: make([]field.Element, len(pts))}
	be.doubleEncode(encs, pts)
	out := make([][]byte, len(pts))
	buf := make([]byte, ElementLen*len(pts))
	for i := range encs {
		out[i] = buf[i*ElementLen : (i+1)*ElementLen : (i+1)*ElementLen]
		copy(out[i], encs[i][:])
	}
	return out, nil
}
