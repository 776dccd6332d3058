package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/storetest"
)

// TestPeerSyncGroupCommit checks that peers' sync states saved while the
// writer is busy share one commit: 50 updates queued behind a write in
// progress cost one more commit, not 50.
func TestPeerSyncGroupCommit(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 50
	for i := range n {
		if err := s.PutPeer(ctx, store.Peer{ID: fmt.Sprintf("p%d", i), APIRoot: "http://127.0.0.1:1/", Collection: "c", LocalCollection: "l", Direction: store.DirectionPull}); err != nil {
			t.Fatal(err)
		}
	}
	release := holdWriter(ctx, s)
	before := s.writes.Load()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.UpdatePeerSync(ctx, fmt.Sprintf("p%d", i), json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), time.Now(), "")
		})
	}
	waitQueued(s, n)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("peer p%d: %v", i, err)
		}
	}
	if commits := s.writes.Load() - before; commits > 2 {
		t.Errorf("%d sync states saved in %d commits, want them grouped (at most 2: the blocking write's and theirs)", n, commits)
	}
	for i := range n {
		p, err := s.Peer(ctx, fmt.Sprintf("p%d", i))
		if err != nil || string(p.Checkpoint) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("peer p%d: checkpoint %s (%v)", i, p.Checkpoint, err)
		}
	}
}

// TestReceivedIsOneCommit checks that a received push (objects,
// provenance and status) costs one commit, where AddObjects, then
// SetProvenance, then PutStatus cost three.
func TestReceivedIsOneCommit(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateCollection(ctx, entente.Collection{ID: "c", Title: "c"}); err != nil {
		t.Fatal(err)
	}
	objs := bigObjects(t, 0, 20)
	before := s.writes.Load()
	out, err := s.AddReceived(ctx, store.Received{Collection: "c", Objects: objs, Origin: "identity--00000000-0000-4000-8000-00000000000a", Peer: "key:k",
		ReceivedAt: time.Now(), StatusID: "st", Status: func([]entente.AddOutcome) []byte { return []byte(`{}`) }})
	if err != nil {
		t.Fatal(err)
	}
	if commits := s.writes.Load() - before; commits != 1 {
		t.Errorf("a received push of %d objects cost %d commits, want 1", len(out), commits)
	}
	before = s.writes.Load()
	out, err = s.AddObjects(ctx, "c", bigObjects(t, 100, 20))
	if err != nil {
		t.Fatal(err)
	}
	prov := store.Received{Collection: "c", Origin: "identity--00000000-0000-4000-8000-00000000000a", Peer: "key:k", ReceivedAt: time.Now()}.Provenance(out)
	if err := s.SetProvenance(ctx, prov); err != nil {
		t.Fatal(err)
	}
	if err := s.PutStatus(ctx, "st2", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if commits := s.writes.Load() - before; commits != 3 {
		t.Errorf("the three-step path cost %d commits, want 3 (the test's baseline is wrong)", commits)
	}
}

// TestGroupFailureRollsBackOnlyItself checks the writer's retry with
// savepoints: in a group whose calls ran first without them, a call that
// fails after writing (a failing within) or before (an unknown
// collection) leaves no write of its own, its status is committed, and
// the other calls of the group, submissions with statuses, are stored,
// in one commit.
func TestGroupFailureRollsBackOnlyItself(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateCollection(ctx, entente.Collection{ID: "c", Title: "c"}); err != nil {
		t.Fatal(err)
	}
	release := holdWriter(ctx, s)
	failed := make(chan error, 1)
	before := s.writes.Load()
	type outcome struct {
		out []entente.AddOutcome
		err error
	}
	done := make([]chan outcome, 3)
	statuses := make([]int, 3) // how often each status was built
	for i := range done {
		done[i] = make(chan outcome, 1)
		collection := "c"
		if i == 1 {
			collection = "nope"
		}
		err := s.Submit(ctx, store.Submission{
			Collection: collection, Objects: storetest.Indicators(t, 10*i, 5), StatusID: fmt.Sprintf("st%d", i),
			Status: func(out []entente.AddOutcome, err error) []byte {
				statuses[i]++
				return fmt.Appendf(nil, `{"stored":%d,"failed":%t}`, len(out), err != nil)
			},
			Done: func(out []entente.AddOutcome, err error) { done[i] <- outcome{out, err} },
		})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// A call that writes, then fails.
			go func() {
				failed <- s.enqueueWrite(ctx, func(ctx context.Context, tx *sql.Tx, _ []entente.AddOutcome) error {
					if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('half', x'00')`); err != nil {
						return err
					}
					return errors.New("fails after writing")
				})
			}()
			waitQueued(s, 2)
		}
	}
	waitQueued(s, 4)
	if err := release(); err != nil {
		t.Fatalf("blocking write: %v", err)
	}
	if err := <-failed; err == nil || err.Error() != "fails after writing" {
		t.Fatalf("failing write: %v, want its error", err)
	}
	for i, want := range []int{5, 0, 5} {
		o := <-done[i]
		if wantErr := i == 1; (o.err != nil) != wantErr || len(o.out) != want {
			t.Errorf("submission %d: %d outcomes, %v; want %d, an error %t", i, len(o.out), o.err, want, wantErr)
		}
		if statuses[i] == 0 {
			t.Errorf("submission %d: no status built", i)
		}
	}
	if commits := s.writes.Load() - before; commits != 2 {
		t.Errorf("the blocking write and the group took %d commits, want 2", commits)
	}
	if _, err := s.Setting(ctx, "half"); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Errorf("the failed call's write is stored (%v)", err)
	}
	for i, want := range []string{`{"stored":5,"failed":false}`, `{"stored":0,"failed":true}`, `{"stored":5,"failed":false}`} {
		body, err := s.Status(ctx, fmt.Sprintf("st%d", i))
		if err != nil || string(body) != want {
			t.Errorf("status st%d: %s, %v; want %s", i, body, err, want)
		}
	}
	page, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: "c"})
	if err != nil || len(page.Entries) != 10 {
		t.Errorf("collection holds %d objects (%v), want 10", len(page.Entries), err)
	}
}

// holdWriter queues a write that holds s's writer until the returned
// function is called, which then returns that write's error.
func holdWriter(ctx context.Context, s *Store) func() error {
	release := make(chan struct{})
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.enqueueWrite(ctx, func(context.Context, *sql.Tx, []entente.AddOutcome) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	return func() error {
		close(release)
		return <-done
	}
}

// waitQueued waits, at most 10 s, until n writes are queued behind s's
// writer.
func waitQueued(s *Store, n int) {
	deadline := time.Now().Add(10 * time.Second)
	for len(s.adds) < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// TestSubmitWaitsForBacklog checks Submit's back-pressure: a submission
// returns at once while at most maxAhead objects of earlier ones are left
// to store, and otherwise only once the writer has finished enough of
// them; one larger than maxAhead waits only for as many as its own.
func TestSubmitWaitsForBacklog(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.maxAhead = 500
	if err := s.CreateCollection(ctx, entente.Collection{ID: "c", Title: "c"}); err != nil {
		t.Fatal(err)
	}
	release := holdWriter(ctx, s)
	var mu sync.Mutex
	var finished []int // submissions whose Done ran, in order
	submit := func(i, n int) error {
		return s.Submit(ctx, store.Submission{
			Collection: "c", Objects: storetest.Indicators(t, 1000*i, n), StatusID: fmt.Sprintf("st%d", i),
			Status: func([]entente.AddOutcome, error) []byte { return []byte(`{}`) },
			Done: func([]entente.AddOutcome, error) {
				mu.Lock()
				finished = append(finished, i)
				mu.Unlock()
			},
		})
	}
	// 0, 300 and then 600 objects ahead: the first two return at once.
	for i := range 2 {
		if err := submit(i, 300); err != nil {
			t.Fatal(err)
		}
	}
	returned := make(chan []int, 1)
	go func() {
		if err := submit(2, 300); err != nil {
			t.Error(err)
		}
		mu.Lock()
		returned <- slices.Clone(finished)
		mu.Unlock()
	}()
	waitQueued(s, 3)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	// 600 objects ahead: it returned once 100 of them were stored, so
	// after the first submission's Done.
	if got := <-returned; len(got) == 0 || got[0] != 0 {
		t.Errorf("third submission returned with submissions %v finished, want the first among them", got)
	}
	// A submission larger than the bound waits for as many as its own:
	// with 300 ahead at most (none once the writer caught up), at once.
	if err := submit(3, 800); err != nil {
		t.Fatal(err)
	}
}

// TestWriterLingers checks linger: a small group of submissions waits for
// the submissions that follow within lingerGap, up to lingerObjects
// objects; a synchronous call ends the wait at once, and a store that
// does not linger (lingerObjects 0) takes the group as it is.
func TestWriterLingers(t *testing.T) {
	sub := func(n int) *addRequest {
		return &addRequest{objs: make([]*stix.Object, n), onDone: func([]entente.AddOutcome, error) {}}
	}
	feed := func(s *Store, every time.Duration, rs ...*addRequest) {
		go func() {
			for _, r := range rs {
				time.Sleep(every)
				select {
				case s.adds <- r:
				case <-s.stop:
					return
				}
			}
		}()
	}
	newStore := func(linger int) *Store {
		return &Store{adds: make(chan *addRequest, 64), stop: make(chan struct{}), lingerObjects: linger}
	}

	// Submissions waiting join until the group holds lingerObjects
	// objects.
	s := newStore(500)
	for range 6 {
		s.adds <- sub(100)
	}
	group, n := s.linger([]*addRequest{sub(100)}, 100)
	if n != 500 || len(group) != 5 {
		t.Errorf("lingered to %d objects in %d calls, want 500 in 5", n, len(group))
	}

	// One that comes a millisecond later is waited for: it joins, or (a
	// loaded machine) the wait lasted lingerGap.
	s = newStore(500)
	feed(s, time.Millisecond, sub(100))
	start := time.Now()
	if group, _ := s.linger([]*addRequest{sub(100)}, 100); len(group) != 2 && time.Since(start) < lingerGap {
		t.Errorf("a submission a millisecond later did not join, after a wait of %v", time.Since(start))
	}

	// A synchronous call joins and ends the wait: the submission queued
	// after it stays queued. (Queued beforehand, not fed with gaps: a
	// loaded machine's gap can outlast lingerGap.)
	s = newStore(500)
	sync := &addRequest{objs: make([]*stix.Object, 1), done: make(chan struct{})}
	s.adds <- sub(100)
	s.adds <- sync
	s.adds <- sub(100)
	if group, n := s.linger([]*addRequest{sub(100)}, 100); n != 201 || len(group) != 3 || group[2] != sync {
		t.Errorf("with a synchronous call: %d objects in %d calls, want 201 in 3 ending with it", n, len(group))
	}

	// A group holding a synchronous call does not linger.
	s = newStore(500)
	if group, n := s.linger([]*addRequest{sync}, 1); n != 1 || len(group) != 1 {
		t.Errorf("a synchronous call lingered: %d objects in %d calls", n, len(group))
	}

	// Nothing follows: the wait ends after lingerGap.
	s = newStore(500)
	start = time.Now()
	if group, _ := s.linger([]*addRequest{sub(100)}, 100); len(group) != 1 {
		t.Errorf("nothing followed, yet the group holds %d calls", len(group))
	}
	if d := time.Since(start); d < lingerGap || d > lingerGap+time.Second {
		t.Errorf("lingered %v with nothing following, want about %v", d, lingerGap)
	}

	// A steady trickle of a second's worth: the wait ends within
	// lingerMax (and a loaded machine's slack), long before the trickle.
	s = newStore(500)
	s.adds = make(chan *addRequest, 1)
	trickle := make([]*addRequest, 1000)
	for i := range trickle {
		trickle[i] = sub(0)
	}
	feed(s, time.Millisecond, trickle...)
	start = time.Now()
	group, _ = s.linger([]*addRequest{sub(1)}, 1)
	if d := time.Since(start); d > lingerMax+500*time.Millisecond || len(group) >= len(trickle) {
		t.Errorf("a trickle lingered %v for %d calls, want at most about %v", d, len(group), lingerMax)
	}
	close(s.stop) // the feeder stops

	// A store that does not linger.
	s = newStore(0)
	feed(s, 0, sub(100))
	time.Sleep(10 * time.Millisecond)
	if group, n := s.linger([]*addRequest{sub(100)}, 100); n != 100 || len(group) != 1 {
		t.Errorf("lingerObjects 0 lingered: %d objects in %d calls", n, len(group))
	}
}
