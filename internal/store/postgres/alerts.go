package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
	if _, err := s.pool.Exec(ctx, putAlertStateSQL,
		st.ID, st.Status, st.Updated.UnixNano(), string(st.Body)); err != nil {
		return fmt.Errorf("put alert state %s: %w", st.ID, err)
	}
	return nil
}

// putAlertStateSQL creates or replaces an alert's state.
const putAlertStateSQL = `INSERT INTO alert_states (id, status, updated, body) VALUES ($1, $2, $3, $4)
	ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated = excluded.updated, body = excluded.body`

// AlertState returns the state of one alert. ENOTFOUND if none.
func (s *Store) AlertState(ctx context.Context, id string) (store.AlertState, error) {
	var st store.AlertState
	var updated int64
	var body string
	err := s.pool.QueryRow(ctx, `SELECT id, status, updated, body::text FROM alert_states WHERE id = $1`, id).Scan(&st.ID, &st.Status, &updated, &body)
	if errors.Is(err, pgx.ErrNoRows) {
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
	rows, err := s.pool.Query(ctx, `SELECT id, status, updated, body::text FROM alert_states ORDER BY updated DESC, id`)
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
