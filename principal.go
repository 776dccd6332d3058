package entente

import "context"

// Role is what a key may do on its node.
type Role string

// The roles a key can have.
const (
	// RoleAdmin manages the node: keys, collections, partners, agreements.
	RoleAdmin Role = "admin"
	// RoleAnalyst reads everything on the node and writes intelligence.
	RoleAnalyst Role = "analyst"
	// RolePartner is another organisation; it sees only what its
	// agreement allows.
	RolePartner Role = "partner"
	// RoleSensor is a matcher or enforcement point: it reads indicators
	// and compiled snapshots and reports sightings.
	RoleSensor Role = "sensor"
)

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleAnalyst, RolePartner, RoleSensor:
		return true
	}
	return false
}

// Principal is the authenticated caller of a request.
type Principal struct {
	// KeyID identifies the API key used (never the key itself).
	KeyID string
	// Org is the STIX identity id of the organisation the key belongs to.
	Org string
	// Role is the key's role.
	Role Role
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal in ctx, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
