package storetest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/gunzip"

	"github.com/google/uuid"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/testutil"
)

// BenchOpener returns a new, empty store for a benchmark and registers its
// closing with b.Cleanup.
type BenchOpener func(b *testing.B) store.Store

// ATTACK returns the objects of the MITRE ATT&CK Enterprise bundle from
// the shared data, decoded with stix.Decode. It skips b when the data is
// absent.
func ATTACK(b *testing.B) []*stix.Object {
	b.Helper()
	path := testutil.SharedData(b, "attack", "enterprise-attack-18.1.json.gz")
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	zr, err := gunzip.Open(f, path, gunzip.Limits{MaxSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	var bundle struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.NewDecoder(zr).Decode(&bundle); err != nil {
		b.Fatalf("%s: %v", path, err)
	}
	objs := make([]*stix.Object, len(bundle.Objects))
	for i, raw := range bundle.Objects {
		if objs[i], err = stix.Decode(raw); err != nil {
			b.Fatalf("%s: object %d: %v", path, i, err)
		}
	}
	return objs
}

// BenchAddATTACK measures adding the whole ATT&CK Enterprise bundle in one
// call to a fresh store.
func BenchAddATTACK(b *testing.B, open BenchOpener) {
	objs := ATTACK(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s := open(b)
		newBenchCollection(b, s)
		b.StartTimer()
		out, err := s.AddObjects(b.Context(), coll, objs)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		for _, o := range out {
			if o.Duplicate {
				b.Fatalf("object %s %v reported as duplicate", o.ID, o.Version)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(len(objs)*b.N)/b.Elapsed().Seconds(), "objects/s")
}

// GenIndicator returns a small indicator numbered n (with a distinct,
// random-looking id for each n), built without
// decoding (so that generating it costs little next to storing it).
func GenIndicator(n int, at time.Time) *stix.Object {
	// A UUIDv4-shaped id, pseudo-random but derived from n: ids arrive in
	// random order, as clients' UUIDs do, which is what indexes pay for.
	h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(n)))
	h[6], h[8] = h[6]&0x0f|0x40, h[8]&0x3f|0x80
	id := "indicator--" + uuid.UUID(h[:16]).String()
	ts := stix.FormatTimestamp(at)
	ip := strconv.Itoa(n>>16&255) + "." + strconv.Itoa(n>>8&255) + "." + strconv.Itoa(n&255)
	raw := `{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"` + ts + `","modified":"` + ts +
		`","pattern":"[ipv4-addr:value = '10.` + ip + `']","pattern_type":"stix","valid_from":"` + ts + `"}`
	return &stix.Object{Type: "indicator", ID: id, SpecVersion: "2.1", Created: at, Modified: at, Raw: json.RawMessage(raw)}
}

func newBenchCollection(b *testing.B, s store.Store) {
	b.Helper()
	if err := s.CreateCollection(b.Context(), entente.Collection{ID: coll, Title: "Benchmark"}); err != nil {
		b.Fatal(err)
	}
}

// BenchAddEnvelopes measures adding generated indicators in calls of
// size objects each, as TAXII envelopes arrive.
func BenchAddEnvelopes(b *testing.B, open BenchOpener, size int) {
	s := open(b)
	newBenchCollection(b, s)
	at := time.Now().UTC()
	n := 0
	batch := make([]*stix.Object, size)
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch {
			batch[i] = GenIndicator(n, at)
			n++
		}
		if _, err := s.AddObjects(b.Context(), coll, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "objects/s")
}

// BenchAddEnvelopesParallel measures adding generated indicators in calls
// of size objects each from concurrent callers (GOMAXPROCS × -cpu
// goroutines, see b.SetParallelism), as concurrent TAXII clients do.
func BenchAddEnvelopesParallel(b *testing.B, open BenchOpener, size, parallelism int) {
	s := open(b)
	newBenchCollection(b, s)
	at := time.Now().UTC()
	var next atomic.Int64
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		batch := make([]*stix.Object, size)
		for pb.Next() {
			first := int(next.Add(int64(size))) - size
			for i := range batch {
				batch[i] = GenIndicator(first+i, at)
			}
			if _, err := s.AddObjects(b.Context(), coll, batch); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(next.Load())/b.Elapsed().Seconds(), "objects/s")
}

// Fill adds n generated indicators to the benchmark collection of s in
// calls of batch objects.
func Fill(b *testing.B, s store.Store, n, batch int) {
	b.Helper()
	at := time.Now().UTC()
	objs := make([]*stix.Object, 0, batch)
	for i := 0; i < n; i += batch {
		objs = objs[:0]
		for j := i; j < min(n, i+batch); j++ {
			objs = append(objs, GenIndicator(j, at))
		}
		if _, err := s.AddObjects(b.Context(), coll, objs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchPages fills a store with total small objects once, then measures
// fetching page 1 and page deep (pages of limit entries, reached through
// cursors) as sub-benchmarks, reporting each fetch's p99 latency.
func BenchPages(b *testing.B, open BenchOpener, total, deep, limit int) {
	s := open(b)
	newBenchCollection(b, s)
	start := time.Now()
	Fill(b, s, total, 10000)
	b.Logf("filled %d objects in %v", total, time.Since(start))

	// Walk to the cursor that starts page deep, in big metadata pages.
	q := entente.ObjectQuery{Collection: coll, MetadataOnly: true}
	for skip := (deep - 1) * limit; skip > 0; {
		q.Limit = min(skip, store.MaxPageSize)
		p, err := s.QueryObjects(b.Context(), q)
		if err != nil {
			b.Fatal(err)
		}
		if !p.More {
			b.Fatalf("collection ends before page %d", deep)
		}
		skip -= len(p.Entries)
		q.Next = p.Next
	}
	deepCursor := q.Next

	for _, c := range []struct {
		name string
		next string
	}{{"page=1", ""}, {fmt.Sprintf("page=%d", deep), deepCursor}} {
		b.Run(c.name, func(b *testing.B) {
			q := entente.ObjectQuery{Collection: coll, Limit: limit, Next: c.next}
			var times []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				p, err := s.QueryObjects(b.Context(), q)
				times = append(times, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Entries) != limit {
					b.Fatalf("page has %d entries, want %d", len(p.Entries), limit)
				}
			}
			slices.Sort(times)
			p99 := times[min(len(times)-1, len(times)*99/100)]
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		})
	}
}
