package taxiiclient

import (
	"errors"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{"0", 0, true},
		{" 3 ", 3 * time.Second, true},
		{"Mon, 23 Nov 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Monday, 23-Nov-26 12:01:00 GMT", time.Minute, true}, // RFC 850
		{"Mon, 23 Nov 2026 11:00:00 GMT", 0, true},            // in the past
		{"-1", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCheckMediaType(t *testing.T) {
	tests := []struct {
		ct, body string
		want     error
	}{
		{"application/taxii+json;version=2.1", `{}`, nil},
		{"application/taxii+json; version=2.1", `{}`, nil},
		{"application/taxii+json", `{}`, nil},
		{"application/taxii+json;version=2.0", `{}`, ErrMediaType},
		{"text/html", `<html>`, ErrMediaType},
		{"application/json", `{}`, ErrMediaType},
		{"", `{}`, ErrMediaType},
		{"application/taxii+json;version=2.1", `<html>`, ErrBadEnvelope},
		{"application/taxii+json;version=2.1", `[1]`, ErrBadEnvelope},
	}
	for _, tc := range tests {
		if err := checkMediaType(tc.ct, []byte(tc.body)); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("checkMediaType(%q, %q) = %v, want %v", tc.ct, tc.body, err, tc.want)
		}
	}
}

func TestBackoffBounded(t *testing.T) {
	lim := Limits{}.withDefaults()
	for attempt := range 64 {
		w := backoff(lim, attempt)
		hi := min(lim.BackoffBase<<min(attempt, 20), lim.MaxBackoff)
		if w < hi/2 || w > hi {
			t.Fatalf("attempt %d: back-off %v outside [%v, %v]", attempt, w, hi/2, hi)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "Mon, 23 Nov 2026 12:00:30 GMT", "-5", "99999999999999999999", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if d, ok := parseRetryAfter(s, now); ok && d < 0 {
			t.Fatalf("negative wait %v for %q", d, s)
		}
	})
}
