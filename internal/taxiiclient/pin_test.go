package taxiiclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/entente-cti/entente/internal/federation"
	"github.com/entente-cti/entente/internal/pin"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

// serverPin is the fingerprint of the fake server's TLS key.
func serverPin(t *testing.T, f *fakeServer) string {
	t.Helper()
	return pin.Of(f.srv.Certificate().RawSubjectPublicKeyInfo)
}

func otherPin(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return pin.Of(spki)
}

// TestDialerPinnedPeer pulls from and pushes to an HTTPS peer whose
// certificate no system root signed: with its key pinned the exchange
// succeeds, with another key pinned every request is refused at the
// handshake, never retried, and reported to the mismatch hook.
func TestDialerPinnedPeer(t *testing.T) {
	f := newFakeServerTLS(t, 30, true)
	var mismatches atomic.Int64
	dial := taxiiclient.Dialer(nil, taxiiclient.Limits{MaxRetries: 3}, taxiiclient.OnKeyMismatch(func(e *pin.MismatchError) {
		mismatches.Add(1)
		if e.Got != serverPin(t, f) {
			t.Errorf("mismatch reports key %s, the server's is %s", e.Got, serverPin(t, f))
		}
	}))
	peer := federation.Peer{ID: "p", APIRoot: f.srv.URL + "/api1/", Token: "secret", Pin: serverPin(t, f)}
	n := 0
	if err := dial(peer).Pull(t.Context(), "c1", nil, func(p *federation.Pulled) error { n += len(p.Objects); return nil }); err != nil {
		t.Fatalf("pull from the pinned peer: %v", err)
	}
	if n != 30 {
		t.Errorf("pulled %d objects, want 30", n)
	}
	if ok, _, err := dial(peer).Push(t.Context(), "c1", []json.RawMessage{indicator(99)}); err != nil || ok != 1 {
		t.Errorf("push to the pinned peer: %d accepted, %v", ok, err)
	}
	if mismatches.Load() != 0 {
		t.Fatalf("%d mismatches with the right pin", mismatches.Load())
	}

	// Without a pin, the self-signed certificate is refused as usual.
	unpinned := peer
	unpinned.Pin = ""
	if err := taxiiclient.Dialer(nil, taxiiclient.Limits{MaxRetries: -1})(unpinned).Pull(t.Context(), "c1", nil, func(*federation.Pulled) error { return nil }); err == nil {
		t.Error("an unpinned client accepted a certificate no root signed")
	}

	wrong := peer
	wrong.Pin = otherPin(t)
	before := f.requests.Load()
	err := dial(wrong).Pull(t.Context(), "c1", nil, func(*federation.Pulled) error { return nil })
	var mm *pin.MismatchError
	if !errors.As(err, &mm) || mm.Want != wrong.Pin || mm.Got != serverPin(t, f) {
		t.Fatalf("pull with another pin: %v, want a *pin.MismatchError naming both keys", err)
	}
	if got := mismatches.Load(); got != 1 {
		t.Errorf("%d handshakes refused, want 1 (a mismatch is not retried)", got)
	}
	if f.requests.Load() != before {
		t.Errorf("the server saw %d requests from a client that refused its key", f.requests.Load()-before)
	}
	if _, _, err := dial(wrong).Push(context.Background(), "c1", []json.RawMessage{indicator(98)}); !errors.As(err, &mm) {
		t.Errorf("push with another pin: %v, want a *pin.MismatchError", err)
	}
}

func TestDialerRefusesPinOverHTTP(t *testing.T) {
	f := newFakeServer(t, 1)
	err := taxiiclient.Dialer(nil, taxiiclient.Limits{})(federation.Peer{ID: "p", APIRoot: f.srv.URL + "/api1/", Pin: otherPin(t)}).
		Pull(t.Context(), "c1", nil, func(*federation.Pulled) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "not an https URL") {
		t.Fatalf("pinned peer over http: %v, want a refusal", err)
	}
	if f.requests.Load() != 0 {
		t.Errorf("%d requests sent in clear to a pinned peer", f.requests.Load())
	}
}

func TestHTTPForMalformedPin(t *testing.T) {
	if _, err := taxiiclient.HTTPFor(nil, "MD5:00", nil); err == nil {
		t.Error("a malformed pin was accepted")
	}
	if hc, err := taxiiclient.HTTPFor(nil, "", nil); err != nil || hc != nil {
		t.Errorf("no pin: %v, %v; want the base client (nil)", hc, err)
	}
}
