package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// maxGroupObjects bounds how many objects the writer gathers, from calls
// waiting at the same time, into one transaction.
const maxGroupObjects = 20000

// errClosed is returned by AddObjects once the store is closed.
var errClosed = errors.New("store is closed")

// addRequest is one AddObjects call waiting for the writer.
type addRequest struct {
	ctx        context.Context
	collection string
	objs       []*stix.Object
	// dateAdded is the date_added decided when the call was queued; the
	// writer gives a later one only if another process wrote since.
	dateAdded int64
	// statusID and status, when set, write a status resource in the same
	// transaction (see store.Submission).
	statusID string
	status   func([]entente.AddOutcome, error) []byte
	prepare  func() []*stix.Object
	// within, when set, runs after the objects are added (or alone, for
	// a call without objects), inside the call's savepoint: its writes
	// commit with the call's objects or not at all (provenance of a
	// received addition, a peer's sync state).
	within func(ctx context.Context, tx *sql.Tx, out []entente.AddOutcome) error
	out    []entente.AddOutcome
	err    error
	// done is closed (synchronous calls) or onDone called (submissions)
	// when the outcome is known.
	done   chan struct{}
	onDone func([]entente.AddOutcome, error)
	// counted is the objects a submission counts in the backlog (see
	// Store.Submit): those it was queued with; ahead is the objects
	// submitted before it.
	counted, ahead int64
}

// maxSubmittedAhead bounds the objects of earlier submissions the writer
// may still have to store when Submit returns (see Store.Submit).
//
// It was 1,000 (the writer lingering to 500): with more, a client's first
// round of polls found the last statuses of a burst pending and waited its
// polling interval. Since a poll of a pending status waits for it
// (ingest.Service.Status), a larger bound costs that client nothing, and
// the larger groups it lets the writer commit cut the commits of a TAXII
// POST of 10,000 objects by a third (13 against 20 fsyncs, 17 % fewer
// pwrite64; docs/performance.md, issue 16).
const maxSubmittedAhead = 2000

// backlog counts the objects submitted (Store.Submit) and those whose
// submission the writer has finished, stored or not, so that Submit can
// wait for the writer to come within maxSubmittedAhead objects of its
// own.
type backlog struct {
	mu        sync.Mutex
	submitted int64 // under Store.orderMu, in queue order
	finished  int64
	// moved is closed, and replaced, whenever finished grows.
	moved chan struct{}
}

// finish records n more objects finished by the writer.
func (b *backlog) finish(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.finished += n
	if b.moved != nil {
		close(b.moved)
		b.moved = nil
	}
	b.mu.Unlock()
}

// wait waits until at most max of the objects submitted before position
// ahead are unfinished, ctx ends or stop is closed.
func (b *backlog) wait(ctx context.Context, stop <-chan struct{}, ahead, max int64) {
	for {
		b.mu.Lock()
		if ahead-b.finished <= max {
			b.mu.Unlock()
			return
		}
		if b.moved == nil {
			b.moved = make(chan struct{})
		}
		moved := b.moved
		b.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return
		case <-stop:
			return
		}
	}
}

// queueDepth bounds the calls waiting for the writer; a full queue makes
// callers wait.
const queueDepth = 4096

// enqueue decides r's date_added and queues it, atomically, so that the
// queue's order is the order of date_added.
func (s *Store) enqueue(ctx context.Context, r *addRequest) error {
	s.orderMu.Lock()
	defer s.orderMu.Unlock()
	r.dateAdded = max(time.Now().UnixNano(), s.lastAdded+1)
	select {
	case s.adds <- r:
		s.lastAdded = r.dateAdded
		r.ahead = s.backlog.submitted
		s.backlog.submitted += r.counted
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stop:
		return errClosed
	}
}

// Submit queues an addition whose date_added is decided now and whose
// status is written with it; see [store.Submitter].
//
// Once queued, it returns when the writer has at most maxSubmittedAhead
// objects of earlier submissions left to store, or as many as the
// submission's own if it is larger (an offline ingest keeps two batches
// of 5,000 in the node), or when ctx ends: the client
// is answered at once while the writer keeps up, and waits for it when
// it falls behind, rather than piling up additions whose statuses stay
// pending. A client posting envelopes one after another, then polling
// their statuses, otherwise finished posting while the writer was
// hundreds of milliseconds behind (a TAXII POST of 10,000 objects on a
// loaded two-core machine: up to 67 ms of queue), found the last
// statuses pending, and waited its polling interval (taxii-load: 50 ms)
// to ask again. The submission is queued whatever the wait: an error is
// returned only when it could not be.
func (s *Store) Submit(ctx context.Context, sub store.Submission) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &addRequest{ctx: context.WithoutCancel(ctx), collection: sub.Collection, objs: sub.Objects,
		statusID: sub.StatusID, status: sub.Status, prepare: sub.Prepare, onDone: sub.Done, counted: int64(len(sub.Objects))}
	if err := s.enqueue(ctx, r); err != nil {
		return fmt.Errorf("submit %d objects to collection %s: %w", len(sub.Objects), sub.Collection, err)
	}
	s.backlog.wait(ctx, s.stop, r.ahead, max(s.maxAhead, r.counted))
	return nil
}

var _ store.Submitter = (*Store)(nil)

// AddObjects adds objects to a collection, all or nothing; see
// [store.Store.AddObjects]. Every entry of one call shares one
// date_added, strictly greater than any date_added the collection ever
// gave before.
//
// Calls are handed to one writer goroutine, which commits the calls that
// arrive while it is busy together, in one transaction, each inside its
// own savepoint: concurrent callers (TAXII POSTs) share the cost of one
// durable commit (an fsync), and a failing call rolls back only itself.
// A call whose context ends before the writer starts on it writes
// nothing and returns the context's error; once started, it runs to the
// end, and a nil error means its objects are durable.
func (s *Store) AddObjects(ctx context.Context, collection string, objs []*stix.Object) ([]entente.AddOutcome, error) {
	wrap := func(err error) error {
		return fmt.Errorf("add %d objects to collection %s: %w", len(objs), collection, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(err)
	}
	r := &addRequest{ctx: ctx, collection: collection, objs: objs, done: make(chan struct{})}
	out, err := s.addWait(ctx, r)
	if err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

// writer commits the additions handed to it, grouping the calls that are
// waiting when it starts a transaction.
func (s *Store) writer() {
	defer close(s.writerDone)
	// The search index follows when the writer is idle (searchindex.go).
	idle := time.NewTimer(searchIdle)
	if !s.idleSearch {
		idle.Stop()
	}
	// A store opened may hold objects not yet indexed; a one-shot
	// writer leaves them (and its own) to the next process.
	behind := s.idleSearch
	wait := searchIdle
	s.searchAt = time.Now()
	for {
		var group []*addRequest
		if behind {
			idle.Reset(wait)
		}
		select {
		case r := <-s.adds:
			idle.Stop()
			wait = searchIdle
			group = append(group, r)
		case <-idle.C:
			// Idle: one batch, then the next at once unless an
			// addition comes first.
			s.wal.writing.Store(true)
			behind = !s.indexSearchBatch()
			s.wal.afterWrite(!behind)
			s.wal.writing.Store(false)
			wait = 0
			continue
		case <-s.stop:
			// Calls queued but not started fail: none waits forever.
			for {
				select {
				case r := <-s.adds:
					r.out, r.err = nil, errClosed
					if r.onDone != nil {
						r.onDone(nil, errClosed)
						s.backlog.finish(r.counted)
					} else {
						close(r.done)
					}
				default:
					return
				}
			}
		}
		n := len(group[0].objs)
	gather:
		for n < maxGroupObjects {
			select {
			case r := <-s.adds:
				group = append(group, r)
				n += len(r.objs)
			default:
				break gather
			}
		}
		group, n = s.linger(group, n)
		s.wal.writing.Store(true)
		s.commitGroup(group)
		for _, r := range group {
			if r.onDone != nil {
				r.onDone(r.out, r.err)
				s.backlog.finish(r.counted)
			} else {
				close(r.done)
			}
		}
		// A small group is indexed in its own transaction (indexInline);
		// otherwise a serving writer indexes when idle (a one-shot
		// writer leaves it to the next process).
		behind = s.idleSearch && !s.searchCurrent
		if behind && time.Since(s.searchAt) > searchMaxLag {
			// A constant load: the index keeps up a batch at a time.
			behind = !s.indexSearchBatch()
		}
		// Before the next group: the log within its limit (see
		// walKeeper.afterWrite).
		s.wal.afterWrite(false)
		s.wal.writing.Store(false)
	}
}

// commitGroup runs the calls of group in one transaction and sets each
// call's outcome or error.
func (s *Store) commitGroup(group []*addRequest) {
	// Statements run under a context that is not the caller's: cancelling
	// a statement inside a transaction (sqlite3_interrupt) would roll back
	// the other calls of the group too.
	ctx := context.Background()
	fail := func(rs []*addRequest, err error) {
		for _, r := range rs {
			r.out, r.err = nil, err
		}
	}
	// The writer's connection runs without foreign-key checks (see
	// serveWriter): each insert names the collection it read in the same
	// transaction. It is held for the group: a failing call may make the
	// group run again on it.
	conn, err := s.write.Conn(ctx)
	if err != nil {
		fail(group, fmt.Errorf("writer connection: %w", err))
		return
	}
	defer conn.Close()
	// A failing call is rolled back to its savepoint: its INSERTs (OR
	// FAIL) do not undo the rows they wrote before failing. A call alone
	// without a status needs none: its transaction is not committed.
	//
	// Savepoints are not free: while one is open, SQLite copies every
	// page a statement changes for the first time since the savepoint
	// began to a journal in memory (about 6 % of the node's CPU under
	// TAXII POSTs). Calls seldom fail, so the group runs first without
	// them; should a call fail, that transaction is rolled back whole and
	// the group runs again, each call in its savepoint.
	savepoints := len(group) > 1 || group[0].statusID != ""
	if savepoints && s.runGroup(ctx, conn, group, false, true) {
		return
	}
	s.runGroup(ctx, conn, group, savepoints, false)
}

// runGroup runs the calls of group in one transaction on conn, each in a
// savepoint when savepoints is set, and sets each call's outcome or
// error. When optimistic, a call's failure rolls the whole transaction
// back and runGroup returns false with every outcome cleared, for the
// caller to run the group again with savepoints; otherwise it returns
// true.
func (s *Store) runGroup(ctx context.Context, conn *sql.Conn, group []*addRequest, savepoints, optimistic bool) bool {
	fail := func(rs []*addRequest, err error) {
		for _, r := range rs {
			r.out, r.err = nil, err
		}
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		fail(group, fmt.Errorf("begin: %w", err))
		return true
	}
	defer tx.Rollback()
	var applied []*addRequest
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if savepoints {
			if _, err := tx.StmtContext(ctx, s.w.savepoint.Stmt).ExecContext(ctx); err != nil {
				fail(group[i:], fmt.Errorf("savepoint: %w", err))
				fail(applied, fmt.Errorf("savepoint: %w", err))
				return true
			}
		}
		if r.prepare != nil {
			r.objs = r.prepare()
		}
		if len(r.objs) > 0 {
			r.out, r.err = s.addInTx(ctx, tx, conn, r.collection, r.objs, r.dateAdded)
			r.err = storageFull(r.err)
		}
		if r.err == nil && r.within != nil {
			if r.err = r.within(ctx, tx, r.out); r.err != nil {
				r.out = nil
			}
		}
		if optimistic && r.err != nil {
			for _, r := range group {
				r.out, r.err = nil, nil
			}
			return false
		}
		if savepoints {
			if r.err != nil {
				if _, err := tx.StmtContext(ctx, s.w.rollbackTo.Stmt).ExecContext(ctx); err != nil {
					// The transaction is lost (SQLite rolled it back);
					// nothing of the group is written.
					fail(group[i+1:], fmt.Errorf("roll back to savepoint: %w", err))
					fail(applied, fmt.Errorf("roll back to savepoint: %w", err))
					return true
				}
			}
			if _, err := tx.StmtContext(ctx, s.w.release.Stmt).ExecContext(ctx); err != nil {
				fail(group[i:], fmt.Errorf("release savepoint: %w", err))
				fail(applied, fmt.Errorf("release savepoint: %w", err))
				return true
			}
		}
		if r.statusID != "" {
			if err := s.putStatusTx(ctx, tx, r.statusID, r.status(r.out, r.err)); err != nil {
				r.out, r.err = nil, err
				fail(applied, r.err)
				fail(group[i+1:], r.err)
				return true
			}
			// A failed call's status is worth committing too.
			applied = append(applied, r)
			continue
		}
		if r.err == nil {
			applied = append(applied, r)
		}
	}
	if len(applied) == 0 {
		return true
	}
	objects := 0
	for _, r := range applied {
		if r.err == nil {
			objects += len(r.out)
		}
	}
	indexed := s.indexInline(ctx, tx, objects)
	if err := tx.Commit(); err != nil {
		fail(applied, storageFull(fmt.Errorf("commit: %w", err)))
		return true
	}
	s.wrote()
	if objects > 0 {
		s.searchCurrent = indexed
		if indexed {
			s.searchAt = time.Now()
		}
	}
	return true
}

// enqueueWrite queues a write that adds no objects (it needs no
// date_added) and waits for the writer to commit it, sharing the commit
// with the calls waiting at the same time.
func (s *Store) enqueueWrite(ctx context.Context, within func(ctx context.Context, tx *sql.Tx, out []entente.AddOutcome) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &addRequest{ctx: ctx, within: within, done: make(chan struct{})}
	select {
	case s.adds <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stop:
		return errClosed
	}
	<-r.done
	return r.err
}

// AddReceived adds objects another organisation sent, with their
// provenance and, when r.StatusID is set, the status, in one transaction
// of the writer, shared with the other calls waiting at the same time;
// see [store.ReceivedAdder].
func (s *Store) AddReceived(ctx context.Context, rc store.Received) ([]entente.AddOutcome, error) {
	wrap := func(err error) error {
		return fmt.Errorf("add %d objects received from %s to collection %s: %w", len(rc.Objects), rc.Origin, rc.Collection, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(err)
	}
	rcv, ok := store.UnixNano(rc.ReceivedAt)
	if !ok {
		return nil, wrap(entente.Errorf(entente.EINVALID, "received_at %s is out of range", rc.ReceivedAt))
	}
	r := &addRequest{ctx: ctx, collection: rc.Collection, objs: rc.Objects, done: make(chan struct{}),
		within: func(ctx context.Context, tx *sql.Tx, out []entente.AddOutcome) error {
			for _, p := range rc.Provenance(out) {
				v, ok := store.UnixNano(p.Version)
				if !ok {
					return entente.Errorf(entente.EINVALID, "provenance of %s: version %s is out of range", p.ObjectID, p.Version)
				}
				if _, err := tx.StmtContext(ctx, s.w.setProvenance.Stmt).ExecContext(ctx, p.Collection, p.ObjectID, v, p.Origin, p.Peer, rcv); err != nil {
					return storageFull(fmt.Errorf("record provenance of %s: %w", p.ObjectID, err))
				}
			}
			if rc.StatusID != "" {
				if err := s.putStatusTx(ctx, tx, rc.StatusID, rc.Status(out)); err != nil {
					return err
				}
			}
			return nil
		}}
	if len(rc.Objects) == 0 && rc.StatusID == "" {
		return nil, nil
	}
	out, err := s.addWait(ctx, r)
	if err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

var _ store.ReceivedAdder = (*Store)(nil)

// AddOwn adds the node's own objects with their status and the alert
// states that go with them in one transaction of the writer, shared with
// the other calls waiting at the same time; see [store.OwnAdder].
func (s *Store) AddOwn(ctx context.Context, o store.Own) ([]entente.AddOutcome, error) {
	wrap := func(err error) error {
		return fmt.Errorf("add %d objects and %d alert states to collection %s: %w", len(o.Objects), len(o.AlertStates), o.Collection, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(err)
	}
	if err := store.CheckAlertStates(o.AlertStates); err != nil {
		return nil, wrap(err)
	}
	if len(o.Objects) == 0 && o.StatusID == "" && len(o.AlertStates) == 0 {
		return nil, nil
	}
	r := &addRequest{ctx: ctx, collection: o.Collection, objs: o.Objects, done: make(chan struct{}),
		within: func(ctx context.Context, tx *sql.Tx, out []entente.AddOutcome) error {
			for _, st := range o.AlertStates {
				if _, err := tx.StmtContext(ctx, s.w.putAlertState.Stmt).ExecContext(ctx, st.ID, st.Status, st.Updated.UnixNano(), string(st.Body)); err != nil {
					return storageFull(fmt.Errorf("put alert state %s: %w", st.ID, err))
				}
			}
			if o.StatusID != "" {
				if err := s.putStatusTx(ctx, tx, o.StatusID, o.Status(out)); err != nil {
					return err
				}
			}
			return nil
		}}
	out, err := s.addWait(ctx, r)
	if err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

var _ store.OwnAdder = (*Store)(nil)

// addWait hands r to the writer and waits until its transaction has
// committed (or failed), returning r's outcomes.
func (s *Store) addWait(ctx context.Context, r *addRequest) ([]entente.AddOutcome, error) {
	if err := s.enqueue(ctx, r); err != nil {
		return nil, err
	}
	<-r.done
	return r.out, r.err
}

// putStatusTx writes the status record id in the writer's transaction
// tx.
func (s *Store) putStatusTx(ctx context.Context, tx *sql.Tx, id string, status []byte) error {
	if _, err := tx.StmtContext(ctx, s.w.putStatus.Stmt).ExecContext(ctx, id, nonNilBytes(status), time.Now().UnixNano()); err != nil {
		return storageFull(fmt.Errorf("write status %s: %w", id, err))
	}
	return nil
}

// The writer lingers on a small group of submissions (see linger).
const (
	// lingerObjects is the group size below which it lingers: half the
	// back-pressure bound, so that a client posting one envelope after
	// another keeps posting (Submit returns) while the writer gathers
	// and stores the previous half.
	lingerObjects = maxSubmittedAhead / 2
	// lingerGap is how long it waits for the next submission; lingerMax
	// bounds the whole wait.
	lingerGap = 3 * time.Millisecond
	lingerMax = 20 * time.Millisecond
)

// linger waits, while group holds submissions only and fewer than
// lingerObjects objects, for more submissions to join it: as long as one
// arrives within lingerGap of the last, up to lingerMax in all. It
// returns the group and its objects.
//
// Why: a writer faster than the client (a TAXII POST of 10,000 objects
// in envelopes of 100 on a quiet machine) committed every envelope or
// two on its own, 20-31 commits per 10,000 objects, each an fsync, a
// rewrite of the partly filled pages of the table and of its indexes
// (the id-hash index's pages take ids at random), and on this virtual
// machine the runtime's monitor thread woken every 20 µs for a
// millisecond after each long system call. Lingering, the same post
// takes 16-19 commits. A submission's client does not wait for it (its
// status does, by at most lingerMax); a synchronous call never lingers.
func (s *Store) linger(group []*addRequest, n int) ([]*addRequest, int) {
	if s.lingerObjects <= 0 || n >= s.lingerObjects {
		return group, n
	}
	for _, r := range group {
		if r.onDone == nil {
			return group, n
		}
	}
	deadline := time.Now().Add(lingerMax)
	t := time.NewTimer(lingerGap)
	defer t.Stop()
	for n < s.lingerObjects {
		select {
		case r := <-s.adds:
			group = append(group, r)
			n += len(r.objs)
			if r.onDone == nil {
				return group, n
			}
			left := time.Until(deadline)
			if left <= 0 {
				return group, n
			}
			t.Reset(min(left, lingerGap))
		case <-t.C:
			return group, n
		case <-s.stop:
			return group, n
		}
	}
	return group, n
}
