package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/entente-cti/entente/internal/store"
)

var _ store.BlindStore = (*Store)(nil)

// blindEpoch returns an epoch as the column holds it.
func blindEpoch(epoch uint64) (int64, error) {
	if epoch > math.MaxInt64 {
		return 0, fmt.Errorf("blind epoch %d out of range", epoch)
	}
	return int64(epoch), nil
}

// SpendBlind implements [store.BlindStore]: the audit database's one
// writer serialises the read and the write of the transaction.
func (s *Store) SpendBlind(ctx context.Context, partner string, period time.Time, n, limit int64) (int64, bool, error) {
	if n <= 0 {
		return 0, false, fmt.Errorf("spend blind budget of %s: %d evaluations", partner, n)
	}
	p := period.UnixNano()
	var used int64
	ok := false
	err := s.audit.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT used FROM blind_budget WHERE partner = ? AND period = ?`, partner, p).Scan(&used)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if used+n > limit {
			return nil
		}
		used += n
		ok = true
		if _, err := tx.ExecContext(ctx, `INSERT INTO blind_budget (partner, period, used) VALUES (?, ?, ?)
			ON CONFLICT (partner, period) DO UPDATE SET used = excluded.used`, partner, p, used); err != nil {
			return err
		}
		// The period before the current one is kept (for its report);
		// older ones go.
		_, err = tx.ExecContext(ctx, `DELETE FROM blind_budget WHERE partner = ? AND period < (
			SELECT coalesce(max(period), 0) FROM blind_budget WHERE partner = ? AND period < ?)`, partner, partner, p)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("spend blind budget of %s: %w", partner, err)
	}
	return used, ok, nil
}

// BlindUsed implements [store.BlindStore].
func (s *Store) BlindUsed(ctx context.Context, partner string, period time.Time) (int64, error) {
	var used int64
	err := s.audit.read.QueryRowContext(ctx, `SELECT used FROM blind_budget WHERE partner = ? AND period = ?`, partner, period.UnixNano()).Scan(&used)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
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
	var one int
	err = s.audit.read.QueryRowContext(ctx, `SELECT 1 FROM blind_batches WHERE partner = ? AND epoch = ? AND digest = ?`, partner, e, digest[:]).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read blind batches of %s: %w", partner, err)
	}
	return true, nil
}

// AddBlindBatch implements [store.BlindStore].
func (s *Store) AddBlindBatch(ctx context.Context, partner string, epoch uint64, digest [32]byte) (bool, error) {
	e, err := blindEpoch(epoch)
	if err != nil {
		return false, err
	}
	fresh := false
	err = s.audit.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO blind_batches (partner, epoch, digest) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, partner, e, digest[:])
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		fresh = n == 1
		if fresh {
			// Epochs before the one in its grace period are done with.
			_, err = tx.ExecContext(ctx, `DELETE FROM blind_batches WHERE partner = ? AND epoch < ?`, partner, e-1)
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record blind batch of %s: %w", partner, err)
	}
	return fresh, nil
}
