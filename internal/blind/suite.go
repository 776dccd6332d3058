package blind

import (
	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/oprf"
)

// SuiteID names the OPRF suite of RFC 9497 that every set and evaluation
// uses. ristretto255 is a prime-order group with canonical encodings, so a
// received element either decodes to exactly one group element or is
// rejected; circl's server operations on it are constant time in the key,
// which its P-256 suite does not promise (a partner timing many
// evaluations must not learn the key, or it could enumerate the set
// offline).
const SuiteID = "ristretto255-SHA512"

// suite is the OPRF suite of SuiteID.
var suite = oprf.SuiteRistretto255

// ElementLen is the length in bytes of an encoded group element (a blinded
// or evaluated element).
const ElementLen = 32

// OutputLen is the length of an OPRF output (SHA-512).
const OutputLen = 64

// grp is the group of the suite.
var grp = suite.Group()

// newElement returns a fresh element of the group.
func newElement() group.Element { return grp.NewElement() }
