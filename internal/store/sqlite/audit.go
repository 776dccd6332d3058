package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/store"
)

// AuditFileName is the audit database file's name inside the data
// directory.
const AuditFileName = "audit.db"

//go:embed migrations_audit/*.sql
var auditMigrations embed.FS

// auditLog is the audit log's database file, beside the objects'. Every
// read by a partner appends to it before anything leaves: in a file of
// its own, those appends neither queue behind the objects' writer (a
// large ingest) nor invalidate the page caches of the connections that
// read objects, as any commit to the objects' file does.
type auditLog struct {
	write *sql.DB // one connection: appends are serialised
	read  *sql.DB // read-only connections for queries
	ckpt  *sql.DB // one connection for background checkpoints
	wal   *walKeeper
	// appendRelease inserts a release's row, prepared once.
	appendRelease *sql.Stmt
	writes        atomic.Int64 // commits since the last checkpoint
	commits       atomic.Int64 // commits since the file was opened (tests)
	// wake tells the store's checkpointer, waiting for a write, of one
	// (see Store.checkpointer); the store's commits use it too.
	wake chan struct{}
	// relQueue holds the releases and records waiting to be appended
	// (AppendRelease, AppendAudit); relFlushing is
	// set while one caller commits them (see AppendRelease);
	// releaseCommits counts those commits.
	relMu          sync.Mutex
	relQueue       []*releaseWait
	relFlushing    bool
	releaseCommits atomic.Int64

	// The index of releases by object (audit_objects) is written after
	// the releases, in batches (see indexPending): idxPending holds the
	// index rows of the releases committed since the last batch, in
	// sequence order, and indexed is the sequence up to which every
	// release is indexed. A query by object reads the index up to
	// indexed and the releases after it themselves (auditWhere).
	idxMu      sync.Mutex
	idxPending []pendingIndex
	indexed    atomic.Int64
	// idxRun serialises batches (the checkpointer's ticks, close);
	// idxHold, in tests only, keeps the ticks from indexing.
	idxRun  sync.Mutex
	idxHold atomic.Bool
}

// pendingIndex is the index by object of one release row not yet
// written to audit_objects.
type pendingIndex struct {
	seq  int64
	rows []audit.IndexRow
}

// openAudit opens (creating it if needed) the audit database in
// directory dir and applies its pending migrations.
func openAudit(ctx context.Context, dir string, walOpts walOptions) (*auditLog, error) {
	path := filepath.Join(dir, AuditFileName)
	a := &auditLog{wake: make(chan struct{}, 1)}
	var err error
	fail := func(err error) (*auditLog, error) {
		a.close()
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	if a.write, err = sql.Open("sqlite", dsnOf(path)); err != nil {
		return fail(err)
	}
	a.write.SetMaxOpenConns(1)
	a.write.SetMaxIdleConns(1)
	a.write.SetConnMaxLifetime(0)
	a.write.SetConnMaxIdleTime(0)
	if err := migrate(ctx, a.write, auditMigrations, "migrations_audit"); err != nil {
		return fail(err)
	}
	if a.appendRelease, err = a.write.PrepareContext(ctx, `INSERT INTO audit (time, actor, action, partner, object_id, version, rule, detail, versions)
		VALUES (?, ?, ?, ?, '', 0, '', ?, ?) RETURNING seq`); err != nil {
		return fail(err)
	}
	gate := newReadGate(2 * walOpts.wait)
	if a.read, err = gatedDB(dsnOf(path, "query_only(1)"), gate); err != nil {
		return fail(err)
	}
	a.read.SetMaxOpenConns(2)
	a.read.SetMaxIdleConns(2)
	if a.ckpt, err = sql.Open("sqlite", dsnOf(path)); err != nil {
		return fail(err)
	}
	a.ckpt.SetMaxOpenConns(1)
	if a.wal, err = newWALKeeper(ctx, "audit", path, a.ckpt, a.write, gate, walOpts); err != nil {
		return fail(err)
	}
	return a, nil
}

// inTx runs fn in a write transaction of the audit database.
func (a *auditLog) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := inTx(ctx, a.write, fn); err != nil {
		return err
	}
	a.wrote()
	return nil
}

// wrote counts a commit of the audit database and wakes the
// checkpointer if it waits for one.
func (a *auditLog) wrote() {
	a.writes.Add(1)
	a.commits.Add(1)
	wake(a.wake)
}

// wake wakes the checkpointer waiting on c, if it waits.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// checkpoint copies committed WAL frames into the audit database file
// when there were appends, and keeps the log within its limit (see
// walKeeper).
func (a *auditLog) checkpoint(now time.Time) {
	if !a.idxHold.Load() {
		// A batch that fails stays pending, and is tried again on the
		// next tick, at close, or at the next open; queries by object
		// read the releases it covers meanwhile.
		_ = a.indexPending(context.Background())
	}
	a.wal.tick(now, a.writes.Swap(0) > 0)
}

// close checkpoints the WAL into the file (best effort) and closes the
// connections.
func (a *auditLog) close() error {
	var errs []error
	if a.write != nil && !a.idxHold.Load() {
		errs = append(errs, a.indexPending(context.Background()))
	}
	if a.appendRelease != nil {
		errs = append(errs, a.appendRelease.Close())
	}
	if a.write != nil {
		_, _ = a.write.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	}
	for _, db := range []*sql.DB{a.ckpt, a.read, a.write} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// moveLegacyAudit moves the audit log that stores made before the audit
// database existed (tables audit and audit_objects of the objects'
// file) into the audit database, keeping every record's sequence: the
// copy is one transaction of the audit database, made unless that
// database already holds records (a copy made before a crash); then the
// old tables are dropped. A store without them has nothing to move.
func (s *Store) moveLegacyAudit(ctx context.Context) error {
	var n int
	if err := s.write.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('audit', 'audit_objects')`).Scan(&n); err != nil {
		return fmt.Errorf("move audit log: %w", err)
	}
	if n == 0 {
		return nil
	}
	if n == 2 {
		if err := s.copyLegacyAudit(ctx); err != nil {
			return fmt.Errorf("move audit log to %s: %w", AuditFileName, err)
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DROP TRIGGER IF EXISTS audit_no_update`, `DROP TRIGGER IF EXISTS audit_no_delete`,
			`DROP TRIGGER IF EXISTS audit_objects_no_update`, `DROP TRIGGER IF EXISTS audit_objects_no_delete`,
			`DROP TABLE IF EXISTS audit_objects`, `DROP TABLE IF EXISTS audit`,
			`DELETE FROM sqlite_sequence WHERE name = 'audit'`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("move audit log: drop the old tables: %w", err)
	}
	return nil
}

// copyLegacyAudit copies the old audit tables of the objects' file into
// the audit database, unless it already holds records.
func (s *Store) copyLegacyAudit(ctx context.Context) error {
	conn, err := s.audit.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS legacy`, s.path); err != nil {
		return fmt.Errorf("attach %s: %w", s.path, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE legacy`)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM main.audit)`).Scan(&have); err != nil {
		return err
	}
	if have == 1 {
		return nil
	}
	for _, q := range []string{
		`INSERT INTO main.audit (seq, time, actor, action, partner, object_id, version, rule, detail, versions)
			SELECT seq, time, actor, action, partner, object_id, version, rule, detail, versions FROM legacy.audit ORDER BY seq`,
		`INSERT INTO main.audit_objects (bucket, seq, hashes) SELECT bucket, seq, hashes FROM legacy.audit_objects`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// auditChunk is how many rows one INSERT statement writes to the audit
// database (see insertChunks).
const auditChunk = 500

// AppendAudit appends records to the audit log, all or nothing. Its
// commit is shared with the releases and other appends waiting at the
// same time (see AppendRelease): a CERT's correlation appends the audit
// records of its alert changes while its pushes append their releases,
// and each append was a commit, an fsync, of its own before (issue 16).
// It returns once the records are durable.
func (s *Store) AppendAudit(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	rows := make([]any, 0, 8*len(recs))
	for _, r := range recs {
		t, ok := store.UnixNano(r.Time)
		if !ok || r.Time.IsZero() {
			return fmt.Errorf("append %d audit records: %w", len(recs),
				entente.Errorf(entente.EINVALID, "audit record of %s: time is missing or out of range", r.ObjectID))
		}
		var v int64
		if !r.Version.IsZero() {
			v, _ = store.UnixNano(r.Version)
		}
		rows = append(rows, t, r.Actor, r.Action, r.Partner, r.ObjectID, v, r.Rule, r.Detail)
	}
	w := &releaseWait{done: make(chan error, 1), records: rows}
	if err := s.audit.appendWait(ctx, w); err != nil {
		return fmt.Errorf("append %d audit records: %w", len(recs), err)
	}
	return nil
}

// insertRecords inserts audit records, given as the 8 values of each
// row in turn, in tx (see insertChunks).
func insertRecords(ctx context.Context, tx *sql.Tx, rows []any, full **sql.Stmt) error {
	return insertChunks(ctx, tx, `INSERT INTO audit (time, actor, action, partner, object_id, version, rule, detail) VALUES `, 8, rows, full)
}

// insertChunks inserts rows of cols values each, given in turn, with
// the statement head ("INSERT INTO t (a, b) VALUES "): a multi-row
// INSERT costs far less per row than one statement per row. Chunks of
// auditChunk rows run with *full (prepared the first time), the rest in
// one statement.
func insertChunks(ctx context.Context, tx *sql.Tx, head string, cols int, vals []any, full **sql.Stmt) error {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	for start := 0; start < len(vals); start += cols * auditChunk {
		chunk := vals[start:min(start+cols*auditChunk, len(vals))]
		n := len(chunk) / cols
		query := head + row + strings.Repeat(", "+row, n-1)
		if n == auditChunk {
			if *full == nil {
				var err error
				if *full, err = tx.PrepareContext(ctx, query); err != nil {
					return err
				}
			}
			if _, err := (*full).ExecContext(ctx, chunk...); err != nil {
				return err
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, query, chunk...); err != nil {
			return err
		}
	}
	return nil
}

// AppendRelease appends the egress record of a release and its index by
// object. Releases appended at the same time share one transaction of
// the audit database (group commit): a CERT that pushes one new
// sighting to each of its 77 peers appended 77 records one commit (one
// fsync) after the other on the audit file's one connection, and the
// last peer's push waited for all of them. It returns once its record is
// durable.
func (s *Store) AppendRelease(ctx context.Context, r audit.Release) error {
	w := &releaseWait{done: make(chan error, 1), versions: r.Len(), partner: r.Partner}
	for _, part := range r.Split() {
		packed, idx, err := part.Pack()
		if err != nil {
			return err // an invalid release fails alone, before any write
		}
		w.parts = append(w.parts, packedRelease{part: part, packed: packed, idx: idx})
	}
	if err := s.audit.appendWait(ctx, w); err != nil {
		return fmt.Errorf("append release of %d versions to %s: %w", w.versions, w.partner, err)
	}
	return nil
}

// appendWait queues w and returns the outcome of the commit that holds
// it: the first to arrive commits what waits, until nothing does; the
// others wait for the commit that holds their rows.
func (a *auditLog) appendWait(ctx context.Context, w *releaseWait) error {
	a.relMu.Lock()
	a.relQueue = append(a.relQueue, w)
	flush := !a.relFlushing
	a.relFlushing = true
	a.relMu.Unlock()
	if flush {
		a.flushReleases(context.WithoutCancel(ctx))
	}
	return <-w.done
}

// releaseWait is a release (parts) or audit records (records, 8 values
// a row) waiting to be appended; done receives the outcome of the
// commit that holds it.
type releaseWait struct {
	parts    []packedRelease
	records  []any
	versions int
	partner  string
	done     chan error
}

// packedRelease is one record of a release, packed.
type packedRelease struct {
	part   audit.Release
	packed []byte
	idx    []audit.IndexRow
}

// flushReleases appends the releases and records waiting, all of them in
// one transaction, until none waits.
func (a *auditLog) flushReleases(ctx context.Context) {
	for {
		a.relMu.Lock()
		batch := a.relQueue
		a.relQueue = nil
		if len(batch) == 0 {
			a.relFlushing = false
			a.relMu.Unlock()
			return
		}
		a.relMu.Unlock()
		var fresh []pendingIndex
		err := a.inTx(ctx, func(tx *sql.Tx) error {
			fresh = fresh[:0]
			ins := tx.StmtContext(ctx, a.appendRelease)
			var full *sql.Stmt // a whole chunk of records, prepared once
			defer func() {
				if full != nil {
					full.Close()
				}
			}()
			for _, w := range batch {
				if len(w.records) > 0 {
					if err := insertRecords(ctx, tx, w.records, &full); err != nil {
						return err
					}
				}
				for _, p := range w.parts {
					var seq int64
					if err := ins.QueryRowContext(ctx, p.part.Time.UnixNano(), p.part.Actor, audit.Egress, p.part.Partner, p.part.Detail, p.packed).Scan(&seq); err != nil {
						return err
					}
					fresh = append(fresh, pendingIndex{seq: seq, rows: p.idx})
				}
			}
			return nil
		})
		a.releaseCommits.Add(1)
		if err == nil && len(fresh) > 0 {
			// Committed in sequence order (one flush at a time), so
			// pending in that order.
			a.idxMu.Lock()
			a.idxPending = append(a.idxPending, fresh...)
			a.idxMu.Unlock()
		}
		for _, w := range batch {
			w.done <- err
		}
	}
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
		where, args := auditWhere(q, from, s.audit.indexed.Load())
		rows, err := s.audit.read.QueryContext(ctx, `SELECT seq, time, actor, action, partner, object_id, version, rule, detail, versions FROM audit WHERE `+
			strings.Join(where, " AND ")+` ORDER BY seq LIMIT `+strconv.Itoa(batch), args...)
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
		err = rows.Err()
		rows.Close()
		if err != nil {
			return audit.Page{}, fmt.Errorf("query audit: %w", err)
		}
		if !more || n < batch {
			return pg.Page(), nil
		}
	}
}

// auditWhere translates an audit query into SQL conditions with ?
// placeholders on the rows from row sequence from on. The object
// condition selects single records of the object, the releases whose
// index lists its hash, and the releases after indexed, the sequence up
// to which releases are indexed (all candidates: the pager keeps only
// the versions of the object), each from the cursor on, so that paging
// through a popular object reads its index bucket once.
func auditWhere(q audit.Query, from, indexed int64) ([]string, []any) {
	where := []string{"seq >= ?"}
	args := []any{from}
	for _, f := range []struct{ col, val string }{{"partner", q.Partner}, {"action", q.Action}} {
		if f.val != "" {
			where, args = append(where, f.col+" = ?"), append(args, f.val)
		}
	}
	if q.ObjectID != "" {
		bk := audit.ObjectBuckets(q.ObjectID)
		where = append(where, `seq IN (SELECT seq FROM audit WHERE object_id = ? AND seq >= ? UNION ALL
			SELECT seq FROM audit_objects WHERE bucket = ? AND seq >= ? AND instr(hashes, ?) > 0 UNION ALL
			SELECT seq FROM audit_objects WHERE bucket = ? AND seq >= ? AND instr(hashes, ?) > 0 UNION ALL
			SELECT seq FROM audit WHERE seq >= ? AND versions IS NOT NULL)`)
		args = append(args, q.ObjectID, from, bk[0].Bucket, from, bk[0].Key, bk[1].Bucket, from, bk[1].Key, max(from, indexed+1))
	}
	if !q.From.IsZero() {
		n, _ := store.UnixNano(q.From)
		where, args = append(where, "time >= ?"), append(args, n)
	}
	if !q.To.IsZero() {
		n, _ := store.UnixNano(q.To)
		where, args = append(where, "time < ?"), append(args, n)
	}
	return where, args
}
