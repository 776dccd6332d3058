package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/store"
)

// RunBlind checks that the stores open returns implement
// [store.BlindStore] as its documentation says. Each subtest opens a
// fresh, empty store.
func RunBlind(t *testing.T, open Opener) {
	bs := func(t *testing.T) store.BlindStore {
		t.Helper()
		s, ok := open(t).(store.BlindStore)
		if !ok {
			t.Fatalf("%T does not implement store.BlindStore", s)
		}
		return s
	}
	t.Run("Ledger", func(t *testing.T) { testBlindLedger(t, bs(t)) })
	t.Run("LedgerConcurrent", func(t *testing.T) { testBlindLedgerConcurrent(t, bs(t)) })
	t.Run("Replay", func(t *testing.T) { testBlindReplay(t, bs(t)) })
}

func spend(t *testing.T, s store.BlindStore, partner string, period time.Time, n, limit, wantUsed int64, wantOK bool) {
	t.Helper()
	used, ok, err := s.SpendBlind(ctx(t), partner, period, n, limit)
	if err != nil {
		t.Fatal(err)
	}
	if used != wantUsed || ok != wantOK {
		t.Fatalf("spend %d of %d for %s in %v: used %d ok %v, want %d %v", n, limit, partner, period, used, ok, wantUsed, wantOK)
	}
}

func testBlindLedger(t *testing.T, s store.BlindStore) {
	day := 24 * time.Hour
	p0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	p1, p2 := p0.Add(day), p0.Add(2*day)
	const a, b = "identity--00000000-0000-4000-8000-00000000000a", "identity--00000000-0000-4000-8000-00000000000b"
	if used, err := s.BlindUsed(ctx(t), a, p0); err != nil || used != 0 {
		t.Fatalf("used before any spending: %d, %v", used, err)
	}
	spend(t, s, a, p0, 60, 100, 60, true)
	spend(t, s, a, p0, 50, 100, 60, false) // would pass the limit: nothing is added
	spend(t, s, a, p0, 40, 100, 100, true) // exactly the limit
	spend(t, s, a, p0, 1, 100, 100, false)
	spend(t, s, a, p0, 200, 100, 100, false) // more than the limit at once
	spend(t, s, b, p0, 7, 100, 7, true)      // another partner's count
	spend(t, s, b, p0, 101, 100, 7, false)
	if used, err := s.BlindUsed(ctx(t), a, p0); err != nil || used != 100 {
		t.Fatalf("used of %s: %d, %v", a, used, err)
	}
	// A new period starts from zero and keeps the one before.
	spend(t, s, a, p1, 30, 100, 30, true)
	if used, err := s.BlindUsed(ctx(t), a, p0); err != nil || used != 100 {
		t.Fatalf("the previous period of %s: %d, %v", a, used, err)
	}
	spend(t, s, a, p2, 1, 100, 1, true)
	if used, err := s.BlindUsed(ctx(t), a, p1); err != nil || used != 30 {
		t.Fatalf("the previous period of %s: %d, %v", a, used, err)
	}
	if used, err := s.BlindUsed(ctx(t), a, p0); err != nil || used != 0 {
		t.Fatalf("a period two before the current one is kept: %d, %v", used, err)
	}
	if used, err := s.BlindUsed(ctx(t), b, p0); err != nil || used != 7 {
		t.Fatalf("another partner's period was dropped: %d, %v", used, err)
	}
	if _, _, err := s.SpendBlind(ctx(t), a, p2, 0, 100); err == nil {
		t.Fatal("spending nothing was accepted")
	}
}

// testBlindLedgerConcurrent spends one evaluation at a time from many
// goroutines: exactly the limit is spent, whatever the interleaving.
func testBlindLedgerConcurrent(t *testing.T, s store.BlindStore) {
	period := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	const limit, workers, tries = 50, 8, 10
	var mu sync.Mutex
	granted := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range tries {
				_, ok, err := s.SpendBlind(context.Background(), "p", period, 1, limit)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	used, err := s.BlindUsed(ctx(t), "p", period)
	if err != nil || used != limit || granted != limit {
		t.Fatalf("%d spendings granted, %d used (%v), want %d of each", granted, used, err, limit)
	}
}

func testBlindReplay(t *testing.T, s store.BlindStore) {
	d1, d2 := [32]byte{1}, [32]byte{2}
	seen := func(partner string, epoch uint64, d [32]byte, want bool) {
		t.Helper()
		got, err := s.SeenBlindBatch(ctx(t), partner, epoch, d)
		if err != nil || got != want {
			t.Fatalf("seen %s %d %x: %v (%v), want %v", partner, epoch, d[:1], got, err, want)
		}
	}
	add := func(partner string, epoch uint64, d [32]byte, want bool) {
		t.Helper()
		got, err := s.AddBlindBatch(ctx(t), partner, epoch, d)
		if err != nil || got != want {
			t.Fatalf("add %s %d %x: %v (%v), want %v", partner, epoch, d[:1], got, err, want)
		}
	}
	seen("a", 100, d1, false)
	add("a", 100, d1, true)
	seen("a", 100, d1, true)
	add("a", 100, d1, false)
	seen("a", 101, d1, false) // another epoch
	seen("b", 100, d1, false) // another partner
	seen("a", 100, d2, false)
	add("a", 101, d1, true)
	seen("a", 100, d1, true) // the epoch before the latest is kept (its grace period)
	add("a", 102, d2, true)
	seen("a", 100, d1, false) // older ones are dropped
	seen("a", 101, d1, true)
	add("b", 100, d1, true) // another partner's epochs are its own
	seen("b", 100, d1, true)
	if _, err := s.AddBlindBatch(ctx(t), "a", 1<<63, d1); err == nil {
		t.Fatal("an epoch past the int64 range was accepted")
	}
}
