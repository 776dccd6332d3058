package sqlite

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// walLoad is the outcome of constant readers and writers on a store.
type walLoad struct {
	maxWAL, finalWAL, idleWAL int64
	added, pages              int64
	// loaded is the keeper's figures when the load stopped, stats after
	// the idle wait.
	loaded, stats entente.WALStats
}

// runWALLoad opens a store with the given bounds and runs, for d, two
// writers adding envelopes of 100 new indicators back to back and the
// given number of readers without pause, so that some reader always holds
// a snapshot: three in four page through the collection (limit 100), the
// others browse the search index (its own pool of connections); it
// samples the objects' log every 5 ms. After the load it waits for four
// ticks (at most a second) and walOptions.retry of idleness.
func runWALLoad(t *testing.T, opts walOptions, d time.Duration, readers int) walLoad {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := open(ctx, dir, opts, serveWriter)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const coll = "wal-test"
	if err := s.CreateCollection(ctx, entente.Collection{ID: coll, Title: "WAL", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// The log from the load alone, not the schema's creation.
	if _, err := s.write.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	var (
		res      walLoad
		wg       sync.WaitGroup
		firstErr atomic.Value
		next     atomic.Int64
	)
	fail := func(err error) { firstErr.CompareAndSwap(nil, err) }
	lctx, stop := context.WithTimeout(ctx, d)
	defer stop()
	for range 2 {
		wg.Go(func() {
			for lctx.Err() == nil {
				base := next.Add(100) - 100
				objs := make([]*stix.Object, 100)
				for i := range objs {
					o, err := stix.Decode([]byte(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012x","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"a name long enough to fill pages, %d","pattern":"[ipv4-addr:value = '10.%d.%d.%d']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}`,
						base+int64(i), base+int64(i), (base>>16)&255, (base>>8)&255, i)))
					if err != nil {
						fail(err)
						return
					}
					objs[i] = o
				}
				if _, err := s.AddObjects(ctx, coll, objs); err != nil {
					fail(err)
					return
				}
				atomic.AddInt64(&res.added, 100)
			}
		})
	}
	for r := range readers {
		if r%4 == 3 {
			wg.Go(func() {
				for lctx.Err() == nil {
					if _, err := s.SearchObjects(ctx, store.SearchQuery{Limit: 50}); err != nil {
						fail(err)
						return
					}
					atomic.AddInt64(&res.pages, 1)
				}
			})
			continue
		}
		wg.Go(func() {
			q := entente.ObjectQuery{Collection: coll, Limit: 100}
			for lctx.Err() == nil {
				p, err := s.QueryObjects(ctx, q)
				if err != nil {
					fail(err)
					return
				}
				atomic.AddInt64(&res.pages, 1)
				q.Next = p.Next
				if !p.More {
					q.Next = ""
				}
			}
		})
	}
	walPath := filepath.Join(dir, FileName+"-wal")
	walSize := func() int64 {
		fi, err := os.Stat(walPath)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	tick := time.NewTicker(5 * time.Millisecond)
	for lctx.Err() == nil {
		<-tick.C
		res.maxWAL = max(res.maxWAL, walSize())
	}
	tick.Stop()
	wg.Wait()
	res.loaded = s.WALStats()[0]
	if err, _ := firstErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	res.finalWAL = walSize()
	time.Sleep(min(4*opts.interval, time.Second) + opts.retry + 100*time.Millisecond)
	res.idleWAL = walSize()
	res.stats = s.WALStats()[0]
	return res
}

// TestWALBoundedUnderConstantReads: with sixteen readers always active,
// the keeper's emptying checkpoints, holding new reads back while they
// wait for those in flight, all complete under the load, hold the
// objects' log within twice its limit, and leave it within the limit once
// idle (issue 16, D4). The control runs the same load without emptying
// (limit out of reach): the log only grows, and stays large when idle.
// The limit is a quarter of the control's largest log (at most 2 MiB), so
// that the control passes twice the limit however loaded the machine.
func TestWALBoundedUnderConstantReads(t *testing.T) {
	const (
		d       = 4 * time.Second
		readers = 16
	)
	opts := walOptions{interval: 20 * time.Millisecond, wait: 250 * time.Millisecond, turn: time.Second, retry: 100 * time.Millisecond}

	control := opts
	control.limit = 1 << 40
	c := runWALLoad(t, control, d, readers)
	t.Logf("control (passive checkpoints only): %d objects added, %d reads; WAL max %.1f MiB, idle %.1f MiB", c.added, c.pages, float64(c.maxWAL)/(1<<20), float64(c.idleWAL)/(1<<20))
	if c.added == 0 || c.pages == 0 {
		t.Fatalf("no load: %d objects added, %d pages read", c.added, c.pages)
	}
	// An emptied log's file is cut to journal_size_limit (64 MiB, see
	// sqlite.go) at most: a larger one stays that large once idle.
	if c.idleWAL < min(c.maxWAL, 64<<20)*9/10 {
		t.Fatalf("the control's log shrank from %d to %d bytes without emptying: readers did not keep it in use", c.maxWAL, c.idleWAL)
	}
	limit := min(2<<20, c.maxWAL/4)
	if limit < 256<<10 {
		t.Fatalf("the control's log reached only %d bytes: the load is too light to tell", c.maxWAL)
	}

	opts.limit = limit
	got := runWALLoad(t, opts, d, readers)
	t.Logf("bounded (limit %.2f MiB): %d objects added, %d reads; WAL max %.2f MiB, idle %.2f MiB; under load %+v",
		float64(limit)/(1<<20), got.added, got.pages, float64(got.maxWAL)/(1<<20), float64(got.idleWAL)/(1<<20), got.loaded)
	if got.added == 0 || got.pages == 0 {
		t.Fatalf("no load: %d objects added, %d pages read", got.added, got.pages)
	}
	if got.maxWAL > 2*limit {
		t.Errorf("WAL reached %d bytes under constant reads, more than twice the limit %d", got.maxWAL, limit)
	}
	if got.idleWAL > limit {
		t.Errorf("WAL holds %d bytes once idle, limit %d", got.idleWAL, limit)
	}
	if l := got.loaded; l.Truncations == 0 || l.Incomplete > 0 {
		t.Errorf("under the load %d emptying checkpoints completed and %d gave up, want some and none: %+v", l.Truncations, l.Incomplete, l)
	}
	if got.loaded.ReadsHeld == 0 {
		t.Errorf("no read was held back: %+v", got.loaded)
	}
	if got.stats.Database != "objects" || got.stats.LimitBytes != limit || got.stats.Bytes != got.idleWAL {
		t.Errorf("stats %+v do not describe the objects' log (%d bytes, limit %d)", got.stats, got.idleWAL, limit)
	}
}

// TestWALWriterEmptiesLog: the writer keeps the objects' log within
// two and a half times its limit by itself, emptying it between two of its transactions
// (walKeeper.afterWrite), whatever the keeper's ticks do: here they never
// come, as when every emptying of theirs gives up waiting for its turn at
// the writer connection while the writer commits group after group
// (issue 16, D4: the log reached 150 MiB against a limit of 64); and
// once idle, the writer truncates it. The control has only the ticks
// empty the log, as before: it grows past twice its limit.
func TestWALWriterEmptiesLog(t *testing.T) {
	const (
		d       = 3 * time.Second
		readers = 16
		// Twice a transaction of the writer (up to 200 objects, about
		// 500 KiB of log), and a small part of what the control writes.
		limit = 1 << 20
		// bound is the most the log may hold: the limit, the transaction
		// that crossed it and the one that commits while the emptying
		// waits its turn (a transaction's log varies with the index pages
		// it rewrites; 2.04-2.17 MiB were seen on a quiet machine).
		bound = 5 * limit / 2
	)
	for _, tc := range []struct {
		name          string
		keeperEmpties bool
	}{
		{"ticks empty (control)", true},
		{"writer empties", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := walOptions{limit: limit, interval: time.Hour, wait: 250 * time.Millisecond, turn: time.Second, retry: 100 * time.Millisecond, keeperEmpties: tc.keeperEmpties}
			got := runWALLoad(t, opts, d, readers)
			l := got.loaded
			t.Logf("%d objects added, %d reads; WAL max %.2f MiB (limit %.2f); under load %+v",
				got.added, got.pages, float64(got.maxWAL)/(1<<20), float64(limit)/(1<<20), l)
			if got.added == 0 || got.pages == 0 {
				t.Fatalf("no load: %d objects added, %d pages read", got.added, got.pages)
			}
			if tc.keeperEmpties {
				if got.maxWAL <= bound {
					t.Fatalf("the control's log reached %d bytes, want more than %d (the test cannot tell)", got.maxWAL, bound)
				}
				return
			}
			if got.maxWAL > bound {
				t.Errorf("WAL reached %d bytes, more than %d (limit %d)", got.maxWAL, bound, limit)
			}
			if got.idleWAL > limit {
				t.Errorf("WAL holds %d bytes once the writer is idle, limit %d: %+v", got.idleWAL, limit, got.stats)
			}
			if l.Truncations == 0 || l.Incomplete > 0 {
				t.Errorf("emptyings: %d completed, %d gave up; want some and none", l.Truncations, l.Incomplete)
			}
			if l.ReadsHeld == 0 {
				t.Errorf("no read was held back: %+v", l)
			}
		})
	}
}

// TestWALInUse: the frames in use the keeper reads from the log's index
// are those a checkpoint reports.
func TestWALInUse(t *testing.T) {
	ctx := context.Background()
	opts := defaultWAL
	opts.interval = time.Hour // no tick checkpoints meanwhile
	s, err := open(ctx, t.TempDir(), opts, serveWriter)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateCollection(ctx, entente.Collection{ID: "use", Title: "use", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := addIndicators(ctx, s, "use", i*500, 500); err != nil {
			t.Fatal(err)
		}
		used, ok := s.wal.inUse()
		var busy, log, done int64
		if err := s.ckpt.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err != nil {
			t.Fatal(err)
		}
		want := walHeader + log*(walFrameHeader+s.wal.pageSize)
		if !ok || log <= 0 || used != want {
			t.Fatalf("after %d objects: in use %d bytes (ok %v), want %d (%d frames)", (i+1)*500, used, ok, want, log)
		}
	}
}

// addIndicators adds n new indicators, numbered from base, to collection
// coll of s.
func addIndicators(ctx context.Context, s *Store, coll string, base, n int) error {
	objs := make([]*stix.Object, n)
	for i := range objs {
		o, err := stix.Decode([]byte(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012x","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"held %d","pattern":"[ipv4-addr:value = '10.0.%d.%d']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}`,
			base+i, base+i, (base+i)>>8&255, (base+i)&255)))
		if err != nil {
			return err
		}
		objs[i] = o
	}
	_, err := s.AddObjects(ctx, coll, objs)
	return err
}

// TestWALHeldReadsProceed: while the read gate is closed, a page read and
// a search (each pool of read connections) wait; once it reopens both
// complete, and the store counts them as held.
func TestWALHeldReadsProceed(t *testing.T) {
	ctx := context.Background()
	// A wait far longer than the test: only reopening lets them through.
	opts := defaultWAL
	opts.wait = time.Minute
	s, err := open(ctx, t.TempDir(), opts, serveWriter)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const coll = "held"
	if err := s.CreateCollection(ctx, entente.Collection{ID: coll, Title: "held", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := addIndicators(ctx, s, coll, 0, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.IndexSearch(ctx); err != nil {
		t.Fatal(err)
	}
	s.wal.gate.close()
	results := make(chan string, 2)
	go func() {
		p, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: coll})
		results <- fmt.Sprintf("page: %d entries, %v", len(p.Entries), err)
	}()
	go func() {
		p, err := s.SearchObjects(ctx, store.SearchQuery{Text: "held"})
		results <- fmt.Sprintf("search: %d hits, %v", len(p.Hits), err)
	}()
	select {
	case r := <-results:
		t.Fatalf("a read passed the closed gate: %s", r)
	case <-time.After(100 * time.Millisecond):
	}
	s.wal.gate.open()
	got := map[string]bool{}
	for range 2 {
		select {
		case r := <-results:
			got[r] = true
		case <-time.After(10 * time.Second):
			t.Fatal("a read held back is still waiting 10 s after the gate reopened")
		}
	}
	if want := map[string]bool{"page: 10 entries, <nil>": true, "search: 10 hits, <nil>": true}; !maps.Equal(got, want) {
		t.Errorf("reads held back returned %v, want %v", got, want)
	}
	if st := s.WALStats()[0]; st.ReadsHeld != 2 || st.ReadsHeldTime < 100*time.Millisecond {
		t.Errorf("stats %+v: want 2 reads held for at least 100 ms in all", st)
	}
}

// TestWALLongReadBoundsCheckpoint: a read that keeps its snapshot for
// seconds keeps the log from being emptied, but neither blocks the
// writers nor the other readers for longer than the keeper's wait: the
// emptying gives up (and lets the reads held back in), writes and reads
// go on, and once the long read ends an emptying completes.
func TestWALLongReadBoundsCheckpoint(t *testing.T) {
	ctx := context.Background()
	opts := walOptions{limit: 256 << 10, interval: 20 * time.Millisecond, wait: 100 * time.Millisecond, turn: time.Second, retry: 100 * time.Millisecond}
	s, err := open(ctx, t.TempDir(), opts, serveWriter)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const coll = "long"
	if err := s.CreateCollection(ctx, entente.Collection{ID: coll, Title: "long", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := addIndicators(ctx, s, coll, 0, 100); err != nil {
		t.Fatal(err)
	}
	// The long read: one row read, the statement left open.
	rows, err := s.read.QueryContext(ctx, `SELECT id FROM objects`)
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatal("no object")
	}
	before := s.WALStats()[0]
	// timed runs fn and fails if it takes longer than 5 s (the keeper
	// stalls it for at most its wait).
	timed := func(what string, fn func() error) {
		t.Helper()
		start := time.Now()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s took %v during a long read", what, d)
		}
	}
	base := 100
	for {
		timed("adding objects", func() error { return addIndicators(ctx, s, coll, base, 100) })
		base += 100
		timed("reading a page", func() error {
			_, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: coll, Limit: 10})
			return err
		})
		if st := s.WALStats()[0]; st.Incomplete > before.Incomplete+2 || base > 20000 {
			break
		}
	}
	during := s.WALStats()[0]
	if during.Incomplete <= before.Incomplete || during.Truncations != before.Truncations {
		t.Fatalf("during the long read (%d objects added) emptyings: before %+v, after %+v; want some given up and none completed", base, before, during)
	}
	if during.GaveUpReads == 0 || during.GaveUpReads+during.GaveUpSnapshots+during.GaveUpWriter+during.GaveUpError != during.Incomplete {
		t.Fatalf("during the long read: %+v; want the emptyings given up counted by what they waited for, some for the reads in flight", during)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.WALStats()[0].Truncations == during.Truncations {
		if time.Now().After(deadline) {
			t.Fatalf("no emptying completed in 10 s after the long read ended: %+v", s.WALStats()[0])
		}
		timed("adding objects", func() error { return addIndicators(ctx, s, coll, base, 100) })
		base += 100
	}
	t.Logf("during the long read: %+v; after: %+v", during, s.WALStats()[0])
}

// TestWALLazyPassive: a tick with writes defers its PASSIVE checkpoint
// while the log in use is under walOptions.lazyBytes and the file saw a
// write within walOptions.quiet, reporting the lag meanwhile; the tick
// after the quiet checkpoints it. A log past lazyBytes, or lazyBytes 0,
// is checkpointed at the first tick with writes, as before.
func TestWALLazyPassive(t *testing.T) {
	const quiet = time.Second
	tests := []struct {
		name      string
		lazyBytes int64
		objects   int
		// deferred: the first tick with writes leaves them uncheckpointed.
		deferred bool
	}{
		{"small log deferred", 4 << 20, 5, true},
		{"log past lazyBytes", 16 << 10, 500, false},
		{"eager", 0, 5, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			opts := defaultWAL
			opts.interval = time.Hour // the test ticks
			opts.lazyBytes, opts.quiet = tc.lazyBytes, quiet
			s, err := open(ctx, t.TempDir(), opts, serveWriter)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.CreateCollection(ctx, entente.Collection{ID: "lazy", Title: "lazy", Created: time.Now()}); err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			s.wal.tick(t0, true) // the collection's creation
			base := s.WALStats()[0].Checkpoints
			if err := addIndicators(ctx, s, "lazy", 0, tc.objects); err != nil {
				t.Fatal(err)
			}
			s.wal.tick(t0.Add(quiet/4), true)
			st := s.WALStats()[0]
			if got := st.Checkpoints - base; tc.deferred != (got == 0) {
				t.Fatalf("after the tick with writes: %d checkpoints, want deferred %v (%+v)", got, tc.deferred, st)
			}
			if !tc.deferred {
				return
			}
			if st.CheckpointLag <= 0 {
				t.Errorf("deferred writes reported no checkpoint lag: %+v", st)
			}
			s.wal.tick(t0.Add(quiet/2), false)
			if got := s.WALStats()[0].Checkpoints - base; got != 0 {
				t.Fatalf("%d checkpoints within the quiet period, want 0", got)
			}
			s.wal.tick(t0.Add(quiet/4+quiet), false)
			st = s.WALStats()[0]
			if got := st.Checkpoints - base; got != 1 || st.PendingFrames != 0 || st.CheckpointLag != 0 {
				t.Fatalf("after the quiet period: %d checkpoints, %d frames pending, lag %s; want 1, 0, 0", got, st.PendingFrames, st.CheckpointLag)
			}
		})
	}
}

// TestCheckpointerWaitsForWrites: once every write is checkpointed, the
// checkpointer stops ticking until the next commit, which it then
// checkpoints.
func TestCheckpointerWaitsForWrites(t *testing.T) {
	ctx := context.Background()
	opts := defaultWAL
	opts.interval, opts.lazyBytes = 5*time.Millisecond, 0
	s, err := open(ctx, t.TempDir(), opts, serveWriter)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateCollection(ctx, entente.Collection{ID: "wait", Title: "wait", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// settled waits until the checkpointer has checkpointed every write
	// and stopped ticking (the same count over 20 intervals), within 10 s.
	settled := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for last := int64(-1); ; {
			time.Sleep(20 * opts.interval)
			n := s.ticks.Load()
			if n == last && s.WALStats()[0].CheckpointLag == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the checkpointer still ticks (%d ticks) or lags: %+v", n, s.WALStats())
			}
			last = n
		}
	}
	settled()
	before := s.WALStats()[0].Checkpoints
	if err := addIndicators(ctx, s, "wait", 0, 10); err != nil {
		t.Fatal(err)
	}
	settled()
	if got := s.WALStats()[0].Checkpoints; got <= before {
		t.Fatalf("a write after the checkpointer waited was not checkpointed: %d checkpoints before, %d after", before, got)
	}
}

// TestCheckpointerRestsWhileDeferred: after a small commit, while the
// only thing left is the checkpoint deferred until the file is quiet,
// the checkpointer waits for that time (or the next commit) instead of
// ticking; the deferred checkpoint still runs once the file is quiet.
func TestCheckpointerRestsWhileDeferred(t *testing.T) {
	ctx := context.Background()
	opts := defaultWAL
	opts.interval, opts.quiet = 5*time.Millisecond, 500*time.Millisecond
	s, err := open(ctx, t.TempDir(), opts, serveWriter)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateCollection(ctx, entente.Collection{ID: "rest", Title: "rest", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// Let the creation's checkpoint run and the checkpointer settle.
	deadline := time.Now().Add(10 * time.Second)
	for s.WALStats()[0].CheckpointLag != 0 || s.WALStats()[1].CheckpointLag != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the creation was not checkpointed within 10 s: %+v", s.WALStats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	before, checkpoints := s.ticks.Load(), s.WALStats()[0].Checkpoints
	if err := addIndicators(ctx, s, "rest", 0, 10); err != nil {
		t.Fatal(err)
	}
	time.Sleep(opts.quiet / 2)
	// Ticking every 5 ms would make some 50 ticks by now.
	if n := s.ticks.Load() - before; n > 5 {
		t.Errorf("%d ticks in the quiet period after a small commit, want at most 5", n)
	}
	if got := s.WALStats()[0].Checkpoints; got != checkpoints {
		t.Errorf("%d checkpoints within the quiet period, want 0", got-checkpoints)
	}
	for s.WALStats()[0].Checkpoints == checkpoints {
		if time.Now().After(deadline) {
			t.Fatalf("the deferred checkpoint did not run once the file was quiet: %+v", s.WALStats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
