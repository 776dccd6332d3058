package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/entente-cti/entente/internal/store"
)

var _ store.BlindStore = (*Store)(nil)

func blindEpoch(epoch uint64) (int64, error) {
	if epoch > math.MaxInt64 {
		return 0, fmt.Errorf("blind epoch %d out of range", epoch)
	}
	return int64(epoch), nil
}

// SpendBlind implements [store.BlindStore] in one statement: the row's
// lock serialises replicas spending the same partner's budget, and the
// condition of the update refuses what would pass the limit.
func (s *Store) SpendBlind(ctx context.Context, partner string, period time.Time, n, limit int64) (int64, bool, error) {
	if n <= 0 {
		return 0, false, fmt.Errorf("spend blind budget of %s: %d evaluations", partner, n)
	}
	if n > limit {
		used, err := s.BlindUsed(ctx, partner, period)
		return used, false, err
	}
	var used int64
	err := s.pool.QueryRow(ctx, `INSERT INTO blind_budget (partner, period, used) VALUES ($1, $2, $3)
		ON CONFLICT (partner, period) DO UPDATE SET used = blind_budget.used + excluded.used
		WHERE blind_budget.used + excluded.used <= $4
		RETURNING used`, partner, period.UTC(), n, limit).Scan(&used)
	if errors.Is(err, pgx.ErrNoRows) {
		// Refused: the count stays what it is.
		used, err := s.BlindUsed(ctx, partner, period)
		return used, false, err
	}
	if err != nil {
		return 0, false, fmt.Errorf("spend blind budget of %s: %w", partner, err)
	}
	if used == n {
		// The first spending of a period: the periods before the one
		// before it are done with.
		if _, err := s.pool.Exec(ctx, `DELETE FROM blind_budget WHERE partner = $1 AND period < (
			SELECT max(period) FROM blind_budget WHERE partner = $1 AND period < $2)`, partner, period.UTC()); err != nil {
			return 0, false, fmt.Errorf("spend blind budget of %s: drop old periods: %w", partner, err)
		}
	}
	return used, true, nil
}

// BlindUsed implements [store.BlindStore].
func (s *Store) BlindUsed(ctx context.Context, partner string, period time.Time) (int64, error) {
	var used int64
	err := s.pool.QueryRow(ctx, `SELECT used FROM blind_budget WHERE partner = $1 AND period = $2`, partner, period.UTC()).Scan(&used)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("read blind budget of %s: %w", partner, err)
	}
	return used, nil
}

// SeenBlindBatch implements [store.BlindStore].
func (s *Store) SeenBlindBatch(ctx context.Context, partner string, epoch uint64, digest [32]byte) (bool, error) {
	e, err := blindEpoch(epoch)
	if err != nil {
		return false, err
	}
	var seen bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blind_batches WHERE partner = $1 AND epoch = $2 AND digest = $3)`,
		partner, e, digest[:]).Scan(&seen); err != nil {
		return false, fmt.Errorf("read blind batches of %s: %w", partner, err)
	}
	return seen, nil
}

// AddBlindBatch implements [store.BlindStore]: of replicas adding the
// same digest at once, the primary key lets one win.
func (s *Store) AddBlindBatch(ctx context.Context, partner string, epoch uint64, digest [32]byte) (bool, error) {
	e, err := blindEpoch(epoch)
	if err != nil {
		return false, err
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO blind_batches (partner, epoch, digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, partner, e, digest[:])
	if err != nil {
		return false, fmt.Errorf("record blind batch of %s: %w", partner, err)
	}
	if tag.RowsAffected() != 1 {
		return false, nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM blind_batches WHERE partner = $1 AND epoch < $2`, partner, e-1); err != nil {
		return false, fmt.Errorf("record blind batch of %s: drop old epochs: %w", partner, err)
	}
	return true, nil
}
