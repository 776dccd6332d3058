package nodekey_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/nodekey"
	"github.com/entente-cti/entente/internal/pin"
)

func TestEnsureCreatesOnceAndKeeps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p, err := nodekey.Ensure(dir, "CERT-FR")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Created {
		t.Error("Created is false for a new pair")
	}
	if _, err := pin.Parse(p.Fingerprint); err != nil {
		t.Errorf("fingerprint %q: %v", p.Fingerprint, err)
	}
	if got := pin.Of(p.Cert.Leaf.RawSubjectPublicKeyInfo); got != p.Fingerprint {
		t.Errorf("fingerprint %s is not the certificate key's %s", p.Fingerprint, got)
	}
	if !strings.Contains(p.Cert.Leaf.Subject.CommonName, "CERT-FR") {
		t.Errorf("subject %q does not name the organisation", p.Cert.Leaf.Subject)
	}
	keyPath, _ := nodekey.Paths(dir)
	st, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	again, err := nodekey.Ensure(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	if again.Created || again.Fingerprint != p.Fingerprint {
		t.Errorf("second Ensure made a new key (%s, created %t), want the first %s", again.Fingerprint, again.Created, p.Fingerprint)
	}
	// The pair serves TLS.
	if _, err := tls.X509KeyPair(mustRead(t, filepath.Join(dir, nodekey.CertFile)), mustRead(t, keyPath)); err != nil {
		t.Error(err)
	}
	if len(p.ServerConfig().Certificates) != 1 {
		t.Error("server config has no certificate")
	}
}

func TestEnsureRefusesHalfAPair(t *testing.T) {
	dir := t.TempDir()
	if _, err := nodekey.Ensure(dir, "x"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, nodekey.CertFile)); err != nil {
		t.Fatal(err)
	}
	_, err := nodekey.Ensure(dir, "x")
	if err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("Ensure with a key and no certificate: %v, want an error saying the pair is incomplete", err)
	}
	if _, err := os.Stat(filepath.Join(dir, nodekey.KeyFile)); err != nil {
		t.Errorf("the key was removed: %v", err)
	}
}

func TestLoadCorrupt(t *testing.T) {
	dir := t.TempDir()
	if _, err := nodekey.Ensure(dir, "x"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, nodekey.CertFile), []byte("not PEM"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := nodekey.Load(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Load of a corrupt pair: %v, want an error naming the directory", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
