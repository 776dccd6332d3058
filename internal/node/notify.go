package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/entente-cti/entente"
)

// settingSigningKey is the setting that holds the seed of the node's
// Ed25519 signing key (base64). It is a secret: never log it.
const settingSigningKey = "node.signing_key"

// SigningKey returns the node's Ed25519 signing key, generating and
// storing it the first time.
func (s *Service) SigningKey(ctx context.Context) (ed25519.PrivateKey, error) {
	b, err := s.st.Setting(ctx, settingSigningKey)
	if err == nil {
		seed, err := base64.StdEncoding.DecodeString(string(b))
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("setting %s does not hold an Ed25519 seed", settingSigningKey)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if entente.ErrorCode(err) != entente.ENOTFOUND {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	if err := s.st.PutSetting(ctx, settingSigningKey, []byte(base64.StdEncoding.EncodeToString(seed))); err != nil {
		return nil, fmt.Errorf("store signing key: %w", err)
	}
	s.log.InfoContext(ctx, "node signing key generated")
	return ed25519.NewKeyFromSeed(seed), nil
}

// PublicKey returns the public half of the node's signing key, which
// webhook receivers verify signatures with.
func (s *Service) PublicKey(ctx context.Context) (ed25519.PublicKey, error) {
	k, err := s.SigningKey(ctx)
	if err != nil {
		return nil, err
	}
	return k.Public().(ed25519.PublicKey), nil
}
