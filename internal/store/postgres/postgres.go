// Package postgres is the [store.Store] backend on PostgreSQL (pgx), which
// lets several `entente serve` replicas share one node's data.
//
// Additions to a collection lock the collection's row for the length of
// their transaction: they read the collection's last date_added and take
// insertion sequence numbers while no other addition to that collection
// runs, so commit order equals (date_added, seq) order and a reader never
// sees a later entry before an earlier one is committed. Everything a
// replica needs to answer a query is in the database (cursors included),
// so replicas give the same answers.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the pg_advisory_lock key that serialises migrations of
// replicas starting at the same time ("entente" in ASCII).
const migrationLock int64 = 0x656e74656e7465

// Store is a [store.Store] on a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or key=value
// connection string; a search_path parameter selects the schema) and
// applies any pending schema migration.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: parse connection string: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s.warm(ctx)
	return s, nil
}

// warmConns is how many connections Open readies for searches.
const warmConns = 2

// warm opens warmConns connections and runs a search on each, so that
// the first search after a start meets no cold connection: a new
// PostgreSQL backend loads its catalog and text-search caches on first
// use, and pgx prepares each statement once per connection, which cost
// the first search 25 ms more than the same search next on a million
// objects. It is best effort and bounded to a second.
func (s *Store) warm(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range warmConns {
		wg.Go(func() {
			c, err := s.pool.Acquire(ctx)
			if err != nil {
				return
			}
			defer c.Release()
			_, _ = searchObjects(ctx, c, store.SearchQuery{Text: "warm", Limit: 1})
		})
	}
	wg.Wait()
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres store: %w", err)
	}
	return nil
}

// Close closes every connection.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// migrate applies the embedded migrations the database lacks, each in
// its own transaction, while holding a session advisory lock so that
// replicas starting together apply each migration once.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name    text PRIMARY KEY,
		applied bigint NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	files, err := store.Migrations(migrations, "migrations")
	if err != nil {
		return err
	}
	for _, m := range files {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, m.Name).Scan(&done); err != nil {
				return err
			}
			if done {
				return nil
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			if step := goMigrations[m.Name]; step != nil {
				if err := step(ctx, tx); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name, applied) VALUES ($1, $2)`, m.Name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// inTx runs fn in a transaction and commits it when fn returns nil and
// ctx is still live.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return storageFull(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return storageFull(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// ErrStorageFull is the message of the error writes return while the
// server's disk is full (SQLSTATE 53100, disk_full).
const ErrStorageFull = "the node's storage is full: nothing can be stored until space is freed on the PostgreSQL server; reads are still served"

// storageFull returns err as an EUNAVAILABLE error with a message that
// says what happened when it is PostgreSQL's disk_full, and err
// unchanged otherwise.
func storageFull(err error) error {
	var pe *pgconn.PgError
	if err == nil || !errors.As(err, &pe) || pe.Code != "53100" {
		return err
	}
	return &entente.Error{Code: entente.EUNAVAILABLE, Message: ErrStorageFull, Err: err}
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// conflictOr returns an ECONFLICT error with message msg when err is a
// unique violation (a concurrent replica won a race), else err.
func conflictOr(err error, msg string) error {
	if isUniqueViolation(err) {
		return &entente.Error{Code: entente.ECONFLICT, Message: msg, Err: err}
	}
	return err
}
