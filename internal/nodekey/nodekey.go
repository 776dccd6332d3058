// Package nodekey is a node's own TLS key pair, kept in its data
// directory: an ECDSA P-256 private key (readable by its owner only) and
// a self-signed certificate for it. Peers do not trust the certificate's
// signature: they pin the key's fingerprint (package pin), which the
// node's administrator gives them out of band. 'entente init' creates
// the pair and 'entente serve --tls' serves HTTPS with it.
//
// The private key is never logged or printed; only its public
// fingerprint is.
package nodekey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/entente-cti/entente/internal/pin"
)

// File names inside the data directory.
const (
	KeyFile  = "node-key.pem"
	CertFile = "node-cert.pem"
)

// validity is how long the self-signed certificate is valid. Peers pin
// the key, not the certificate, so its expiry only matters to clients
// that do not pin (they must be told to trust it anyway).
const validity = 20 * 365 * 24 * time.Hour

// Pair is a node's key pair.
type Pair struct {
	// Cert is the certificate and private key, for a tls.Config.
	Cert tls.Certificate
	// Fingerprint is the key's pin (see package pin).
	Fingerprint string
	// Created is true when Ensure made the pair now.
	Created bool
}

// Paths returns the key and certificate files of data directory dir.
func Paths(dir string) (key, cert string) {
	return filepath.Join(dir, KeyFile), filepath.Join(dir, CertFile)
}

// Load reads the key pair of data directory dir. The error wraps
// fs.ErrNotExist when there is none.
func Load(dir string) (*Pair, error) {
	keyPath, certPath := Paths(dir)
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read node key: %w", err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read node certificate: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node key pair in %s: %w", dir, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("node certificate %s: %w", certPath, err)
	}
	cert.Leaf = leaf
	return &Pair{Cert: cert, Fingerprint: pin.Of(leaf.RawSubjectPublicKeyInfo)}, nil
}

// Ensure loads the key pair of data directory dir, creating it first if
// there is none (for the organisation named org, which goes in the
// certificate's subject). A half-written pair (a key without its
// certificate) is an error, never overwritten.
func Ensure(dir, org string) (*Pair, error) {
	p, err := Load(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return p, err
	}
	keyPath, certPath := Paths(dir)
	_, kerr := os.Stat(keyPath)
	_, cerr := os.Stat(certPath)
	if kerr == nil || cerr == nil {
		return nil, fmt.Errorf("node key pair in %s is incomplete (%s or %s is missing); restore it from a backup, or remove both files to make a new one (peers must then pin the new key)", dir, KeyFile, CertFile)
	}
	if err := create(dir, org); err != nil {
		return nil, err
	}
	if p, err = Load(dir); err != nil {
		return nil, err
	}
	p.Created = true
	return p, nil
}

// create writes a new key pair in dir: the key first, both through
// temporary files renamed into place, so that a crash leaves either no
// pair or a whole one.
func create(dir, org string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create node key: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("create node key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("create node key: %w", err)
	}
	if org == "" {
		org = "Entente node"
	}
	now := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: org + " (Entente node)", Organization: []string{org}},
		NotBefore:    now,
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host, err := os.Hostname(); err == nil && host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create node certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("create node key: %w", err)
	}
	keyPath, certPath := Paths(dir)
	if err := writeAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeAtomic writes data to path through a temporary file, synced, then
// renamed.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ServerConfig returns a TLS server configuration that presents the
// pair's certificate.
func (p *Pair) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.Cert}, MinVersion: tls.VersionTLS12}
}
