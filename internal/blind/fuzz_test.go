package blind

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/entente-cti/entente/internal/sensor"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"filippo.io/edwards25519"
)

// fuzzSeeds are the seeds of each fuzz target; TestWriteFuzzSeeds writes
// them under testdata/fuzz when ENTENTE_WRITE_FUZZ_SEEDS is set.
func fuzzSeeds(t testing.TB) map[string][][]byte {
	b := testBuilder(t, "p", 4)
	b.Add(sampleIndicators(12))
	s, _ := b.Set()
	set, _ := s.MarshalBinary()
	empty, _ := testBuilder(t, "p", 4).Set()
	emptySet, _ := empty.MarshalBinary()
	req, _ := json.Marshal(EvalRequest{Epoch: 20428, Elements: validElements(t, 2)})
	info, _ := json.Marshal(EpochInfo{Suite: SuiteID, Epoch: 20428, Start: time.Unix(0, 0).UTC(), End: time.Unix(86400, 0).UTC(),
		Params: DefaultParams(), MaxBatch: 1024, SetLen: 3, SetBytes: 100, SetDigest: Digest(nil),
		Budget: BudgetState{Limit: 10, Period: "day", Used: 2}})
	return map[string][][]byte{
		"FuzzDecodeSet":        {set, emptySet, []byte(setMagic), set[:len(set)/2]},
		"FuzzParseEvalRequest": {req, []byte(`{"epoch":1,"elements":["AAAA"]}`), []byte(`{"epoch":1,"elements":[]}`), []byte(`{"epoch":-1}`), []byte(`{"elements":null,"x":1}`)},
		"FuzzParseEpochInfo":   {info, []byte(`{}`), []byte(`{"suite":"P256-SHA256"}`)},
		"FuzzParseRef":         {[]byte("blind:20428:0123456789abcdef"), []byte("blind::"), []byte("blind:18446744073709551616:0123456789abcdef")},
		"FuzzDecodeElement":    {validElements(t, 1)[0], make([]byte, 32), bytes.Repeat([]byte{0xff}, 32), {1}},
		"FuzzParseInput":       {[]byte("ipv4\x0010.0.0.1"), []byte("net4\x0010.0.0.0/8"), []byte("url\x00evil.example/x"), []byte("cidr4\x00x"), []byte("nope")},
		"FuzzDecodeFast":       {validElements(t, 1)[0], make([]byte, 32), bytes.Repeat([]byte{0xff}, 32), append([]byte{0xed}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...)},
		"FuzzParseResolveRequest": {[]byte(`{"refs":["blind:20428:0123456789abcdef"]}`), []byte(`{"refs":[]}`), []byte(`{"refs":["blind:1:x"]}`),
			[]byte(`{"refs":"x"}`), []byte(`{"refs":["blind:1:0123456789abcdef"],"more":1}`)},
		"FuzzParseResolveResponse": {[]byte(`{"results":[{"ref":"blind:1:0123456789abcdef","status":"withheld"}]}`), []byte(`{"results":[]}`), []byte(`{"results":null}`)},
		"FuzzParseBudget":          {[]byte("100000/day"), []byte("5/6h"), []byte("1/30s"), []byte("x/day"), []byte("0/hour"), []byte("1099511627777/week")},
		"FuzzFe8":                  fe8FuzzSeeds(),
		"FuzzParseIPv4":            {[]byte("192.0.2.1"), []byte("01.2.3.4"), []byte("1.2.3.4.5"), []byte("255.255.255.256"), []byte("")},
	}
}

func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("ENTENTE_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set ENTENTE_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	for target, seeds := range fuzzSeeds(t) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func FuzzDecodeSet(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSet(data)
		if err != nil {
			return
		}
		for k := range uint64(64) {
			s.Contains(k * 0x9e3779b97f4a7c15)
		}
		again, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("a decoded set does not encode back to its bytes (%v)", err)
		}
	})
}

func FuzzParseEvalRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseEvalRequest(bytes.NewReader(data), 16)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not a refusal", err)
			}
			return
		}
		s := newTestServer(t, func(c *Config) { c.MaxBatch = 16 })
		_, err = s.Evaluate(t.Context(), "p", Budget{Limit: 100, Period: time.Hour}, req)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("evaluate: %v is not a refusal", err)
			}
		}
	})
}

func FuzzParseEpochInfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseEpochInfo(bytes.NewReader(data))
		if err != nil {
			return
		}
		if info.Params.Validate() != nil || info.MaxBatch < 1 {
			t.Fatalf("accepted invalid info %+v", info)
		}
	})
}

func FuzzParseRef(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRef(string(data))
		if err == nil && r.String() != string(data) {
			t.Fatalf("%q parsed as %s", data, r)
		}
	})
}

func FuzzDecodeElement(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		e, bad := DecodeElement(data)
		if bad != nil {
			return
		}
		enc, _ := e.MarshalBinaryCompress()
		if !bytes.Equal(enc, data) || e.IsIdentity() {
			t.Fatalf("accepted a non-canonical or identity encoding %x", data)
		}
	})
}

func FuzzParseInput(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		k, v, err := ParseInput(string(data))
		if err != nil {
			return
		}
		if k == "" || v == "" {
			t.Fatalf("%q parsed as %q %q", data, k, v)
		}
	})
}

// FuzzDecodeFast: the server's decoder (filippo.io/edwards25519) accepts
// exactly what circl's does, and decodes to the same element.
func FuzzDecodeFast(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeElement(data)
		e, bad := DecodeElement(data)
		if (err == nil) != (bad == nil) {
			t.Fatalf("%x: fast decoder %v, circl %v", data, err, bad)
		}
		// The server's batched decoder (one point, and eight lanes on each
		// backend the CPU runs) accepts and refuses the same, with the same
		// refusal as decodeBlinded.
		_, wantErr := decodeBlinded(data)
		for _, path := range pathsToTest() {
			pts := make([]extended, 1)
			restore := path.use()
			got := decodeAll(pts, [][]byte{data}, path.lanes)
			restore()
			if (got == nil) != (wantErr == nil) || (got != nil && (got.Reason != wantErr.Reason || got.Index != 0)) {
				t.Fatalf("%x: batched decoder (%v) %v, decodeBlinded %v", data, path, got, wantErr)
			}
			if got == nil {
				q, err := new(edwards25519.Point).SetExtendedCoordinates(&pts[0].X, &pts[0].Y, &pts[0].Z, &pts[0].T)
				if err != nil || q.Equal(p) != 1 {
					t.Fatalf("%x: batched decoder (%v) decodes to another point", data, path)
				}
			}
		}
		if err != nil {
			return
		}
		var enc [32]byte
		encodeElement(&enc, p)
		want, _ := e.MarshalBinaryCompress()
		if !bytes.Equal(enc[:], want) || !bytes.Equal(enc[:], data) {
			t.Fatalf("%x decodes to %x, circl to %x", data, enc, want)
		}
	})
}

func FuzzParseResolveRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		req, refs, err := ParseResolveRequest(bytes.NewReader(data))
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not a refusal", err)
			}
			return
		}
		if len(refs) != len(req.Refs) || len(refs) == 0 || len(refs) > MaxResolveRefs {
			t.Fatalf("%d references for %d", len(refs), len(req.Refs))
		}
		for i, r := range refs {
			if r.String() != req.Refs[i] {
				t.Fatalf("refs[%d] %q parsed as %s", i, req.Refs[i], r)
			}
		}
	})
}

func FuzzParseResolveResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := ParseResolveResponse(bytes.NewReader(data), 1)
		if err == nil && len(resp.Results) != 1 {
			t.Fatalf("%d results for one reference", len(resp.Results))
		}
	})
}

func FuzzParseBudget(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBudget(string(data))
		if err != nil {
			return
		}
		if b.Validate() != nil {
			t.Fatalf("%q parsed as an invalid budget %+v", data, b)
		}
		again, err := ParseBudget(b.String())
		if err != nil || again != b {
			t.Fatalf("%q: %s reads back as %+v (%v)", data, b, again, err)
		}
	})
}

// FuzzParseIPv4 holds the IPv4 reading the blind log matcher relies on
// (sensor.ParseIPv4) to netip.ParseAddr.
func FuzzParseIPv4(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		a, ok := sensor.ParseIPv4(data)
		want, err := netip.ParseAddr(string(data))
		wantOK := err == nil && want.Is4()
		if ok != wantOK || ok && addr4(a) != want {
			t.Fatalf("sensor.ParseIPv4(%q) = %x %v; netip.ParseAddr: %v %v", data, a, ok, want, err)
		}
	})
}
