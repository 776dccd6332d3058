package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-cti/entente"
)

// walOptions bound a database file's write-ahead log.
type walOptions struct {
	// limit is the size past which the log is emptied (the same as
	// journal_size_limit, which truncates it to that size whenever SQLite
	// restarts it by itself).
	limit int64
	// interval is how often the checkpointer looks at the log.
	interval time.Duration
	// wait bounds how long a truncating checkpoint waits for readers of
	// old snapshots (those in flight at the read gate, then SQLite's own
	// wait); it holds the write lock and the new reads back meanwhile,
	// so this also bounds the stall it causes them.
	wait time.Duration
	// turn bounds how long a checkpoint that empties the log waits for
	// the writer connection (wait when 0). Writers keep committing
	// meanwhile, so this wait stalls no one, and one group commit of a
	// sustained load (up to maxGroupObjects objects) may hold the
	// connection for longer than wait: 3 of 12 emptyings gave up so in a
	// minute of the 16-client load on a loaded machine.
	turn time.Duration
	// retry is the least time between two emptying checkpoints when the
	// first failed to finish, so that writers are not stalled over and
	// over while a reader holds an old snapshot; and how long the file
	// must see no write before it is truncated.
	retry time.Duration
	// letReadersIn, in tests only, has emptying checkpoints wait for
	// readers without holding new ones back (see readGate).
	letReadersIn bool
	// lazyBytes, when positive, defers a tick's PASSIVE checkpoint while
	// the log in use is smaller than this and the file saw a write within
	// quiet: a file that takes a small commit every few hundred
	// milliseconds is then checkpointed once it pauses (or once its log
	// passes lazyBytes) rather than after every commit, which cost two
	// fsyncs (the log's, then the database file's) each time. Zero
	// checkpoints on every tick with writes.
	lazyBytes int64
	// quiet is how long a file must see no write before a deferred
	// PASSIVE checkpoint runs (see lazyBytes).
	quiet time.Duration
	// keeperEmpties, in tests only, has the keeper's ticks empty the
	// objects' log under writes, competing for the writer connection,
	// as the store did before its writer emptied the log itself (see
	// walKeeper.afterWrite).
	keeperEmpties bool
}

// defaultWAL is how the store keeps its logs.
//
// A log in use smaller than 4 MiB (SQLite's own automatic checkpoint is
// at 1,000 pages) is checkpointed once its file has seen no write for 5
// seconds: in the WAN drill of 130 node processes, the keeper's PASSIVE
// checkpoints after every tick with writes were a third of the nodes'
// fsyncs and 7 % of their CPU; with a quiet second (nodes that take a
// push every second or two) still 4.7 %.
var defaultWAL = walOptions{limit: 64 << 20, interval: 250 * time.Millisecond, wait: 250 * time.Millisecond, turn: time.Second, retry: time.Second,
	lazyBytes: 4 << 20, quiet: 5 * time.Second}

// serveWAL is how a serving node keeps its logs: as defaultWAL, but a
// log in use is left uncheckpointed while the file takes writes until it
// passes 32 MiB (not 4). Under a sustained POST the keeper's PASSIVE
// checkpoints ran every tick once the log passed 4 MiB (10,000 objects
// posted write 10-14 MiB of log), each copying back the pages changed
// since the last one: the pages the next commits rewrite anyway (the
// tails of the table and its indexes, the id-hash index's pages) were
// read from the log and written to the file again and again, 7 % of the
// serve process's CPU with its fsyncs, beside the writer. Deferred, a
// burst's pages are copied once, when the file pauses (walOptions.quiet)
// or the log passes 32 MiB. An offline command keeps defaultWAL: it
// checkpoints beside its writer, not at its close.
var serveWAL = func() walOptions {
	w := defaultWAL
	w.lazyBytes = 32 << 20
	return w
}()

// walKeeper checkpoints one database file's write-ahead log.
//
// Why: a PASSIVE checkpoint copies committed pages into the database file
// without waiting for anyone, but it never empties the log, and SQLite
// restarts the log from its beginning only when a write begins while no
// reader still uses it. Under constant reads there is always such a
// reader, so the log grows without bound (1.22 GB in 60 s of 16 clients,
// issue 16, against a 64 MiB limit) and stays that size when the load
// stops. So the keeper runs a PASSIVE checkpoint on every tick with
// writes, and once the frames in use pass the limit a RESTART checkpoint
// (TRUNCATE when idle): it takes the write lock (waiting for the writer's
// transaction), copies what is left, and waits for the readers of older
// snapshots to finish their statements (new readers read the database
// file, since every page is in it), so that the next commit writes from
// the start of the log. Under sixteen clients that never pause, most
// emptyings gave up so (221 of 308 in ten minutes, issue 16, D4), so the
// keeper holds the file's new reads back at its readGate while it waits:
// the reads in flight finish, none begins, and the checkpoint completes.
// Its waits are bounded: for the writer connection by walOptions.turn,
// for readers (and so the stall of writers and of the reads held back)
// by walOptions.wait. One that gives up is retried after
// walOptions.retry. For the objects' file the writer goroutine runs the
// emptying itself, between two of its transactions (afterWrite); the
// ticks then run the passive checkpoints and, when writes have stopped,
// the truncating one.
type walKeeper struct {
	name string  // "objects" or "audit"
	path string  // the database file; its log is path + "-wal"
	db   *sql.DB // one connection, for PASSIVE checkpoints
	// write is the file's single writer connection. A truncating
	// checkpoint runs on it: it then waits its turn among the process's
	// writers (database/sql hands a released connection to a waiting
	// request) instead of polling SQLite's write lock, which a writer
	// that begins its next transaction at once would keep winning.
	write *sql.DB
	// gate holds the file's new reads back while an emptying checkpoint
	// waits (nil: none is held).
	gate *readGate
	opts walOptions
	// byWriter is set when the file's writer goroutine empties the log
	// between its transactions (afterWrite); the ticks then empty it only
	// when writes have stopped.
	byWriter bool

	// writing is set while the writer goroutine is busy (a group of
	// additions, a batch of the search index, its own emptying): the
	// file is not idle then, however long since the last commit.
	writing atomic.Bool
	// running serialises the checkpoints of the file: two at once, one
	// of them would find SQLite's checkpointer lock taken and give up.
	running sync.Mutex

	mu sync.Mutex
	// retry is set when a checkpoint failed and should run again even
	// without new writes.
	retry bool
	// deferred is set when writes were left uncheckpointed by a tick
	// (walOptions.lazyBytes): a later tick checkpoints them.
	deferred bool
	// next is the earliest time for the next checkpoint that empties the
	// log; lastWrite when the last tick with writes was.
	next, lastWrite time.Time
	// frames is the frames in use in the log at the last checkpoint,
	// pending those it left uncopied; clean is when one last left none.
	frames, pending int64
	clean           time.Time
	// failed is when the last emptying checkpoint gave up waiting for
	// readers, or failed (zero when the last one completed): the writer
	// waits walOptions.retry before it tries again.
	failed time.Time
	// pageSize is the database's page size (a frame holds one page).
	pageSize int64
	// counters
	checkpoints, truncations, incomplete int64
	// gaveUp counts the emptying checkpoints that gave up, by what they
	// waited for.
	gaveUp [numGiveUps]int64
}

// giveUp is what an emptying checkpoint gave up waiting for.
type giveUp int

const (
	// gaveUpWriter: the writer connection, held by a transaction for
	// longer than walOptions.turn.
	gaveUpWriter giveUp = iota
	// gaveUpReads: a read in flight when the gate closed, still running
	// after walOptions.wait (a long read).
	gaveUpReads
	// gaveUpSnapshots: SQLite still found a reader of an older snapshot
	// when its wait ran out, although the reads in flight had finished
	// (one the gate does not see).
	gaveUpSnapshots
	// gaveUpError: the checkpoint failed.
	gaveUpError
	numGiveUps
)

// hardBound is the multiple of its limit past which the log is emptied
// by the writer at every turn, without waiting walOptions.retry after an
// emptying gave up: the writer then commits one transaction between two
// attempts (back-pressure), each stalling it at most walOptions.wait.
const hardBound = 1.5

func newWALKeeper(ctx context.Context, name, path string, db, write *sql.DB, gate *readGate, opts walOptions) (*walKeeper, error) {
	k := &walKeeper{name: name, path: path, db: db, write: write, gate: gate, opts: opts, clean: time.Now()}
	if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&k.pageSize); err != nil {
		return nil, fmt.Errorf("%s: page size: %w", name, err)
	}
	return k, nil
}

// size returns the log's size in bytes (0 when there is none).
func (k *walKeeper) size() int64 {
	fi, err := os.Stat(k.path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// tick checkpoints the log when there were writes since the last tick
// (dirty), and empties it when the frames in use pass its limit: under
// writes with RESTART (the next commit writes from the start of the log,
// and journal_size_limit then cuts the file to the limit, so its blocks
// are reused rather than freed and allocated again), idle with TRUNCATE
// (no commit may come to cut the file). A keeper whose writer empties the
// log itself (byWriter) empties it here only when idle.
func (k *walKeeper) tick(now time.Time, dirty bool) {
	k.mu.Lock()
	if dirty {
		k.lastWrite = now
	}
	due := !now.Before(k.next)
	restart := !k.byWriter || k.opts.keeperEmpties
	var mode string
	switch {
	case dirty || k.retry || k.deferred:
		mode = "PASSIVE"
		if restart && due && k.used() > k.opts.limit {
			mode = "RESTART"
		} else if k.lazy(now) {
			k.deferred = true
			k.mu.Unlock()
			return
		}
		k.deferred = false
	case due && now.Sub(k.lastWrite) >= k.opts.retry && !k.writing.Load() && k.size() > k.opts.limit:
		// Idle for a while: no commit will come to cut the file.
		mode = "TRUNCATE"
	default:
		k.mu.Unlock()
		return
	}
	k.mu.Unlock()
	k.run(now, mode)
	k.mu.Lock()
	again := mode == "PASSIVE" && restart && due && k.used() > k.opts.limit
	k.mu.Unlock()
	if again {
		// What the passive checkpoint found in use is past the limit.
		k.run(now, "RESTART")
	}
}

// idle reports whether a tick without new writes would do nothing: no
// checkpoint deferred (walOptions.lazyBytes) or to retry, and a log file
// within its limit (else an idle tick truncates it).
func (k *walKeeper) idle() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.deferred && !k.retry && k.size() <= k.opts.limit
}

// rest reports whether, without a new write, the ticks until some time
// would do nothing: the file is idle (zero time: nothing at all until a
// write), or its only pending work is a deferred PASSIVE checkpoint
// (walOptions.lazyBytes) with a log file within its limit, due once the
// file has been quiet for walOptions.quiet (that time). A tick before
// then finds the file still quiet for less than quiet and defers again.
func (k *walKeeper) rest() (until time.Time, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.retry || k.size() > k.opts.limit {
		return time.Time{}, false
	}
	if !k.deferred {
		return time.Time{}, true
	}
	return k.lastWrite.Add(k.opts.quiet), true
}

// lazy reports whether a tick's PASSIVE checkpoint may wait (see
// walOptions.lazyBytes): it is not a retry, the file saw a write within
// walOptions.quiet, and the log in use, read from its index, is smaller
// than walOptions.lazyBytes. The caller holds k.mu.
func (k *walKeeper) lazy(now time.Time) bool {
	if k.opts.lazyBytes <= 0 || k.retry || now.Sub(k.lastWrite) >= k.opts.quiet {
		return false
	}
	used, ok := k.inUse()
	return ok && used < k.opts.lazyBytes
}

// afterWrite is called by the file's writer goroutine between two of its
// transactions. When the frames in use in the log pass its limit, it
// empties the log there and then, on the writer connection, before the
// writer starts its next transaction.
//
// Why: the ticks' emptying noticed the limit passed up to a tick late
// (it reads the frames in use from its own passive checkpoints), then
// waited for its turn at the writer connection while the writer finished
// its group (up to maxGroupObjects objects, about 16 MiB of log; turns of
// 0.1-0.8 s on a loaded machine), and when its turn took longer than
// walOptions.turn gave up and let the log grow for walOptions.retry more:
// the log reached 150 MiB against a limit of 64 (issue 16, D4). Here the
// writer itself notices the limit passed at its commit, reading the
// frames in use from the log's index (inUse), and there is no turn to
// wait for: the log passes its limit by at most one of its transactions. One that gives up (a
// reader) is retried after walOptions.retry, or at the writer's next turn
// once the log passes hardBound times its limit. When the writer has
// nothing more to do (idle), it also truncates a log file left larger
// than the limit, as the ticks would a second later.
func (k *walKeeper) afterWrite(idle bool) {
	var mode string
	if k.opts.keeperEmpties {
		return
	}
	used, ok := k.inUse()
	if !ok {
		// No index to read (another VFS, say): what the ticks' last
		// passive checkpoint found in use.
		k.mu.Lock()
		used, ok = k.used(), true
		k.mu.Unlock()
	}
	switch {
	case idle && k.size() > k.opts.limit:
		// Nothing more to write: no commit will come to cut the file.
		mode = "TRUNCATE"
	case ok && used > k.opts.limit:
		mode = "RESTART"
	default:
		return
	}
	now := time.Now()
	k.mu.Lock()
	wait := now.Sub(k.failed) < k.opts.retry && float64(used) <= hardBound*float64(k.opts.limit)
	k.mu.Unlock()
	if wait {
		return
	}
	k.runOwn(now, mode, true)
}

// inUse returns the bytes of log in use now, read from the header of the
// log's index (the -shm file): the index of its last valid frame,
// mxFrame, a native-order 32-bit integer at offset 16 of each of the
// header's two copies (https://sqlite.org/walformat.html, 2.1). ok is
// false when it cannot be read.
func (k *walKeeper) inUse() (used int64, ok bool) {
	f, err := os.Open(k.path + "-shm")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var hdr [2 * walIndexHeader]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return 0, false
	}
	// The copies differ only while a commit writes them: the larger.
	frames := max(binary.NativeEndian.Uint32(hdr[16:]), binary.NativeEndian.Uint32(hdr[walIndexHeader+16:]))
	if frames == 0 {
		return 0, true
	}
	return walHeader + int64(frames)*(walFrameHeader+k.pageSize), true
}

// walIndexHeader is the size of one copy of the log index's header.
const walIndexHeader = 48

// used returns the bytes of log in use at the last checkpoint.
func (k *walKeeper) used() int64 {
	if k.frames <= 0 {
		return 0
	}
	return walHeader + k.frames*(walFrameHeader+k.pageSize)
}

// Sizes of the WAL's header and of each frame's header.
const walHeader, walFrameHeader = 32, 24

// run runs one checkpoint and records its outcome.
func (k *walKeeper) run(now time.Time, mode string) { k.runOwn(now, mode, false) }

// runOwn is run; own is set when the caller is the file's writer
// goroutine, between its transactions: the writer connection is then
// free, and the checkpoint takes it without bounding its wait by
// walOptions.turn (a wait so bounded may run out before the connection is
// asked for, should the goroutine be descheduled).
func (k *walKeeper) runOwn(now time.Time, mode string, own bool) {
	empties := mode != "PASSIVE"
	k.running.Lock()
	busy, log, done, why, err := k.checkpoint(mode, own)
	k.running.Unlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.checkpoints++
	if err != nil {
		// Not fatal: the next tick retries.
		k.retry = true
		if empties {
			k.incomplete++
			k.gaveUp[why]++
			k.next = now.Add(k.opts.retry)
			if why != gaveUpWriter {
				k.failed = now
			}
		}
		return
	}
	k.retry = false
	switch {
	case empties && busy:
		k.incomplete++
		k.gaveUp[why]++
		k.next = now.Add(k.opts.retry)
		if why != gaveUpWriter {
			k.failed = now
		}
	case empties:
		k.truncations++
		k.failed = time.Time{}
		// Until the next commit restarts the log, checkpoints still
		// report the frames this one copied: leave it a few ticks.
		k.next = now.Add(4 * k.opts.interval)
	}
	if log >= 0 && done >= 0 {
		k.frames, k.pending = log, max(0, log-done)
	}
	if empties && !busy {
		// RESTART reports the frames it copied; the log starts again
		// at the next commit.
		k.frames = 0
	}
	if k.pending == 0 && !busy {
		k.clean = now
	}
}

// checkpoint runs PRAGMA wal_checkpoint(mode) and returns its result:
// whether it was blocked (busy), the frames in the log and those now in
// the database. PASSIVE runs on the keeper's own connection, with SQLite's
// busy timeout set to walOptions.wait. RESTART and TRUNCATE run on the
// writer connection, taken within walOptions.turn; then the file's read
// gate is closed until the checkpoint returns, the reads in flight are
// given walOptions.wait to finish, and what is left of it is SQLite's busy
// timeout (its own wait for readers of older snapshots), restored after.
// why tells what an emptying checkpoint that gave up (busy or err) waited
// for.
func (k *walKeeper) checkpoint(mode string, own bool) (busy bool, log, done int64, why giveUp, err error) {
	ctx := context.Background()
	db, restore := k.db, ""
	empties := mode != "PASSIVE"
	if empties {
		db, restore = k.write, fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeout.Milliseconds())
	}
	turn := k.opts.wait
	if empties && k.opts.turn > 0 {
		turn = k.opts.turn
	}
	tctx, cancel := context.WithTimeout(ctx, turn)
	if own {
		tctx = ctx
	}
	conn, err := db.Conn(tctx)
	cancel()
	if err != nil {
		return false, 0, 0, gaveUpWriter, fmt.Errorf("checkpoint %s: connection: %w", k.name, err)
	}
	defer conn.Close()
	wait := k.opts.wait
	why = gaveUpSnapshots
	if empties && k.gate != nil && !k.opts.letReadersIn {
		// Only now that the writer connection is the keeper's: a
		// writer that read in its transaction, held back here, would
		// otherwise keep it from the keeper until the wait ran out.
		start := time.Now()
		drained := k.gate.close()
		defer k.gate.open()
		t := time.NewTimer(wait)
		select {
		case <-drained:
		case <-t.C:
			why = gaveUpReads
		}
		t.Stop()
		wait = max(0, wait-time.Since(start))
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", wait.Milliseconds())); err != nil {
		return false, 0, 0, gaveUpError, fmt.Errorf("checkpoint %s: busy timeout: %w", k.name, err)
	}
	if restore != "" {
		defer func() {
			if _, rerr := conn.ExecContext(ctx, restore); rerr != nil {
				// Do not hand the writers a connection that gives up
				// after the checkpoint's short wait.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
	}
	var b int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&b, &log, &done); err != nil {
		return false, 0, 0, gaveUpError, fmt.Errorf("checkpoint %s (%s): %w", k.name, mode, err)
	}
	return b != 0, log, done, why, nil
}

// stats returns what the keeper knows of its log.
func (k *walKeeper) stats(now time.Time) entente.WALStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := entente.WALStats{
		Database: k.name, Bytes: k.size(), LimitBytes: k.opts.limit, PendingFrames: k.pending,
		Checkpoints: k.checkpoints, Truncations: k.truncations, Incomplete: k.incomplete,
		GaveUpWriter: k.gaveUp[gaveUpWriter], GaveUpReads: k.gaveUp[gaveUpReads],
		GaveUpSnapshots: k.gaveUp[gaveUpSnapshots], GaveUpError: k.gaveUp[gaveUpError],
	}
	if k.pending > 0 || k.retry || k.deferred {
		st.CheckpointLag = now.Sub(k.clean)
	}
	if k.gate != nil {
		st.ReadsHeld, st.ReadsHeldTime = k.gate.stats()
	}
	return st
}

// WALStats reports the write-ahead logs of the objects' and the audit's
// database files; see [entente.WALReporter].
func (s *Store) WALStats() []entente.WALStats {
	now := time.Now()
	return []entente.WALStats{s.wal.stats(now), s.audit.wal.stats(now)}
}

var _ entente.WALReporter = (*Store)(nil)
