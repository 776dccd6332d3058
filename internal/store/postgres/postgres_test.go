package postgres_test

import (
	"context"
	"testing"

	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/postgres"
	"github.com/entente-cti/entente/internal/store/storetest"
	"github.com/entente-cti/entente/internal/testutil"
)

// schemaURL returns a connection URL selecting a fresh schema, dropped
// when the test ends.
func schemaURL(tb testing.TB) string { return testutil.PostgresSchemaURL(tb) }

func open(tb testing.TB, url string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, schemaURL(t))
	})
}

func TestSearchConformance(t *testing.T) {
	storetest.RunSearch(t, func(t *testing.T) store.Store {
		return open(t, schemaURL(t))
	})
}
