package safety_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/safety"
)

func benchNet(b *testing.B) *safety.Net {
	ws, err := safety.ShippedWarninglists()
	if err != nil {
		b.Fatal(err)
	}
	n, err := safety.New(safety.Config{IANA: true, Warninglists: ws, WidestIPv4: 8, WidestIPv6: 16})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// millionItems returns 1,000,000 pseudo-random IPv4 export items (some
// in protected space, as a real feed would have), deterministic.
func millionItems() []export.Item {
	r := rand.New(rand.NewPCG(1, 2))
	items := make([]export.Item, 0, 1_000_000)
	for len(items) < 1_000_000 {
		v := r.Uint32()
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		items = append(items, export.Item{Kind: observable.IPv4, Value: a.String()})
	}
	return items
}

// BenchmarkGuard1M: the safety net's decision for 1,000,000 addresses,
// as an export of that size applies it.
func BenchmarkGuard1M(b *testing.B) {
	n := benchNet(b)
	items := millionItems()
	g := n.Guard(safety.OutputExport)
	b.ReportAllocs()
	for b.Loop() {
		for i := range items {
			g.Admit(items[i].Kind, items[i].Value)
		}
	}
	b.ReportMetric(1e6*float64(b.N)/b.Elapsed().Seconds(), "values/s")
}

// BenchmarkExportGuarded1M: an nftables export of 1,000,000 addresses
// through the net (filter, then render with aggregation), the part of an
// export the net adds to and the renderer itself.
func BenchmarkExportGuarded1M(b *testing.B) {
	n := benchNet(b)
	src := millionItems()
	items := make([]export.Item, len(src))
	g := n.Guard(safety.OutputExport)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		copy(items, src)
		kept := export.Guarded(items, g)
		if err := export.Render(io.Discard, export.FormatNftables, kept, export.Options{Now: now}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProtectedIndicator: the check correlation makes on the
// indicator a sighting is of (once per indicator and batch).
func BenchmarkProtectedIndicator(b *testing.B) {
	n := benchNet(b)
	g := n.Guard(safety.OutputCorrelation)
	raws := make([][]byte, 1000)
	for i := range raws {
		raws[i] = fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":"indicator--7a1c2a3b-0000-4000-8000-%012d","pattern":"[ipv4-addr:value = '%d.%d.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`,
			i, 1+i%223, i%256, (i/7)%256, i%254+1)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		g.ProtectedIndicator(raws[i%len(raws)])
		i++
	}
}
