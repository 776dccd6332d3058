package node

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/auth"
)

// Authenticate returns the principal of an API key. A key that is empty,
// unknown or revoked is EUNAUTHORIZED; the error never contains the key.
func (s *Service) Authenticate(ctx context.Context, key string) (entente.Principal, error) {
	if key == "" {
		return entente.Principal{}, entente.Errorf(entente.EUNAUTHORIZED, "no API key was given")
	}
	hash := auth.Hash(key)
	now := s.now()
	if s.cfg.KeyCacheTTL > 0 {
		s.mu.Lock()
		c, ok := s.keys[string(hash)]
		s.mu.Unlock()
		if ok && now.Before(c.expires) {
			return c.p, nil
		}
	}
	k, err := s.st.KeyByHash(ctx, hash)
	switch {
	case entente.ErrorCode(err) == entente.ENOTFOUND:
		return entente.Principal{}, entente.Errorf(entente.EUNAUTHORIZED, "the API key is not valid")
	case err != nil:
		return entente.Principal{}, fmt.Errorf("authenticate key %s: %w", auth.IDOf(key), err)
	case k.Revoked != nil:
		return entente.Principal{}, entente.Errorf(entente.EUNAUTHORIZED, "the API key is not valid")
	}
	p := entente.Principal{KeyID: k.ID, Org: k.Org, Role: k.Role}
	if s.cfg.KeyCacheTTL > 0 {
		s.mu.Lock()
		if len(s.keys) >= maxKeyCache {
			clear(s.keys)
		}
		s.keys[string(hash)] = cachedKey{p: p, expires: now.Add(s.cfg.KeyCacheTTL)}
		s.mu.Unlock()
	}
	return p, nil
}

// NewKey describes a key to create.
type NewKey struct {
	// Name is a label for people.
	Name string `json:"name"`
	// Org is the STIX identity id of the key's organisation; the node's
	// own when empty.
	Org  string       `json:"org"`
	Role entente.Role `json:"role"`
}

// CreateKey creates an API key (admin only) and returns its secret, which
// is shown this once and never stored, with the stored record.
func (s *Service) CreateKey(ctx context.Context, p entente.Principal, nk NewKey) (secret string, k entente.Key, err error) {
	if err := requireAdmin(p, "creating keys"); err != nil {
		return "", entente.Key{}, err
	}
	if !nk.Role.Valid() {
		return "", entente.Key{}, entente.Errorf(entente.EINVALID, "role %q is not one of admin, analyst, partner, sensor", nk.Role)
	}
	if nk.Org == "" {
		nk.Org = s.cfg.Org
	}
	if nk.Org != "" && !strings.HasPrefix(nk.Org, "identity--") {
		return "", entente.Key{}, entente.Errorf(entente.EINVALID, "org %q is not a STIX identity id (identity--UUID)", nk.Org)
	}
	if len(nk.Name) > 200 {
		return "", entente.Key{}, entente.Errorf(entente.EINVALID, "name is longer than 200 characters")
	}
	secret, id, hash := auth.NewKey()
	k = entente.Key{ID: id, Hash: hash, Name: nk.Name, Org: nk.Org, Role: nk.Role, Created: s.now()}
	if err := s.st.CreateKey(ctx, k); err != nil {
		return "", entente.Key{}, fmt.Errorf("create key: %w", err)
	}
	s.log.InfoContext(ctx, "key created", "key_id", id, "role", nk.Role, "org", nk.Org, "by", p.KeyID)
	if err := s.auditAdmin(ctx, p, "key.create", nk.Org, fmt.Sprintf("key %s role %s name %q", id, nk.Role, nk.Name), nil); err != nil {
		return "", entente.Key{}, err
	}
	return secret, k, nil
}

// Keys lists every key (admin only); secrets are never kept.
func (s *Service) Keys(ctx context.Context, p entente.Principal) ([]entente.Key, error) {
	if err := requireAdmin(p, "listing keys"); err != nil {
		return nil, err
	}
	ks, err := s.st.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return ks, nil
}

// RevokeKey revokes a key (admin only); it is refused from then on.
// ENOTFOUND if there is no such key.
func (s *Service) RevokeKey(ctx context.Context, p entente.Principal, id string) error {
	if err := requireAdmin(p, "revoking keys"); err != nil {
		return err
	}
	if err := s.st.RevokeKey(ctx, id, s.now()); err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			return entente.Errorf(entente.ENOTFOUND, "there is no key %q", id)
		}
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	s.mu.Lock()
	maps.DeleteFunc(s.keys, func(_ string, c cachedKey) bool { return c.p.KeyID == id })
	s.mu.Unlock()
	s.log.InfoContext(ctx, "key revoked", "key_id", id, "by", p.KeyID)
	// What the key was served may not be served again from a cache.
	if err := s.termsChanged(ctx, "key "+id+" revoked"); err != nil {
		return err
	}
	return s.auditAdmin(ctx, p, "key.revoke", "", "key "+id, nil)
}
