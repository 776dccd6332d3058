package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
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
	// wait bounds how long a truncating checkpoint waits for the writer
	// and for readers of old snapshots; it holds the write lock while it
	// waits for readers, so this also bounds the stall it causes writers.
	wait time.Duration
	// retry is the least time between two truncating checkpoints that
	// failed to finish, so that writers are not stalled over and over
	// while a reader holds an old snapshot.
	retry time.Duration
}

// defaultWAL is how the store keeps its logs.
var defaultWAL = walOptions{limit: 64 << 20, interval: 250 * time.Millisecond, wait: 250 * time.Millisecond, retry: time.Second}

// walKeeper checkpoints one database file's write-ahead log.
//
// Why: a PASSIVE checkpoint copies committed pages into the database file
// without waiting for anyone, but it never empties the log, and SQLite
// restarts the log from its beginning only when a write begins while no
// reader still uses it. Under constant reads there is always such a
// reader, so the log grows without bound (1.22 GB in 60 s of 16 clients,
// issue 16, against a 64 MiB limit) and stays that size when the load
// stops. So the keeper runs a PASSIVE checkpoint on every tick with
// writes, and once the log passes its limit a TRUNCATE checkpoint: it
// takes the write lock (waiting for the writer's transaction), copies
// what is left, waits for the readers of older snapshots to finish their
// statements (new readers read the database file, since every page is
// in it), and truncates the log to zero. Its waits are bounded by
// walOptions.wait; one that times out is retried after walOptions.retry.
type walKeeper struct {
	name string  // "objects" or "audit"
	path string  // the database file; its log is path + "-wal"
	db   *sql.DB // one connection, for checkpoints only
	opts walOptions

	mu sync.Mutex
	// retry is set when a checkpoint failed and should run again even
	// without new writes.
	retry bool
	// lastTry is when the last truncating checkpoint started.
	lastTry time.Time
	// pending is what the last checkpoint left in the log; clean when
	// one last left nothing.
	pending int64
	clean   time.Time
	// counters
	checkpoints, truncations, incomplete int64
}

func newWALKeeper(name, path string, db *sql.DB, opts walOptions) *walKeeper {
	return &walKeeper{name: name, path: path, db: db, opts: opts, clean: time.Now()}
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
// (dirty), truncating it when it is past its limit.
func (k *walKeeper) tick(now time.Time, dirty bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	over := k.size() > k.opts.limit
	truncate := over && now.Sub(k.lastTry) >= k.opts.retry
	if !dirty && !k.retry && !truncate {
		return
	}
	mode := "PASSIVE"
	if truncate {
		mode = "TRUNCATE"
		k.lastTry = now
	}
	busy, log, done, err := k.checkpoint(mode)
	k.checkpoints++
	if err != nil {
		// Not fatal: the next tick retries.
		k.retry = true
		if truncate {
			k.incomplete++
		}
		return
	}
	k.retry = false
	switch {
	case truncate && busy:
		k.incomplete++
	case truncate:
		k.truncations++
		// A truncation waited for the readers: retry the next one
		// without delay if the log fills again.
		k.lastTry = time.Time{}
	}
	if log >= 0 && done >= 0 {
		k.pending = max(0, log-done)
	}
	if k.pending == 0 && !busy {
		k.clean = now
	}
}

// checkpoint runs PRAGMA wal_checkpoint(mode) on the keeper's connection
// with the keeper's busy timeout, and returns its result: whether it was
// blocked (busy), the frames in the log and those now in the database.
func (k *walKeeper) checkpoint(mode string) (busy bool, log, done int64, err error) {
	ctx := context.Background()
	conn, err := k.db.Conn(ctx)
	if err != nil {
		return false, 0, 0, fmt.Errorf("checkpoint %s: %w", k.name, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", k.opts.wait.Milliseconds())); err != nil {
		return false, 0, 0, fmt.Errorf("checkpoint %s: busy timeout: %w", k.name, err)
	}
	var b int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&b, &log, &done); err != nil {
		return false, 0, 0, fmt.Errorf("checkpoint %s (%s): %w", k.name, mode, err)
	}
	return b != 0, log, done, nil
}

// stats returns what the keeper knows of its log.
func (k *walKeeper) stats(now time.Time) entente.WALStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := entente.WALStats{
		Database: k.name, Bytes: k.size(), LimitBytes: k.opts.limit, PendingFrames: k.pending,
		Checkpoints: k.checkpoints, Truncations: k.truncations, Incomplete: k.incomplete,
	}
	if k.pending > 0 || k.retry {
		st.CheckpointLag = now.Sub(k.clean)
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
