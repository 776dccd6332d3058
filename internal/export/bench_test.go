package export

import (
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/entente-cti/entente/internal/observable"
)

// millionIPs returns 1,000,000 distinct pseudo-random public-looking
// IPv4 items (deterministic).
func millionIPs() []Item {
	r := rand.New(rand.NewPCG(1, 2))
	seen := make(map[uint32]struct{}, 1_000_000)
	items := make([]Item, 0, 1_000_000)
	for len(items) < 1_000_000 {
		v := r.Uint32()
		if _, dup := seen[v]; dup {
			continue
		}
		seen[v] = struct{}{}
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		items = append(items, Item{Kind: observable.IPv4, Value: a.String()})
	}
	return items
}

func benchRender(b *testing.B, format string) {
	items := millionIPs()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := Render(io.Discard, format, items, Options{Now: now}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExportNftables1M(b *testing.B) { benchRender(b, FormatNftables) }
func BenchmarkExportRPZ1M(b *testing.B)      { benchRender(b, FormatRPZ) }
func BenchmarkExportIPSet1M(b *testing.B)    { benchRender(b, FormatIPSet) }
