package sqlite_test

import (
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/store/storetest"
)

// BenchmarkPost10k adds 10,000 generated indicators to a fresh store in
// 13 calls of about 770 (one commit each), as the writer stores a TAXII
// POST of 10,000 objects (docs/performance.md, issue 18): the writer's
// B-tree work per new object. Only the additions are timed. The store is
// a one-shot one, whose writer does not index for search when idle, so
// that under callgrind (-test.benchtime 1x) the instructions counted do
// not depend on how long the run takes.
func BenchmarkPost10k(b *testing.B) {
	const n, size = 10000, 770
	at := time.Now().UTC()
	objs := make([]*stix.Object, n)
	for i := range objs {
		objs[i] = storetest.GenIndicator(i, at)
	}
	for b.Loop() {
		b.StopTimer()
		s, err := sqlite.OpenOneShot(b.Context(), b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		if err := s.CreateCollection(b.Context(), entente.Collection{ID: "bench", Title: "Benchmark"}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for i := 0; i < n; i += size {
			if _, err := s.AddObjects(b.Context(), "bench", objs[i:min(i+size, n)]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/object")
}
