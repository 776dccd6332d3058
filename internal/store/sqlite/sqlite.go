// Package sqlite is the embedded, default [store.Store] backend: SQLite
// database files (pure Go, modernc.org/sqlite) in a data directory, one
// for everything but the audit log ([FileName]) and one for the audit
// log ([AuditFileName]).
//
// Writes go through a single connection, so they are serialised: every
// addition reads the collection's last date_added and takes insertion
// sequence numbers while no other write runs, and commit order equals
// (date_added, seq) order. AddObjects calls are handed to one writer
// goroutine, which commits the calls waiting at the same time in one
// transaction (group commit), each in its own savepoint, so concurrent
// callers share one fsync. Reads use a separate pool of read-only
// connections, which WAL mode lets run concurrently with the writer, each
// on a consistent snapshot. WAL checkpoints run in the background.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-cti/entente/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the database file's name inside the data directory.
const FileName = "entente.db"

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a [store.Store] on one SQLite database file.
type Store struct {
	path  string
	write *sql.DB // one connection: writers are serialised
	read  *sql.DB // read-only connections
	// search are the read-only connections of full-text search: they
	// map the file (see Open).
	search *sql.DB
	ckpt   *sql.DB // one connection for background checkpoints

	// Statements of AddObjects, prepared once on the writer.
	lookup, insert *sql.Stmt
	// raw is the writer's full-chunk insert on the driver's connection.
	raw rawInsert
	// w holds the writer's other statements, r the readers': a
	// statement prepared once costs nothing to run again, where
	// preparing it each time costs tens of microseconds in modernc.
	w writerStmts
	r readerStmts
	// ids are the writer's sets of stored id hashes (see idSet).
	ids idSets
	// colls are the collections found by ID or alias (see readCollection).
	colls collectionCache

	writes     atomic.Int64  // write transactions since the last checkpoint
	wake       chan struct{} // the audit log's: see checkpointer
	ticks      atomic.Int64  // the checkpointer's ticks (for tests)
	wal        *walKeeper
	stop, done chan struct{}

	adds       chan *addRequest // AddObjects calls for the writer goroutine
	writerDone chan struct{}

	// audit is the audit log's own database file.
	audit *auditLog

	// searchAt is when the writer last indexed for search (searchindex.go);
	// searchCurrent is set while the index holds every object committed
	// (see indexInline). Only the writer goroutine uses them.
	searchAt      time.Time
	searchCurrent bool
	// idleSearch says the writer indexes for search when idle and under
	// a constant load (not in a one-shot process: OpenOneShot).
	idleSearch bool

	// orderMu makes deciding a call's date_added and queueing it one
	// step; lastAdded is the greatest date_added decided so far.
	orderMu   sync.Mutex
	lastAdded int64
	// backlog is what the writer has left of the submissions, which
	// Submit keeps within maxAhead objects (see Submit).
	backlog  backlog
	maxAhead int64
	// lingerObjects is the group of submissions the writer lingers to
	// gather (see linger); 0 never lingers.
	lingerObjects int
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the store in directory dir, in file
// dir/entente.db, and applies any pending schema migration.
func Open(ctx context.Context, dir string) (*Store, error) {
	return open(ctx, dir, serveWAL, serveWriter)
}

// OpenOneShot is [Open] for a command that writes what it has and exits
// (an offline ingest or import): its writer's page cache is small and
// recycled from one transaction to the next. A serving node's writer
// keeps 256 MiB of pages it will read again; a one-shot process filled
// that many fresh buffers once, and on a virtual machine every 4 KiB of
// them was a page fault costing about 15 µs (ATT&CK Enterprise: some
// 24,000 faults). A transaction still never spills mid-way (cache_spill
// keeps the serving writer's threshold), so what it writes is the same.
// Nor does its writer index for search while it waits for the next
// addition (searchindex.go): the process exits before the index could
// serve a search, and a bulk import paid for every object it indexed so
// with CPU the import needed (an import of the shared feeds indexed
// 38,000 of its 773,000 objects so, for 1.3 CPU-s). What it stores is
// indexed by the next process that opens the store (a serving node's
// writer when idle, or any search, see catchUpSearch).
func OpenOneShot(ctx context.Context, dir string) (*Store, error) {
	return open(ctx, dir, defaultWAL, oneShotWriter)
}

// The writer connection's cache settings. The serving writer's cache
// holds a whole large addition (ATT&CK Enterprise is about 70 MB of
// pages) without spilling it mid-transaction. The one-shot writer's
// holds the pages a batch of 5,000 objects dirties (about 13 MiB) and
// the indexes' hot pages; beyond it, clean pages are recycled, and dirty
// ones spill only past the same 256 MiB (the spill threshold is the
// greater of cache_size and cache_spill; negative, it is in KiB, and a
// positive one is also read as a boolean modulo 256, so 32768 would turn
// spilling off).
//
// The writer connection runs without foreign-key checks, for good. The
// schema's one foreign key (an object's collection) holds by construction:
// objects are inserted by the writer alone, naming the collection it read
// in the same transaction, and collections are never deleted. With the
// checks on, SQLite journals every page a multi-row INSERT touches, to
// undo the statement alone (~12 % of a bulk import's writer); and turning
// them off and on around each transaction, as the writer did, expires
// every statement prepared on the connection (a flag pragma does), so
// the writer re-prepared its statements after every commit (~10 % of the
// drill's CPU).
var (
	serveWriter   = writerConfig{pragmas: []string{"cache_size(-262144)", "foreign_keys(0)"}, idleSearch: true}
	oneShotWriter = writerConfig{pragmas: []string{"cache_size(-16384)", "cache_spill(-262144)", "foreign_keys(0)"}}
)

// writerConfig is how a store's writer works: its connection's pragmas,
// and whether it indexes for search when idle and under a constant load
// (searchindex.go); without, only a search (catchUpSearch, IndexSearch)
// brings the index up to date.
type writerConfig struct {
	pragmas    []string
	idleSearch bool
}

// open is Open with the bounds of the write-ahead logs and the writer's
// settings.
func open(ctx context.Context, dir string, walOpts walOptions, writer writerConfig) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite store: create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	if err := create(ctx, path, pageSize); err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	dsn := func(extra ...string) string { return dsnOf(path, extra...) }
	write, err := sql.Open("sqlite", dsn(writer.pragmas...))
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	s := &Store{path: path, write: write, w: newWriterStmts(), r: newReaderStmts(), maxAhead: maxSubmittedAhead, lingerObjects: lingerObjects,
		idleSearch: writer.idleSearch}
	if err := s.migrate(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	if s.lookup, err = write.PrepareContext(ctx, lookupSQL); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: prepare: %w", path, err)
	}
	if s.insert, err = write.PrepareContext(ctx, insertFull); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: prepare: %w", path, err)
	}
	if err := prepareAll(ctx, write, &s.w.collection, &s.w.maxSeq, &s.w.lastAdded, &s.w.savepoint, &s.w.rollbackTo, &s.w.release, &s.w.putStatus,
		&s.w.setProvenance, &s.w.peerSync, &s.w.peerSyncKeep, &s.w.putAlertState); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	// Every read passes the gate of the file's log (see readGate).
	gate := newReadGate(2 * walOpts.wait)
	read, err := gatedDB(dsn("cache_size(-65536)", "query_only(1)"), gate)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	read.SetMaxOpenConns(4)
	read.SetMaxIdleConns(4)
	read.SetConnMaxIdleTime(0)
	read.SetConnMaxLifetime(0)
	s.read = read
	if err := prepareAll(ctx, read, &s.r.collection, &s.r.status, &s.r.provenanceSome, &s.r.latestAdded); err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	// Searches read through connections of their own that map the
	// database file (up to 2 GiB, SQLite's own bound) rather than copy
	// its pages into each connection's cache, opened and warmed here: a
	// search right after a start reads what the operating system holds
	// as fast as one after hours (the first search after reopening a
	// million objects took 32 ms, the next 1.5 ms). Only searches: a
	// mapping is remapped as the file grows, which hundreds of nodes in
	// one drill process, all writing, felt on every read.
	search, err := gatedDB(dsn("cache_size(-16384)", "query_only(1)", "mmap_size(2147418112)"), gate)
	if err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	search.SetMaxOpenConns(searchConns)
	search.SetMaxIdleConns(searchConns)
	search.SetConnMaxIdleTime(0)
	search.SetConnMaxLifetime(0)
	s.search = search
	if err := s.warmReaders(ctx, searchConns); err != nil {
		search.Close()
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	ckpt, err := sql.Open("sqlite", dsn())
	if err != nil {
		search.Close()
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	ckpt.SetMaxOpenConns(1)
	s.ckpt = ckpt
	if s.wal, err = newWALKeeper(ctx, "objects", path, ckpt, write, gate, walOpts); err != nil {
		search.Close()
		read.Close()
		write.Close()
		ckpt.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	// The writer goroutine empties the objects' log between its
	// transactions (walKeeper.afterWrite).
	s.wal.byWriter = true
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	s.adds = make(chan *addRequest, queueDepth)
	if err := write.QueryRowContext(ctx, `SELECT coalesce(max(last_added), 0) FROM collections`).Scan(&s.lastAdded); err != nil {
		search.Close()
		read.Close()
		write.Close()
		ckpt.Close()
		return nil, fmt.Errorf("open sqlite store %s: read last date_added: %w", path, err)
	}
	if s.audit, err = openAudit(ctx, dir, walOpts); err != nil {
		search.Close()
		read.Close()
		write.Close()
		ckpt.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	s.wake = s.audit.wake
	err = s.moveLegacyAudit(ctx)
	if err == nil {
		err = s.audit.catchUpIndex(ctx)
	}
	if err != nil {
		s.audit.close()
		search.Close()
		read.Close()
		write.Close()
		ckpt.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	s.writerDone = make(chan struct{})
	go s.checkpointer(walOpts.interval)
	go s.writer()
	return s, nil
}

// pageSize is the page size of the objects' database files the store
// creates. SQLite's default, 4 KiB, writes each page of the log with two
// system calls (frame header, page), and a checkpoint reads and writes it
// once more: the ATT&CK ingest made 53,002 pwrite64 and 18,305 pread64
// calls, costly on virtual machines. With 8 KiB pages it makes 24,304 and
// 8,442, with fewer page faults; the TAXII write path makes half the
// calls for the same CPU, though on a large collection each commit
// rewrites whole 8 KiB pages of the id-hash index and writes 20-35 % more
// bytes (docs/performance.md). 16 KiB pages halve the
// calls again but fault more: modernc.org/sqlite's allocator gives each
// page-cache buffer larger than 16 KiB a mapping of its own, which the
// readers' caches, emptied after every commit, return and fault in again.
// A store created earlier keeps its page size (changing it needs a VACUUM
// outside WAL mode).
const pageSize = 8192

// create creates the database file at path, if there is none, with the
// given page size: the page size of a database in WAL mode is fixed once
// its first page is written, and the DSN's pragmas set journal_mode before
// any other (modernc.org/sqlite applies them in lexical order).
func create(ctx context.Context, path string, pageSize int) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // there is one (or the error shows when it is opened)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d", pageSize)); err != nil {
		return fmt.Errorf("create: page size: %w", err)
	}
	// Switching to WAL writes the first page, which fixes the page size.
	if _, err := db.ExecContext(ctx, "PRAGMA journal_mode = WAL"); err != nil {
		return fmt.Errorf("create: journal mode: %w", err)
	}
	return db.Close()
}

// busyTimeout is how long a connection waits for a lock another holds.
const busyTimeout = 10 * time.Second

// pragmas are the settings of every connection to a store's database
// files.
//
// synchronous(FULL): in WAL mode, NORMAL syncs the WAL only at
// checkpoints, so a transaction that has committed (and been
// acknowledged to a client) can be lost if the machine loses power or the
// OS crashes before the next checkpoint. FULL syncs the WAL at every
// commit, which makes an acknowledged object, or an audit record written
// before the data it records left, durable.
var pragmas = []string{
	"journal_mode(WAL)",
	"synchronous(FULL)",
	fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
	"foreign_keys(1)",
	"temp_store(MEMORY)",
	// Checkpoints run in the background (see checkpointer), not inside
	// the commit of whichever write crosses the threshold.
	"wal_autocheckpoint(0)",
	"journal_size_limit(67108864)",
}

// dsnOf returns the data source name of database file path with the
// store's pragmas and extra ones; an extra pragma replaces the store's
// pragma of the same name (the driver runs them sorted, so both would run
// and the greater value win).
func dsnOf(path string, extra ...string) string {
	v := url.Values{}
	name := func(p string) string { n, _, _ := strings.Cut(p, "("); return n }
	for _, p := range pragmas {
		if !slices.ContainsFunc(extra, func(e string) bool { return name(e) == name(p) }) {
			v.Add("_pragma", p)
		}
	}
	for _, p := range extra {
		v.Add("_pragma", p)
	}
	v.Set("_txlock", "immediate")
	return "file:" + path + "?" + v.Encode()
}

// checkpointer copies committed WAL frames into the database files in the
// background, every interval, and keeps each log within its limit (see
// walKeeper): commits never checkpoint themselves (wal_autocheckpoint is
// off), so no writer pays for it. When neither file has anything left
// for a tick to do without a new write (walKeeper.idle), it waits for the
// next commit instead of ticking: an idle node's process was woken four
// times a second by it, some forty context switches a second, which 259
// node processes on one host multiply. Likewise, when all that is left
// is a checkpoint deferred until a file has been quiet (walKeeper.rest),
// it waits for that time or the next commit, whichever comes first,
// rather than tick four times a second to find the file not yet quiet: a
// node taking a push every second or two during an outbreak ticked
// without pause (issue 16).
func (s *Store) checkpointer(interval time.Duration) {
	defer close(s.done)
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.ticks.Add(1)
			s.audit.checkpoint(now)
			s.wal.tick(now, s.writes.Swap(0) > 0)
		}
		objects, ok1 := s.wal.rest()
		audit, ok2 := s.audit.wal.rest()
		if ok1 && ok2 && s.writes.Load() == 0 && s.audit.writes.Load() == 0 {
			// A commit after the check has left its token in s.wake.
			until := objects
			if until.IsZero() || (!audit.IsZero() && audit.Before(until)) {
				until = audit
			}
			if until.IsZero() {
				select {
				case <-s.stop:
					return
				case <-s.wake:
				}
			} else if d := time.Until(until); d > interval {
				t.Reset(d)
				select {
				case <-s.stop:
					return
				case <-s.wake:
					// A commit: tick as usual, which defers again.
					t.Stop()
				case now := <-t.C:
					// Quiet long enough: the deferred checkpoints run.
					s.ticks.Add(1)
					s.audit.checkpoint(now)
					s.wal.tick(now, s.writes.Swap(0) > 0)
				}
			}
		}
		t.Reset(interval)
	}
}

// wrote counts a commit of the objects' database and wakes the
// checkpointer if it waits for one.
func (s *Store) wrote() {
	s.writes.Add(1)
	wake(s.wake)
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Ping checks that both connection pools can reach the database.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite store: %w", err)
	}
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite store: %w", err)
	}
	if err := s.audit.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite store: audit: %w", err)
	}
	return nil
}

// Close closes the database. It checkpoints the WAL into the database
// file first, best effort.
func (s *Store) Close() error {
	close(s.stop)
	<-s.done
	<-s.writerDone
	_, _ = s.write.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	return errors.Join(s.raw.close(s.write), s.lookup.Close(), s.insert.Close(), s.w.close(), s.r.close(), s.ckpt.Close(), s.search.Close(), s.read.Close(), s.write.Close(), s.audit.close())
}

// migrate applies the embedded migrations that the database lacks, each
// in its own transaction, in file-name order.
func (s *Store) migrate(ctx context.Context) error {
	return migrate(ctx, s.write, migrations, "migrations")
}

// migrate applies the migrations in directory dir of fsys that database
// db (one connection) lacks, each in its own transaction, in file-name
// order.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS, dir string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name    TEXT PRIMARY KEY,
		applied INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	files, err := store.Migrations(fsys, dir)
	if err != nil {
		return err
	}
	for _, m := range files {
		err := inTx(ctx, db, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, m.Name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied) VALUES (?, ?)`, m.Name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// inTx runs fn in a write transaction and commits it when fn returns nil
// and ctx is still live.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := inTx(ctx, s.write, fn); err != nil {
		return err
	}
	s.wrote()
	return nil
}

// inTx runs fn in a write transaction on db and commits it when fn
// returns nil and ctx is still live.
func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return storageFull(fmt.Errorf("begin: %w", err))
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return storageFull(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return storageFull(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// execWrite runs one write statement outside a transaction.
// searchConns is the number of connections searches read through.
const searchConns = 2

// warmReaders opens the n connections searches read through and has
// each run a search and a browse as the workbench asks them (every
// collection; a word of the newest object, as a prefix), so that the
// first search after a start does not pay for what a connection reads
// and prepares once: the schema, the search index's structure and
// averages, the statements FTS5 prepares for its index and sizes, the
// upper pages of the index's b-trees, search_docs', search_keys' and the
// collections' (with the file mapped, a page is read by touching it),
// and the read pool's connection that looks collections up. The warming
// stops after warmBudget (what it has read stays read).
func (s *Store) warmReaders(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, warmBudget)
	defer cancel()
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	word, typ, colls := "entente", "indicator", []string(nil)
	var title, t sql.NullString
	err := s.read.QueryRowContext(ctx, `SELECT title, type FROM search_docs ORDER BY seq DESC LIMIT 1`).Scan(&title, &t)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return warmErr(ctx, err)
	default:
		if w := store.SearchWords(title.String); len(w) > 0 {
			word = w[0]
		}
		if t.String != "" {
			typ = t.String
		}
	}
	rows, err := s.read.QueryContext(ctx, `SELECT id FROM collections ORDER BY seq`)
	if err != nil {
		return warmErr(ctx, err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return warmErr(ctx, err)
		}
		colls = append(colls, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return warmErr(ctx, err)
	}
	for range n {
		c, err := s.search.Conn(ctx)
		if err != nil {
			return warmErr(ctx, err)
		}
		conns = append(conns, c)
		for _, q := range []store.SearchQuery{
			{Text: word, Collections: colls, Limit: 50},
			{Types: []string{typ}, Collections: colls, Limit: 50},
		} {
			if _, err := s.searchOn(ctx, c, q); err != nil {
				return warmErr(ctx, err)
			}
		}
	}
	return nil
}

// warmBudget bounds the time warmReaders delays a start by.
const warmBudget = 100 * time.Millisecond

// warmErr is the error of warming the readers: none when the warming
// ran out of time (it only warms).
func warmErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("warm the readers: %w", err)
}

func (s *Store) execWrite(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := s.write.ExecContext(ctx, query, args...)
	if err == nil {
		s.wrote()
	}
	return res, storageFull(err)
}

// A stmt is a statement prepared once on a pool, with its text.
type stmt struct {
	*sql.Stmt
	sql string
}

// writerStmts are the statements the writer runs for every addition.
type writerStmts struct {
	collection                     stmt // seq and last_added of a collection by id or alias
	maxSeq                         stmt // greatest sequence number in use
	lastAdded                      stmt // sets a collection's last_added
	savepoint, rollbackTo, release stmt
	putStatus                      stmt
	setProvenance                  stmt // one provenance record (AddReceived)
	peerSync, peerSyncKeep         stmt // a peer's sync state, with and without a new checkpoint
	putAlertState                  stmt // an alert's lifecycle
}

func (w *writerStmts) close() error {
	return closeAll(w.collection, w.maxSeq, w.lastAdded, w.savepoint, w.rollbackTo, w.release, w.putStatus, w.setProvenance, w.peerSync, w.peerSyncKeep, w.putAlertState)
}

// readerStmts are the statements every request runs.
type readerStmts struct {
	collection stmt // a collection by id or alias, after its seq
	status     stmt // a status resource's body
	// provenanceSome tells whether a collection holds received objects
	// (every read by a partner asks, for every part of its page).
	provenanceSome stmt
	// latestAdded is a collection's seq and greatest date_added (every
	// periodic push asks, see LatestAdded).
	latestAdded stmt
}

func (r *readerStmts) close() error {
	return closeAll(r.collection, r.status, r.provenanceSome, r.latestAdded)
}

// collectionSQL finds a collection by id, else by alias.
const collectionSQL = ` FROM collections WHERE id = ?1 OR alias = ?1 ORDER BY id = ?1 DESC LIMIT 1`

func newWriterStmts() writerStmts {
	return writerStmts{
		collection:    stmt{sql: `SELECT seq, last_added` + collectionSQL},
		maxSeq:        stmt{sql: `SELECT coalesce(max(seq), 0) FROM objects`},
		lastAdded:     stmt{sql: `UPDATE collections SET last_added = ? WHERE seq = ?`},
		savepoint:     stmt{sql: `SAVEPOINT add_objects`},
		rollbackTo:    stmt{sql: `ROLLBACK TO add_objects`},
		release:       stmt{sql: `RELEASE add_objects`},
		putStatus:     stmt{sql: putStatusSQL},
		setProvenance: stmt{sql: setProvenanceSQL},
		peerSync:      stmt{sql: `UPDATE peers SET checkpoint = ?, last_sync = ?, last_error = ? WHERE id = ?`},
		peerSyncKeep:  stmt{sql: `UPDATE peers SET last_sync = ?, last_error = ? WHERE id = ?`},
		putAlertState: stmt{sql: `INSERT INTO alert_states (id, status, updated, body) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated = excluded.updated, body = excluded.body`},
	}
}

func newReaderStmts() readerStmts {
	return readerStmts{
		collection:     stmt{sql: `SELECT seq, ` + collectionColumns + collectionSQL},
		status:         stmt{sql: `SELECT body FROM statuses WHERE id = ?`},
		provenanceSome: stmt{sql: `SELECT EXISTS (SELECT 1 FROM provenance WHERE collection = ?)`},
		// The greater end of the two date_added indexes (NULL when both
		// are empty): two scalar subqueries cost less than a compound one.
		latestAdded: stmt{sql: `SELECT seq, nullif(max(
			coalesce((SELECT max(date_added) FROM objects WHERE collection = collections.seq AND is_latest = 1), -9223372036854775808),
			coalesce((SELECT max(date_added) FROM objects WHERE collection = collections.seq AND is_latest = 0), -9223372036854775808)),
			-9223372036854775808)` + collectionSQL},
	}
}

func prepareAll(ctx context.Context, db *sql.DB, stmts ...*stmt) error {
	for _, st := range stmts {
		var err error
		if st.Stmt, err = db.PrepareContext(ctx, st.sql); err != nil {
			return fmt.Errorf("prepare %q: %w", st.sql, err)
		}
	}
	return nil
}

func closeAll(stmts ...stmt) error {
	var errs []error
	for _, st := range stmts {
		if st.Stmt != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}
