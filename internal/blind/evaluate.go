package blind

import (
	"fmt"

	"filippo.io/edwards25519"
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
	switch {
	case err == errIdentityDecode:
		return nil, refuse(ReasonIdentity, -1, "the identity element")
	case err != nil:
		return nil, refuse(ReasonElement, -1, "not the canonical encoding of a ristretto255 element")
	}
	return p, nil
}

// EvaluateElements decodes and evaluates blinded elements under key (the
// OPRF's BlindEvaluate, RFC 9497 section 3.3.1), in constant time in
// the key, returning the encoded evaluations. A bad element is an
// *Error naming its index; nothing is evaluated then.
func EvaluateElements(key *oprf.PrivateKey, elements [][]byte) ([][]byte, error) {
	in := make([]*edwards25519.Point, len(elements))
	for i, b := range elements {
		e, err := decodeBlinded(b)
		if err != nil {
			err.Index = i
			err.Message = fmt.Sprintf("elements[%d]: %s", i, err.Message)
			return nil, err
		}
		in[i] = e
	}
	kb, err := key.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("blind: key: %w", err)
	}
	k, err := scalarOf(kb)
	if err != nil {
		return nil, fmt.Errorf("blind: key: %w", err)
	}
	out := make([][]byte, len(in))
	buf := make([]byte, ElementLen*len(in))
	for i, p := range in {
		var enc [ElementLen]byte
		evaluateElement(&enc, k, p)
		out[i] = buf[i*ElementLen : (i+1)*ElementLen : (i+1)*ElementLen]
		copy(out[i], enc[:])
	}
	return out, nil
}
