package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestReadGate: an open gate lets statements through at once; a closed
// one holds new statements back until it reopens (or, should it stay
// closed, for its bound, or until the caller gives up), tells its closer
// when the statements in flight have ended, and counts what it held.
func TestReadGate(t *testing.T) {
	const short = 30 * time.Millisecond
	// entered runs enter in a goroutine and returns its outcome.
	entered := func(g *readGate, ctx context.Context) <-chan error {
		ch := make(chan error, 1)
		go func() { ch <- g.enter(ctx) }()
		return ch
	}
	// waitFor returns what ch delivers, failing after 10 s.
	waitFor := func(t *testing.T, ch <-chan error) error {
		t.Helper()
		select {
		case err := <-ch:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("a statement is still held 10 s later")
			return nil
		}
	}
	// stillHeld fails if ch delivers within short.
	stillHeld := func(t *testing.T, ch <-chan error) {
		t.Helper()
		select {
		case err := <-ch:
			t.Fatalf("a statement passed the closed gate (%v)", err)
		case <-time.After(short):
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, g *readGate)
		held int64 // statements the gate reports it held
	}{
		{"open: no wait", func(t *testing.T, g *readGate) {
			if err := waitFor(t, entered(g, context.Background())); err != nil {
				t.Fatal(err)
			}
			g.leave()
		}, 0},
		{"closed: held until reopened", func(t *testing.T, g *readGate) {
			drained := g.close()
			select {
			case <-drained:
			default:
				t.Fatal("nothing in flight, yet not drained")
			}
			ch := entered(g, context.Background())
			stillHeld(t, ch)
			g.open()
			if err := waitFor(t, ch); err != nil {
				t.Fatal(err)
			}
			g.leave()
		}, 1},
		{"drained once the statements in flight end", func(t *testing.T, g *readGate) {
			for range 2 {
				if err := g.enter(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			drained := g.close()
			g.leave()
			select {
			case <-drained:
				t.Fatal("drained with a statement in flight")
			case <-time.After(short):
			}
			g.leave()
			select {
			case <-drained:
			case <-time.After(10 * time.Second):
				t.Fatal("not drained after the last statement ended")
			}
			g.open()
		}, 0},
		{"closed for too long: passes at its bound", func(t *testing.T, g *readGate) {
			g.close()
			defer g.open()
			start := time.Now()
			if err := waitFor(t, entered(g, context.Background())); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d < g.bound {
				t.Fatalf("passed after %v, before its bound %v", d, g.bound)
			}
			g.leave()
		}, 1},
		{"caller gives up", func(t *testing.T, g *readGate) {
			g.close()
			defer g.open()
			ctx, cancel := context.WithCancel(context.Background())
			ch := entered(g, ctx)
			stillHeld(t, ch)
			cancel()
			if err := waitFor(t, ch); !errors.Is(err, context.Canceled) {
				t.Fatalf("enter = %v, want context.Canceled", err)
			}
			// It did not enter: the gate drains at once.
			select {
			case <-g.close():
			default:
				t.Fatal("a statement that gave up counts as in flight")
			}
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newReadGate(200 * time.Millisecond)
			tt.run(t, g)
			held, heldFor := g.stats()
			if held != tt.held || (held > 0) != (heldFor > 0) {
				t.Errorf("held %d statements for %v, want %d", held, heldFor, tt.held)
			}
			if g.active != 0 {
				t.Errorf("%d statements still in flight", g.active)
			}
		})
	}
}
