package store

import (
	"context"
	"time"
)

// BlindStore keeps the state of blind access (internal/blind) that every
// replica of a node must share, so that a restart or another replica
// neither resets a partner's budget nor evaluates a replayed batch: each
// partner's evaluations per budget period (the ledger) and the digests of
// the batches evaluated per epoch (the replay guard). Every backend
// implements it alongside [Store]; the node obtains it by type assertion.
//
// A backend keeps a partner's count of the current period and of the one
// before, and the digests of the current epoch and of the one before
// (the one in its grace period): older ones are dropped as newer ones
// are written.
type BlindStore interface {
	// SpendBlind adds n evaluations to partner's count for the period
	// starting at period, unless the count would then pass limit: it
	// returns the count after the call and whether n was added. The
	// check and the addition are one atomic step, whatever number of
	// replicas spend at once. n must be positive.
	SpendBlind(ctx context.Context, partner string, period time.Time, n, limit int64) (used int64, ok bool, err error)
	// BlindUsed returns partner's count for the period starting at
	// period (0 when none).
	BlindUsed(ctx context.Context, partner string, period time.Time) (int64, error)
	// SeenBlindBatch reports whether the batch digest was recorded for
	// partner and epoch.
	SeenBlindBatch(ctx context.Context, partner string, epoch uint64, digest [32]byte) (bool, error)
	// AddBlindBatch records the batch digest for partner and epoch; it
	// reports false when it was recorded already (one atomic step).
	AddBlindBatch(ctx context.Context, partner string, epoch uint64, digest [32]byte) (bool, error)
}
