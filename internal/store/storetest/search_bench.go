package storetest

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/testutil"
)

// malwareNames name generated indicators, so that a search for one of
// them matches a tenth of a large store (the costly case for ranking).
var malwareNames = []string{"Emotet", "QakBot", "IcedID", "Cobalt Strike", "AsyncRAT", "Remcos", "AgentTesla", "Formbook", "Lumma", "SocGholish"}

// GenNamedIndicator is GenIndicator with a name ("Emotet C2 42"), a
// description and labels, as feeds' indicators have.
func GenNamedIndicator(n int, at time.Time) *stix.Object {
	o := GenIndicator(n, at)
	var m map[string]any
	_ = json.Unmarshal(o.Raw, &m)
	m["name"] = malwareNames[n%len(malwareNames)] + " C2 " + strconv.Itoa(n)
	m["description"] = "Command and control server of " + malwareNames[n%len(malwareNames)] + ", reported by the feed."
	m["labels"] = []string{"malicious-activity", "c2"}
	o.Raw, _ = json.Marshal(m)
	return o
}

// SearchBenchQueries are the texts BenchSearch measures: a name and an
// alias of ATT&CK, an external id, an exact observable value, a word
// shared by a tenth of the store, and a prefix.
var SearchBenchQueries = []string{"APT28", "Fancy Bear", "T1566", "10.1.2.3", "Emotet", "phish"}

// BenchSearch fills a store with total generated indicators and the
// ATT&CK subset, then measures, as sub-benchmarks reporting p99 latency:
// each query of SearchBenchQueries (limit 50), a common word filtered by
// type and by collection, the browse list's first
// page for indicators, intrusion sets and every type, and (when reopen
// is not nil) the first search after the store is closed and opened
// again, against the next.
func BenchSearch(b *testing.B, open BenchOpener, reopen func(b *testing.B, s store.Store) store.Store, total int) {
	s := open(b)
	newBenchCollection(b, s)
	start := time.Now()
	at := time.Now().UTC()
	objs := make([]*stix.Object, 0, 10000)
	for i := 0; i < total; i += 10000 {
		objs = objs[:0]
		for j := i; j < min(total, i+10000); j++ {
			objs = append(objs, GenNamedIndicator(j, at.Add(time.Duration(j)*time.Millisecond)))
		}
		if _, err := s.AddObjects(b.Context(), coll, objs); err != nil {
			b.Fatal(err)
		}
	}
	raws, err := attackSubset(sharedATTACK(b))
	if err != nil {
		b.Fatal(err)
	}
	var attack []*stix.Object
	for _, raw := range raws {
		o, err := stix.Decode(raw)
		if err != nil {
			b.Fatal(err)
		}
		attack = append(attack, o)
	}
	if _, err := s.AddObjects(b.Context(), coll, attack); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d indicators and %d ATT&CK objects in %v", total, len(attack), time.Since(start))
	// A store that indexes for search after the fact (SQLite) indexes
	// everything first, so that what is measured is a search of a
	// complete index.
	if ix, ok := s.(interface{ IndexSearch(context.Context) error }); ok {
		t0 := time.Now()
		if err := ix.IndexSearch(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.Logf("indexed what was left for search in %v", time.Since(t0))
	}
	measure := func(b *testing.B, s store.Store, q store.SearchQuery) {
		ss := s.(store.SearchStore)
		var times []time.Duration
		b.ReportAllocs()
		for b.Loop() {
			t0 := time.Now()
			if _, err := ss.SearchObjects(b.Context(), q); err != nil {
				b.Fatal(err)
			}
			times = append(times, time.Since(t0))
		}
		slices.Sort(times)
		b.ReportMetric(float64(times[min(len(times)-1, len(times)*99/100)].Microseconds())/1000, "p99-ms")
	}
	for _, text := range SearchBenchQueries {
		b.Run("q="+text, func(b *testing.B) { measure(b, s, store.SearchQuery{Text: text, Limit: 50}) })
	}
	// Filtered: the word shared by a tenth of the store among the types
	// that hold none of it (the worst case: every match is checked
	// against the filter), and among indicators, as a workbench that
	// names its collections asks.
	b.Run("q=Emotet,type=malware", func(b *testing.B) {
		measure(b, s, store.SearchQuery{Text: "Emotet", Types: []string{"malware"}, Limit: 50})
	})
	b.Run("q=Emotet,collection", func(b *testing.B) {
		measure(b, s, store.SearchQuery{Text: "Emotet", Collections: []string{coll}, Limit: 50})
	})
	for _, typ := range []string{"indicator", "intrusion-set", ""} {
		q := store.SearchQuery{Limit: 50}
		if typ != "" {
			q.Types = []string{typ}
		}
		b.Run("browse="+typ, func(b *testing.B) { measure(b, s, q) })
	}
	if reopen == nil {
		return
	}
	// The first search after a start against the same search when it
	// is not the first: each after reopening the store, the second after
	// another search, so that what is measured is what the first search
	// pays for being first, not for its words (whose pages are as cold in
	// both).
	b.Run("first-after-reopen", func(b *testing.B) {
		var first, next []time.Duration
		q := store.SearchQuery{Text: SearchBenchQueries[0], Limit: 50}
		for b.Loop() {
			for _, times := range []*[]time.Duration{&first, &next} {
				b.StopTimer()
				s = reopen(b, s)
				ss := s.(store.SearchStore)
				if times == &next {
					if _, err := ss.SearchObjects(b.Context(), store.SearchQuery{Text: SearchBenchQueries[1], Limit: 50}); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				t0 := time.Now()
				if _, err := ss.SearchObjects(b.Context(), q); err != nil {
					b.Fatal(err)
				}
				*times = append(*times, time.Since(t0))
			}
		}
		slices.Sort(first)
		slices.Sort(next)
		b.ReportMetric(float64(first[len(first)/2].Microseconds())/1000, "first-ms")
		b.ReportMetric(float64(next[len(next)/2].Microseconds())/1000, "next-ms")
	})
}

// sharedATTACK is the path of the shared ATT&CK Enterprise bundle; it
// skips tb when the data is absent.
func sharedATTACK(tb testing.TB) string {
	tb.Helper()
	return testutil.SharedData(tb, "attack", "enterprise-attack-18.1.json.gz")
}

// SearchBenchTotal is the number of indicators BenchSearch fills a store
// with: n, or ENTENTE_BENCH_SEARCH_OBJECTS when set (for a quick check
// that the benchmark runs).
func SearchBenchTotal(b *testing.B, n int) int {
	if v := os.Getenv("ENTENTE_BENCH_SEARCH_OBJECTS"); v != "" {
		m, err := strconv.Atoi(v)
		if err != nil || m < 1 {
			b.Fatalf("ENTENTE_BENCH_SEARCH_OBJECTS=%q is not a positive number", v)
		}
		return m
	}
	return n
}
