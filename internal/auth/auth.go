// Package auth makes and checks API keys (the HTTP adapter reads them
// from requests). A key is 32 random bytes shown once to its owner as
// "ent_<id>_<secret>"; the node stores only its SHA-256, which is enough
// because the secret has 256 bits of entropy (no password stretching is
// needed against guessing).
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

const prefix = "ent_"

// NewKey returns a new random key: the secret to show once, its public id
// and the hash to store.
func NewKey() (secret, id string, hash []byte) {
	var idb [6]byte
	var sb [32]byte
	rand.Read(idb[:])
	rand.Read(sb[:])
	id = hex.EncodeToString(idb[:])
	secret = prefix + id + "_" + base64.RawURLEncoding.EncodeToString(sb[:])
	return secret, id, Hash(secret)
}

// Hash returns the SHA-256 of a key's secret, as stored.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// IDOf returns the public id embedded in a key, or "" if the key is not of
// the node's form. It is safe to log.
func IDOf(secret string) string {
	rest, ok := strings.CutPrefix(secret, prefix)
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, "_")
	if !ok {
		return ""
	}
	return id
}
