package blind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cloudflare/circl/oprf"

	"github.com/entente-cti/entente"
)

// validElements returns n freshly blinded elements.
func validElements(t testing.TB, n int) [][]byte {
	t.Helper()
	in := make([][]byte, n)
	for i := range in {
		in[i] = fmt.Appendf(nil, "ipv4\x0010.0.0.%d", i)
	}
	_, req, err := oprf.NewClient(suite).Blind(in)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, n)
	for i, e := range req.Elements {
		out[i], _ = e.MarshalBinaryCompress()
	}
	return out
}

// notOnCurve returns a 32-byte string that is a canonical, non-negative
// field element but no ristretto255 encoding (no point has it).
func notOnCurve(t *testing.T) []byte {
	for s := 2; s < 1000; s += 2 {
		b := make([]byte, 32)
		b[0], b[1] = byte(s), byte(s>>8)
		if err := grp.NewElement().UnmarshalBinary(b); err != nil {
			return b
		}
	}
	t.Fatal("no invalid encoding found among small field elements")
	return nil
}

func le(hexLE string) []byte {
	b := make([]byte, 32)
	fmt.Sscanf(hexLE, "%x", &b)
	return b
}

func TestMalformedElements(t *testing.T) {
	p := le("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f") // 2^255-19, not canonical
	pPlus2 := le("efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	topBit := make([]byte, 32)
	topBit[31] = 0x80
	negative := make([]byte, 32)
	negative[0] = 1 // s = 1 is odd: "negative", refused by RFC 9496
	cases := []struct {
		name   string
		elem   []byte
		reason Reason
	}{
		{"empty", nil, ReasonLength},
		{"31 bytes", make([]byte, 31), ReasonLength},
		{"33 bytes", make([]byte, 33), ReasonLength},
		{"64 bytes", make([]byte, 64), ReasonLength},
		{"identity", make([]byte, 32), ReasonIdentity},
		{"field element p (non-canonical)", p, ReasonElement},
		{"field element p+2 (non-canonical)", pPlus2, ReasonElement},
		{"top bit set", topBit, ReasonElement},
		{"negative field element", negative, ReasonElement},
		{"not on the curve", notOnCurve(t), ReasonElement},
		{"all ones", bytes.Repeat([]byte{0xff}, 32), ReasonElement},
	}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := DecodeElement(c.elem); err == nil || err.Reason != c.reason {
				t.Fatalf("DecodeElement: %v, want reason %s", err, c.reason)
			}
			s := newTestServer(t, func(cf *Config) { cf.Now = func() time.Time { return now } })
			els := validElements(t, 3)
			els = append(els[:1], append([][]byte{c.elem}, els[1:]...)...)
			budget := Budget{Limit: 100, Period: time.Hour}
			_, err := s.Evaluate(ctx, "p", budget, &EvalRequest{Epoch: s.epochs.At(now), Elements: els})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Evaluate: %v, want a refusal", err)
			}
			if e.Reason != c.reason || e.Index != 1 || e.Status() != http.StatusBadRequest {
				t.Fatalf("refusal %+v (status %d), want reason %s at index 1, 400", e, e.Status(), c.reason)
			}
			if entente.ErrorCode(err) != entente.EINVALID {
				t.Errorf("code %s, want %s", entente.ErrorCode(err), entente.EINVALID)
			}
			used, _ := s.ledger.Used(ctx, "p", time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
			// A bad length is refused before the charge; a bad point after it.
			want := int64(4)
			if c.reason == ReasonLength {
				want = 0
			}
			if used != want {
				t.Errorf("budget used %d, want %d", used, want)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 12, 30, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	budget := Budget{Limit: 10, Period: time.Hour}
	period := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

	t.Run("batch too large", func(t *testing.T) {
		s := newTestServer(t, func(c *Config) { c.Now = clock; c.MaxBatch = 4 })
		_, err := s.Evaluate(ctx, "p", budget, &EvalRequest{Epoch: s.epochs.At(now), Elements: validElements(t, 5)})
		checkRefusal(t, err, ReasonBatchTooLarge, 413)
		if used, _ := s.ledger.Used(ctx, "p", period); used != 0 {
			t.Errorf("an oversized batch was charged %d", used)
		}
	})
	t.Run("empty batch", func(t *testing.T) {
		s := newTestServer(t, func(c *Config) { c.Now = clock })
		_, err := s.Evaluate(ctx, "p", budget, &EvalRequest{Epoch: s.epochs.At(now)})
		checkRefusal(t, err, ReasonEmpty, 400)
	})
	t.Run("duplicate element", func(t *testing.T) {
		s := newTestServer(t, func(c *Config) { c.Now = clock })
		els := validElements(t, 3)
		els = append(els, els[1])
		_, err := s.Evaluate(ctx, "p", budget, &EvalRequest{Epoch: s.epochs.At(now), Elements: els})
		checkRefusal(t, err, ReasonReplay, 409)
	})
	t.Run("replayed batch", func(t *testing.T) {
		s := newTestServer(t, func(c *Config) { c.Now = clock })
		req := &EvalRequest{Epoch: s.epochs.At(now), Elements: validElements(t, 3)}
		if _, err := s.Evaluate(ctx, "p", budget, req); err != nil {
			t.Fatal(err)
		}
		_, err := s.Evaluate(ctx, "p", budget, req)
		checkRefusal(t, err, ReasonReplay, 409)
		if used, _ := s.ledger.Used(ctx, "p", period); used != 3 {
			t.Errorf("used %d after a replay, want 3 (the replay is not charged)", used)
		}
		// Another partner sending the same elements is not a replay of
		// the first partner's batch.
		if _, err := s.Evaluate(ctx, "q", budget, req); err != nil {
			t.Errorf("same elements from another partner: %v", err)
		}
	})
	t.Run("epochs", func(t *testing.T) {
		s := newTestServer(t, func(c *Config) { c.Now = clock; c.Epochs = Epochs{Length: time.Hour, Grace: 10 * time.Minute} })
		cur := s.epochs.At(now)
		for _, e := range []uint64{cur - 1, cur + 1, 0} {
			_, err := s.Evaluate(ctx, "p", budget, &EvalRequest{Epoch: e, Elements: validElements(t, 1)})
			checkRefusal(t, err, ReasonEpochExpired, 409)
		}
		// Within the grace period the previous epoch is still accepted.
		now2 := s.epochs.Start(cur + 1).Add(5 * time.Minute)
		s.now = func() time.Time { return now2 }
		if _, err := s.Evaluate(ctx, "p", budget, &EvalRequest{Epoch: cur, Elements: validElements(t, 1)}); err != nil {
			t.Errorf("previous epoch within the grace: %v", err)
		}
		now3 := s.epochs.Start(cur + 1).Add(11 * time.Minute)
		s.now = func() time.Time { return now3 }
		_, err := s.Evaluate(ctx, "p", budget, &EvalRequest{Epoch: cur, Elements: validElements(t, 1)})
		checkRefusal(t, err, ReasonEpochExpired, 409)
	})
	t.Run("budget", func(t *testing.T) {
		var audit []BatchRecord
		s := newTestServer(t, func(c *Config) {
			c.Now = clock
			c.Audit = func(_ context.Context, r BatchRecord) { audit = append(audit, r) }
		})
		e := s.epochs.At(now)
		if _, err := s.Evaluate(ctx, "p", budget, &EvalRequest{Epoch: e, Elements: validElements(t, 8)}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Evaluate(ctx, "p", budget, &EvalRequest{Epoch: e, Elements: validElements(t, 3)})
		ref := checkRefusal(t, err, ReasonBudget, 429)
		if ref.RetryAfter != 30*time.Minute {
			t.Errorf("retry after %v, want 30m (the hour's period ends at 13:00)", ref.RetryAfter)
		}
		if ref.Body().RetryAfter != 1800 {
			t.Errorf("body retry_after %d, want 1800", ref.Body().RetryAfter)
		}
		if _, err := s.Evaluate(ctx, "p", budget, &EvalRequest{Epoch: e, Elements: validElements(t, 2)}); err != nil {
			t.Errorf("a batch that fits the rest of the budget: %v", err)
		}
		// The next period starts afresh.
		now = now.Add(31 * time.Minute)
		defer func() { now = now.Add(-31 * time.Minute) }()
		if _, err := s.Evaluate(ctx, "p", budget, &EvalRequest{Epoch: s.epochs.At(now), Elements: validElements(t, 10)}); err != nil {
			t.Errorf("next period: %v", err)
		}
		want := []BatchRecord{{"p", e, 8, clock(), ""}, {"p", e, 3, clock(), ReasonBudget}, {"p", e, 2, clock(), ""}}
		if len(audit) != 4 {
			t.Fatalf("audit has %d records, want 4", len(audit))
		}
		for i, w := range want {
			a := audit[i]
			if a.Partner != w.Partner || a.Count != w.Count || a.Refused != w.Refused || a.Epoch != w.Epoch {
				t.Errorf("audit[%d] = %+v, want %+v", i, a, w)
			}
		}
	})
	t.Run("no access", func(t *testing.T) {
		s := newTestServer(t, func(c *Config) { c.Now = clock })
		_, err := s.Evaluate(ctx, "p", Budget{}, &EvalRequest{Epoch: s.epochs.At(now), Elements: validElements(t, 1)})
		checkRefusal(t, err, ReasonNoAccess, 403)
		_, err = s.Info(ctx, "p", Budget{})
		checkRefusal(t, err, ReasonNoAccess, 403)
	})
	t.Run("set of another epoch", func(t *testing.T) {
		s := newTestServer(t, func(c *Config) { c.Now = clock })
		_, err := s.Set(ctx, "p", s.epochs.At(now)-1)
		checkRefusal(t, err, ReasonEpochExpired, 409)
	})
}

func checkRefusal(t *testing.T, err error, reason Reason, status int) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want a refusal %s", err, reason)
	}
	if e.Reason != reason || e.Status() != status {
		t.Fatalf("refusal %s (%d): %s; want %s (%d)", e.Reason, e.Status(), e.Message, reason, status)
	}
	if !errors.Is(err, &Error{Reason: reason}) {
		t.Errorf("errors.Is does not find the reason %s", reason)
	}
	return e
}

func TestParseBudget(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Budget
		err  bool
	}{
		{"100000/day", Budget{100000, 24 * time.Hour}, false},
		{"5/h", Budget{5, time.Hour}, false},
		{" 7 / week ", Budget{7, 7 * 24 * time.Hour}, false},
		{"100/6h", Budget{100, 6 * time.Hour}, false},
		{"100", Budget{}, true},
		{"0/day", Budget{}, true},
		{"-3/day", Budget{}, true},
		{"10/fortnight", Budget{}, true},
		{"10/1s", Budget{}, true},
		{"99999999999999999/day", Budget{}, true},
	} {
		got, err := ParseBudget(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseBudget(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
		if err == nil {
			back, err := ParseBudget(got.String())
			if err != nil || back != got {
				t.Errorf("round trip of %q through %q: %v, %v", c.in, got.String(), back, err)
			}
		}
	}
}

func TestRefs(t *testing.T) {
	r := Ref{Epoch: 20428, Key: 0x0123456789abcdef}
	if s := r.String(); s != "blind:20428:0123456789abcdef" {
		t.Fatalf("String() = %q", s)
	}
	if got, err := ParseRef(r.String()); err != nil || got != r {
		t.Fatalf("ParseRef: %v, %v", got, err)
	}
	for _, bad := range []string{"", "blind:", "blind:1:", "blind:1:0123", "blind:x:0123456789abcdef", "blind:01:0123456789abcdef",
		"blind:1:0123456789ABCDEF", "blind:1:0123456789abcdef0", "indicator--1:0123456789abcdef", "blind:1:+123456789abcdef"} {
		if _, err := ParseRef(bad); err == nil {
			t.Errorf("ParseRef(%q) accepted", bad)
		}
	}
}
