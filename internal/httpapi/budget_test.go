package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/taxii"
)

func TestBudgetBounds(t *testing.T) {
	b := newBudget(100, 250)
	// Alone, a request is admitted whatever it costs.
	big, err := b.reserve("a", 1000)
	if err != nil {
		t.Fatalf("a request alone: %v", err)
	}
	big.release()
	big.release() // twice is harmless
	if total, _ := b.inUse(""); total != 0 {
		t.Fatalf("%d in use after release", total)
	}

	a1, err := b.reserve("a", 80)
	if err != nil {
		t.Fatal(err)
	}
	// Key a's bound: 80 + 30 > 100.
	_, err = b.reserve("a", 30)
	var ref *refusal
	if !errors.As(err, &ref) || entente.ErrorCode(err) != entente.ERATELIMIT || ref.retry < time.Second {
		t.Fatalf("over the key's bound: %v", err)
	}
	// Key b is not bound by a: 80 + 100 <= 250.
	b1, err := b.reserve("b", 100)
	if err != nil {
		t.Fatalf("another key: %v", err)
	}
	// The node's bound: 180 + 90 > 250, though c holds nothing.
	_, err = b.reserve("c", 90)
	if entente.ErrorCode(err) != entente.EUNAVAILABLE {
		t.Fatalf("over the node's bound: %v", err)
	}
	if total, byA := b.inUse("a"); total != 180 || byA != 80 {
		t.Fatalf("in use %d, a %d; want 180, 80", total, byA)
	}
	// Growing within the bounds, then past them; shrinking.
	if err := a1.grow(20); err != nil {
		t.Fatalf("grow to the key's bound: %v", err)
	}
	if err := b1.grow(100); err == nil {
		t.Fatal("grow past the node's bound accepted")
	}
	if err := b1.resize(10); err != nil {
		t.Fatal(err)
	}
	if total, _ := b.inUse(""); total != 110 {
		t.Fatalf("in use %d after resize, want 110", total)
	}
	a1.release()
	b1.release()
	if total, byA := b.inUse("a"); total != 0 || byA != 0 || len(b.byKey) != 0 {
		t.Fatalf("in use %d, a %d, keys %v after releases", total, byA, b.byKey)
	}
}

// TestBudgetHoldUntilComplete checks that memory held for a pending
// status is freed when the status completes, whether the node reports it
// after the request holds the memory or before (the writer can be
// faster than the handler).
func TestBudgetHoldUntilComplete(t *testing.T) {
	b := newBudget(1<<20, 1<<20)
	r1, _ := b.reserve("k", 100)
	b.submit()
	b.holdUntilComplete("s1", r1)
	if total, _ := b.inUse(""); total != 100 {
		t.Fatalf("held %d", total)
	}
	b.complete("s1")
	if total, _ := b.inUse(""); total != 0 {
		t.Fatalf("%d still held after completion", total)
	}

	// Completed before it was held.
	r2, _ := b.reserve("k", 50)
	b.submit()
	b.complete("s2")
	b.holdUntilComplete("s2", r2)
	if total, _ := b.inUse(""); total != 0 || len(b.held) != 0 || len(b.early) != 0 {
		t.Fatalf("early completion: %d held, %v, %v", total, b.held, b.early)
	}

	// Completions of other origins, reported while no request submits,
	// are not remembered.
	b.complete("import")
	b.complete("")
	if len(b.early) != 0 {
		t.Fatalf("early %v", b.early)
	}
	// Nor kept once no request submits any more.
	b.submit()
	b.complete("other")
	b.done()
	if len(b.early) != 0 {
		t.Fatalf("early %v after the last submission ended", b.early)
	}
}

// TestBudgetConcurrent races reservations, holds and completions, and
// checks that every byte is given back.
func TestBudgetConcurrent(t *testing.T) {
	b := newBudget(1000, 3000)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			key := string(rune('a' + w%3))
			for i := range 500 {
				r, err := b.reserve(key, int64(1+i%300))
				if err != nil {
					continue
				}
				id := key + string(rune(w)) + string(rune(i))
				b.submit()
				if i%2 == 0 {
					go b.complete(id)
				}
				b.holdUntilComplete(id, r)
				if i%2 == 1 {
					b.complete(id)
				}
			}
		})
	}
	wg.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; {
		total, _ := b.inUse("")
		b.mu.Lock()
		held := len(b.held)
		b.mu.Unlock()
		if total == 0 && held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes and %d holds left", total, held)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriteErrorEveryCode checks that every error code the node uses is
// written as a TAXII error message with its status, and that a refusal
// carries Retry-After.
func TestWriteErrorEveryCode(t *testing.T) {
	h := &handler{log: slog.New(slog.DiscardHandler)}
	r := httptest.NewRequest("GET", "/api/v1/x", nil)
	for code, status := range statusOf {
		w := httptest.NewRecorder()
		h.writeError(w, r, entente.Errorf(code, "because"))
		if w.Code != status || w.Header().Get("Content-Type") != "application/taxii+json;version=2.1" {
			t.Errorf("%s: %d %q", code, w.Code, w.Header().Get("Content-Type"))
		}
		var e taxii.Error
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.HTTPStatus != strconv.Itoa(status) ||
			e.Title != http.StatusText(status) || e.Description == "" || e.ErrorCode != string(code) {
			t.Errorf("%s: body %s", code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	h.writeError(w, r, &refusal{entente.Errorf(entente.ERATELIMIT, "later"), 2500 * time.Millisecond})
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "3" {
		t.Errorf("refusal: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

// TestBudgetPressure checks that the pressure hook is told when the
// memory charged reaches pressureAt and when it falls back to zero, and
// nothing for small bodies.
func TestBudgetPressure(t *testing.T) {
	b := newBudget(1<<30, 1<<30)
	told := make(chan bool, 10)
	b.pressure = func(high bool) { told <- high }
	expect := func(want bool) {
		t.Helper()
		select {
		case got := <-told:
			if got != want {
				t.Fatalf("told %v, want %v", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("not told %v", want)
		}
	}
	quiet := func() {
		t.Helper()
		select {
		case got := <-told:
			t.Fatalf("told %v", got)
		case <-time.After(50 * time.Millisecond):
		}
	}
	small, _ := b.reserve("k", 1<<20)
	small.release()
	quiet()
	r1, _ := b.reserve("k", 40<<20)
	quiet()
	r2, _ := b.reserve("j", 30<<20)
	expect(true)
	r1.release()
	quiet() // 30 MiB still charged
	r2.release()
	expect(false)
	quiet()
}

// TestBudgetStaleHolds checks that memory held for a status the node
// never reports complete is given back after holdTimeout.
func TestBudgetStaleHolds(t *testing.T) {
	b := newBudget(1<<20, 1<<20)
	r, _ := b.reserve("k", 100)
	b.submit()
	b.holdUntilComplete("lost", r)
	r.held = time.Now().Add(-holdTimeout - time.Second) // as if long ago
	b.swept = time.Time{}
	r2, _ := b.reserve("k", 10)
	b.submit()
	b.holdUntilComplete("next", r2) // sweeps
	if total, _ := b.inUse(""); total != 10 || len(b.held) != 1 {
		t.Fatalf("in use %d, held %v; want only the recent hold", total, b.held)
	}
}
