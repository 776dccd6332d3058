// Package pin is the fingerprint of a public key by which a node's peers
// pin it: "SHA256:" followed by the unpadded standard base64 of the
// SHA-256 of the key's DER SubjectPublicKeyInfo (the form OpenSSH uses
// for its key fingerprints). 'entente init' prints the node's, an
// administrator gives it to the peer's administrator out of band, and
// 'peer add --pin' records it: the TLS client then accepts that key
// alone.
package pin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
)

// Prefix starts every fingerprint.
const Prefix = "SHA256:"

// Of returns the fingerprint of a DER SubjectPublicKeyInfo (an
// x509.Certificate's RawSubjectPublicKeyInfo).
func Of(spki []byte) string {
	sum := sha256.Sum256(spki)
	return Prefix + base64.RawStdEncoding.EncodeToString(sum[:])
}

// Parse checks that s is a fingerprint and returns it in canonical form
// (the padding some tools add removed). The error says what is wrong.
func Parse(s string) (string, error) {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		if i := strings.IndexByte(s, ':'); i > 0 && i < 10 {
			return "", fmt.Errorf("pin %q: %q fingerprints are not supported, want %s…", s, s[:i], Prefix)
		}
		return "", fmt.Errorf("pin %q: want %s followed by the base64 SHA-256 of the peer's public key (as 'entente init' prints it)", s, Prefix)
	}
	rest = strings.TrimRight(rest, "=")
	sum, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("pin %q: the part after %s is not base64: %v", s, Prefix, err)
	}
	if len(sum) != sha256.Size {
		return "", fmt.Errorf("pin %q: %d bytes after %s, a SHA-256 has %d", s, len(sum), Prefix, sha256.Size)
	}
	return Prefix + base64.RawStdEncoding.EncodeToString(sum), nil
}

// Match reports whether spki has the fingerprint want (canonical form),
// in constant time.
func Match(want string, spki []byte) bool {
	return subtle.ConstantTimeCompare([]byte(want), []byte(Of(spki))) == 1
}

// MismatchError is a peer that presented another key than the one
// pinned: the connection is refused.
type MismatchError struct {
	// Want is the pinned fingerprint; Got the presented key's.
	Want, Got string
}

// Error says which key was presented and which was pinned.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("the peer presented TLS key %s, not the pinned %s: connection refused", e.Got, e.Want)
}
