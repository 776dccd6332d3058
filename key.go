package entente

import "time"

// Key is an API key as the node stores it: only a hash of the secret is
// kept; the secret itself is shown once, when the key is created.
type Key struct {
	// ID is a short public identifier of the key (safe to log).
	ID string `json:"id"`
	// Hash is the SHA-256 of the secret.
	Hash []byte `json:"-"`
	// Name is a label chosen by the admin who created the key.
	Name string `json:"name"`
	// Org is the STIX identity id of the organisation the key belongs to.
	Org     string    `json:"org"`
	Role    Role      `json:"role"`
	Created time.Time `json:"created"`
	// Revoked is set when the key was revoked; a revoked key is refused.
	Revoked *time.Time `json:"revoked,omitempty"`
}
