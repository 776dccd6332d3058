package taxiiclient

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"

	"github.com/entente-cti/entente/internal/pin"
)

// PinnedTLS returns a TLS client configuration that accepts one server
// key only: the one whose fingerprint is want (see package pin), whoever
// signed the certificate that carries it and whatever names it holds.
// This is how a node trusts a peer whose key its administrator was given
// out of band. onMismatch, when not nil, is called with each refusal.
// A refused handshake fails with a *pin.MismatchError, which the client
// never retries.
func PinnedTLS(want string, onMismatch func(*pin.MismatchError)) (*tls.Config, error) {
	want, err := pin.Parse(want)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain and names are not verified: the pin replaces them.
		// VerifyConnection runs on every handshake, resumed ones too.
		InsecureSkipVerify: true, //nolint:gosec // verified by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &pin.MismatchError{Want: want, Got: "none (no certificate)"}
			}
			spki := cs.PeerCertificates[0].RawSubjectPublicKeyInfo
			if pin.Match(want, spki) {
				return nil
			}
			e := &pin.MismatchError{Want: want, Got: pin.Of(spki)}
			if onMismatch != nil {
				onMismatch(e)
			}
			return e
		},
	}, nil
}

// HTTPFor returns the HTTP client that reaches a peer pinned to the
// fingerprint pinned: base's transport (a default one when base or its
// transport is nil) with [PinnedTLS], and redirects kept on https. With
// no pin it returns base. The error says why a pin cannot be used (a
// malformed pin, or a base whose transport is not an *http.Transport).
func HTTPFor(base *http.Client, pinned string, onMismatch func(*pin.MismatchError)) (*http.Client, error) {
	if pinned == "" {
		return base, nil
	}
	tc, err := PinnedTLS(pinned, onMismatch)
	if err != nil {
		return nil, err
	}
	var tr *http.Transport
	switch {
	case base == nil || base.Transport == nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	default:
		t, ok := base.Transport.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("pin %s: the HTTP client's transport is a %T, which cannot be pinned", pinned, base.Transport)
		}
		tr = t.Clone()
	}
	tr.TLSClientConfig = tc
	hc := &http.Client{Transport: tr, CheckRedirect: httpsOnly}
	if base != nil {
		hc.Jar, hc.Timeout = base.Jar, base.Timeout
	}
	return hc, nil
}

// errDowngrade refuses a redirect that would leave TLS.
var errDowngrade = errors.New("a pinned peer redirected to a URL that is not https")

// httpsOnly follows redirects (at most 10) that stay on https.
func httpsOnly(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme != "https" {
		return errDowngrade
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}
