package blind

import (
	"fmt"

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

// EvaluateElements decodes and evaluates blinded elements under key (the
// OPRF's BlindEvaluate, RFC 9497 section 3.3.1), returning the encoded
// evaluations. A bad element is an *Error naming its index.
func EvaluateElements(key *oprf.PrivateKey, elements [][]byte) ([][]byte, error) {
	in := make([]oprf.Blinded, len(elements))
	for i, b := range elements {
		e, err := DecodeElement(b)
		if err != nil {
			err.Index = i
			err.Message = fmt.Sprintf("elements[%d]: %s", i, err.Message)
			return nil, err
		}
		in[i] = e
	}
	ev, err := oprf.NewServer(suite, key).Evaluate(&oprf.EvaluationRequest{Elements: in})
	if err != nil {
		return nil, fmt.Errorf("blind: evaluate: %w", err)
	}
	out := make([][]byte, len(ev.Elements))
	for i, e := range ev.Elements {
		if out[i], err = e.MarshalBinaryCompress(); err != nil {
			return nil, fmt.Errorf("blind: encode evaluation: %w", err)
		}
	}
	return out, nil
}
