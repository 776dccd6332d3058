package notify

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/entente-cti/entente"
)

// The headers of a signed webhook request.
const (
	HeaderTimestamp = "X-Entente-Timestamp"
	HeaderSignature = "X-Entente-Signature"
)

const sigPrefix = "ed25519="

// Errors that [Verify] and [Verifier.Verify] wrap in an *entente.Error
// (code EUNAUTHORIZED); test for them with errors.Is.
var (
	ErrNoSignature  = errors.New("no signature")
	ErrBadSignature = errors.New("signature does not verify")
	ErrStale        = errors.New("timestamp outside the tolerance")
	ErrReplay       = errors.New("signature already seen")
	ErrReplayFull   = errors.New("too many recent signatures to remember")
)

// Signer signs webhook bodies with the node's key.
type Signer struct {
	key ed25519.PrivateKey
}

// NewSigner returns a signer for key.
func NewSigner(key ed25519.PrivateKey) *Signer { return &Signer{key: key} }

// PublicKey returns the key receivers verify with.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign returns the timestamp and signature header values for body sent at
// now.
func (s *Signer) Sign(body []byte, now time.Time) (timestamp, signature string) {
	timestamp = strconv.FormatInt(now.Unix(), 10)
	sig := ed25519.Sign(s.key, signedMessage(timestamp, body))
	return timestamp, sigPrefix + base64.StdEncoding.EncodeToString(sig)
}

// SignRequest sets the signature headers of h for body sent at now.
func (s *Signer) SignRequest(h http.Header, body []byte, now time.Time) {
	ts, sig := s.Sign(body, now)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, sig)
}

func signedMessage(timestamp string, body []byte) []byte {
	msg := make([]byte, 0, len(timestamp)+1+len(body))
	msg = append(msg, timestamp...)
	msg = append(msg, '.')
	return append(msg, body...)
}

func unauthorized(cause error, format string, args ...any) error {
	return &entente.Error{Code: entente.EUNAUTHORIZED, Message: "webhook " + fmt.Sprintf(format, args...), Err: cause}
}

// Verify checks the signature headers in h against body with pub, and that
// the timestamp is within tolerance of now (either way). It returns the
// verified signature (for replay detection) or an *entente.Error with code
// EUNAUTHORIZED wrapping one of ErrNoSignature, ErrBadSignature and
// ErrStale. The signature header may list several signatures separated by
// commas (while keys rotate); one valid signature suffices.
func Verify(pub ed25519.PublicKey, h http.Header, body []byte, now time.Time, tolerance time.Duration) (string, error) {
	ts, sigs := h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if ts == "" || sigs == "" {
		return "", unauthorized(ErrNoSignature, "request lacks the %s or %s header", HeaderTimestamp, HeaderSignature)
	}
	if len(ts) > 19 || strings.TrimLeft(ts, "0123456789") != "" {
		return "", unauthorized(ErrStale, "timestamp %.32q is not decimal Unix seconds", ts)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", unauthorized(ErrStale, "timestamp %.32q is not decimal Unix seconds", ts)
	}
	if d := now.Unix() - sec; d > int64(tolerance/time.Second) || -d > int64(tolerance/time.Second) {
		return "", unauthorized(ErrStale, "timestamp %d is %ds from the receiver's clock; tolerance is %s", sec, d, tolerance)
	}
	if len(pub) != ed25519.PublicKeySize {
		return "", unauthorized(ErrBadSignature, "no valid public key to verify with")
	}
	msg := signedMessage(ts, body)
	for part := range strings.SplitSeq(sigs, ",") {
		part = strings.TrimSpace(part)
		enc, ok := strings.CutPrefix(part, sigPrefix)
		if !ok {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(sig) != ed25519.SignatureSize {
			continue
		}
		if ed25519.Verify(pub, msg, sig) {
			return enc, nil
		}
	}
	return "", unauthorized(ErrBadSignature, "signature does not verify with the sender's key")
}

// Verifier verifies signed webhook requests and refuses replays: a
// signature seen within the tolerance is refused the second time. It
// remembers at most Capacity signatures; when that many are still within
// the tolerance it refuses new requests rather than forget one (only the
// holder of the key can produce signatures, so this cannot be forced by a
// third party). It is safe for concurrent use.
type Verifier struct {
	pub       ed25519.PublicKey
	tolerance time.Duration
	capacity  int

	mu   sync.Mutex
	seen map[string]time.Time // signature → when it may be forgotten
	fifo []seenSig            // insertion order, for expiry
}

type seenSig struct {
	sig    string
	forget time.Time
}

// NewVerifier returns a verifier for pub that accepts timestamps within
// tolerance of its clock and remembers up to capacity recent signatures
// (at least 1).
func NewVerifier(pub ed25519.PublicKey, tolerance time.Duration, capacity int) *Verifier {
	return &Verifier{pub: pub, tolerance: tolerance, capacity: max(capacity, 1), seen: make(map[string]time.Time)}
}

// Verify checks a request as [Verify] does, then refuses it with
// ErrReplay if its signature was seen within the tolerance.
func (v *Verifier) Verify(h http.Header, body []byte, now time.Time) error {
	sig, err := Verify(v.pub, h, body, now, v.tolerance)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	// Forget signatures whose timestamps can no longer pass Verify.
	n := 0
	for n < len(v.fifo) && !v.fifo[n].forget.After(now) {
		delete(v.seen, v.fifo[n].sig)
		n++
	}
	v.fifo = v.fifo[n:]
	if _, ok := v.seen[sig]; ok {
		return unauthorized(ErrReplay, "request replays a signature seen within the last %s", 2*v.tolerance)
	}
	if len(v.seen) >= v.capacity {
		return &entente.Error{Code: entente.ERATELIMIT, Message: "too many recent webhook requests", Err: ErrReplayFull}
	}
	// A timestamp accepted now is accepted until now+2·tolerance at the
	// latest (it may be tolerance ahead of the clock).
	forget := now.Add(2*v.tolerance + time.Second)
	v.seen[sig] = forget
	v.fifo = append(v.fifo, seenSig{sig: sig, forget: forget})
	return nil
}
