package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

// walLoad is the outcome of constant readers and writers on a store.
type walLoad struct {
	maxWAL, finalWAL, idleWAL int64
	added, pages              int64
	stats                     entente.WALStats
}

// runWALLoad opens a store with the given bounds and runs, for d, two
// writers adding envelopes of 100 new indicators back to back and six
// readers paging through the collection (limit 100) without pause, so
// that some reader always holds a snapshot; it samples the objects' log
// every 5 ms. After the load it waits for two ticks of idleness.
func runWALLoad(t *testing.T, opts walOptions, d time.Duration) walLoad {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := open(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const coll = "wal-test"
	if err := s.CreateCollection(ctx, entente.Collection{ID: coll, Title: "WAL", Created: time.Now()}); err != nil {
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
	for range 6 {
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
	if err, _ := firstErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	res.finalWAL = walSize()
	time.Sleep(2*opts.interval + opts.retry)
	res.idleWAL = walSize()
	res.stats = s.WALStats()[0]
	return res
}

// TestWALBoundedUnderConstantReads: with readers always active, the
// keeper's truncating checkpoints hold the objects' log within its limit
// plus what the writers commit while a truncation is due and waits, and
// leave it within the limit once idle. The control runs the same load
// without truncation (limit out of reach): the log only grows, and stays
// large when idle (issue 16, D4). The control also says how many bytes of
// log an object costs, from which the bound on the first run follows:
// limit + 8 × (bytes written per second) × (interval + wait + retry): a
// truncation may be due for up to a tick, wait, fail (the writer's
// transaction outlasted its wait) and be retried, a few times in a row on
// a loaded machine.
func TestWALBoundedUnderConstantReads(t *testing.T) {
	const d = 4 * time.Second
	const limit = 1 << 20
	opts := walOptions{limit: limit, interval: 20 * time.Millisecond, wait: 100 * time.Millisecond, retry: 100 * time.Millisecond}

	control := opts
	control.limit = 1 << 40
	c := runWALLoad(t, control, d)
	t.Logf("control (passive checkpoints only): %d objects added; WAL max %.1f MiB, idle %.1f MiB", c.added, float64(c.maxWAL)/(1<<20), float64(c.idleWAL)/(1<<20))
	if c.added == 0 || c.pages == 0 {
		t.Fatalf("no load: %d objects added, %d pages read", c.added, c.pages)
	}
	if c.idleWAL < c.maxWAL*9/10 {
		t.Fatalf("the control's log shrank from %d to %d bytes without truncation: readers did not keep it in use", c.maxWAL, c.idleWAL)
	}
	perObject := float64(c.maxWAL) / float64(c.added)

	// boundAt is the bound for a load writing rate bytes of log a second.
	boundAt := func(rate float64) int64 {
		return limit + int64(8*rate*(opts.interval+opts.wait+opts.retry).Seconds())
	}
	if cb := boundAt(float64(c.maxWAL) / d.Seconds()); c.maxWAL <= cb {
		t.Fatalf("the control's log (%d bytes) stayed within the bound at its own rate (%d): the load is too light to tell", c.maxWAL, cb)
	}

	got := runWALLoad(t, opts, d)
	rate := float64(got.added) * perObject / d.Seconds()
	bound := boundAt(rate)
	t.Logf("bounded: %d objects added (~%.1f MB/s of log), %d pages read; WAL max %.1f MiB (bound %.1f), idle %.1f MiB; %+v",
		got.added, rate/1e6, got.pages, float64(got.maxWAL)/(1<<20), float64(bound)/(1<<20), float64(got.idleWAL)/(1<<20), got.stats)
	if got.added == 0 || got.pages == 0 {
		t.Fatalf("no load: %d objects added, %d pages read", got.added, got.pages)
	}
	if got.maxWAL > bound {
		t.Errorf("WAL reached %d bytes under constant reads, bound %d (limit %d)", got.maxWAL, bound, limit)
	}
	if got.idleWAL > limit {
		t.Errorf("WAL holds %d bytes once idle, limit %d", got.idleWAL, limit)
	}
	if got.stats.Truncations == 0 || got.stats.Checkpoints < got.stats.Truncations {
		t.Errorf("no truncating checkpoint completed: %+v", got.stats)
	}
	if got.stats.Database != "objects" || got.stats.LimitBytes != limit || got.stats.Bytes != got.idleWAL {
		t.Errorf("stats %+v do not describe the objects' log (%d bytes, limit %d)", got.stats, got.idleWAL, limit)
	}
}
