package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

// benchNode returns a node whose intel collection holds n IPv4
// indicators (ENTENTE_BENCH_N overrides n), stored through AddObjects.
func benchNode(b *testing.B, n int) *node.Service {
	b.Helper()
	if v, err := strconv.Atoi(os.Getenv("ENTENTE_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	st, err := sqlite.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	// The safety net a node starts with: its cost is part of the figure.
	net, err := safety.Default()
	if err != nil {
		b.Fatal(err)
	}
	s := node.New(st, node.Config{Org: org, Safety: net}, nil)
	ctx := context.Background()
	if _, _, err := s.Init(ctx, "Bench", "DE", ""); err != nil {
		b.Fatal(err)
	}
	ts := now.Format(time.RFC3339Nano)
	until := now.Add(30 * 24 * time.Hour).Format(time.RFC3339Nano)
	batch := make([]json.RawMessage, 0, 5000)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		status, err := s.AddObjects(ctx, admin, node.CollectionIntel, batch)
		if err != nil || status.FailureCount > 0 {
			b.Fatalf("store: %v %+v", err, status.Failures[:min(1, len(status.Failures))])
		}
		batch = batch[:0]
	}
	for i := range n {
		ip := fmt.Sprintf("%d.%d.%d.%d", 1+(i>>24)%200, (i>>16)&255, (i>>8)&255, i&255)
		// Every other address, so that aggregation cannot fold them.
		ip = fmt.Sprintf("%d.%d.%d.%d", 11+(i>>23)%200, (i>>15)&255, (i>>7)&255, (i&127)*2)
		batch = append(batch, json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"pattern":"[ipv4-addr:value = '%s']","pattern_type":"stix","valid_from":%q,"valid_until":%q}`,
			feed.IndicatorID("ipv4", ip), ts, ts, ip, ts, until)))
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	return s
}

// BenchmarkNodeExport1M renders 1,000,000 stored IPv4 indicators through
// the node, each iteration a cache miss of the rendered export. The
// first export of a node reads every indicator through release and
// builds the export index ("first"); later ones convert only what was
// added since and render from the index ("nftables", "rpz").
func BenchmarkNodeExport1M(b *testing.B) {
	s := benchNode(b, 1_000_000)
	i := 0
	export1 := func(b *testing.B, format string) {
		i++
		res, err := s.Export(context.Background(), admin, node.ExportRequest{Format: format, Options: export.Options{Name: fmt.Sprintf("bench%d", i)}})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.Items), "items")
	}
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			s.DropExportIndexes()
			b.StartTimer()
			export1(b, export.FormatNftables)
		}
	})
	for _, format := range []string{export.FormatNftables, export.FormatRPZ} {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				export1(b, format)
			}
		})
	}
	b.Run("unchanged", func(b *testing.B) {
		req := node.ExportRequest{Format: export.FormatNftables}
		if _, err := s.Export(context.Background(), admin, req); err != nil {
			b.Fatal(err)
		}
		renders := s.ExportRenders()
		for b.Loop() {
			if _, err := s.Export(context.Background(), admin, req); err != nil {
				b.Fatal(err)
			}
		}
		if s.ExportRenders() != renders {
			b.Fatal("an unchanged export was rendered again")
		}
	})
}
