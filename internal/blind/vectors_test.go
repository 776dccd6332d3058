package blind

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/cloudflare/circl/oprf"
)

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

type rfcVectors struct {
	Identifier string   `json:"identifier"`
	Mode       uint8    `json:"mode"`
	Seed       hexBytes `json:"seed"`
	KeyInfo    hexBytes `json:"keyInfo"`
	SkSm       hexBytes `json:"skSm"`
	Vectors    []struct {
		Blind             hexBytes `json:"Blind"`
		BlindedElement    hexBytes `json:"BlindedElement"`
		EvaluationElement hexBytes `json:"EvaluationElement"`
		Input             hexBytes `json:"Input"`
		Output            hexBytes `json:"Output"`
	} `json:"vectors"`
}

func loadVectors(t *testing.T) rfcVectors {
	t.Helper()
	data, err := os.ReadFile("testdata/rfc9497-ristretto255-oprf.json")
	if err != nil {
		t.Fatal(err)
	}
	var v rfcVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("testdata/rfc9497-ristretto255-oprf.json: %v", err)
	}
	if v.Identifier != SuiteID || v.Mode != oprf.BaseMode || len(v.Vectors) != 2 {
		t.Fatalf("unexpected vector file: %s mode %d, %d vectors", v.Identifier, v.Mode, len(v.Vectors))
	}
	return v
}

// TestRFC9497Vectors runs the RFC's OPRF(ristretto255, SHA-512) vectors
// through circl (key derivation, blind, evaluate, finalize) and through
// this package's own server path: EvaluateElements, the decoder of
// received elements, and Server.Evaluate with a key installed for the
// vector's seed.
func TestRFC9497Vectors(t *testing.T) {
	v := loadVectors(t)
	key, err := oprf.DeriveKey(suite, oprf.BaseMode, v.Seed, v.KeyInfo)
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := key.MarshalBinary()
	if !bytes.Equal(sk, v.SkSm) {
		t.Fatalf("derived key %x, want %x", sk, v.SkSm)
	}
	client := oprf.NewClient(suite)
	for i, tv := range v.Vectors {
		blind := grp.NewScalar()
		if err := blind.UnmarshalBinary(tv.Blind); err != nil {
			t.Fatal(err)
		}
		fin, req, err := client.DeterministicBlind([][]byte{tv.Input}, []oprf.Blind{blind})
		if err != nil {
			t.Fatal(err)
		}
		be, _ := req.Elements[0].MarshalBinaryCompress()
		if !bytes.Equal(be, tv.BlindedElement) {
			t.Fatalf("vector %d: blinded element %x, want %x", i, be, tv.BlindedElement)
		}
		// The library's server.
		ev, err := oprf.NewServer(suite, key).Evaluate(req)
		if err != nil {
			t.Fatal(err)
		}
		ee, _ := ev.Elements[0].MarshalBinaryCompress()
		if !bytes.Equal(ee, tv.EvaluationElement) {
			t.Fatalf("vector %d: circl evaluation %x, want %x", i, ee, tv.EvaluationElement)
		}
		// This package's evaluation of the wire bytes.
		out, err := EvaluateElements(key, [][]byte{tv.BlindedElement})
		if err != nil {
			t.Fatalf("vector %d: EvaluateElements: %v", i, err)
		}
		if !bytes.Equal(out[0], tv.EvaluationElement) {
			t.Fatalf("vector %d: EvaluateElements %x, want %x", i, out[0], tv.EvaluationElement)
		}
		e, bad := DecodeElement(out[0])
		if bad != nil {
			t.Fatal(bad)
		}
		outputs, err := client.Finalize(fin, &oprf.Evaluation{Elements: []oprf.Evaluated{e}})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(outputs[0], tv.Output) {
			t.Fatalf("vector %d: output %x, want %x", i, outputs[0], tv.Output)
		}
		full, err := oprf.NewServer(suite, key).FullEvaluate(tv.Input)
		if err != nil || !bytes.Equal(full, tv.Output) {
			t.Fatalf("vector %d: FullEvaluate %x (%v), want %x", i, full, err, tv.Output)
		}
	}
}

// TestRFC9497VectorsThroughServer sends the RFC's blinded elements through
// Server.Evaluate, with the key schedule's cache holding the vectors' key
// for the partner and epoch: the evaluations must be the RFC's.
func TestRFC9497VectorsThroughServer(t *testing.T) {
	v := loadVectors(t)
	key, err := oprf.DeriveKey(suite, oprf.BaseMode, v.Seed, v.KeyInfo)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	s := newTestServer(t, func(c *Config) { c.Now = func() time.Time { return now } })
	epoch := s.epochs.At(now)
	s.keys.cache[keyID{"partner-a", epoch}] = key
	var els [][]byte
	for _, tv := range v.Vectors {
		els = append(els, tv.BlindedElement)
	}
	resp, err := s.Evaluate(context.Background(), "partner-a", Budget{Limit: 10, Period: time.Hour}, &EvalRequest{Epoch: epoch, Elements: els})
	if err != nil {
		t.Fatal(err)
	}
	for i, tv := range v.Vectors {
		if !bytes.Equal(resp.Elements[i], tv.EvaluationElement) {
			t.Errorf("vector %d: server evaluation %x, want %x", i, resp.Elements[i], tv.EvaluationElement)
		}
	}
	if resp.Budget.Used != 2 || resp.Budget.Limit != 10 {
		t.Errorf("budget after the batch: %+v, want 2 of 10 used", resp.Budget)
	}
}

func newTestServer(t testing.TB, opt ...func(*Config)) *Server {
	t.Helper()
	c := Config{Secret: bytes.Repeat([]byte{7}, 32)}
	for _, o := range opt {
		o(&c)
	}
	s, err := NewServer(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
