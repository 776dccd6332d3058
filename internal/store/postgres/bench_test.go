package postgres_test

import (
	"testing"

	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/storetest"
)

func benchOpen(b *testing.B) store.Store { return open(b, schemaURL(b)) }

// BenchmarkAddATTACK adds the 24,772 objects of ATT&CK Enterprise in one
// call to a fresh store per iteration.
func BenchmarkAddATTACK(b *testing.B) { storetest.BenchAddATTACK(b, benchOpen) }

// BenchmarkAddEnvelopes100 adds generated indicators in calls of 100.
func BenchmarkAddEnvelopes100(b *testing.B) { storetest.BenchAddEnvelopes(b, benchOpen, 100) }

// BenchmarkPage1M fetches page 1 and page 9,000 (limit 100) of a
// collection of 1,000,000 objects.
func BenchmarkPage1M(b *testing.B) { storetest.BenchPages(b, benchOpen, 1_000_000, 9000, 100) }

// BenchmarkAddEnvelopes100Parallel adds generated indicators in calls of
// 100 from 4 callers per core.
func BenchmarkAddEnvelopes100Parallel(b *testing.B) {
	storetest.BenchAddEnvelopesParallel(b, benchOpen, 100, 4)
}

// BenchmarkSearch1M searches and browses a store of 1,000,000 named
// indicators and the ATT&CK techniques, tactics, groups and malware, and
// measures the first search after reconnecting against the next.
func BenchmarkSearch1M(b *testing.B) {
	url := schemaURL(b)
	storetest.BenchSearch(b, func(b *testing.B) store.Store { return open(b, url) },
		func(b *testing.B, s store.Store) store.Store {
			s.Close()
			return open(b, url)
		}, storetest.SearchBenchTotal(b, 1_000_000))
}
