package notify_test

import (
	"crypto/ed25519"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/notify"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func testKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed + byte(i)
	}
	return ed25519.NewKeyFromSeed(s)
}

func signed(s *notify.Signer, body []byte, at time.Time) http.Header {
	h := http.Header{}
	s.SignRequest(h, body, at)
	return h
}

func TestVerify(t *testing.T) {
	s := notify.NewSigner(testKey(1))
	other := notify.NewSigner(testKey(2))
	body := []byte(`{"type":"bundle"}`)
	tol := 5 * time.Minute
	tests := []struct {
		name string
		h    http.Header
		body []byte
		at   time.Time
		want error // nil for success
	}{
		{"round trip", signed(s, body, now), body, now, nil},
		{"sender clock a little ahead", signed(s, body, now.Add(4*time.Minute)), body, now, nil},
		{"tampered body", signed(s, body, now), []byte(`{"type":"bundlE"}`), now, notify.ErrBadSignature},
		{"other key", signed(other, body, now), body, now, notify.ErrBadSignature},
		{"stale", signed(s, body, now.Add(-6*time.Minute)), body, now, notify.ErrStale},
		{"from the future", signed(s, body, now.Add(6*time.Minute)), body, now, notify.ErrStale},
		{"no headers", http.Header{}, body, now, notify.ErrNoSignature},
		{"timestamp changed", func() http.Header {
			h := signed(s, body, now)
			h.Set(notify.HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
			return h
		}(), body, now.Add(time.Second), notify.ErrBadSignature},
		{"timestamp not a number", func() http.Header {
			h := signed(s, body, now)
			h.Set(notify.HeaderTimestamp, "-1e9")
			return h
		}(), body, now, notify.ErrStale},
		{"key rotation: second signature valid", func() http.Header {
			h := signed(s, body, now)
			o := signed(other, body, now)
			h.Set(notify.HeaderSignature, o.Get(notify.HeaderSignature)+", "+h.Get(notify.HeaderSignature))
			return h
		}(), body, now, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := notify.Verify(s.PublicKey(), tt.h, tt.body, tt.at, tol)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if entente.ErrorCode(err) != entente.EUNAUTHORIZED {
				t.Errorf("code %s, want unauthorized", entente.ErrorCode(err))
			}
		})
	}
}

func TestVerifierRefusesReplays(t *testing.T) {
	s := notify.NewSigner(testKey(1))
	v := notify.NewVerifier(s.PublicKey(), time.Minute, 3)
	body := []byte("alert")
	h := signed(s, body, now)
	if err := v.Verify(h, body, now); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(h, body, now.Add(30*time.Second)); !errors.Is(err, notify.ErrReplay) {
		t.Fatalf("replay: err %v, want ErrReplay", err)
	}
	// Other requests fill the cache; when it is full of live signatures,
	// new requests are refused rather than an old one forgotten.
	for i := 1; i <= 2; i++ {
		if err := v.Verify(signed(s, body, now.Add(time.Duration(i)*time.Second)), body, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Verify(signed(s, body, now.Add(3*time.Second)), body, now); !errors.Is(err, notify.ErrReplayFull) {
		t.Fatalf("full cache: err %v, want ErrReplayFull", err)
	}
	// Once the first signature is too old to pass Verify it is forgotten,
	// and the replay is refused as stale instead.
	later := now.Add(3 * time.Minute)
	if err := v.Verify(h, body, later); !errors.Is(err, notify.ErrStale) {
		t.Fatalf("late replay: err %v, want ErrStale", err)
	}
	if err := v.Verify(signed(s, body, later), body, later); err != nil {
		t.Fatalf("after expiry the cache should have room: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	s := notify.NewSigner(testKey(1))
	body := []byte(`{"type":"bundle"}`)
	h := signed(s, body, now)
	f.Add(h.Get(notify.HeaderTimestamp), h.Get(notify.HeaderSignature), body)
	f.Add("1763640000", "ed25519=", []byte{})
	f.Add("99999999999999999999", "ed25519=AAAA,ed25519=!!", []byte("x"))
	f.Add("", "sha256=abc", []byte(nil))
	f.Fuzz(func(t *testing.T, ts, sig string, b []byte) {
		hh := http.Header{}
		hh.Set(notify.HeaderTimestamp, ts)
		hh.Set(notify.HeaderSignature, sig)
		_, err := notify.Verify(s.PublicKey(), hh, b, now, 5*time.Minute)
		if err == nil {
			// Only the signer's own signature over this timestamp and
			// body verifies.
			sec, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil {
				t.Fatalf("timestamp %q verified but does not parse", ts)
			}
			_, genuine := s.Sign(b, time.Unix(sec, 0))
			if !strings.Contains(hh.Get(notify.HeaderSignature), genuine) {
				t.Fatalf("forged request verified: ts %q sig %q body %q", ts, sig, b)
			}
			return
		}
		if entente.ErrorCode(err) != entente.EUNAUTHORIZED {
			t.Fatalf("error %v has code %s", err, entente.ErrorCode(err))
		}
	})
}
