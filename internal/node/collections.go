package node

import (
	"context"
	"fmt"

	"github.com/entente-cti/entente"
	"github.com/google/uuid"
)

// CreateCollection creates a collection (admin only) and returns it as
// stored. ID defaults to a new UUID; ReadRoles and WriteRoles, when nil,
// default to the analyst role. EINVALID names the field at fault,
// ECONFLICT reports an ID or alias already taken.
func (s *Service) CreateCollection(ctx context.Context, p entente.Principal, c entente.Collection) (entente.Collection, error) {
	if err := requireAdmin(p, "creating collections"); err != nil {
		return entente.Collection{}, err
	}
	if c.ID == "" {
		c.ID = uuid.NewString()
	} else if u, err := uuid.Parse(c.ID); err != nil || u.String() != c.ID {
		return entente.Collection{}, entente.Errorf(entente.EINVALID, "id %q is not a lower-case UUID", c.ID)
	}
	if c.Title == "" {
		return entente.Collection{}, entente.Errorf(entente.EINVALID, "title is required")
	}
	if c.Alias != "" {
		if _, err := uuid.Parse(c.Alias); err == nil {
			return entente.Collection{}, entente.Errorf(entente.EINVALID, "alias %q must not be a UUID (it would be mistaken for an id)", c.Alias)
		}
		for _, r := range c.Alias {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
				return entente.Collection{}, entente.Errorf(entente.EINVALID, "alias %q may hold only a-z, 0-9, '-', '_' and '.'", c.Alias)
			}
		}
	}
	if c.ReadRoles == nil {
		c.ReadRoles = []entente.Role{entente.RoleAnalyst}
	}
	if c.WriteRoles == nil {
		c.WriteRoles = []entente.Role{entente.RoleAnalyst}
	}
	for _, rs := range [][]entente.Role{c.ReadRoles, c.WriteRoles} {
		for _, r := range rs {
			if !r.Valid() {
				return entente.Collection{}, entente.Errorf(entente.EINVALID, "role %q is not one of admin, analyst, partner, sensor", r)
			}
		}
	}
	c.Created = s.now()
	if err := s.st.CreateCollection(ctx, c); err != nil {
		if code := entente.ErrorCode(err); code == entente.ECONFLICT || code == entente.EINVALID {
			return entente.Collection{}, err
		}
		return entente.Collection{}, fmt.Errorf("create collection %s: %w", c.ID, err)
	}
	s.log.InfoContext(ctx, "collection created", "collection", c.ID, "alias", c.Alias, "by", p.KeyID)
	if err := s.auditAdmin(ctx, p, "collection.create", "", fmt.Sprintf("collection %s alias %q default marking %s read %v write %v",
		c.ID, c.Alias, c.DefaultMarking, c.ReadRoles, c.WriteRoles), nil); err != nil {
		return entente.Collection{}, err
	}
	return c, nil
}

// AllCollections lists every collection with its permissions (admin
// only).
func (s *Service) AllCollections(ctx context.Context, p entente.Principal) ([]entente.Collection, error) {
	if err := requireAdmin(p, "listing collections with their permissions"); err != nil {
		return nil, err
	}
	cs, err := s.st.Collections(ctx)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	return cs, nil
}

// Collections lists the collections p may read or write, in creation
// order.
func (s *Service) Collections(ctx context.Context, p entente.Principal) ([]entente.Collection, error) {
	cs, err := s.st.Collections(ctx)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	out := cs[:0]
	for _, c := range cs {
		if c.CanRead(p.Role) || c.CanWrite(p.Role) {
			out = append(out, c)
		}
	}
	return out, nil
}

// Collection returns the collection named by id or alias. ENOTFOUND if
// there is none; EFORBIDDEN if p may neither read nor write it.
func (s *Service) Collection(ctx context.Context, p entente.Principal, idOrAlias string) (entente.Collection, error) {
	c, err := s.collection(ctx, idOrAlias)
	if err != nil {
		return c, err
	}
	if !c.CanRead(p.Role) && !c.CanWrite(p.Role) {
		return entente.Collection{}, forbidden(p, "see", c)
	}
	return c, nil
}

// collection looks a collection up by id or alias.
func (s *Service) collection(ctx context.Context, idOrAlias string) (entente.Collection, error) {
	c, err := s.st.Collection(ctx, idOrAlias)
	if err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			return c, entente.Errorf(entente.ENOTFOUND, "there is no collection %q", idOrAlias)
		}
		return c, fmt.Errorf("look up collection %s: %w", idOrAlias, err)
	}
	return c, nil
}

func forbidden(p entente.Principal, what string, c entente.Collection) error {
	return entente.Errorf(entente.EFORBIDDEN, "a key of role %q may not %s collection %s", p.Role, what, c.ID)
}

// CheckWrite reports whether p may add objects to the collection named by
// id or alias: nil, ENOTFOUND or EFORBIDDEN. Adapters call it before
// reading a request body, so that a client that may not write does not
// get to upload; AddObjects checks again.
func (s *Service) CheckWrite(ctx context.Context, p entente.Principal, idOrAlias string) error {
	c, err := s.collection(ctx, idOrAlias)
	if err != nil {
		return err
	}
	if !c.CanWrite(p.Role) {
		return forbidden(p, "write to", c)
	}
	return nil
}
