package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Webhook delivers payloads by HTTP POST, signed with the node's key.
type Webhook struct {
	// Client sends the requests; nil means a client with a 10 second
	// timeout.
	Client *http.Client
	// Signer signs each request.
	Signer *Signer
	// Now returns the current time (for the signature timestamp); nil
	// means time.Now.
	Now func() time.Time

	// signed is, per delivery still being retried, the timestamp (Unix
	// seconds) of its last signed attempt: a retry is signed with a later
	// one, so it never carries the signature of an attempt the receiver
	// has already seen (which its replay check would refuse).
	mu     sync.Mutex
	signed map[string]int64
}

// signingTime returns the time to sign an attempt of d with: now, or one
// second after the previous attempt's timestamp when that was in the same
// second (or later: a clock stepped back).
func (w *Webhook) signingTime(d Delivery, now time.Time) time.Time {
	key := d.ID + "\x00" + d.Target
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.signed == nil {
		w.signed = map[string]int64{}
	}
	sec := now.Unix()
	if last, ok := w.signed[key]; ok && sec <= last {
		sec = last + 1
	}
	w.signed[key] = sec
	return time.Unix(sec, 0)
}

// settled forgets the attempts of d (delivered, or given up).
func (w *Webhook) settled(d Delivery) {
	w.mu.Lock()
	delete(w.signed, d.ID+"\x00"+d.Target)
	w.mu.Unlock()
}

// PermanentError is a delivery failure that retrying cannot fix: the
// target is not a valid URL, or the receiver refused the request with a
// 4xx status other than 408 and 429.
type PermanentError struct {
	Target string
	Status int   // 0 when the request could not be made
	Err    error // why the request could not be made
}

// Error names the target and the status or cause.
func (e *PermanentError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("deliver to %s: %v", e.Target, e.Err)
	}
	return fmt.Sprintf("deliver to %s: refused with status %d", e.Target, e.Status)
}

// Unwrap returns the cause.
func (e *PermanentError) Unwrap() error { return e.Err }

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// Deliver POSTs d.Body to d.Target with the signature headers. A 2xx
// response is success; a 4xx other than 408 and 429 is a
// *PermanentError; anything else is an error worth retrying.
func (w *Webhook) Deliver(ctx context.Context, d Delivery) error {
	c := w.Client
	if c == nil {
		c = defaultClient
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Target, bytes.NewReader(d.Body))
	if err != nil {
		return &PermanentError{Target: d.Target, Err: fmt.Errorf("invalid target: %w", err)}
	}
	ct := d.ContentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "entente-notify")
	req.Header.Set("X-Entente-Delivery", d.ID)
	if w.Signer != nil {
		w.Signer.SignRequest(req.Header, d.Body, w.signingTime(d, now()))
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", d.Target, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		w.settled(d)
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 &&
		resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		w.settled(d)
		return &PermanentError{Target: d.Target, Status: resp.StatusCode}
	}
	return fmt.Errorf("deliver to %s: status %d", d.Target, resp.StatusCode)
}

// Backoff computes the delay before the next attempt: Base·2^(attempt−1),
// at most Max, of which a random part (Jitter, 0…1) is taken off so that
// many failed deliveries do not retry in step.
type Backoff struct {
	Base   time.Duration
	Max    time.Duration
	Jitter float64
	// Rand returns a number in [0, 1); nil means math/rand/v2.
	Rand func() float64
}

// DefaultBackoff starts at 5 seconds and stops growing at one hour.
func DefaultBackoff() Backoff { return Backoff{Base: 5 * time.Second, Max: time.Hour, Jitter: 0.5} }

// Delay returns the delay after the given number of failed attempts (≥1).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	j := min(max(b.Jitter, 0), 1)
	return d - time.Duration(float64(d)*j*r())
}

// minRetryDelay is the shortest delay between two attempts of one
// delivery: signature timestamps have a resolution of one second.
const minRetryDelay = time.Second

// Deliverer delivers one payload; [Webhook] is one.
type Deliverer interface {
	Deliver(ctx context.Context, d Delivery) error
}

// Dispatcher takes due deliveries from a queue and delivers them, retrying
// failures with back-off (never sooner than one second, the resolution of
// signature timestamps, so that a receiver does not take a retry for a
// replay) until MaxAttempts, after which (or after a permanent failure)
// the delivery is dropped and reported to OnDrop.
type Dispatcher struct {
	Queue     Queue
	Deliverer Deliverer
	Backoff   Backoff
	// MaxAttempts is how many attempts a delivery gets (default 12).
	MaxAttempts int
	// Poll is how often the queue is checked when idle (default 1 s);
	// Wake checks it at once.
	Poll time.Duration
	// Batch is how many due deliveries are taken at a time (default 64).
	Batch int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// OnDrop is told of each delivery given up on; may be nil.
	OnDrop func(d Delivery, err error)
	// Logger logs failed attempts; nil means slog.Default().
	Logger *slog.Logger

	wake chan struct{}
}

// Wake makes a running dispatcher look at the queue now (call it after
// Enqueue). It never blocks.
func (p *Dispatcher) Wake() {
	p.init()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Dispatcher) init() {
	if p.wake == nil {
		p.wake = make(chan struct{}, 1)
	}
}

// Run delivers until ctx is cancelled, then returns ctx.Err(). Deliveries
// are attempted one at a time. Start Run once, before any Wake from
// another goroutine.
func (p *Dispatcher) Run(ctx context.Context) error {
	p.init()
	poll := p.Poll
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-p.wake:
		}
		n, err := p.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			p.logger().Error("delivery queue", "err", err)
		}
		if n >= p.batch() { // more may be due: go on at once
			t.Reset(0)
		} else {
			t.Reset(poll)
		}
	}
}

func (p *Dispatcher) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

func (p *Dispatcher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Dispatcher) batch() int {
	if p.Batch <= 0 {
		return 64
	}
	return p.Batch
}

// RunOnce attempts one batch of the deliveries due now and returns how
// many it attempted.
func (p *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	maxAttempts := p.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 12
	}
	attempted := 0
	due, err := p.Queue.Due(ctx, p.now(), p.batch())
	if err != nil {
		return 0, fmt.Errorf("read due deliveries: %w", err)
	}
	for i, d := range due {
		attempted = i + 1
		if ctx.Err() != nil {
			return attempted, ctx.Err()
		}
		err := p.Deliverer.Deliver(ctx, d)
		if err == nil {
			if err := p.Queue.Ack(ctx, d.ID); err != nil {
				return attempted, fmt.Errorf("acknowledge delivery %s: %w", d.ID, err)
			}
			continue
		}
		if ctx.Err() != nil {
			return attempted, ctx.Err()
		}
		var perm *PermanentError
		if errors.As(err, &perm) || d.Attempts+1 >= maxAttempts {
			p.logger().Warn("delivery dropped", "id", d.ID, "target", d.Target, "attempts", d.Attempts+1, "err", err)
			if err := p.Queue.Ack(ctx, d.ID); err != nil {
				return attempted, fmt.Errorf("drop delivery %s: %w", d.ID, err)
			}
			if p.OnDrop != nil {
				p.OnDrop(d, err)
			}
			continue
		}
		at := p.now().Add(p.Backoff.Delay(d.Attempts + 1))
		p.logger().Info("delivery failed; will retry", "id", d.ID, "target", d.Target, "attempt", d.Attempts+1, "retry_at", at, "err", err)
		if err := p.Queue.Retry(ctx, d.ID, at, err.Error()); err != nil {
			return attempted, fmt.Errorf("reschedule delivery %s: %w", d.ID, err)
		}
	}
	return attempted, nil
}
