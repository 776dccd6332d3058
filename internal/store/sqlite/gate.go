package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"
	"time"

	msqlite "modernc.org/sqlite"
)

// readGate holds a database file's new reads back while a checkpoint
// that empties its write-ahead log waits for the readers of older
// snapshots.
//
// Why: such a checkpoint (RESTART, TRUNCATE) must see the readers of
// older snapshots finish their statements, and readers that never pause
// keep beginning new ones, which SQLite lets share the locks of readers
// still in flight; under sixteen such clients most emptyings ran out of
// their wait (221 of 308 gave up in ten minutes, waiting for readers or
// for the writer), and waiting longer did not help (issue 16, D4). With
// the gate closed the statements in flight finish, none begins, and the
// checkpoint completes. Every statement of the file's read-only pools
// (reads and searches) passes the gate, through the connections gatedDB
// opens: the gate counts the statements in flight, and while it is
// closed a new one waits until it reopens, or at most bound. The
// checkpointer closes it only once it holds the writer connection, so a
// reader held back never waits for a writer that waits for the gate; and
// for a bounded time (walOptions.wait, plus the checkpoint itself).
type readGate struct {
	// bound is the longest a statement is held back, should the gate
	// stay closed longer than its closer meant.
	bound time.Duration

	mu sync.Mutex
	// active counts the statements in flight (passed the gate, not yet
	// closed).
	active int
	// shut is non-nil while the gate is closed, and closed when it
	// reopens; drained, while the closer waits, is closed when active
	// reaches 0.
	shut, drained chan struct{}
	// held counts the statements held back, heldFor the time they waited.
	held    int64
	heldFor time.Duration
}

func newReadGate(bound time.Duration) *readGate { return &readGate{bound: bound} }

// enter lets one statement through, waiting while the gate is closed (at
// most g.bound); it fails only when ctx ends meanwhile. Each enter that
// succeeds is matched by one leave.
func (g *readGate) enter(ctx context.Context) error {
	g.mu.Lock()
	shut := g.shut
	if shut == nil {
		g.active++
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	start := time.Now()
	t := time.NewTimer(g.bound)
	var err error
	select {
	case <-shut:
	case <-t.C:
	case <-ctx.Done():
		err = ctx.Err()
	}
	t.Stop()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held++
	g.heldFor += time.Since(start)
	if err != nil {
		return err
	}
	g.active++
	return nil
}

// leave records the end of a statement that entered.
func (g *readGate) leave() {
	g.mu.Lock()
	g.active--
	if g.active == 0 && g.drained != nil {
		close(g.drained)
		g.drained = nil
	}
	g.mu.Unlock()
}

// close closes the gate and returns a channel closed once no statement
// is in flight. The caller reopens it with open.
func (g *readGate) close() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut == nil {
		g.shut = make(chan struct{})
	}
	drained := make(chan struct{})
	if g.active == 0 {
		close(drained)
	} else {
		g.drained = drained
	}
	return drained
}

// open reopens the gate and lets the statements held back through.
func (g *readGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
	g.drained = nil
}

// stats returns how many statements the gate held back and for how long
// in all.
func (g *readGate) stats() (held int64, heldFor time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held, g.heldFor
}

// gatedDB opens a pool of connections to the SQLite database dsn whose
// statements pass gate g: a query from its start until its rows are
// closed, an execution while it runs, a transaction from its beginning to
// its end (the statements inside it then pass freely).
func gatedDB(dsn string, g *readGate) (*sql.DB, error) {
	c, err := msqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("gated connections: %w", err)
	}
	return sql.OpenDB(gatedConnector{c, g}), nil
}

// gatedConnector opens gatedConns.
type gatedConnector struct {
	driver.Connector
	g *readGate
}

// innerConn is what a gatedConn needs of the driver's connection.
type innerConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.QueryerContext
	driver.ExecerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// Connect opens one connection.
func (c gatedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	in, ok := conn.(innerConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("gated connections: the driver's connection %T lacks a method", conn)
	}
	return &gatedConn{in: in, g: c.g}, nil
}

// gatedConn is one connection whose statements pass a readGate. It is
// used by one goroutine at a time, as database/sql guarantees.
//
// It keeps the queries it ran twice prepared (stmts, at most
// stmtCacheSize):
// database/sql prepares a query given as text anew at each call, and
// SQLite's parser was a quarter of the CPU of the federation drill,
// spent reading the same few page and lookup queries again and again.
// A prepared statement holds no snapshot between its uses (its rows'
// Close resets it), so the checkpoints the gate serves are not delayed.
type gatedConn struct {
	in   innerConn
	g    *readGate
	inTx bool // in a transaction, which passed the gate as a whole
	// stmts are the queries kept prepared, by text; tick orders their
	// uses (the least recently used is closed to make room).
	stmts map[string]*cachedStmt
	tick  uint64
	// once holds the queries run once and not kept: a query is kept at
	// its second run, so that queries holding values (one lookup's ids)
	// do not push the others out.
	once map[string]struct{}
}

// stmtCacheSize bounds the statements a read connection keeps prepared;
// maxCachedQuery the length of a query kept (longer ones hold values,
// such as the ids of a lookup, and are rarely run twice).
const (
	stmtCacheSize  = 64
	maxCachedQuery = 2048
)

// cachedStmt is a query a gatedConn keeps prepared; busy while rows of
// it are open (a transaction may run it again meanwhile: that run
// prepares its own).
type cachedStmt struct {
	st   driver.Stmt
	q    driver.StmtQueryContext
	busy bool
	used uint64
}

// cached returns the prepared statement of query, preparing and keeping
// it at its second run; nil when query is not (yet) to be kept or its
// statement is busy.
func (c *gatedConn) cached(ctx context.Context, query string) (*cachedStmt, error) {
	if len(query) > maxCachedQuery {
		return nil, nil
	}
	c.tick++
	if cs, ok := c.stmts[query]; ok {
		if cs.busy {
			return nil, nil
		}
		cs.used = c.tick
		return cs, nil
	}
	if _, ok := c.once[query]; !ok {
		if c.once == nil || len(c.once) >= 4*stmtCacheSize {
			c.once = map[string]struct{}{}
		}
		c.once[query] = struct{}{}
		return nil, nil
	}
	delete(c.once, query)
	st, err := c.in.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	q, ok := st.(driver.StmtQueryContext)
	if !ok {
		st.Close()
		return nil, nil
	}
	if c.stmts == nil {
		c.stmts = map[string]*cachedStmt{}
	}
	if len(c.stmts) >= stmtCacheSize {
		c.evict()
	}
	cs := &cachedStmt{st: st, q: q, used: c.tick}
	c.stmts[query] = cs
	return cs, nil
}

// evict closes the least recently used statement that is not busy.
func (c *gatedConn) evict() {
	var oldest string
	var old *cachedStmt
	for q, cs := range c.stmts {
		if !cs.busy && (old == nil || cs.used < old.used) {
			oldest, old = q, cs
		}
	}
	if old != nil {
		delete(c.stmts, oldest)
		old.st.Close()
	}
}

// drop closes and forgets the kept statement of query (after it failed).
func (c *gatedConn) drop(query string, cs *cachedStmt) {
	if c.stmts[query] == cs {
		delete(c.stmts, query)
	}
	cs.st.Close()
}

// enter passes the gate for one statement, unless in a transaction, and
// returns the gate to leave when the statement ends (nil: none).
func (c *gatedConn) enter(ctx context.Context) (*readGate, error) {
	if c.inTx {
		return nil, nil
	}
	if err := c.g.enter(ctx); err != nil {
		return nil, err
	}
	return c.g, nil
}

// leave leaves gate g, if not nil (see gatedConn.enter).
func leave(g *readGate) {
	if g != nil {
		g.leave()
	}
}

func (c *gatedConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *gatedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.in.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &gatedStmt{Stmt: st, c: c}, nil
}

func (c *gatedConn) Close() error {
	for q, cs := range c.stmts {
		cs.st.Close()
		delete(c.stmts, q)
	}
	return c.in.Close()
}

func (c *gatedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *gatedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	g, err := c.enter(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := c.in.BeginTx(ctx, opts)
	if err != nil {
		leave(g)
		return nil, err
	}
	c.inTx = true
	return &gatedTx{Tx: tx, c: c, g: g}, nil
}

func (c *gatedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	g, err := c.enter(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := c.cached(ctx, query)
	if err != nil {
		leave(g)
		return nil, err
	}
	if cs == nil {
		rows, err := c.in.QueryContext(ctx, query, args)
		if err != nil {
			leave(g)
			return nil, err
		}
		return &gatedRows{Rows: rows, g: g}, nil
	}
	rows, err := cs.q.QueryContext(ctx, args)
	if err != nil {
		c.drop(query, cs)
		leave(g)
		return nil, err
	}
	cs.busy = true
	return &gatedRows{Rows: rows, g: g, st: cs}, nil
}

func (c *gatedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	g, err := c.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave(g)
	return c.in.ExecContext(ctx, query, args)
}

// Ping, ResetSession and IsValid read nothing.
func (c *gatedConn) Ping(ctx context.Context) error         { return c.in.Ping(ctx) }
func (c *gatedConn) ResetSession(ctx context.Context) error { return c.in.ResetSession(ctx) }
func (c *gatedConn) IsValid() bool                          { return c.in.IsValid() }

// Driver returns the driver's own.
func (c gatedConnector) Driver() driver.Driver { return c.Connector.Driver() }

func (t *gatedTx) Commit() error {
	defer t.end()
	return t.Tx.Commit()
}

func (t *gatedTx) Rollback() error {
	defer t.end()
	return t.Tx.Rollback()
}

func (s *gatedStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.exec(context.Background(), named(args))
}

func (s *gatedStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.query(context.Background(), named(args))
}

func (s *gatedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.exec(ctx, args)
}

func (s *gatedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.query(ctx, args)
}

// gatedTx is a transaction that passed the gate as a whole.
type gatedTx struct {
	driver.Tx
	c *gatedConn
	g *readGate // to leave at its end
}

func (t *gatedTx) end() {
	t.c.inTx = false
	leave(t.g)
}

// gatedStmt is a prepared statement of a gatedConn.
type gatedStmt struct {
	driver.Stmt
	c *gatedConn
}

func (s *gatedStmt) exec(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	g, err := s.c.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave(g)
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return s.Stmt.Exec(values(args)) //nolint:staticcheck // the driver's only form
}

func (s *gatedStmt) query(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	g, err := s.c.enter(ctx)
	if err != nil {
		return nil, err
	}
	var rows driver.Rows
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		rows, err = q.QueryContext(ctx, args)
	} else {
		rows, err = s.Stmt.Query(values(args)) //nolint:staticcheck // the driver's only form
	}
	if err != nil {
		leave(g)
		return nil, err
	}
	return &gatedRows{Rows: rows, g: g}, nil
}

// gatedRows are a query's rows; closing them ends the statement.
type gatedRows struct {
	driver.Rows
	g  *readGate   // to leave when closed
	st *cachedStmt // the kept statement they are of, free again when closed
}

func (r *gatedRows) Close() error {
	err := r.Rows.Close()
	if r.st != nil {
		r.st.busy = false
		r.st = nil
	}
	leave(r.g)
	r.g = nil
	return err
}

// named and values convert between the two forms of a statement's
// arguments.
func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

func values(args []driver.NamedValue) []driver.Value {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}
