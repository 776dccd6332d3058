package postgres_test

import (
	"testing"

	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/storetest"
)

func TestFeedStoreConformance(t *testing.T) {
	storetest.RunFeeds(t, func(t *testing.T) store.Store {
		return open(t, schemaURL(t))
	})
}
