package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
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
	defer s.colls.clear()
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
	defer s.colls.clear()
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
	c, _, err := s.readCollection(ctx, idOrAlias)
	return c, err
}

// readCollection returns one collection by ID or alias, and its seq, with
// the errors of Collection.
//
// A collection found is kept in memory (see collectionCache): every TAXII
// request looks its collection up, a POST twice, and each lookup was a
// read of the database, whose pages the readers' caches drop at every
// commit (3 % of the node's CPU under TAXII POSTs).
func (s *Store) readCollection(ctx context.Context, idOrAlias string) (entente.Collection, int64, error) {
	if c, seq, ok := s.colls.get(idOrAlias); ok {
		return c, seq, nil
	}
	gen := s.colls.generation()
	var seq int64
	c, err := scanCollection(s.r.collection.QueryRowContext(ctx, idOrAlias), &seq)
	if errors.Is(err, sql.ErrNoRows) {
		return entente.Collection{}, 0, entente.Errorf(entente.ENOTFOUND, "collection %q not found", idOrAlias)
	}
	if err != nil {
		return entente.Collection{}, 0, fmt.Errorf("get collection %s: %w", idOrAlias, err)
	}
	s.colls.put(gen, idOrAlias, c, seq)
	return c, seq, nil
}

// collectionCache holds the collections found by ID or alias. Collections
// are never deleted, and this store's CreateCollection and
// UpdateCollection are the only writes to them (a collection created
// offline by another process is simply not in the cache yet): each of
// them empties the cache, and a lookup that read the database before an
// emptying does not keep what it read.
type collectionCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]cachedCollection
}

type cachedCollection struct {
	c   entente.Collection
	seq int64
}

// maxCachedCollections bounds the names kept (a client may ask for any).
const maxCachedCollections = 1024

func (cc *collectionCache) get(idOrAlias string) (entente.Collection, int64, bool) {
	cc.mu.Lock()
	e, ok := cc.m[idOrAlias]
	cc.mu.Unlock()
	if !ok {
		return entente.Collection{}, 0, false
	}
	// The caller may change the role lists it is given.
	e.c.ReadRoles, e.c.WriteRoles = slices.Clone(e.c.ReadRoles), slices.Clone(e.c.WriteRoles)
	return e.c, e.seq, true
}

// seq returns the seq and ID of a collection kept, without copying the
// rest of it (the read of every page asks).
func (cc *collectionCache) seq(idOrAlias string) (int64, string, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.m[idOrAlias]
	return e.seq, e.c.ID, ok
}

// generation returns a number that changes whenever the cache is emptied.
func (cc *collectionCache) generation() uint64 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.gen
}

// put keeps c, read under the cache's generation gen, unless the cache
// was emptied since.
func (cc *collectionCache) put(gen uint64, idOrAlias string, c entente.Collection, seq int64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if gen != cc.gen {
		return
	}
	if cc.m == nil || len(cc.m) >= maxCachedCollections {
		cc.m = make(map[string]cachedCollection)
	}
	c.ReadRoles, c.WriteRoles = slices.Clone(c.ReadRoles), slices.Clone(c.WriteRoles)
	cc.m[idOrAlias] = cachedCollection{c: c, seq: seq}
}

// clear empties the cache; a write to the collections calls it once it
// is committed, or has failed.
func (cc *collectionCache) clear() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	cc.m = nil
}

// QueryCollection looks up the collection q.Collection names, lets check
// decide on it, and reads the page of q from it; see
// [store.CollectionPager]. Its one lookup gives both what check needs and
// the collection's seq, which QueryObjects would look up again.
func (s *Store) QueryCollection(ctx context.Context, q entente.ObjectQuery, check func(entente.Collection, error) error) (entente.Collection, entente.Page, error) {
	c, seq, err := s.readCollection(ctx, q.Collection)
	if err := check(c, err); err != nil {
		return c, entente.Page{}, err
	}
	if err != nil {
		// check let a failed lookup through: the caller's mistake, not
		// a page to read.
		return c, entente.Page{}, fmt.Errorf("query collection %s: check passed a failed lookup: %w", q.Collection, err)
	}
	q.Collection = c.ID
	page, err := s.queryPage(ctx, seq, c.ID, q, nil)
	return c, page, err
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
		c, err := scanCollection(rows, nil)
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

// readCollectionSeq returns the seq and ID of the collection with the
// given ID or alias (every read of objects asks), from the collections
// the store keeps (readCollection). ENOTFOUND if none.
func (s *Store) readCollectionSeq(ctx context.Context, idOrAlias string) (seq int64, id string, err error) {
	if seq, id, ok := s.colls.seq(idOrAlias); ok {
		return seq, id, nil
	}
	c, seq, err := s.readCollection(ctx, idOrAlias)
	return seq, c.ID, err
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

// scanCollection reads a row of collectionColumns, preceded by the
// collection's seq when seq is not nil.
func scanCollection(r scanner, seq *int64) (entente.Collection, error) {
	var (
		c           entente.Collection
		alias       sql.NullString
		read, write []byte
		created     int64
	)
	dest := []any{&c.ID, &alias, &c.Title, &c.Description, &c.DefaultMarking, &read, &write, &created}
	if seq != nil {
		dest = append([]any{seq}, dest...)
	}
	if err := r.Scan(dest...); err != nil {
		return c, err
	}
	c.Alias = alias.String
	c.Created = store.FromUnixNano(created)
	var err error
	if c.ReadRoles, err = decodeRoles(read); err != nil {
		return c, fmt.Errorf("collection %s: read_roles: %w", c.ID, err)
	}
	if c.WriteRoles, err = decodeRoles(write); err != nil {
		return c, fmt.Errorf("collection %s: write_roles: %w", c.ID, err)
	}
	return c, nil
}

// decodeRoles decodes a JSON list of roles as stored by encodeRoles: nil
// when empty. The common lists (every one written by encodeRoles) are
// read without the reflection of encoding/json, which a collection
// lookup on every request would otherwise pay twice.
func decodeRoles(b []byte) ([]entente.Role, error) {
	if rs, ok := scanRoles(b); ok {
		return rs, nil
	}
	var rs []entente.Role
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, nil
	}
	return rs, nil
}

// scanRoles reads b when it is a compact JSON array of plain strings
// (no escapes, no spaces), as json.Marshal writes a []entente.Role;
// ok is false for anything else.
func scanRoles(b []byte) (rs []entente.Role, ok bool) {
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return nil, false
	}
	b = b[1 : len(b)-1]
	for len(b) > 0 {
		if b[0] != '"' {
			return nil, false
		}
		end := 1
		for end < len(b) && b[end] != '"' {
			if c := b[end]; c == '\\' || c < 0x20 || c >= 0x80 {
				return nil, false
			}
			end++
		}
		if end == len(b) {
			return nil, false
		}
		rs = append(rs, entente.Role(b[1:end]))
		b = b[end+1:]
		if len(b) > 0 {
			if b[0] != ',' || len(b) == 1 {
				return nil, false
			}
			b = b[1:]
		}
	}
	return rs, true
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
