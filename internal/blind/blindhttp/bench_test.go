package blindhttp

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/blind"
)

// BenchmarkTranslateLoopback translates ENTENTE_BLIND_BENCH_VALUES distinct
// values (default 20,000; the figure is for 1,000,000) through the
// HTTP handler on 127.0.0.1, client and server in one process sharing
// the cores, in batches of 1,024 with GOMAXPROCS batches in flight.
func BenchmarkTranslateLoopback(b *testing.B) {
	n := 20_000
	if v, err := strconv.Atoi(os.Getenv("ENTENTE_BLIND_BENCH_VALUES")); err == nil && v > 0 {
		n = v
	}
	inputs := make([]string, n)
	for i := range inputs {
		inputs[i] = fmt.Sprintf("ipv4\x00%d.%d.%d.%d", 1+i>>24&0xff, i>>16&0xff, i>>8&0xff, i&0xff)
	}
	testNow = time.Now()
	srv, client := newNode(b, blind.Budget{Limit: 1 << 40, Period: time.Hour}, func(c *blind.Config) {
		c.Now = time.Now
		c.MaxBatch = 1024
	})
	ctx := context.Background()
	if _, err := srv.Update(ctx, "B", []blind.Indicator{{Ref: 1, Kind: "ipv4", Value: "1.0.0.7"}}, nil); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		tr := blind.NewTranslator(client)
		tr.BatchSize = 1024
		if _, err := tr.Start(ctx); err != nil {
			b.Fatal(err)
		}
		st, err := tr.Translate(ctx, inputs)
		if err != nil || st.Evaluated != n {
			b.Fatalf("translate: %v, %+v", err, st)
		}
		if hits, _ := tr.Hits(); len(hits) != 1 {
			b.Fatalf("%d hits, want 1", len(hits))
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "values/s")
}
