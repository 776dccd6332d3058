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

// CreateKey stores an API key. ECONFLICT if its ID or hash is taken. A
// zero Created is set to the current time.
func (s *Store) CreateKey(ctx context.Context, k entente.Key) error {
	if k.ID == "" || len(k.Hash) == 0 {
		return entente.Errorf(entente.EINVALID, "key id and hash are required")
	}
	if k.Created.IsZero() {
		k.Created = time.Now()
	}
	created, ok := store.UnixNano(k.Created)
	if !ok {
		return entente.Errorf(entente.EINVALID, "key %s: created is out of range", k.ID)
	}
	var revoked *int64
	if k.Revoked != nil {
		n, ok := store.UnixNano(*k.Revoked)
		if !ok {
			return entente.Errorf(entente.EINVALID, "key %s: revoked is out of range", k.ID)
		}
		revoked = &n
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO keys (id, hash, name, org, role, created, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		k.ID, k.Hash, k.Name, k.Org, string(k.Role), created, revoked)
	if err != nil {
		return fmt.Errorf("create key %s: %w", k.ID, conflictOr(err, fmt.Sprintf("key %q: id or secret already exists", k.ID)))
	}
	return nil
}

const keyColumns = `id, hash, name, org, role, created, revoked`

// KeyByHash returns the key whose secret hashes to hash, revoked or not.
// ENOTFOUND if none.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (entente.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM keys WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return entente.Key{}, entente.Errorf(entente.ENOTFOUND, "no such key")
	}
	if err != nil {
		return entente.Key{}, fmt.Errorf("look up key: %w", err)
	}
	return k, nil
}

// Keys lists every key, ordered by creation.
func (s *Store) Keys(ctx context.Context) ([]entente.Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY created, seq`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var ks []entente.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return ks, nil
}

// RevokeKey marks a key revoked at time at. ENOTFOUND if no such key.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	n, ok := store.UnixNano(at)
	if !ok {
		return entente.Errorf(entente.EINVALID, "revocation time is out of range")
	}
	tag, err := s.pool.Exec(ctx, `UPDATE keys SET revoked = $1 WHERE id = $2`, n, id)
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return entente.Errorf(entente.ENOTFOUND, "key %q not found", id)
	}
	return nil
}

func scanKey(r pgx.Row) (entente.Key, error) {
	var (
		k       entente.Key
		role    string
		created int64
		revoked *int64
	)
	if err := r.Scan(&k.ID, &k.Hash, &k.Name, &k.Org, &role, &created, &revoked); err != nil {
		return k, err
	}
	k.Role = entente.Role(role)
	k.Created = store.FromUnixNano(created)
	if revoked != nil {
		t := store.FromUnixNano(*revoked)
		k.Revoked = &t
	}
	return k, nil
}

// putStatusSQL writes a status resource.
const putStatusSQL = `INSERT INTO statuses (id, body, updated) VALUES ($1, $2, $3)
	ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated = excluded.updated`

// PutStatus stores (or replaces) a TAXII status resource.
func (s *Store) PutStatus(ctx context.Context, id string, body []byte) error {
	_, err := s.pool.Exec(ctx, putStatusSQL, id, nonNilBytes(body), time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("put status %s: %w", id, err)
	}
	return nil
}

// Status returns a status resource stored by PutStatus. ENOTFOUND if none.
func (s *Store) Status(ctx context.Context, id string) ([]byte, error) {
	var body []byte
	err := s.pool.QueryRow(ctx, `SELECT body FROM statuses WHERE id = $1`, id).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, entente.Errorf(entente.ENOTFOUND, "status %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get status %s: %w", id, err)
	}
	return body, nil
}

// Setting returns a node setting's value. ENOTFOUND if unset.
func (s *Store) Setting(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, entente.Errorf(entente.ENOTFOUND, "setting %q is not set", name)
	}
	if err != nil {
		return nil, fmt.Errorf("get setting %s: %w", name, err)
	}
	return nonNilBytes(v), nil
}

// PutSetting sets a node setting.
func (s *Store) PutSetting(ctx context.Context, name string, value []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, nonNilBytes(value))
	if err != nil {
		return fmt.Errorf("put setting %s: %w", name, err)
	}
	return nil
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
