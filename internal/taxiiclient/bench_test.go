package taxiiclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/taxiiclient"
)

// BenchmarkPull1M pulls 1,000,000 small STIX indicators from an in-process
// TAXII server over loopback, in pages of 1,000 (validation included), and
// reports objects per second. The goal is under 60 s per 1M.
func BenchmarkPull1M(b *testing.B) {
	const n = 1_000_000
	f := newFakeServer(b, n)
	f.pageSize = 1000
	c := newClient(f)
	c.Limits.PageSize = 1000
	for b.Loop() {
		got := 0
		start := time.Now()
		_, err := c.Pull(context.Background(), "c1", taxiiclient.Checkpoint{}, func(p *taxiiclient.Page) error {
			got += len(p.Objects)
			return nil
		})
		if err != nil || got != n {
			b.Fatalf("%d objects, %v", got, err)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "objects/s")
	}
}
