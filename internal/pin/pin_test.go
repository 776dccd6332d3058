package pin_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/pin"
)

func TestOfMatchesSHA256(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	want := "SHA256:" + strings.TrimRight(base64.StdEncoding.EncodeToString(sum[:]), "=")
	got := pin.Of(spki)
	if got != want {
		t.Fatalf("Of = %s, want %s", got, want)
	}
	if !pin.Match(got, spki) {
		t.Error("a key does not match its own fingerprint")
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ospki, _ := x509.MarshalPKIXPublicKey(&other.PublicKey)
	if pin.Match(got, ospki) {
		t.Error("another key matches")
	}
	if p, err := pin.Parse(got); err != nil || p != got {
		t.Errorf("Parse(Of) = %q, %v", p, err)
	}
}

func TestParse(t *testing.T) {
	const good = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU" // SHA-256 of nothing
	tests := []struct {
		in, want, err string
	}{
		{in: good, want: good},
		{in: good + "=", want: good},
		{in: "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", err: `"sha256" fingerprints are not supported`},
		{in: "MD5:12:34", err: `"MD5" fingerprints are not supported`},
		{in: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", err: "want SHA256: followed by"},
		{in: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hS", err: "30 bytes after SHA256:, a SHA-256 has 32"},
		{in: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU47DEQ", err: "36 bytes"},
		{in: "SHA256:!!!!", err: "not base64"},
		{in: "SHA256:", err: "0 bytes"},
		{in: "", err: "want SHA256:"},
	}
	for _, tc := range tests {
		got, err := pin.Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestMismatchError(t *testing.T) {
	e := &pin.MismatchError{Want: "SHA256:a", Got: "SHA256:b"}
	if msg := e.Error(); !strings.Contains(msg, "SHA256:a") || !strings.Contains(msg, "SHA256:b") || !strings.Contains(msg, "refused") {
		t.Errorf("message %q names neither key or the refusal", msg)
	}
}

// FuzzParse checks that Parse never panics and that what it accepts is
// canonical: parsing it again gives it back.
func FuzzParse(f *testing.F) {
	f.Add("SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU")
	f.Add("SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU==")
	f.Add("MD5:00")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := pin.Parse(s)
		if err != nil {
			return
		}
		again, err := pin.Parse(p)
		if err != nil || again != p {
			t.Fatalf("Parse(%q) = %q, which parses to %q, %v", s, p, again, err)
		}
	})
}
