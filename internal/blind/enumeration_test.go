package blind

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/cloudflare/circl/oprf"
)

// TestSetHoldsNoComputableValue checks the blinded set against the
// offline enumeration that defeats hashed and Bloom-filter exports: it
// contains no indicator value, no input, and no hash of either that can
// be computed without the node's key (plain SHA-256 and SHA-512, HMAC with
// an empty key), and OPRF outputs under any other key (another partner's,
// another epoch's) find nothing in it.
func TestSetHoldsNoComputableValue(t *testing.T) {
	items := sampleIndicators(600)
	b := testBuilder(t, "partner-b", 100)
	b.Add(items)
	s, err := b.Set()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := s.MarshalBinary()
	inputs := inputsOf(t, items)
	var candidates [][]byte
	for _, it := range items {
		candidates = append(candidates, []byte(it.Value))
	}
	for _, in := range inputs {
		candidates = append(candidates, []byte(in))
	}
	hashes := map[string]func([]byte) []byte{
		"sha256":            func(v []byte) []byte { h := sha256.Sum256(v); return h[:] },
		"sha512":            func(v []byte) []byte { h := sha512.Sum512(v); return h[:] },
		"hmac-sha256(\"\")": func(v []byte) []byte { m := hmac.New(sha256.New, nil); m.Write(v); return m.Sum(nil) },
		"hmac-sha512(\"\")": func(v []byte) []byte { m := hmac.New(sha512.New, nil); m.Write(v); return m.Sum(nil) },
	}
	for _, v := range candidates {
		if len(v) >= 6 && bytes.Contains(data, v) {
			t.Fatalf("the set contains the value %q", v)
		}
		for name, h := range hashes {
			d := h(v)
			if bytes.Contains(data, d[:8]) {
				t.Fatalf("the set contains %s of %q", name, v)
			}
			for _, k := range []uint64{binary.BigEndian.Uint64(d), binary.LittleEndian.Uint64(d)} {
				if s.Contains(k) {
					t.Fatalf("%s of %q tests positive against the set", name, v)
				}
			}
		}
	}
	// Outputs under other keys: another partner's key for the same epoch,
	// the same partner's key of the next epoch.
	other := testBuilder(t, "partner-c", 100)
	next := testBuilder(t, "partner-b", 101)
	for _, in := range inputs {
		if s.Contains(keyOf(t, other, in)) {
			t.Fatalf("another partner's output of %q tests positive", in)
		}
		if s.Contains(keyOf(t, next, in)) {
			t.Fatalf("the next epoch's output of %q tests positive", in)
		}
		if !s.Contains(keyOf(t, b, in)) {
			t.Fatalf("the epoch's own output of %q is missing", in)
		}
	}
}

// TestBudgetBoundsMemberships is the enumeration test of the protocol: a
// partner with a budget of B that asks for the whole list of the node's
// indicators (the best guesses it could have) learns at most B
// memberships, and evaluations cannot be stretched to cover more inputs:
// finalising one input's evaluation with another input, or a blinded sum
// of two inputs, yields nothing in the set.
func TestBudgetBoundsMemberships(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	s := newTestServer(t, func(c *Config) { c.Now = func() time.Time { return now } })
	items := sampleIndicators(120)
	if probs, err := s.Update(ctx, "partner-b", items, nil); err != nil || len(probs) != 0 {
		t.Fatal(err, probs)
	}
	const B = 37
	peer := &LocalPeer{Server: s, Partner: "partner-b", Budget: Budget{Limit: B, Period: 24 * time.Hour}}
	tr := NewTranslator(peer)
	tr.BatchSize = 5
	tr.Workers = 1
	if _, err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	inputs := inputsOf(t, items)
	st, err := tr.Translate(ctx, inputs)
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonBudget {
		t.Fatalf("translating %d inputs with a budget of %d: %v, want the budget refusal", len(inputs), B, err)
	}
	learned := 0
	for _, in := range inputs {
		if _, _, ok := tr.Answer(in); ok {
			learned++
		}
	}
	hits, _ := tr.Hits()
	if learned > B || len(hits) > B || st.Evaluated > B {
		t.Fatalf("learned %d answers (%d memberships, %d evaluated) with a budget of %d", learned, len(hits), st.Evaluated, B)
	}
	if learned < B-5 || len(hits) != learned {
		t.Fatalf("learned %d answers, %d of them members; want all but the last batch of the budget and all members", learned, len(hits))
	}
	if st.Left != len(inputs)-st.Evaluated {
		t.Errorf("left %d, want %d", st.Left, len(inputs)-st.Evaluated)
	}

	// Stretching evaluations, in the next period (a fresh budget): one
	// evaluation must answer for one input only.
	now = now.Add(24 * time.Hour)
	epoch := s.epochs.At(now)
	set := mustSet(t, s, "partner-b", epoch)
	x1, x2 := []byte(inputs[0]), []byte(inputs[1])
	client := oprf.NewClient(suite)
	r := grp.RandomNonZeroScalar(nil)
	fin1, req1, _ := client.DeterministicBlind([][]byte{x1}, []oprf.Blind{r})
	fin2, _, _ := client.DeterministicBlind([][]byte{x2}, []oprf.Blind{r})
	enc, _ := req1.Elements[0].MarshalBinaryCompress()
	resp, err := peer.Evaluate(ctx, &EvalRequest{Epoch: epoch, Elements: [][]byte{enc}})
	if err != nil {
		t.Fatal(err)
	}
	z, _ := DecodeElement(resp.Elements[0])
	ev := &oprf.Evaluation{Elements: []oprf.Evaluated{z}}
	out1, _ := client.Finalize(fin1, ev)
	out2, _ := client.Finalize(fin2, ev)
	if !set.Contains(Key(out1[0])) {
		t.Fatal("the evaluated input is not found: the test is broken")
	}
	if set.Contains(Key(out2[0])) {
		t.Fatal("one evaluation answered for a second input")
	}
	// A blinded sum r1·H(x1) + r2·H(x2): unblinding by either blind gives
	// neither input's output.
	r1, r2 := grp.RandomNonZeroScalar(nil), grp.RandomNonZeroScalar(nil)
	f1, q1, _ := client.DeterministicBlind([][]byte{x1}, []oprf.Blind{r1})
	f2, q2, _ := client.DeterministicBlind([][]byte{x2}, []oprf.Blind{r2})
	sum := grp.NewElement().Add(q1.Elements[0], q2.Elements[0])
	encSum, _ := sum.MarshalBinaryCompress()
	resp, err = peer.Evaluate(ctx, &EvalRequest{Epoch: epoch, Elements: [][]byte{encSum}})
	if err != nil {
		t.Fatal(err)
	}
	zs, _ := DecodeElement(resp.Elements[0])
	evs := &oprf.Evaluation{Elements: []oprf.Evaluated{zs}}
	o1, _ := client.Finalize(f1, evs)
	o2, _ := client.Finalize(f2, evs)
	if set.Contains(Key(o1[0])) || set.Contains(Key(o2[0])) {
		t.Fatal("an evaluation of a sum answered for one of its terms")
	}
	// And the budget of the new period is spent by those two only.
	if _, err := peer.Evaluate(ctx, &EvalRequest{Epoch: epoch, Elements: validElements(t, B-1)}); !errors.As(err, &e) || e.Reason != ReasonBudget {
		t.Fatalf("after 2 evaluations, %d more: %v, want the budget refusal", B-1, err)
	}
}

func mustSet(t *testing.T, s *Server, partner string, epoch uint64) *Set {
	t.Helper()
	p, err := s.Set(context.Background(), partner, epoch)
	if err != nil {
		t.Fatal(err)
	}
	set, err := DecodeSet(p.Data)
	if err != nil {
		t.Fatal(err)
	}
	return set
}
