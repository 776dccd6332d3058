package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
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
	if _, err := s.pool.Exec(ctx, `INSERT INTO parties (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = excluded.body`, p.ID, string(b)); err != nil {
		return fmt.Errorf("put party %s: %w", p.ID, err)
	}
	return nil
}

// Party returns a partner by identity id. ENOTFOUND if none.
func (s *Store) Party(ctx context.Context, id string) (policy.Party, error) {
	var p policy.Party
	err := s.policyRow(ctx, &p, `SELECT body::text FROM parties WHERE id = $1`, id)
	if errors.Is(err, pgx.ErrNoRows) {
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
	err := s.policyRows(ctx, `SELECT body::text FROM parties ORDER BY id`, func(b []byte) error {
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
	return s.policyDelete(ctx, `DELETE FROM parties WHERE id = $1`, id, "partner")
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
	if _, err := s.pool.Exec(ctx, `INSERT INTO agreements (partner, body) VALUES ($1, $2) ON CONFLICT (partner) DO UPDATE SET body = excluded.body`, a.Partner.ID, string(b)); err != nil {
		return fmt.Errorf("put agreement %s: %w", a.ID, err)
	}
	return nil
}

// Agreement returns the agreement with a partner. ENOTFOUND if none.
func (s *Store) Agreement(ctx context.Context, partner string) (policy.Agreement, error) {
	var a policy.Agreement
	err := s.policyRow(ctx, &a, `SELECT body::text FROM agreements WHERE partner = $1`, partner)
	if errors.Is(err, pgx.ErrNoRows) {
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
	err := s.policyRows(ctx, `SELECT body::text FROM agreements ORDER BY partner`, func(b []byte) error {
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
	return s.policyDelete(ctx, `DELETE FROM agreements WHERE partner = $1`, partner, "agreement with partner")
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
	if _, err := s.pool.Exec(ctx, `INSERT INTO peers (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = excluded.body`, p.ID, string(b)); err != nil {
		return fmt.Errorf("put peer %s: %w", p.ID, err)
	}
	return nil
}

const peerColumns = `body::text, checkpoint, last_sync, last_error`

func scanPeer(row pgx.Row) (store.Peer, error) {
	var (
		p        store.Peer
		body     string
		cp       *string
		lastSync int64
		lastErr  string
	)
	if err := row.Scan(&body, &cp, &lastSync, &lastErr); err != nil {
		return p, err
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		return p, err
	}
	if cp != nil {
		p.Checkpoint = json.RawMessage(*cp)
	}
	if lastSync != 0 {
		p.LastSync = store.FromUnixNano(lastSync)
	}
	p.LastError = lastErr
	return p, nil
}

// Peer returns a peer by id. ENOTFOUND if none.
func (s *Store) Peer(ctx context.Context, id string) (store.Peer, error) {
	p, err := scanPeer(s.pool.QueryRow(ctx, `SELECT `+peerColumns+` FROM peers WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, entente.Errorf(entente.ENOTFOUND, "no peer %q", id)
	}
	if err != nil {
		return p, fmt.Errorf("read peer %s: %w", id, err)
	}
	return p, nil
}

// Peers lists every peer, ordered by creation.
func (s *Store) Peers(ctx context.Context) ([]store.Peer, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+peerColumns+` FROM peers ORDER BY seq`)
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
	return s.policyDelete(ctx, `DELETE FROM peers WHERE id = $1`, id, "peer")
}

// UpdatePeerSync records a peer's sync state.
func (s *Store) UpdatePeerSync(ctx context.Context, id string, checkpoint json.RawMessage, lastSync time.Time, lastError string) error {
	ls, _ := store.UnixNano(lastSync)
	var cp *string
	if checkpoint != nil {
		c := string(checkpoint)
		cp = &c
	}
	tag, err := s.pool.Exec(ctx, `UPDATE peers SET checkpoint = COALESCE($1, checkpoint), last_sync = $2, last_error = $3 WHERE id = $4`, cp, ls, lastError, id)
	if err != nil {
		return fmt.Errorf("update peer %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return entente.Errorf(entente.ENOTFOUND, "no peer %q", id)
	}
	return nil
}

// SetProvenance records where object versions came from, in one
// statement.
func (s *Store) SetProvenance(ctx context.Context, recs []store.Provenance) error {
	if len(recs) == 0 {
		return nil
	}
	for _, r := range recs {
		if _, ok := store.UnixNano(r.ReceivedAt); !ok {
			return entente.Errorf(entente.EINVALID, "provenance of %s: time out of range", r.ObjectID)
		}
	}
	if err := setProvenance(ctx, s.pool, recs, -1); err != nil {
		return fmt.Errorf("set provenance of %d objects: %w", len(recs), err)
	}
	return nil
}

// setProvenance records provenance in one statement on db (the pool or
// a transaction). received, when not negative, replaces every record's
// ReceivedAt (in Unix nanoseconds).
func setProvenance(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, recs []store.Provenance, received int64) error {
	if len(recs) == 0 {
		return nil
	}
	n := len(recs)
	colls, ids, origins, peers := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	versions, rcvd := make([]int64, n), make([]int64, n)
	for i, r := range recs {
		v, ok := store.UnixNano(r.Version)
		rcv, ok2 := store.UnixNano(r.ReceivedAt)
		if received >= 0 {
			rcv, ok2 = received, true
		}
		if !ok || !ok2 {
			return entente.Errorf(entente.EINVALID, "provenance of %s: time out of range", r.ObjectID)
		}
		colls[i], ids[i], origins[i], peers[i], versions[i], rcvd[i] = r.Collection, r.ObjectID, r.Origin, r.Peer, v, rcv
	}
	_, err := db.Exec(ctx, `INSERT INTO provenance (collection, object_id, version, origin, peer, received)
		SELECT DISTINCT ON (c, i, v) c, i, v, o, p, r FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[]) AS t (c, i, v, o, p, r)
		ON CONFLICT (collection, object_id, version) DO UPDATE SET origin = excluded.origin, peer = excluded.peer, received = excluded.received`,
		colls, ids, versions, origins, peers, rcvd)
	if err != nil {
		return fmt.Errorf("record provenance: %w", err)
	}
	return nil
}

// Provenance returns the recorded provenance of the given objects of a
// collection, in one query.
func (s *Store) Provenance(ctx context.Context, collection string, ids []string) (map[store.VersionKey]store.Provenance, error) {
	out := make(map[store.VersionKey]store.Provenance)
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT object_id, version, origin, peer, received FROM provenance WHERE collection = $1 AND object_id = ANY($2)`, collection, ids)
	if err != nil {
		return nil, fmt.Errorf("read provenance: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p      store.Provenance
			v, rcv int64
		)
		if err := rows.Scan(&p.ObjectID, &v, &p.Origin, &p.Peer, &rcv); err != nil {
			return nil, fmt.Errorf("read provenance: %w", err)
		}
		p.Collection, p.Version, p.ReceivedAt = collection, store.FromUnixNano(v), store.FromUnixNano(rcv)
		out[store.VersionKey{ID: p.ObjectID, Version: v}] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read provenance: %w", err)
	}
	return out, nil
}

// AppendAudit appends records to the audit log, all or nothing, in one
// statement.
func (s *Store) AppendAudit(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	n := len(recs)
	times, versions := make([]int64, n), make([]int64, n)
	actors, actions, partners, objects, rules, details := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, r := range recs {
		t, ok := store.UnixNano(r.Time)
		if !ok || r.Time.IsZero() {
			return entente.Errorf(entente.EINVALID, "audit record of %s: time is missing or out of range", r.ObjectID)
		}
		if !r.Version.IsZero() {
			versions[i], _ = store.UnixNano(r.Version)
		}
		times[i], actors[i], actions[i], partners[i], objects[i], rules[i], details[i] = t, r.Actor, r.Action, r.Partner, r.ObjectID, r.Rule, r.Detail
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO audit (time, actor, action, partner, object_id, version, rule, detail)
		SELECT a, b, c, d, e, f, g, h FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[]) WITH ORDINALITY AS t (a, b, c, d, e, f, g, h, n) ORDER BY n`,
		times, actors, actions, partners, objects, versions, rules, details)
	if err != nil {
		return fmt.Errorf("append %d audit records: %w", n, err)
	}
	return nil
}

// AppendRelease appends the egress record of a release and its index by
// object, in one transaction.
func (s *Store) AppendRelease(ctx context.Context, r audit.Release) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("append release to %s: %w", r.Partner, err)
	}
	defer tx.Rollback(ctx)
	for _, part := range r.Split() {
		packed, idx, err := part.Pack()
		if err != nil {
			return err
		}
		var seq int64
		if err := tx.QueryRow(ctx, `INSERT INTO audit (time, actor, action, partner, object_id, version, rule, detail, versions)
			VALUES ($1, $2, $3, $4, '', 0, '', $5, $6) RETURNING seq`, r.Time.UnixNano(), r.Actor, audit.Egress, r.Partner, r.Detail, packed).Scan(&seq); err != nil {
			return fmt.Errorf("append release to %s: %w", r.Partner, err)
		}
		buckets, hashes := make([]int32, len(idx)), make([][]byte, len(idx))
		for i, ir := range idx {
			buckets[i], hashes[i] = int32(ir.Bucket), ir.Hashes
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_objects (bucket, seq, hashes) SELECT b, $1, h FROM unnest($2::integer[], $3::bytea[]) AS t (b, h)`,
			seq, buckets, hashes); err != nil {
			return fmt.Errorf("append release to %s: index: %w", r.Partner, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("append release to %s: commit: %w", r.Partner, err)
	}
	return nil
}

// auditBatch is how many audit rows a query reads at a time while it
// fills a page (a release row stands for many records).
const auditBatch = 64

// QueryAudit returns one page of audit records matching q, oldest first.
func (s *Store) QueryAudit(ctx context.Context, q audit.Query) (audit.Page, error) {
	pg, err := audit.NewPager(q)
	if err != nil {
		return audit.Page{}, err
	}
	from := pg.FromRow()
	batch := min(pg.Limit()+1, auditBatch)
	for {
		query, args := auditQuery(q, from, batch)
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return audit.Page{}, fmt.Errorf("query audit: %w", err)
		}
		n, more := 0, true
		for rows.Next() && more {
			var (
				r    audit.Row
				t, v int64
			)
			if err := rows.Scan(&r.Seq, &t, &r.Record.Actor, &r.Record.Action, &r.Record.Partner, &r.Record.ObjectID, &v, &r.Record.Rule, &r.Record.Detail, &r.Packed); err != nil {
				rows.Close()
				return audit.Page{}, fmt.Errorf("query audit: %w", err)
			}
			n++
			r.Record.Time = store.FromUnixNano(t)
			if v != 0 {
				r.Record.Version = store.FromUnixNano(v)
			}
			if more, err = pg.Add(r); err != nil {
				rows.Close()
				return audit.Page{}, fmt.Errorf("query audit: %w", err)
			}
			from = r.Seq + 1
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return audit.Page{}, fmt.Errorf("query audit: %w", err)
		}
		if !more || n < batch {
			return pg.Page(), nil
		}
	}
}

// auditQuery returns the SQL and arguments that read the audit rows of q
// from row sequence from on, at most batch of them. The object condition
// selects single records of the object and the releases whose index
// lists its hash (candidates: the pager keeps only the versions of the
// object), each from the cursor on, so that paging through a popular
// object reads its index bucket once.
func auditQuery(q audit.Query, from int64, batch int) (string, []any) {
	var where []string
	var args []any
	// arg adds a condition whose ? placeholders take vs, in order.
	arg := func(cond string, vs ...any) {
		for _, v := range vs {
			args = append(args, v)
			cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1)
		}
		where = append(where, cond)
	}
	arg("seq >= ?", from)
	if q.Partner != "" {
		arg("partner = ?", q.Partner)
	}
	if q.ObjectID != "" {
		bk := audit.ObjectBuckets(q.ObjectID)
		arg(`seq IN (SELECT seq FROM audit WHERE object_id = ? AND seq >= ? UNION ALL
			SELECT seq FROM audit_objects WHERE bucket = ? AND seq >= ? AND position(?::bytea IN hashes) > 0 UNION ALL
			SELECT seq FROM audit_objects WHERE bucket = ? AND seq >= ? AND position(?::bytea IN hashes) > 0)`,
			q.ObjectID, from, int32(bk[0].Bucket), from, bk[0].Key, int32(bk[1].Bucket), from, bk[1].Key)
	}
	if q.Action != "" {
		arg("action = ?", q.Action)
	}
	if !q.From.IsZero() {
		n, _ := store.UnixNano(q.From)
		arg("time >= ?", n)
	}
	if !q.To.IsZero() {
		n, _ := store.UnixNano(q.To)
		arg("time < ?", n)
	}
	args = append(args, batch)
	return `SELECT seq, time, actor, action, partner, object_id, version, rule, detail, versions FROM audit WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY seq LIMIT $` + strconv.Itoa(len(args)), args
}

// policyRow reads one JSON column of one row into v.
func (s *Store) policyRow(ctx context.Context, v any, query string, args ...any) error {
	var body string
	if err := s.pool.QueryRow(ctx, query, args...).Scan(&body); err != nil {
		return err
	}
	return json.Unmarshal([]byte(body), v)
}

// policyRows calls fn with the JSON column of each row of query.
func (s *Store) policyRows(ctx context.Context, query string, fn func([]byte) error) error {
	rows, err := s.pool.Query(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return err
		}
		if err := fn([]byte(b)); err != nil {
			return err
		}
	}
	return rows.Err()
}

// policyDelete runs a DELETE of one row by key; ENOTFOUND names what
// when nothing was deleted.
func (s *Store) policyDelete(ctx context.Context, query, key, what string) error {
	tag, err := s.pool.Exec(ctx, query, key)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", what, key, err)
	}
	if tag.RowsAffected() == 0 {
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
	rows, err := s.pool.Query(ctx, `SELECT collection, object_id, version, peer, received FROM provenance WHERE origin = $1 ORDER BY received DESC LIMIT $2`, origin, limit)
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
