package blind

import (
	"context"
	"sync"
)

// ReplayGuard remembers the batches evaluated for each partner and epoch,
// so that a batch sent twice is refused. Each remembered batch was paid
// for from the budget, so the budget bounds what a guard holds per
// period. The node may keep it in its store to share it between replicas.
type ReplayGuard interface {
	// Seen reports whether the digest was recorded.
	Seen(ctx context.Context, partner string, epoch uint64, digest [32]byte) (bool, error)
	// Add records the digest; it reports false when it was already
	// recorded (one atomic step).
	Add(ctx context.Context, partner string, epoch uint64, digest [32]byte) (bool, error)
}

// MemoryReplay is a [ReplayGuard] in memory. It keeps the digests of the
// two latest epochs it was told of (the current one and the one in its
// grace period) and forgets older ones.
type MemoryReplay struct {
	mu     sync.Mutex
	epochs map[uint64]map[replayKey]struct{}
	latest uint64
}

type replayKey struct {
	partner string
	digest  [32]byte
}

// Seen implements [ReplayGuard].
func (m *MemoryReplay) Seen(_ context.Context, partner string, epoch uint64, digest [32]byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.epochs[epoch][replayKey{partner, digest}]
	return ok, nil
}

// Add implements [ReplayGuard].
func (m *MemoryReplay) Add(_ context.Context, partner string, epoch uint64, digest [32]byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.epochs == nil {
		m.epochs = map[uint64]map[replayKey]struct{}{}
	}
	if epoch > m.latest {
		m.latest = epoch
		for e := range m.epochs {
			if e+1 < epoch {
				delete(m.epochs, e)
			}
		}
	}
	set := m.epochs[epoch]
	if set == nil {
		set = map[replayKey]struct{}{}
		m.epochs[epoch] = set
	}
	k := replayKey{partner, digest}
	if _, ok := set[k]; ok {
		return false, nil
	}
	set[k] = struct{}{}
	return true, nil
}
