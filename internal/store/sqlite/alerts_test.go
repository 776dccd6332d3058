package sqlite_test

import (
	"testing"

	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/storetest"
)

func TestAlertConformance(t *testing.T) {
	storetest.RunAlerts(t, func(t *testing.T) store.Store {
		s := open(t, t.TempDir())
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}
