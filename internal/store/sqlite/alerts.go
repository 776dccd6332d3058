package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

var _ store.AlertStore = (*Store)(nil)

// PutAlertState creates or replaces the state of alert st.ID.
func (s *Store) PutAlertState(ctx context.Context, st store.AlertState) error {
	if st.ID == "" {
		return entente.Errorf(entente.EINVALID, "alert state: id is required")
	}
	if len(st.Body) == 0 {
		return entente.Errorf(entente.EINVALID, "alert state %s: body is required", st.ID)
	}
	// Through the writer: states saved at the same time (a correlation
	// pass's changes) share its commit, with the additions waiting.
	err := s.enqueueWrite(ctx, func(ctx context.Context, tx *sql.Tx, _ []entente.AddOutcome) error {
		_, err := tx.StmtContext(ctx, s.w.putAlertState.Stmt).ExecContext(ctx, st.ID, st.Status, st.Updated.UnixNano(), string(st.Body))
		return storageFull(err)
	})
	if err != nil {
		return fmt.Errorf("put alert state %s: %w", st.ID, err)
	}
	return nil
}

// AlertState returns the state of one alert. ENOTFOUND if none.
func (s *Store) AlertState(ctx context.Context, id string) (store.AlertState, error) {
	var st store.AlertState
	var updated int64
	var body string
	err := s.read.QueryRowContext(ctx, `SELECT id, status, updated, body FROM alert_states WHERE id = ?`, id).Scan(&st.ID, &st.Status, &updated, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return st, entente.Errorf(entente.ENOTFOUND, "no alert %q", id)
	}
	if err != nil {
		return st, fmt.Errorf("read alert state %s: %w", id, err)
	}
	st.Updated, st.Body = time.Unix(0, updated).UTC(), []byte(body)
	return st, nil
}

// AlertStates lists every alert state, most recently updated first.
func (s *Store) AlertStates(ctx context.Context) ([]store.AlertState, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, status, updated, body FROM alert_states ORDER BY updated DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list alert states: %w", err)
	}
	defer rows.Close()
	var out []store.AlertState
	for rows.Next() {
		var st store.AlertState
		var updated int64
		var body string
		if err := rows.Scan(&st.ID, &st.Status, &updated, &body); err != nil {
			return nil, fmt.Errorf("list alert states: %w", err)
		}
		st.Updated, st.Body = time.Unix(0, updated).UTC(), []byte(body)
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list alert states: %w", err)
	}
	return out, nil
}
