package devices

import (
	"bytes"
	"cmp"
	"slices"
	"sync"
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
