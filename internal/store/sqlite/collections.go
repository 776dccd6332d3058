package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

const collectionColumns = `id, alias, title, description, default_marking, read_roles, write_roles, created`

// CreateCollection adds a collection. ECONFLICT if its ID or alias is
// already the ID or alias of another collection. A zero Created is set to
// the current time.
func (s *Store) CreateCollection(ctx context.Context, c entente.Collection) error {
	if c.ID == "" {
		return entente.Errorf(entente.EINVALID, "collection id is required")
	}
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	created, ok := store.UnixNano(c.Created)
	if !ok {
		return entente.Errorf(entente.EINVALID, "collection %s: created is out of range", c.ID)
	}
	read, write, err := encodeRoles(c)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		names := []string{c.ID}
		if c.Alias != "" {
			names = append(names, c.Alias)
		}
		for _, n := range names {
			var taken int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM collections WHERE id = ? OR alias = ?`, n, n).Scan(&taken); err != nil {
				return err
			}
			if taken > 0 {
				return entente.Errorf(entente.ECONFLICT, "collection id or alias %q is already taken", n)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO collections (`+collectionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, nullString(c.Alias), c.Title, c.Description, c.DefaultMarking, read, write, created)
		return err
	})
	if err != nil {
		return fmt.Errorf("create collection %s: %w", c.ID, err)
	}
	return nil
}

// UpdateCollection replaces a collection's title, description, default
// marking and permissions. ENOTFOUND if it does not exist.
func (s *Store) UpdateCollection(ctx context.Context, c entente.Collection) error {
	read, write, err := encodeRoles(c)
	if err != nil {
		return err
	}
	res, err := s.execWrite(ctx, `UPDATE collections SET title = ?, description = ?, default_marking = ?, read_roles = ?, write_roles = ? WHERE id = ?`,
		c.Title, c.Description, c.DefaultMarking, read, write, c.ID)
	if err != nil {
		return fmt.Errorf("update collection %s: %w", c.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return entente.Errorf(entente.ENOTFOUND, "collection %q not found", c.ID)
	}
	return nil
}

// Collection returns one collection by ID or alias. ENOTFOUND if none.
func (s *Store) Collection(ctx context.Context, idOrAlias string) (entente.Collection, error) {
	row := s.r.collection.QueryRowContext(ctx, idOrAlias)
	c, err := scanCollection(row)
	if errors.Is(err, sql.ErrNoRows) {
		return entente.Collection{}, entente.Errorf(entente.ENOTFOUND, "collection %q not found", idOrAlias)
	}
	if err != nil {
		return entente.Collection{}, fmt.Errorf("get collection %s: %w", idOrAlias, err)
	}
	return c, nil
}

// Collections lists all collections, ordered by creation.
func (s *Store) Collections(ctx context.Context) ([]entente.Collection, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+collectionColumns+` FROM collections ORDER BY created, seq`)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	defer rows.Close()
	var cs []entente.Collection
	for rows.Next() {
		c, err := scanCollection(rows)
		if err != nil {
			return nil, fmt.Errorf("list collections: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	return cs, nil
}

// collectionSeq returns the internal number of the collection with the
// given ID or alias, and its ID. ENOTFOUND if none.
func collectionSeq(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, idOrAlias string) (seq int64, id string, err error) {
	return scanCollectionSeq(q.QueryRowContext(ctx, `SELECT seq, id`+collectionSQL, idOrAlias), idOrAlias)
}

// readCollectionSeq is collectionSeq on the read pool, through its
// prepared statement (every read of objects asks).
func (s *Store) readCollectionSeq(ctx context.Context, idOrAlias string) (seq int64, id string, err error) {
	return scanCollectionSeq(s.r.collectionSeq.QueryRowContext(ctx, idOrAlias), idOrAlias)
}

// scanCollectionSeq reads a collection's seq and id from row.
func scanCollectionSeq(row *sql.Row, idOrAlias string) (seq int64, id string, err error) {
	err = row.Scan(&seq, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", entente.Errorf(entente.ENOTFOUND, "collection %q not found", idOrAlias)
	}
	if err != nil {
		return 0, "", fmt.Errorf("find collection %s: %w", idOrAlias, err)
	}
	return seq, id, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanCollection(r scanner) (entente.Collection, error) {
	var (
		c           entente.Collection
		alias       sql.NullString
		read, write string
		created     int64
	)
	if err := r.Scan(&c.ID, &alias, &c.Title, &c.Description, &c.DefaultMarking, &read, &write, &created); err != nil {
		return c, err
	}
	c.Alias = alias.String
	c.Created = store.FromUnixNano(created)
	if err := json.Unmarshal([]byte(read), &c.ReadRoles); err != nil {
		return c, fmt.Errorf("collection %s: read_roles: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(write), &c.WriteRoles); err != nil {
		return c, fmt.Errorf("collection %s: write_roles: %w", c.ID, err)
	}
	if len(c.ReadRoles) == 0 {
		c.ReadRoles = nil
	}
	if len(c.WriteRoles) == 0 {
		c.WriteRoles = nil
	}
	return c, nil
}

func encodeRoles(c entente.Collection) (read, write string, err error) {
	r, err := json.Marshal(nonNil(c.ReadRoles))
	if err != nil {
		return "", "", fmt.Errorf("collection %s: read_roles: %w", c.ID, err)
	}
	w, err := json.Marshal(nonNil(c.WriteRoles))
	if err != nil {
		return "", "", fmt.Errorf("collection %s: write_roles: %w", c.ID, err)
	}
	return string(r), string(w), nil
}

func nonNil(r []entente.Role) []entente.Role {
	if r == nil {
		return []entente.Role{}
	}
	return r
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
