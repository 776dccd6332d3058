package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/store/storetest"
)

// BenchmarkWorkbench1M measures the workbench's routes over HTTP, through
// the gate, on a node holding the ATT&CK techniques, tactics and APT28
// and 1,000,000 named indicators (ENTENTE_BENCH_SEARCH_OBJECTS to change
// it), one in a hundred indicating a technique: search, the browse list's
// first page, an object page, the graph around APT28 at depth 2, and the
// ATT&CK matrix, cached and after a write. Each reports its p99.
func BenchmarkWorkbench1M(b *testing.B) {
	total := storetest.SearchBenchTotal(b, 1_000_000)
	e := workbenchEnv(b)
	e.noSchema = true
	ctx := context.Background()
	admin := node.LocalAdmin(org)
	var techniques []string
	for _, raw := range attackWorkbench(b) {
		var o struct{ Type, ID string }
		if json.Unmarshal(raw, &o) == nil && o.Type == "attack-pattern" {
			techniques = append(techniques, o.ID)
		}
	}
	start := time.Now()
	at := time.Now().UTC()
	for i := 0; i < total; i += 10000 {
		var batch []json.RawMessage
		for j := i; j < min(total, i+10000); j++ {
			o := storetest.GenNamedIndicator(j, at.Add(time.Duration(j)*time.Millisecond))
			batch = append(batch, o.Raw)
			if j%100 == 0 {
				batch = append(batch, json.RawMessage(fmt.Sprintf(`{"type":"relationship","spec_version":"2.1","id":"relationship--%s","created":%q,"modified":%q,"relationship_type":"indicates","source_ref":%q,"target_ref":%q}`,
					o.ID[len("indicator--"):], "2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00.000Z", o.ID, techniques[j%len(techniques)])))
			}
		}
		if _, err := e.svc.ImportObjects(ctx, admin, node.CollectionIntel, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("filled %d indicators in %v", total, time.Since(start))
	get := func(b *testing.B, path string) {
		r := e.api("GET", path, entente.RoleAnalyst, nil)
		if r.status != http.StatusOK {
			b.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
	}
	measure := func(b *testing.B, before func(i int), path string) {
		var times []time.Duration
		for i := 0; b.Loop(); i++ {
			if before != nil {
				b.StopTimer()
				before(i)
				b.StartTimer()
			}
			t0 := time.Now()
			get(b, path)
			times = append(times, time.Since(t0))
		}
		slices.Sort(times)
		b.ReportMetric(float64(times[min(len(times)-1, len(times)*99/100)].Microseconds())/1000, "p99-ms")
	}
	for _, c := range []struct{ name, path string }{
		{"search=APT28", "/api/v1/search?q=APT28"},
		{"search=Emotet", "/api/v1/search?q=Emotet"},
		{"search=10.1.2.3", "/api/v1/search?q=10.1.2.3"},
		{"browse=indicator", "/api/v1/search?type=indicator&limit=50"},
		{"object=APT28", "/api/v1/objects/" + apt28},
		{"graph=APT28-depth2", "/api/v1/objects/" + apt28 + "/graph?depth=2"},
		{"matrix-cached", "/api/v1/attack/matrix?filter=" + apt28},
	} {
		b.Run(c.name, func(b *testing.B) { measure(b, nil, c.path) })
	}
	b.Run("matrix-after-a-write", func(b *testing.B) {
		measure(b, func(i int) {
			o := storetest.GenNamedIndicator(total+i, time.Now().UTC())
			if _, err := e.svc.ImportObjects(ctx, admin, node.CollectionIntel, []json.RawMessage{o.Raw}); err != nil {
				b.Fatal(err)
			}
		}, "/api/v1/attack/matrix?filter="+apt28)
	})
}
