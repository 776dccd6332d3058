package postgres_test

import (
	"testing"

	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/storetest"
)

func TestAlertConformance(t *testing.T) {
	storetest.RunAlerts(t, func(t *testing.T) store.Store {
		return open(t, schemaURL(t))
	})
}
