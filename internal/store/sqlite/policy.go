package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/store"
)

var _ store.PolicyStore = (*Store)(nil)

// PutParty creates or replaces a partner organisation.
func (s *Store) PutParty(ctx context.Context, p policy.Party) error {
	if p.ID == "" {
		return entente.Errorf(entente.EINVALID, "party: id is required")
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("put party %s: %w", p.ID, err)
	}
	if _, err := s.execWrite(ctx, `INSERT INTO parties (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body`, p.ID, string(b)); err != nil {
		return fmt.Errorf("put party %s: %w", p.ID, err)
	}
	return nil
}

// Party returns a partner by identity id. ENOTFOUND if none.
func (s *Store) Party(ctx context.Context, id string) (policy.Party, error) {
	var p policy.Party
	err := s.policyRow(ctx, &p, `SELECT body FROM parties WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return p, entente.Errorf(entente.ENOTFOUND, "no partner %q", id)
	}
	if err != nil {
		return p, fmt.Errorf("read party %s: %w", id, err)
	}
	return p, nil
}

// Parties lists the partners, ordered by identity id.
func (s *Store) Parties(ctx context.Context) ([]policy.Party, error) {
	var out []policy.Party
	err := s.policyRows(ctx, `SELECT body FROM parties ORDER BY id`, func(b []byte) error {
		var p policy.Party
		if err := json.Unmarshal(b, &p); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list parties: %w", err)
	}
	return out, nil
}

// DeleteParty removes a partner. ENOTFOUND if none.
func (s *Store) DeleteParty(ctx context.Context, id string) error {
	return s.policyDelete(ctx, `DELETE FROM parties WHERE id = ?`, id, "partner")
}

// PutAgreement creates or replaces the agreement with a.Partner.ID.
func (s *Store) PutAgreement(ctx context.Context, a policy.Agreement) error {
	if a.Partner.ID == "" {
		return entente.Errorf(entente.EINVALID, "agreement %s: partner.id is required", a.ID)
	}
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("put agreement %s: %w", a.ID, err)
	}
	if _, err := s.execWrite(ctx, `INSERT INTO agreements (partner, body) VALUES (?, ?) ON CONFLICT (partner) DO UPDATE SET body = excluded.body`, a.Partner.ID, string(b)); err != nil {
		return fmt.Errorf("put agreement %s: %w", a.ID, err)
	}
	return nil
}

// Agreement returns the agreement with a partner. ENOTFOUND if none.
func (s *Store) Agreement(ctx context.Context, partner string) (policy.Agreement, error) {
	var a policy.Agreement
	err := s.policyRow(ctx, &a, `SELECT body FROM agreements WHERE partner = ?`, partner)
	if errors.Is(err, sql.ErrNoRows) {
		return a, entente.Errorf(entente.ENOTFOUND, "no agreement with partner %q", partner)
	}
	if err != nil {
		return a, fmt.Errorf("read agreement with %s: %w", partner, err)
	}
	return a, nil
}

// Agreements lists every agreement, ordered by partner id.
func (s *Store) Agreements(ctx context.Context) ([]policy.Agreement, error) {
	var out []policy.Agreement
	err := s.policyRows(ctx, `SELECT body FROM agreements ORDER BY partner`, func(b []byte) error {
		var a policy.Agreement
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list agreements: %w", err)
	}
	return out, nil
}

// DeleteAgreement removes the agreement with a partner. ENOTFOUND if none.
func (s *Store) DeleteAgreement(ctx context.Context, partner string) error {
	return s.policyDelete(ctx, `DELETE FROM agreements WHERE partner = ?`, partner, "agreement with partner")
}

// PutPeer creates or replaces a peer's configuration, keeping its sync
// state.
func (s *Store) PutPeer(ctx context.Context, p store.Peer) error {
	if p.ID == "" {
		return entente.Errorf(entente.EINVALID, "peer: id is required")
	}
	cfg := p
	cfg.Checkpoint, cfg.LastSync, cfg.LastError = nil, time.Time{}, ""
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("put peer %s: %w", p.ID, err)
	}
	if _, err := s.execWrite(ctx, `INSERT INTO peers (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body`, p.ID, string(b)); err != nil {
		return fmt.Errorf("put peer %s: %w", p.ID, err)
	}
	return nil
}

const peerColumns = `body, checkpoint, last_sync, last_error`

func scanPeer(row interface{ Scan(...any) error }) (store.Peer, error) {
	var (
		p        store.Peer
		body     string
		cp       sql.NullString
		lastSync int64
		lastErr  string
	)
	if err := row.Scan(&body, &cp, &lastSync, &lastErr); err != nil {
		return p, err
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		return p, err
	}
	if cp.Valid {
		p.Checkpoint = json.RawMessage(cp.String)
	}
	if lastSync != 0 {
		p.LastSync = store.FromUnixNano(lastSync)
	}
	p.LastError = lastErr
	return p, nil
}

// Peer returns a peer by id. ENOTFOUND if none.
func (s *Store) Peer(ctx context.Context, id string) (store.Peer, error) {
	p, err := scanPeer(s.read.QueryRowContext(ctx, `SELECT `+peerColumns+` FROM peers WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, entente.Errorf(entente.ENOTFOUND, "no peer %q", id)
	}
	if err != nil {
		return p, fmt.Errorf("read peer %s: %w", id, err)
	}
	return p, nil
}

// Peers lists every peer, ordered by creation.
func (s *Store) Peers(ctx context.Context) ([]store.Peer, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+peerColumns+` FROM peers ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("list peers: %w", err)
	}
	defer rows.Close()
	var out []store.Peer
	for rows.Next() {
		p, err := scanPeer(rows)
		if err != nil {
			return nil, fmt.Errorf("list peers: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list peers: %w", err)
	}
	return out, nil
}

// DeletePeer removes a peer. ENOTFOUND if none.
func (s *Store) DeletePeer(ctx context.Context, id string) error {
	return s.policyDelete(ctx, `DELETE FROM peers WHERE id = ?`, id, "peer")
}

// UpdatePeerSync records a peer's sync state. The update is handed to
// the writer goroutine and shares its commit with the additions and
// other updates waiting at the same time (group commit): a node that
// saves the checkpoints of many peers after every page and push costs
// one durable commit per group, not one each.
func (s *Store) UpdatePeerSync(ctx context.Context, id string, checkpoint json.RawMessage, lastSync time.Time, lastError string) error {
	ls, _ := store.UnixNano(lastSync)
	err := s.enqueueWrite(ctx, func(ctx context.Context, tx *sql.Tx, _ []entente.AddOutcome) error {
		var res sql.Result
		var err error
		if checkpoint == nil {
			res, err = tx.StmtContext(ctx, s.w.peerSyncKeep.Stmt).ExecContext(ctx, ls, lastError, id)
		} else {
			res, err = tx.StmtContext(ctx, s.w.peerSync.Stmt).ExecContext(ctx, string(checkpoint), ls, lastError, id)
		}
		if err != nil {
			return storageFull(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return entente.Errorf(entente.ENOTFOUND, "no peer %q", id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update peer %s: %w", id, err)
	}
	return nil
}

// setProvenanceSQL records (or replaces) the provenance of one version.
const setProvenanceSQL = `INSERT INTO provenance (collection, object_id, version, origin, peer, received) VALUES (?, ?, ?, ?, ?, ?)
	ON CONFLICT (collection, object_id, version) DO UPDATE SET origin = excluded.origin, peer = excluded.peer, received = excluded.received`

// SetProvenance records where object versions came from.
func (s *Store) SetProvenance(ctx context.Context, recs []store.Provenance) error {
	if len(recs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, setProvenanceSQL)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range recs {
			v, ok := store.UnixNano(r.Version)
			rcv, ok2 := store.UnixNano(r.ReceivedAt)
			if !ok || !ok2 {
				return entente.Errorf(entente.EINVALID, "provenance of %s: time out of range", r.ObjectID)
			}
			if _, err := stmt.ExecContext(ctx, r.Collection, r.ObjectID, v, r.Origin, r.Peer, rcv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set provenance of %d objects: %w", len(recs), err)
	}
	return nil
}

// Provenance returns the recorded provenance of the given objects of a
// collection.
func (s *Store) Provenance(ctx context.Context, collection string, ids []string) (map[store.VersionKey]store.Provenance, error) {
	out := make(map[store.VersionKey]store.Provenance)
	if len(ids) == 0 {
		return out, nil
	}
	// Most collections hold only the node's own objects: one cheap probe
	// spares the lookups.
	var some int
	if err := s.r.provenanceSome.QueryRowContext(ctx, collection).Scan(&some); err != nil {
		return nil, fmt.Errorf("read provenance: %w", err)
	}
	if some == 0 {
		return out, nil
	}
	// One query per chunk: SQLite limits the number of parameters.
	const chunk = 500
	args := make([]any, 0, chunk+1)
	for start := 0; start < len(ids); start += chunk {
		end := min(start+chunk, len(ids))
		args = append(args[:0], collection)
		for _, id := range ids[start:end] {
			args = append(args, id)
		}
		q := `SELECT object_id, version, origin, peer, received FROM provenance WHERE collection = ? AND object_id IN (?` +
			strings.Repeat(",?", end-start-1) + `)`
		rows, err := s.read.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("read provenance: %w", err)
		}
		for rows.Next() {
			var (
				p      store.Provenance
				v, rcv int64
			)
			if err := rows.Scan(&p.ObjectID, &v, &p.Origin, &p.Peer, &rcv); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read provenance: %w", err)
			}
			p.Collection, p.Version, p.ReceivedAt = collection, store.FromUnixNano(v), store.FromUnixNano(rcv)
			out[store.VersionKey{ID: p.ObjectID, Version: v}] = p
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read provenance: %w", err)
		}
	}
	return out, nil
}

// policyRow reads one JSON column of one row into v.
func (s *Store) policyRow(ctx context.Context, v any, query string, args ...any) error {
	var body string
	if err := s.read.QueryRowContext(ctx, query, args...).Scan(&body); err != nil {
		return err
	}
	return json.Unmarshal([]byte(body), v)
}

// policyRows calls fn with the JSON column of each row of query.
func (s *Store) policyRows(ctx context.Context, query string, fn func([]byte) error) error {
	rows, err := s.read.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// policyDelete runs a DELETE of one row by key; ENOTFOUND names what when
// nothing was deleted.
func (s *Store) policyDelete(ctx context.Context, query, key, what string) error {
	res, err := s.execWrite(ctx, query, key)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", what, key, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return entente.Errorf(entente.ENOTFOUND, "no %s %q", what, key)
	}
	return nil
}

// ProvenanceFrom returns the provenance records of the versions received
// from origin, the most recently received first, at most limit.
func (s *Store) ProvenanceFrom(ctx context.Context, origin string, limit int) ([]store.Provenance, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.read.QueryContext(ctx, `SELECT collection, object_id, version, peer, received FROM provenance WHERE origin = ? ORDER BY received DESC LIMIT `+strconv.Itoa(limit), origin)
	if err != nil {
		return nil, fmt.Errorf("read provenance from %s: %w", origin, err)
	}
	defer rows.Close()
	var out []store.Provenance
	for rows.Next() {
		var (
			p      store.Provenance
			v, rcv int64
		)
		if err := rows.Scan(&p.Collection, &p.ObjectID, &v, &p.Peer, &rcv); err != nil {
			return nil, fmt.Errorf("read provenance from %s: %w", origin, err)
		}
		p.Origin, p.Version, p.ReceivedAt = origin, store.FromUnixNano(v), store.FromUnixNano(rcv)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read provenance from %s: %w", origin, err)
	}
	return out, nil
}
