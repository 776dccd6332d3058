package devices

import (
	"bytes"
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// SetParallel spreads the devices over n shards (n ≤ 1: one, the
// default), which [Watcher.Flows] and [Watcher.Sweep] run on n
// goroutines. Each device lives in one shard, chosen by its identity, and
// sees its connections in log order, so the profiles and findings do not
// depend on n, with one exception: MaxDevices applies per shard (each
// keeps MaxDevices/n). Leases, names and the other events are applied by
// the caller's goroutine between batches. Call it between events, not
// during one. Asking again for the shards in place changes nothing
// (a node's watch runs once per post of logs: its devices are not
// redistributed each time).
func (w *Watcher) SetParallel(n int) {
	w.Wait()
	if n > 1 && n == len(w.shards) || n <= 1 && len(w.shards) == 0 {
		return
	}
	all := w.all()
	for _, s := range w.shards {
		w.stats.Forgotten += s.stats.Forgotten
		w.stats.Evictions += s.stats.Evictions
		w.stats.Findings += s.stats.Findings
		w.stats.Suppressed += s.stats.Suppressed
		w.out = append(w.out, s.out...)
	}
	w.shards, w.part = nil, nil
	w.devices, w.list = devTable{}, nil
	if n <= 1 {
		for _, d := range all {
			w.insert(d)
		}
		return
	}
	for range n {
		c := &Watcher{cfg: w.cfg, loc: w.loc, rloc: w.rloc, key: w.key, local: w.local, local4: w.local4, leases: w.leases, names: w.names,
			clock: w.clock}
		c.cfg.MaxDevices = max(1, w.cfg.MaxDevices/n)
		w.shards = append(w.shards, c)
	}
	w.part = make([][]int32, n)
	for _, d := range all {
		w.shardFor(d.id).insert(d)
	}
}

// shardIndex is the shard of a device.
func (w *Watcher) shardIndex(id DeviceID) int {
	return int(idHash(&id) % uint64(len(w.shards)))
}

// shardFor returns the watcher that holds device id: a shard, or w.
func (w *Watcher) shardFor(id DeviceID) *Watcher {
	if len(w.shards) == 0 {
		return w
	}
	return w.shards[w.shardIndex(id)]
}

// parts returns the watchers that hold devices: the shards, or w.
func (w *Watcher) parts() []*Watcher {
	if len(w.shards) == 0 {
		return []*Watcher{w}
	}
	return w.shards
}

// parallel runs f on every shard, on its own goroutine but the first.
func (w *Watcher) parallel(f func(k int, s *Watcher)) {
	var wg sync.WaitGroup
	for k, s := range w.shards[1:] {
		wg.Go(func() { f(k+1, s) })
	}
	f(0, w.shards[0])
	wg.Wait()
}

// all returns every device, sorted by when it was first seen, then by
// identity.
func (w *Watcher) all() []*device {
	var out []*device
	for _, s := range w.parts() {
		out = append(out, s.list...)
	}
	slices.SortStableFunc(out, func(a, b *device) int {
		if c := cmp.Compare(a.first, b.first); c != 0 {
			return c
		}
		return bytes.Compare(a.id.k[:], b.id.k[:])
	})
	return out
}

// asyncDepth is how many batches of connections [Watcher.FlowsAsync]
// queues per shard before it waits.
const asyncDepth = 4

// asyncShards is the shards' goroutines while [Watcher.FlowsAsync] runs
// them: each takes the batches of its queue in order.
type asyncShards struct {
	queues []chan *flowJob
	free   chan *flowJob
	wg     sync.WaitGroup
}

// flowJob is one batch handed to the shards.
type flowJob struct {
	fs   []Flow
	part [][]int32 // the indexes in fs of each shard's connections
	left atomic.Int32
	done func()
}

// FlowsAsync is [Watcher.Flows] without waiting for the shards: each
// shard takes the batches in the order given on a goroutine of its own,
// so that a shard that is through with a batch goes on with the next one
// instead of waiting for the others (and the results are those of
// Flows). fs must not change until done (when not nil) is called, from
// one of the shards' goroutines, after the last shard is through with
// it. Until [Watcher.Wait] returns, the watcher may only be given more
// batches this way or asked its [Watcher.Clock]: every other method waits
// first. Without shards it is Flows followed by done.
func (w *Watcher) FlowsAsync(fs []Flow, done func()) {
	if len(w.shards) == 0 {
		w.Flows(fs)
		if done != nil {
			done()
		}
		return
	}
	a := w.async
	if a == nil {
		a = &asyncShards{queues: make([]chan *flowJob, len(w.shards)), free: make(chan *flowJob, (asyncDepth+2)*len(w.shards))}
		for k, s := range w.shards {
			q := make(chan *flowJob, asyncDepth)
			a.queues[k] = q
			a.wg.Go(func() {
				for j := range q {
					s.egressBatch(j.fs, j.part[k])
					if j.left.Add(-1) == 0 {
						done := j.done
						j.fs, j.done = nil, nil
						select {
						case a.free <- j:
						default:
						}
						if done != nil {
							done()
						}
					}
				}
			})
		}
		w.async = a
	}
	var j *flowJob
	select {
	case j = <-a.free:
	default:
		j = &flowJob{part: make([][]int32, len(w.shards))}
	}
	w.partition(fs, j.part, nil)
	j.fs, j.done = fs, done
	j.left.Store(int32(len(w.shards)))
	for _, q := range a.queues {
		q <- j
	}
}

// Wait returns when the shards are through with the batches given to
// [Watcher.FlowsAsync], and stops their goroutines.
func (w *Watcher) Wait() {
	a := w.async
	if a == nil {
		return
	}
	w.async = nil
	for _, q := range a.queues {
		close(q)
	}
	a.wg.Wait()
}
