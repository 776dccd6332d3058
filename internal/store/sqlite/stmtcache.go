package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// A stmtCache holds statements prepared on one pool, by their text, for
// the queries built per request whose shapes repeat: an object by id, a
// page of a collection. modernc's SQLite parses a statement's text every
// time it is prepared, which was a third of an object GET's CPU; a
// prepared statement runs again without it.
type stmtCache struct {
	db *sql.DB
	// max bounds the statements held: past it, a new shape is prepared
	// for each query as before, and the shapes held stay.
	max int

	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// maxCachedArgs bounds the arguments of a query whose statement is kept:
// a shape with long lists (many ids, types or versions) is rare, and each
// length would be a statement of its own.
const maxCachedArgs = 16

// newStmtCache returns an empty cache on db holding at most max
// statements.
func newStmtCache(db *sql.DB, max int) *stmtCache {
	return &stmtCache{db: db, max: max, m: map[string]*sql.Stmt{}}
}

// query runs q with args: through its prepared statement when the cache
// holds or can take it, else as a one-off query.
func (c *stmtCache) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if len(args) > maxCachedArgs {
		return c.db.QueryContext(ctx, q, args...)
	}
	st, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return c.db.QueryContext(ctx, q, args...)
	}
	return st.QueryContext(ctx, args...)
}

// stmt returns q's prepared statement, preparing it if the cache has
// room; nil when it has none.
func (c *stmtCache) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[q]
	full := len(c.m) >= c.max
	c.mu.Unlock()
	if ok || full {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if held, ok := c.m[q]; ok {
		st.Close()
		return held, nil
	}
	if len(c.m) >= c.max {
		st.Close()
		return nil, nil
	}
	c.m[q] = st
	return st, nil
}

// len returns how many statements the cache holds.
func (c *stmtCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// close closes the statements held.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for q, st := range c.m {
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
		delete(c.m, q)
	}
	return first
}
