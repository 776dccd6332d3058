package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

// collectionsLock is the transaction advisory lock key taken to create a
// collection.
const collectionsLock int64 = migrationLock + 1

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
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Serialise collection creation across replicas, so that the
		// id/alias cross-check below cannot race.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, collectionsLock); err != nil {
			return err
		}
		names := []string{c.ID}
		if c.Alias != "" {
			names = append(names, c.Alias)
		}
		var taken string
		err := tx.QueryRow(ctx, `SELECT n FROM unnest($1::text[]) AS n WHERE EXISTS (SELECT 1 FROM collections WHERE id = n OR alias = n) LIMIT 1`, names).Scan(&taken)
		if err == nil {
			return entente.Errorf(entente.ECONFLICT, "collection id or alias %q is already taken", taken)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO collections (`+collectionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			c.ID, nullString(c.Alias), c.Title, c.Description, c.DefaultMarking, roles(c.ReadRoles), roles(c.WriteRoles), created)
		return conflictOr(err, fmt.Sprintf("collection id or alias of %q is already taken", c.ID))
	})
	if err != nil {
		return fmt.Errorf("create collection %s: %w", c.ID, err)
	}
	return nil
}

// UpdateCollection replaces a collection's title, description, default
// marking and permissions. ENOTFOUND if it does not exist.
func (s *Store) UpdateCollection(ctx context.Context, c entente.Collection) error {
	tag, err := s.pool.Exec(ctx, `UPDATE collections SET title = $1, description = $2, default_marking = $3, read_roles = $4, write_roles = $5 WHERE id = $6`,
		c.Title, c.Description, c.DefaultMarking, roles(c.ReadRoles), roles(c.WriteRoles), c.ID)
	if err != nil {
		return fmt.Errorf("update collection %s: %w", c.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return entente.Errorf(entente.ENOTFOUND, "collection %q not found", c.ID)
	}
	return nil
}

// Collection returns one collection by ID or alias. ENOTFOUND if none.
func (s *Store) Collection(ctx context.Context, idOrAlias string) (entente.Collection, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+collectionColumns+` FROM collections WHERE id = $1 OR alias = $1 ORDER BY id = $1 DESC LIMIT 1`, idOrAlias)
	c, err := scanCollection(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return entente.Collection{}, entente.Errorf(entente.ENOTFOUND, "collection %q not found", idOrAlias)
	}
	if err != nil {
		return entente.Collection{}, fmt.Errorf("get collection %s: %w", idOrAlias, err)
	}
	return c, nil
}

// Collections lists all collections, ordered by creation.
func (s *Store) Collections(ctx context.Context) ([]entente.Collection, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+collectionColumns+` FROM collections ORDER BY created, seq`)
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

// querier is what pgx pools, connections and transactions share.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// collectionSeq returns the internal number and the ID of the collection
// with the given ID or alias; with lock, it locks the collection's row
// until the transaction ends. ENOTFOUND if none.
func collectionSeq(ctx context.Context, q querier, idOrAlias string, lock bool) (seq int64, id string, lastAdded int64, err error) {
	query := `SELECT seq, id, last_added FROM collections WHERE id = $1 OR alias = $1 ORDER BY id = $1 DESC LIMIT 1`
	if lock {
		query += ` FOR UPDATE`
	}
	err = q.QueryRow(ctx, query, idOrAlias).Scan(&seq, &id, &lastAdded)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", 0, entente.Errorf(entente.ENOTFOUND, "collection %q not found", idOrAlias)
	}
	if err != nil {
		return 0, "", 0, fmt.Errorf("find collection %s: %w", idOrAlias, err)
	}
	return seq, id, lastAdded, nil
}

func scanCollection(r pgx.Row) (entente.Collection, error) {
	var (
		c           entente.Collection
		alias       *string
		read, write []string
		created     int64
	)
	if err := r.Scan(&c.ID, &alias, &c.Title, &c.Description, &c.DefaultMarking, &read, &write, &created); err != nil {
		return c, err
	}
	if alias != nil {
		c.Alias = *alias
	}
	c.Created = store.FromUnixNano(created)
	c.ReadRoles, c.WriteRoles = toRoles(read), toRoles(write)
	return c, nil
}

func roles(rs []entente.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

func toRoles(ss []string) []entente.Role {
	if len(ss) == 0 {
		return nil
	}
	out := make([]entente.Role, len(ss))
	for i, s := range ss {
		out[i] = entente.Role(s)
	}
	return out
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
