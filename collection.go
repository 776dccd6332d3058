package entente

import (
	"slices"
	"time"
)

// Collection is a TAXII 2.1 collection: a set of STIX objects with its own
// read and write permissions and a default marking.
type Collection struct {
	// ID is the collection's TAXII identifier (a UUID).
	ID string `json:"id"`
	// Alias is an optional short name, unique on the node.
	Alias       string `json:"alias,omitempty"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	// DefaultMarking is the id of the marking-definition (TLP 2.0) that
	// applies to objects in this collection that carry no marking.
	DefaultMarking string `json:"default_marking,omitempty"`
	// ReadRoles and WriteRoles list the roles allowed to read and to add
	// or delete objects. Admins may always do both. Partners additionally
	// need an agreement that names the collection.
	ReadRoles  []Role    `json:"read_roles"`
	WriteRoles []Role    `json:"write_roles"`
	Created    time.Time `json:"created"`
}

// CanRead reports whether a principal of role r may read c.
func (c Collection) CanRead(r Role) bool {
	return r == RoleAdmin || slices.Contains(c.ReadRoles, r)
}

// CanWrite reports whether a principal of role r may write to c.
func (c Collection) CanWrite(r Role) bool {
	return r == RoleAdmin || slices.Contains(c.WriteRoles, r)
}
