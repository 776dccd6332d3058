package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/storetest"
)

func TestPolicyConformance(t *testing.T) {
	storetest.RunPolicy(t, func(t *testing.T) store.Store {
		return open(t, schemaURL(t))
	})
}

// TestAuditIsAppendOnly checks that the database itself (a trigger)
// refuses to change or remove an audit record, whatever code runs
// against it.
func TestAuditIsAppendOnly(t *testing.T) {
	url := schemaURL(t)
	s := open(t, url)
	storetest.AppendOneAudit(t, s)
	storetest.AppendOneRelease(t, s)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{`UPDATE audit SET rule = 'forged'`, `DELETE FROM audit`, `TRUNCATE audit`,
		`UPDATE audit SET versions = NULL`, `UPDATE audit_objects SET hashes = ''`, `DELETE FROM audit_objects`, `TRUNCATE audit_objects`} {
		if _, err := conn.Exec(ctx, q); err == nil {
			t.Errorf("%s: succeeded on the append-only audit log", q)
		}
	}
}

func TestBlindConformance(t *testing.T) {
	storetest.RunBlind(t, func(t *testing.T) store.Store {
		return open(t, schemaURL(t))
	})
}
