package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

const (
	// lookupChunk is how many ids one lookup of stored versions names.
	lookupChunk = 500
	// insertChunk is how many rows one INSERT statement writes.
	insertChunk = 100
	// insertShared is how many parameters an INSERT binds once for all
	// its rows (see insertSQL), insertCols how many it binds per row.
	insertShared = 3
	insertCols   = 8
)

var insertFull = insertSQL(insertChunk)

// insertSQL is the INSERT of rows objects. What is the same for every row
// of a statement is bound once: ?1 the collection, ?2 date_added, ?3 the
// first row's seq; row k's seq and pos are ?3+k, a constant of the
// statement's text. Each row binds its 8 other values (insertRow), in
// anonymous parameters numbered from 4 on. The driver binds each of a
// statement's parameters in a call of its own, taking the connection's
// lock each time, and 12 per row were a seventh of the writer's CPU in a
// bulk import; 8 per row and 3 per statement write the same rows. The
// numbered parameters come first: an anonymous one is numbered after the
// greatest number used before it, and the driver asks for the name of
// every parameter, which only the numbered ones have.
func insertSQL(rows int) string {
	var b strings.Builder
	// OR FAIL: a failing row does not undo the statement's earlier
	// rows, which spares SQLite a statement journal; the writer rolls
	// back the whole call instead (see commitGroup).
	b.WriteString(`INSERT OR FAIL INTO objects (seq, pos, collection, id, id_hash, type, spec_version, version, date_added, is_latest, is_first, raw) VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		seq := "?3"
		if i > 0 {
			seq = "?3+" + strconv.Itoa(i)
		}
		b.WriteString("(" + seq + "," + seq + ",?1,?,?,?,?,?,?2,?,?,?)")
	}
	return b.String()
}

// insertArgs is what one INSERT of insertSQL(len(entries)) binds, in
// order, for entries numbered from seq+1: the shared values, then each
// row's (insertRow).
func insertArgs(args []any, coll, dateAdded, seq int64, entries []store.NewEntry) []any {
	args = append(args, coll, dateAdded, seq+1)
	for _, e := range entries {
		o := e.Obj
		args = append(args, o.ID, idHash(o.ID), o.Type, o.SpecVersion, e.Version, e.Latest, e.First, []byte(o.Raw))
	}
	return args
}

// addInTx adds one call's objects inside the writer's transaction tx,
// whose connection is conn (nil: full chunks go through tx too; see
// insertEntries).
func (s *Store) addInTx(ctx context.Context, tx *sql.Tx, conn *sql.Conn, collection string, objs []*stix.Object, queued int64) ([]entente.AddOutcome, error) {
	var coll, last int64
	err := tx.StmtContext(ctx, s.w.collection.Stmt).QueryRowContext(ctx, collection).Scan(&coll, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, entente.Errorf(entente.ENOTFOUND, "collection %q not found", collection)
	}
	if err != nil {
		return nil, fmt.Errorf("find collection: %w", err)
	}
	// The date decided when the call was queued, unless another process
	// has written to the collection since.
	dateAdded := max(queued, last+1)
	set, err := s.idSet(ctx, tx, coll, len(objs))
	if err != nil {
		return nil, err
	}
	lookFor := objs
	if set != nil {
		lookFor = maybeStored(set, objs)
	}
	var existing []store.Existing
	if len(lookFor) > 0 {
		if existing, err = s.lookupExisting(ctx, tx, coll, lookFor); err != nil {
			return nil, err
		}
	}
	plan, err := store.PlanAdd(objs, dateAdded, existing)
	if err != nil {
		return nil, err
	}
	if len(plan.Inserts) == 0 {
		return plan.Outcomes, nil
	}
	if set != nil {
		// Before the insert: a hash too many is harmless, one too few
		// is not.
		for _, e := range plan.Inserts {
			set[idHash(e.Obj.ID)] = struct{}{}
		}
		if len(set) > s.ids.boundOf(coll) {
			s.ids.drop(coll)
		}
	}
	if err := s.insertEntries(ctx, tx, conn, coll, dateAdded, plan.Inserts); err != nil {
		return nil, err
	}
	if err := clearFlag(ctx, tx, "is_latest", plan.ClearLatest); err != nil {
		return nil, err
	}
	if err := clearFlag(ctx, tx, "is_first", plan.ClearFirst); err != nil {
		return nil, err
	}
	if _, err := tx.StmtContext(ctx, s.w.lastAdded.Stmt).ExecContext(ctx, dateAdded, coll); err != nil {
		return nil, fmt.Errorf("update last date_added: %w", err)
	}
	return plan.Outcomes, nil
}

// lookupSQL reads the stored versions of the ids whose hashes a JSON array
// lists (and of any other id with one of those hashes): one statement text
// whatever the number of ids, so it is prepared once.
const lookupSQL = `SELECT id, version, date_added, seq, is_latest, is_first FROM objects
	WHERE collection = ? AND id_hash IN (SELECT value FROM json_each(?))`

// lookupExisting reads every stored version of the ids among objs.
func (s *Store) lookupExisting(ctx context.Context, tx *sql.Tx, coll int64, objs []*stix.Object) ([]store.Existing, error) {
	seen := make(map[string]bool, len(objs))
	list := make([]byte, 0, 21*len(objs)+2)
	list = append(list, '[')
	for _, o := range objs {
		if o != nil && !seen[o.ID] {
			seen[o.ID] = true
			if len(list) > 1 {
				list = append(list, ',')
			}
			list = strconv.AppendInt(list, idHash(o.ID), 10)
		}
	}
	list = append(list, ']')
	rows, err := tx.StmtContext(ctx, s.lookup).QueryContext(ctx, coll, string(list))
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
		if seen[e.ID] { // not another id with the same hash
			out = append(out, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up stored versions: %w", err)
	}
	return out, nil
}

// insertEntries inserts entries with sequence numbers following the
// greatest one in use. A number freed by deleting the last entry may be
// given again: that keeps (date_added, seq) order, because the new entry's
// date_added is strictly greater.
//
// conn, when not nil, is the connection of tx, the writer's: full chunks
// are then inserted on it directly (see rawInsert).
func (s *Store) insertEntries(ctx context.Context, tx *sql.Tx, conn *sql.Conn, coll, dateAdded int64, entries []store.NewEntry) error {
	var seq int64
	if err := tx.StmtContext(ctx, s.w.maxSeq.Stmt).QueryRowContext(ctx).Scan(&seq); err != nil {
		return fmt.Errorf("read last sequence number: %w", err)
	}
	var full *sql.Stmt
	if len(entries) >= insertChunk && conn == nil {
		full = tx.StmtContext(ctx, s.insert)
	}
	var args []any
	for len(entries) > 0 {
		n := min(len(entries), insertChunk)
		if n == insertChunk && conn != nil {
			if err := s.raw.exec(ctx, conn, coll, dateAdded, seq, entries[:n]); err != nil {
				return fmt.Errorf("insert objects %s..%s: %w", entries[0].Obj.ID, entries[n-1].Obj.ID, err)
			}
			seq += int64(n)
			entries = entries[n:]
			continue
		}
		if args == nil {
			args = make([]any, 0, insertShared+insertChunk*insertCols)
		}
		args = insertArgs(args[:0], coll, dateAdded, seq, entries[:n])
		seq += int64(n)
		var err error
		if n == insertChunk {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertSQL(n), args...)
		}
		if err != nil {
			return fmt.Errorf("insert objects %s..%s: %w", entries[0].Obj.ID, entries[n-1].Obj.ID, err)
		}
		entries = entries[n:]
	}
	return nil
}

func clearFlag(ctx context.Context, tx *sql.Tx, column string, seqs []int64) error {
	for len(seqs) > 0 {
		n := min(len(seqs), lookupChunk)
		args := make([]any, n)
		for i, s := range seqs[:n] {
			args[i] = s
		}
		seqs = seqs[n:]
		if _, err := tx.ExecContext(ctx, `UPDATE objects SET `+column+` = 0 WHERE seq IN (`+placeholders(n)+`)`, args...); err != nil {
			return fmt.Errorf("clear %s: %w", column, err)
		}
	}
	return nil
}

// QueryObjects returns one page of entries; see [store.Store.QueryObjects].
func (s *Store) QueryObjects(ctx context.Context, q entente.ObjectQuery) (entente.Page, error) {
	return s.QueryObjectsInto(ctx, q, nil)
}

// QueryObjectsInto is QueryObjects into buf (a new array when buf is
// nil); see [store.PageReader.QueryObjectsInto].
func (s *Store) QueryObjectsInto(ctx context.Context, q entente.ObjectQuery, buf []entente.ObjectEntry) (entente.Page, error) {
	coll, collID, err := s.readCollectionSeq(ctx, q.Collection)
	if err != nil {
		return entente.Page{}, err
	}
	return s.queryPage(ctx, coll, collID, q, buf)
}

// queryPage is QueryObjects of the collection whose seq and id are coll
// and collID, its entries appended to buf[:0] when buf is not nil.
func (s *Store) queryPage(ctx context.Context, coll int64, collID string, q entente.ObjectQuery, buf []entente.ObjectEntry) (entente.Page, error) {
	var (
		after store.Cursor
		err   error
	)
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
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return entente.Page{}, fmt.Errorf("query collection %s: %w", q.Collection, err)
	}
	defer rows.Close()
	var (
		page    entente.Page
		lastPos store.Cursor
	)
	if buf != nil {
		page.Entries = buf[:0]
	} else {
		page.Entries = make([]entente.ObjectEntry, 0, pageCap(q, limit))
	}
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
	if err := rows.Err(); err != nil {
		return entente.Page{}, fmt.Errorf("query collection %s: %w", q.Collection, err)
	}
	if page.More {
		page.Next = store.EncodeCursor(lastPos, collID, q)
	}
	return page, nil
}

// pageCap is the capacity a page of q is allocated with: the page's
// limit up to 128 entries, and for the objects named by id (a Get
// Object), one entry per id when only the latest versions are asked
// (the slice grows when more versions match).
func pageCap(q entente.ObjectQuery, limit int) int {
	n := min(limit, 128)
	if len(q.IDs) > 0 && q.Versions.IsZero() {
		n = min(n, len(q.IDs))
	}
	return n
}

// maxIDSeek is the largest number of ids a query looks up one by one in the
// id index.
const maxIDSeek = 1000

// pageQuery returns the SQL and arguments that select up to limit+1
// entries of collection coll after cursor position after (when q.Next is
// set). Every shape walks an index in (date_added, seq) order, so a page
// costs the same wherever it starts.
func pageQuery(coll int64, after store.Cursor, q entente.ObjectQuery, limit int) (string, []any, error) {
	cols := `pos, id, type, spec_version, version, date_added`
	if !q.MetadataOnly {
		cols += `, raw`
	}
	var w where
	w.add(`collection = ?`, coll)
	switch {
	case q.Next != "":
		// The cursor is bound to q.AddedAfter and names an entry added
		// after it, so the seek past the cursor implies the filter.
		w.add(`(date_added, pos) > (?, ?)`, after.DateAdded, after.Seq)
	case !q.AddedAfter.IsZero():
		n, ok := store.UnixNano(q.AddedAfter)
		if !ok {
			if q.AddedAfter.After(time.Unix(0, 0)) {
				n = math.MaxInt64
			} else {
				n = math.MinInt64
			}
		}
		w.add(`date_added > ?`, n)
	}
	switch {
	case len(q.IDs) > maxIDSeek:
		hashes := make([]string, len(q.IDs))
		for i, id := range q.IDs {
			hashes[i] = strconv.FormatInt(idHash(id), 10)
		}
		w.conds = append(w.conds, `id_hash IN (`+strings.Join(hashes, ",")+`)`)
	case len(q.IDs) > 0:
		// Bound, not written into the query: a lookup of n ids is then
		// the same text whatever the ids, which the read connections
		// keep prepared (gatedConn) instead of parsing it anew.
		w.conds = append(w.conds, `id_hash IN (`+placeholders(len(q.IDs))+`)`)
		for _, id := range q.IDs {
			w.args = append(w.args, idHash(id))
		}
	}
	w.in("id", q.IDs)
	scanType, scan := store.ScanType(q.Types)
	if scan {
		w.conds = append(w.conds, `type = '`+scanType+`'`)
	} else {
		w.in("type", q.Types)
	}
	w.in("spec_version", q.SpecVersions)
	if err := w.versions(q.Versions); err != nil {
		return "", nil, err
	}
	from := `objects`
	if scan && len(q.IDs) == 0 {
		// Relationships or sightings only: walk their partial index
		// (migration 0900), which holds nothing else.
		from = `objects INDEXED BY objects_` + scanType + `s`
	}
	if len(q.IDs) > 0 && len(q.IDs) <= maxIDSeek {
		// A few ids: seek each through the id index and sort what is
		// found (the versions of those objects), rather than walk the
		// collection in date_added order looking for them.
		from = `objects INDEXED BY objects_id_hash`
	}
	// The limit is written out, not bound: SQLite re-prepares a statement
	// whose LIMIT is a parameter each time it is bound (its value may
	// change the plan), which parsed every object GET's query twice.
	conds := strings.Join(w.conds, " AND ")
	order := ` ORDER BY date_added, pos LIMIT ` + strconv.Itoa(limit+1)
	if from == `objects` && !latestOnly(q.Versions) {
		// Versions other than the latest: the latest ones are in
		// objects_latest, the others in objects_superseded (migration
		// 1810), and SQLite merges the two walks in order (MERGE (UNION
		// ALL)), reading no more of either than the page needs.
		sel := `SELECT ` + cols + ` FROM objects WHERE ` + conds
		args := append(slices.Clip(w.args), w.args...)
		return sel + ` AND is_latest = 1 UNION ALL ` + sel + ` AND is_latest = 0` + order, args, nil
	}
	return `SELECT ` + cols + ` FROM ` + from + ` WHERE ` + conds + order, w.args, nil
}

// latestOnly reports whether filter f selects the latest versions alone
// (which objects_latest holds).
func latestOnly(f entente.VersionFilter) bool {
	return f.IsZero() || (!f.All && f.Last && !f.First && len(f.At) == 0)
}

// DeleteObjects deletes versions of one object; see
// [store.Store.DeleteObjects]. The zero VersionFilter deletes the latest
// version. The object's remaining versions get their latest and first
// flags recomputed.
func (s *Store) DeleteObjects(ctx context.Context, collection, id string, versions entente.VersionFilter, specVersions []string) (int, error) {
	var deleted int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		coll, _, err := collectionSeq(ctx, tx, collection)
		if err != nil {
			return err
		}
		var w where
		w.add(`collection = ?`, coll)
		w.add(`id_hash = ?`, idHash(id))
		w.add(`id = ?`, id)
		w.in("spec_version", specVersions)
		if err := w.versions(versions); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM objects WHERE `+strings.Join(w.conds, " AND "), w.args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return entente.Errorf(entente.ENOTFOUND, "object %q has no matching version in collection %q", id, collection)
		}
		deleted = int(n)
		_, err = tx.ExecContext(ctx, `UPDATE objects SET
			is_latest = (version = (SELECT max(version) FROM objects WHERE collection = ?1 AND id_hash = ?3 AND id = ?2)),
			is_first  = (version = (SELECT min(version) FROM objects WHERE collection = ?1 AND id_hash = ?3 AND id = ?2))
			WHERE collection = ?1 AND id_hash = ?3 AND id = ?2`, coll, id, idHash(id))
		if err != nil {
			return fmt.Errorf("recompute version flags: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete %s from collection %s: %w", id, collection, err)
	}
	return deleted, nil
}

// where accumulates the conditions and arguments of a WHERE clause.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) in(column string, values []string) {
	if len(values) == 0 {
		return
	}
	w.conds = append(w.conds, column+` IN (`+placeholders(len(values))+`)`)
	for _, v := range values {
		w.args = append(w.args, v)
	}
}

// versions adds the condition of a version filter: the latest version
// when f is zero, nothing when f.All, else the union of the selectors.
func (w *where) versions(f entente.VersionFilter) error {
	switch {
	case f.All:
		return nil
	case f.IsZero():
		w.add(`is_latest = 1`)
		return nil
	}
	var ors []string
	if f.First {
		ors = append(ors, `is_first = 1`)
	}
	if f.Last {
		ors = append(ors, `is_latest = 1`)
	}
	if len(f.At) > 0 {
		for _, t := range f.At {
			n, ok := store.UnixNano(t)
			if !ok {
				return entente.Errorf(entente.EINVALID, "version %s is out of range", t.UTC().Format(time.RFC3339Nano))
			}
			w.args = append(w.args, n)
		}
		ors = append(ors, `version IN (`+placeholders(len(f.At))+`)`)
	}
	w.conds = append(w.conds, `(`+strings.Join(ors, " OR ")+`)`)
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
