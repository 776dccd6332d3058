package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
	var revoked sql.NullInt64
	if k.Revoked != nil {
		n, ok := store.UnixNano(*k.Revoked)
		if !ok {
			return entente.Errorf(entente.EINVALID, "key %s: revoked is out of range", k.ID)
		}
		revoked = sql.NullInt64{Int64: n, Valid: true}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var taken int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE id = ? OR hash = ?`, k.ID, k.Hash).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			return entente.Errorf(entente.ECONFLICT, "key %q: id or secret already exists", k.ID)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO keys (id, hash, name, org, role, created, revoked) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.Hash, k.Name, k.Org, string(k.Role), created, revoked)
		return err
	})
	if err != nil {
		return fmt.Errorf("create key %s: %w", k.ID, err)
	}
	return nil
}

const keyColumns = `id, hash, name, org, role, created, revoked`

// KeyByHash returns the key whose secret hashes to hash, revoked or not.
// ENOTFOUND if none.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (entente.Key, error) {
	k, err := scanKey(s.read.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return entente.Key{}, entente.Errorf(entente.ENOTFOUND, "no such key")
	}
	if err != nil {
		return entente.Key{}, fmt.Errorf("look up key: %w", err)
	}
	return k, nil
}

// Keys lists every key, ordered by creation.
func (s *Store) Keys(ctx context.Context) ([]entente.Key, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY created, seq`)
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
	res, err := s.execWrite(ctx, `UPDATE keys SET revoked = ? WHERE id = ?`, n, id)
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	if c, _ := res.RowsAffected(); c == 0 {
		return entente.Errorf(entente.ENOTFOUND, "key %q not found", id)
	}
	return nil
}

func scanKey(r scanner) (entente.Key, error) {
	var (
		k       entente.Key
		role    string
		created int64
		revoked sql.NullInt64
	)
	if err := r.Scan(&k.ID, &k.Hash, &k.Name, &k.Org, &role, &created, &revoked); err != nil {
		return k, err
	}
	k.Role = entente.Role(role)
	k.Created = store.FromUnixNano(created)
	if revoked.Valid {
		t := store.FromUnixNano(revoked.Int64)
		k.Revoked = &t
	}
	return k, nil
}

// PutStatus stores (or replaces) a TAXII status resource.
func (s *Store) PutStatus(ctx context.Context, id string, body []byte) error {
	_, err := s.execWrite(ctx, putStatusSQL, id, nonNilBytes(body), time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("put status %s: %w", id, err)
	}
	return nil
}

// putStatusSQL writes a status resource.
const putStatusSQL = `INSERT INTO statuses (id, body, updated) VALUES (?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated = excluded.updated`

// Status returns a status resource stored by PutStatus. ENOTFOUND if none.
func (s *Store) Status(ctx context.Context, id string) ([]byte, error) {
	var body []byte
	err := s.r.status.QueryRowContext(ctx, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
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
	err := s.read.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, entente.Errorf(entente.ENOTFOUND, "setting %q is not set", name)
	}
	if err != nil {
		return nil, fmt.Errorf("get setting %s: %w", name, err)
	}
	return v, nil
}

// PutSetting sets a node setting.
func (s *Store) PutSetting(ctx context.Context, name string, value []byte) error {
	_, err := s.execWrite(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
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
