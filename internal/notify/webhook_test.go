package notify_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/notify"
)

// flaky is a webhook receiver that fails its first failures requests,
// verifying every signature.
type flaky struct {
	t        *testing.T
	verifier *notify.Verifier
	failures int

	mu       sync.Mutex
	attempts []time.Time
	bodies   []string
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts = append(f.attempts, time.Now())
	if err := f.verifier.Verify(r.Header, body, time.Now()); err != nil {
		f.t.Errorf("receiver: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if len(f.attempts) <= f.failures {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	f.bodies = append(f.bodies, string(body))
	w.WriteHeader(http.StatusNoContent)
}

func TestDispatcherRetriesWithBackoff(t *testing.T) {
	signer := notify.NewSigner(testKey(7))
	recv := &flaky{t: t, verifier: notify.NewVerifier(signer.PublicKey(), time.Minute, 100), failures: 2}
	srv := httptest.NewServer(recv) // listens on 127.0.0.1
	defer srv.Close()

	q := openQueue(t, filepath.Join(t.TempDir(), "q.jsonl"))
	defer q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := q.Enqueue(ctx, notify.Delivery{Target: srv.URL + "/hook", Body: []byte(`{"alert":1}`)}); err != nil {
		t.Fatal(err)
	}
	const base = time.Second
	p := &notify.Dispatcher{
		Queue:     q,
		Deliverer: &notify.Webhook{Client: srv.Client(), Signer: signer},
		Backoff:   notify.Backoff{Base: base, Max: 10 * base, Jitter: 0.25},
		Poll:      5 * time.Millisecond,
		Logger:    slog.New(slog.DiscardHandler),
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// Wait for the delivery itself, not only for the queue to empty: the
	// last attempt may still be in flight on a loaded machine.
	delivered := func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		return len(recv.bodies) > 0
	}
	for (q.Len() > 0 || !delivered()) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // any duplicate delivery would show now
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.attempts) != 3 || len(recv.bodies) != 1 || recv.bodies[0] != `{"alert":1}` {
		t.Fatalf("attempts %d, delivered %q; want 3 attempts and one delivery", len(recv.attempts), recv.bodies)
	}
	// Back-off: at least 75% of base, then of 2·base.
	for i, min := range []time.Duration{base * 3 / 4, base * 3 / 2} {
		if gap := recv.attempts[i+1].Sub(recv.attempts[i]); gap < min {
			t.Errorf("gap before attempt %d is %s, want at least %s", i+2, gap, min)
		}
	}
}

func TestDispatcherDropsPermanentFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such hook", http.StatusNotFound)
	}))
	defer srv.Close()
	q := openQueue(t, filepath.Join(t.TempDir(), "q.jsonl"))
	defer q.Close()
	ctx := context.Background()
	q.Enqueue(ctx, notify.Delivery{ID: "gone", Target: srv.URL, Body: []byte("{}")})
	q.Enqueue(ctx, notify.Delivery{ID: "bad-url", Target: "://nope", Body: []byte("{}")})
	var dropped []string
	p := &notify.Dispatcher{Queue: q, Deliverer: &notify.Webhook{Client: srv.Client()}, Logger: slog.New(slog.DiscardHandler),
		OnDrop: func(d notify.Delivery, err error) { dropped = append(dropped, d.ID) }}
	if _, err := p.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if q.Len() != 0 || len(dropped) != 2 {
		t.Fatalf("queue len %d, dropped %v; want both dropped", q.Len(), dropped)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := notify.Backoff{Base: time.Second, Max: 10 * time.Second, Jitter: 0.5, Rand: func() float64 { return 0 }}
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, b.Delay(n))
	}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays %v, want %v seconds", got, want)
		}
	}
	b.Rand = func() float64 { return 0.999 }
	if d := b.Delay(1); d < 500*time.Millisecond || d > time.Second {
		t.Errorf("jittered delay %s outside [0.5s, 1s]", d)
	}
}

// TestRetrySignedAnew checks that a retry made within the same second as
// the attempt before it is signed with a later timestamp: the receiver's
// replay check must not refuse a legitimate retry.
func TestRetrySignedAnew(t *testing.T) {
	signer := notify.NewSigner(testKey(9))
	recv := &flaky{t: t, verifier: notify.NewVerifier(signer.PublicKey(), time.Minute, 100), failures: 2}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	at := time.Now().Truncate(time.Second).Add(300 * time.Millisecond)
	wh := &notify.Webhook{Client: srv.Client(), Signer: signer, Now: func() time.Time { return at }}
	d := notify.Delivery{ID: "d1", Target: srv.URL, Body: []byte(`{"alert":2}`)}
	ctx := context.Background()
	for i := range 3 { // three attempts in the same second
		err := wh.Deliver(ctx, d)
		if i < 2 && (err == nil || errors.As(err, new(*notify.PermanentError))) {
			t.Fatalf("attempt %d: %v, want a retryable error (the receiver answers 503)", i+1, err)
		}
		if i == 2 && err != nil {
			t.Fatalf("third attempt: %v", err)
		}
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.bodies) != 1 {
		t.Fatalf("delivered %d times, want once", len(recv.bodies))
	}
}
