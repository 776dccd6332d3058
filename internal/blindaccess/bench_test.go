package blindaccess_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/stix"
)

// BenchmarkRenderSet renders a partner's set of ENTENTE_BLIND_BENCH_INDICATORS
// stored IPv4 indicators (default 20,000) through the gate from scratch:
// reading them from the store, deciding each, reading its values and
// evaluating them; then (incremental) after 100 more were stored.
func BenchmarkRenderSet(b *testing.B) {
	n := 20_000
	if v, err := strconv.Atoi(os.Getenv("ENTENTE_BLIND_BENCH_INDICATORS")); err == nil && v > 0 {
		n = v
	}
	f := newFixture(b)
	ctx := context.Background()
	store := func(from, to int) {
		var objs []*stix.Object
		for i := from; i < to; i++ {
			raw, _ := json.Marshal(map[string]any{"type": "indicator", "spec_version": "2.1", "id": fmt.Sprintf("indicator--5e1f0000-0000-4000-8000-%012x", i),
				"created": "2026-05-01T00:00:00.000Z", "modified": "2026-05-01T00:00:00.000Z", "pattern_type": "stix", "valid_from": "2026-05-01T00:00:00Z",
				"pattern": fmt.Sprintf("[ipv4-addr:value = '%d.%d.%d.%d']", 11+i>>24&0x7f, i>>16&0xff, i>>8&0xff, i&0xff)})
			o, err := stix.Decode(raw)
			if err != nil {
				b.Fatal(err)
			}
			objs = append(objs, o)
			if len(objs) == 5000 || i == to-1 {
				f.clock.add(time.Millisecond)
				if _, err := f.st.AddObjects(ctx, f.coll, objs); err != nil {
					b.Fatal(err)
				}
				objs = objs[:0]
			}
		}
	}
	store(0, n)
	budget := blind.Budget{Limit: 1 << 20, Period: time.Hour}
	b.Run("full", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			f.p.KeyID = "full-" + strconv.Itoa(i) // a fresh cache entry, a fresh state
			f.svc = mustNew(b, f)
			if _, err := f.svc.Info(ctx, f.p, budget); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "indicators/s")
	})
	b.Run("incremental", func(b *testing.B) {
		next := n
		for b.Loop() {
			store(next, next+100)
			next += 100
			if _, err := f.svc.Info(ctx, f.p, budget); err != nil {
				b.Fatal(err)
			}
		}
	})
}
