package sqlite_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/store/storetest"
)

func benchOpen(b *testing.B) store.Store {
	s := open(b, b.TempDir())
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkAddATTACK adds the 24,772 objects of ATT&CK Enterprise in one
// call to a fresh store per iteration.
func BenchmarkAddATTACK(b *testing.B) { storetest.BenchAddATTACK(b, benchOpen) }

// BenchmarkAddEnvelopes100 adds generated indicators in calls of 100.
func BenchmarkAddEnvelopes100(b *testing.B) { storetest.BenchAddEnvelopes(b, benchOpen, 100) }

// BenchmarkPage1M fetches page 1 and page 9,000 (limit 100) of a
// collection of 1,000,000 objects.
func BenchmarkPage1M(b *testing.B) { storetest.BenchPages(b, benchOpen, 1_000_000, 9000, 100) }

// BenchmarkAddEnvelopes100Parallel adds generated indicators in calls of
// 100 from 4 callers per core.
func BenchmarkAddEnvelopes100Parallel(b *testing.B) {
	storetest.BenchAddEnvelopesParallel(b, benchOpen, 100, 4)
}

// BenchmarkSearch1M searches and browses a store of 1,000,000 named
// indicators and the ATT&CK techniques, tactics, groups and malware, and
// measures the first search after reopening it against the next.
func BenchmarkSearch1M(b *testing.B) {
	dir := b.TempDir()
	var cur *sqlite.Store
	b.Cleanup(func() {
		if cur != nil {
			cur.Close()
		}
	})
	storetest.BenchSearch(b, func(b *testing.B) store.Store {
		cur = open(b, dir)
		return cur
	}, func(b *testing.B, s store.Store) store.Store {
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		cur = open(b, dir)
		return cur
	}, storetest.SearchBenchTotal(b, 1_000_000))
}

// BenchmarkIndexSearch indexes 10,000 freshly added TAXII-sized indicators
// for search (what the writer does after a POST): the time per iteration
// is the indexing alone, reported per object.
func BenchmarkIndexSearch(b *testing.B) {
	const n = 10_000
	ctx := b.Context()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	objs := make([]*stix.Object, n)
	for i := range objs {
		objs[i] = storetest.GenNamedIndicator(i, at)
	}
	for b.Loop() {
		b.StopTimer()
		s := open(b, b.TempDir())
		if err := s.CreateCollection(ctx, entente.Collection{ID: "c1", Title: "One", ReadRoles: []entente.Role{entente.RoleAnalyst}}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.AddObjects(ctx, "c1", objs); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.IndexSearch(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/object")
}

// BenchmarkImportBatches adds 300,000 generated indicators to a fresh
// one-shot store in calls of 100,000, as `entente import` does, and
// reports the process's CPU time (user and system, from getrusage) per
// object stored, which a loaded machine changes far less than the wall
// time.
func BenchmarkImportBatches(b *testing.B) {
	const total, batch = 300_000, 100_000
	objs := genIndicators(total)
	var cpu time.Duration
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s := freshOneShot(b)
		before := cpuTime(b)
		b.StartTimer()
		for i := 0; i < total; i += batch {
			if _, err := s.AddObjects(b.Context(), "bench", objs[i:i+batch]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpu += cpuTime(b) - before
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(total*b.N), "cpu-ns/object")
}

// BenchmarkPost10k adds 10,000 generated indicators to a fresh store in
// 13 calls of about 770 (one commit each), as the writer stores a TAXII
// POST of 10,000 objects (docs/performance.md, issue 15): the writer's
// B-tree work per new object. Only the additions are timed. The store is
// a one-shot one, whose writer does not index for search when idle, so
// that under callgrind (-test.benchtime 1x) the instructions counted do
// not depend on how long the run takes.
func BenchmarkPost10k(b *testing.B) {
	const n, size = 10000, 770
	objs := genIndicators(n)
	for b.Loop() {
		b.StopTimer()
		s := freshOneShot(b)
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

// genIndicators returns n generated indicators, added now.
func genIndicators(n int) []*stix.Object {
	at := time.Now().UTC()
	objs := make([]*stix.Object, n)
	for i := range objs {
		objs[i] = storetest.GenIndicator(i, at)
	}
	return objs
}

// freshOneShot opens a one-shot store in a new directory with an empty
// collection "bench".
func freshOneShot(b *testing.B) *sqlite.Store {
	s, err := sqlite.OpenOneShot(b.Context(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if err := s.CreateCollection(b.Context(), entente.Collection{ID: "bench", Title: "Benchmark"}); err != nil {
		b.Fatal(err)
	}
	return s
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
