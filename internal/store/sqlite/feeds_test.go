package sqlite_test

import (
	"testing"

	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/storetest"
)

func TestFeedStoreConformance(t *testing.T) {
	storetest.RunFeeds(t, func(t *testing.T) store.Store {
		s := open(t, t.TempDir())
		t.Cleanup(func() { s.Close() })
		return s
	})
}
