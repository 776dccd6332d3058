package postgres

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// insertChunk is how many rows one INSERT ... SELECT FROM unnest writes.
const insertChunk = 5000

// AddObjects adds objects to a collection in one transaction; see
// [store.Store.AddObjects]. Every entry of one call shares one
// date_added, strictly greater than any date_added the collection ever
// gave before.
func (s *Store) AddObjects(ctx context.Context, collection string, objs []*stix.Object) ([]entente.AddOutcome, error) {
	var out []entente.AddOutcome
	err := s.inTx(ctx, func(tx pgx.Tx) (err error) {
		out, err = addInTx(ctx, tx, collection, objs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("add %d objects to collection %s: %w", len(objs), collection, err)
	}
	return out, nil
}

// AddReceived adds objects another organisation sent, with their
// provenance and, when r.StatusID is set, the status, in one
// transaction; see [store.ReceivedAdder].
func (s *Store) AddReceived(ctx context.Context, r store.Received) ([]entente.AddOutcome, error) {
	rcv, ok := store.UnixNano(r.ReceivedAt)
	if !ok {
		return nil, entente.Errorf(entente.EINVALID, "add objects received from %s: received_at %s is out of range", r.Origin, r.ReceivedAt)
	}
	var out []entente.AddOutcome
	err := s.inTx(ctx, func(tx pgx.Tx) (err error) {
		if len(r.Objects) > 0 {
			if out, err = addInTx(ctx, tx, r.Collection, r.Objects); err != nil {
				return err
			}
		}
		if err := setProvenance(ctx, tx, r.Provenance(out), rcv); err != nil {
			return err
		}
		if r.StatusID != "" {
			if _, err := tx.Exec(ctx, putStatusSQL, r.StatusID, nonNilBytes(r.Status(out)), time.Now().UnixNano()); err != nil {
				return fmt.Errorf("write status %s: %w", r.StatusID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add %d objects received from %s to collection %s: %w", len(r.Objects), r.Origin, r.Collection, err)
	}
	return out, nil
}

var _ store.ReceivedAdder = (*Store)(nil)

// AddOwn adds the node's own objects with their status and alert states
// in one transaction; see [store.OwnAdder].
func (s *Store) AddOwn(ctx context.Context, o store.Own) ([]entente.AddOutcome, error) {
	if err := store.CheckAlertStates(o.AlertStates); err != nil {
		return nil, fmt.Errorf("add %d objects to collection %s: %w", len(o.Objects), o.Collection, err)
	}
	var out []entente.AddOutcome
	err := s.inTx(ctx, func(tx pgx.Tx) (err error) {
		if len(o.Objects) > 0 {
			if out, err = addInTx(ctx, tx, o.Collection, o.Objects); err != nil {
				return err
			}
		}
		for _, st := range o.AlertStates {
			if _, err := tx.Exec(ctx, putAlertStateSQL, st.ID, st.Status, st.Updated.UnixNano(), string(st.Body)); err != nil {
				return fmt.Errorf("put alert state %s: %w", st.ID, err)
			}
		}
		if o.StatusID != "" {
			if _, err := tx.Exec(ctx, putStatusSQL, o.StatusID, nonNilBytes(o.Status(out)), time.Now().UnixNano()); err != nil {
				return fmt.Errorf("write status %s: %w", o.StatusID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add %d objects and %d alert states to collection %s: %w", len(o.Objects), len(o.AlertStates), o.Collection, err)
	}
	return out, nil
}

var _ store.OwnAdder = (*Store)(nil)

// addInTx adds objects to a collection inside tx.
func addInTx(ctx context.Context, tx pgx.Tx, collection string, objs []*stix.Object) ([]entente.AddOutcome, error) {
	coll, _, last, err := collectionSeq(ctx, tx, collection, true)
	if err != nil {
		return nil, err
	}
	dateAdded := max(time.Now().UnixNano(), last+1)
	existing, err := lookupExisting(ctx, tx, coll, objs)
	if err != nil {
		return nil, err
	}
	plan, err := store.PlanAdd(objs, dateAdded, existing)
	if err != nil {
		return nil, err
	}
	if len(plan.Inserts) == 0 {
		return plan.Outcomes, nil
	}
	if err := insertEntries(ctx, tx, coll, dateAdded, plan.Inserts); err != nil {
		return nil, err
	}
	if len(plan.ClearLatest) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE objects SET is_latest = false WHERE seq = ANY($1)`, plan.ClearLatest); err != nil {
			return nil, fmt.Errorf("clear is_latest: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM search_docs WHERE seq = ANY($1)`, plan.ClearLatest); err != nil {
			return nil, fmt.Errorf("remove superseded versions from search: %w", err)
		}
	}
	if len(plan.ClearFirst) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE objects SET is_first = false WHERE seq = ANY($1)`, plan.ClearFirst); err != nil {
			return nil, fmt.Errorf("clear is_first: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE collections SET last_added = $1 WHERE seq = $2`, dateAdded, coll); err != nil {
		return nil, fmt.Errorf("update last date_added: %w", err)
	}
	return plan.Outcomes, nil
}

func lookupExisting(ctx context.Context, tx pgx.Tx, coll int64, objs []*stix.Object) ([]store.Existing, error) {
	seen := make(map[string]bool, len(objs))
	ids := make([]string, 0, len(objs))
	for _, o := range objs {
		if o != nil && !seen[o.ID] {
			seen[o.ID] = true
			ids = append(ids, o.ID)
		}
	}
	rows, err := tx.Query(ctx, `SELECT id, version, date_added, seq, is_latest, is_first FROM objects WHERE collection = $1 AND id = ANY($2)`, coll, ids)
	if err != nil {
		return nil, fmt.Errorf("look up stored versions: %w", err)
	}
	defer rows.Close()
	var out []store.Existing
	for rows.Next() {
		var e store.Existing
		if err := rows.Scan(&e.ID, &e.Version, &e.DateAdded, &e.Seq, &e.Latest, &e.First); err != nil {
			return nil, fmt.Errorf("look up stored versions: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up stored versions: %w", err)
	}
	return out, nil
}

// insertEntries takes sequence numbers for entries (in increasing order,
// while the collection's row is locked) and inserts them.
func insertEntries(ctx context.Context, tx pgx.Tx, coll, dateAdded int64, entries []store.NewEntry) error {
	rows, err := tx.Query(ctx, `SELECT nextval('objects_seq') FROM generate_series(1, $1)`, len(entries))
	if err != nil {
		return fmt.Errorf("take sequence numbers: %w", err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("take sequence numbers: %w", err)
	}
	slices.Sort(seqs)
	for len(entries) > 0 {
		n := min(len(entries), insertChunk)
		var (
			ids, types, specs = make([]string, n), make([]string, n), make([]string, n)
			versions          = make([]int64, n)
			latest, first     = make([]bool, n), make([]bool, n)
			raws              = make([][]byte, n)
		)
		for i, e := range entries[:n] {
			ids[i], types[i], specs[i] = e.Obj.ID, e.Obj.Type, e.Obj.SpecVersion
			versions[i], latest[i], first[i], raws[i] = e.Version, e.Latest, e.First, e.Obj.Raw
		}
		_, err := tx.Exec(ctx, `INSERT INTO objects (seq, collection, id, type, spec_version, version, date_added, is_latest, is_first, raw)
			SELECT seq, $2, id, type, spec_version, version, $3, is_latest, is_first, raw
			FROM unnest($1::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::boolean[], $9::boolean[], $10::bytea[])
				AS u (seq, id, type, spec_version, version, is_latest, is_first, raw)`,
			seqs[:n], coll, dateAdded, ids, types, specs, versions, latest, first, raws)
		if err != nil {
			return fmt.Errorf("insert objects %s..%s: %w", entries[0].Obj.ID, entries[n-1].Obj.ID, err)
		}
		var docs []searchRow
		for i, e := range entries[:n] {
			if e.Latest {
				docs = append(docs, searchRow{seq: seqs[i], coll: coll, modified: e.Version, id: e.Obj.ID, typ: e.Obj.Type, raw: e.Obj.Raw})
			}
		}
		if err := insertSearchDocs(ctx, tx, docs); err != nil {
			return err
		}
		entries, seqs = entries[n:], seqs[n:]
	}
	return nil
}

// QueryObjects returns one page of entries; see [store.Store.QueryObjects].
func (s *Store) QueryObjects(ctx context.Context, q entente.ObjectQuery) (entente.Page, error) {
	coll, collID, _, err := collectionSeq(ctx, s.pool, q.Collection, false)
	if err != nil {
		return entente.Page{}, err
	}
	var after store.Cursor
	if q.Next != "" {
		if after, err = store.DecodeCursor(q.Next, collID, q); err != nil {
			return entente.Page{}, err
		}
	}
	limit := store.PageLimit(q.Limit)
	query, args, err := pageQuery(coll, after, q, limit)
	if err != nil {
		return entente.Page{}, err
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return entente.Page{}, fmt.Errorf("query collection %s: %w", q.Collection, err)
	}
	defer rows.Close()
	var (
		page    entente.Page
		lastPos store.Cursor
	)
	page.Entries = make([]entente.ObjectEntry, 0, min(limit, 128))
	for rows.Next() {
		if len(page.Entries) == limit {
			page.More = true
			break
		}
		var (
			e                  entente.ObjectEntry
			seq, version, date int64
		)
		dest := []any{&seq, &e.ID, &e.Type, &e.SpecVersion, &version, &date}
		if !q.MetadataOnly {
			dest = append(dest, (*[]byte)(&e.Raw))
		}
		if err := rows.Scan(dest...); err != nil {
			return entente.Page{}, fmt.Errorf("query collection %s: %w", q.Collection, err)
		}
		e.Version, e.DateAdded = store.FromUnixNano(version), store.FromUnixNano(date)
		lastPos = store.Cursor{DateAdded: date, Seq: seq}
		page.Entries = append(page.Entries, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return entente.Page{}, fmt.Errorf("query collection %s: %w", q.Collection, err)
	}
	if page.More {
		page.Next = store.EncodeCursor(lastPos, collID, q)
	}
	return page, nil
}

// pageQuery returns the SQL and arguments that select up to limit+1
// entries of collection coll after cursor position after (when q.Next is
// set), walking an index in (date_added, seq) order.
func pageQuery(coll int64, after store.Cursor, q entente.ObjectQuery, limit int) (string, []any, error) {
	cols := `seq, id, type, spec_version, version, date_added`
	if !q.MetadataOnly {
		cols += `, raw`
	}
	var w where
	w.add(`collection = ` + w.arg(coll))
	switch {
	case q.Next != "":
		// The cursor is bound to q.AddedAfter and names an entry added
		// after it, so the seek past the cursor implies the filter.
		w.add(`(date_added, seq) > (` + w.arg(after.DateAdded) + `, ` + w.arg(after.Seq) + `)`)
	case !q.AddedAfter.IsZero():
		n, ok := store.UnixNano(q.AddedAfter)
		if !ok {
			if q.AddedAfter.After(time.Unix(0, 0)) {
				n = math.MaxInt64
			} else {
				n = math.MinInt64
			}
		}
		w.add(`date_added > ` + w.arg(n))
	}
	w.in("id", q.IDs)
	if t, ok := store.ScanType(q.Types); ok {
		// Literal, so the planner can use the type's partial index
		// (migration 0900).
		w.add(`type = '` + t + `'`)
	} else {
		w.in("type", q.Types)
	}
	w.in("spec_version", q.SpecVersions)
	if err := w.versions(q.Versions); err != nil {
		return "", nil, err
	}
	query := `SELECT ` + cols + ` FROM objects WHERE ` + strings.Join(w.conds, " AND ") + ` ORDER BY date_added, seq LIMIT ` + w.arg(limit+1)
	return query, w.args, nil
}

// DeleteObjects deletes versions of one object; see
// [store.Store.DeleteObjects]. The zero VersionFilter deletes the latest
// version. The object's remaining versions get their latest and first
// flags recomputed.
func (s *Store) DeleteObjects(ctx context.Context, collection, id string, versions entente.VersionFilter, specVersions []string) (int, error) {
	var deleted int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Lock the collection as additions do, so flags are recomputed
		// against a stable set of versions.
		coll, _, _, err := collectionSeq(ctx, tx, collection, true)
		if err != nil {
			return err
		}
		var w where
		w.add(`collection = ` + w.arg(coll))
		w.add(`id = ` + w.arg(id))
		w.in("spec_version", specVersions)
		if err := w.versions(versions); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM objects WHERE `+strings.Join(w.conds, " AND "), w.args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return entente.Errorf(entente.ENOTFOUND, "object %q has no matching version in collection %q", id, collection)
		}
		deleted = int(tag.RowsAffected())
		_, err = tx.Exec(ctx, `UPDATE objects o SET is_latest = o.version = m.hi, is_first = o.version = m.lo
			FROM (SELECT max(version) AS hi, min(version) AS lo FROM objects WHERE collection = $1 AND id = $2) m
			WHERE o.collection = $1 AND o.id = $2 AND (o.is_latest <> (o.version = m.hi) OR o.is_first <> (o.version = m.lo))`, coll, id)
		if err != nil {
			return fmt.Errorf("recompute version flags: %w", err)
		}
		// The version now latest, if another was deleted, is searched.
		return indexLatest(ctx, tx, `o.collection = $1 AND o.id = $2`, coll, id)
	})
	if err != nil {
		return 0, fmt.Errorf("delete %s from collection %s: %w", id, collection, err)
	}
	return deleted, nil
}

// where accumulates the conditions and numbered arguments of a WHERE
// clause.
type where struct {
	conds []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) add(cond string) { w.conds = append(w.conds, cond) }

func (w *where) in(column string, values []string) {
	if len(values) == 0 {
		return
	}
	w.add(column + ` = ANY(` + w.arg(values) + `::text[])`)
}

// versions adds the condition of a version filter: the latest version
// when f is zero, nothing when f.All, else the union of the selectors.
func (w *where) versions(f entente.VersionFilter) error {
	switch {
	case f.All:
		return nil
	case f.IsZero():
		w.add(`is_latest`)
		return nil
	}
	var ors []string
	if f.First {
		ors = append(ors, `is_first`)
	}
	if f.Last {
		ors = append(ors, `is_latest`)
	}
	if len(f.At) > 0 {
		at := make([]int64, len(f.At))
		for i, t := range f.At {
			n, ok := store.UnixNano(t)
			if !ok {
				return entente.Errorf(entente.EINVALID, "version %s is out of range", t.UTC().Format(time.RFC3339Nano))
			}
			at[i] = n
		}
		ors = append(ors, `version = ANY(`+w.arg(at)+`::bigint[])`)
	}
	w.add(`(` + strings.Join(ors, " OR ") + `)`)
	return nil
}
