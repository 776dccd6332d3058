package sensor

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// The value parsers as they were before they were made faster: the fast
// ones must give the same answers for every input.

func refParseIPv4Bytes(b []byte) (uint32, bool) {
	var ip, part uint32
	digits, dots := 0, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if digits > 0 && part == 0 {
				return 0, false
			}
			part = part*10 + uint32(c-'0')
			digits++
			if digits > 3 || part > 255 {
				return 0, false
			}
		case c == '.':
			if digits == 0 || dots == 3 {
				return 0, false
			}
			ip = ip<<8 | part
			part, digits = 0, 0
			dots++
		default:
			return 0, false
		}
	}
	if dots != 3 || digits == 0 {
		return 0, false
	}
	return ip<<8 | part, true
}

func refParseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

func refParseSecondsNanos(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var sec int64
	i := 0
	digits := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		sec = sec*10 + int64(b[i]-'0')
		if sec > maxSeconds {
			return 0, false
		}
		i++
		digits++
	}
	var frac int64
	if i < len(b) && b[i] == '.' {
		i++
		scale := int64(100_000_000)
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			frac += int64(b[i]-'0') * scale
			scale /= 10
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(b) {
		if b[i] != 'e' && b[i] != 'E' {
			return 0, false
		}
		return parseExpSeconds(b)
	}
	return sec*1_000_000_000 + frac, true
}

// sameValues fails t when a fast value parser and its reference disagree
// on s.
func sameValues(t *testing.T, s string) {
	t.Helper()
	b := []byte(s)
	if v, ok := ParseIPv4(b); true {
		if w, wok := refParseIPv4Bytes(b); v != w || ok != wok {
			t.Fatalf("ParseIPv4(%q) = %d, %v; before: %d, %v", s, v, ok, w, wok)
		}
	}
	if v, ok := parseUint(b); true {
		if w, wok := refParseUint(b); v != w || ok != wok {
			t.Fatalf("parseUint(%q) = %d, %v; before: %d, %v", s, v, ok, w, wok)
		}
	}
	if v, ok := parseSecondsNanos(b); true {
		if w, wok := refParseSecondsNanos(b); v != w || ok != wok {
			t.Fatalf("parseSecondsNanos(%q) = %d, %v; before: %d, %v", s, v, ok, w, wok)
		}
	}
}

// TestValueParsersAsBefore compares the value parsers with the slower
// ones they replaced, on the edge cases and on random strings made of the
// characters that matter.
func TestValueParsersAsBefore(t *testing.T) {
	for _, s := range []string{"", "0", "00", "01", "1", "255", "256", "999", "1000", "0.0.0.0", "255.255.255.255", "256.1.1.1",
		"1.2.3", "1.2.3.4.", ".1.2.3", "1..2.3", "01.2.3.4", "1.2.3.04", "1.2.3.4x", "1.2.3.400", "1.2.3.1234", "10.64.14.12",
		"147.32.82.140", "18446744073709551615", "18446744073709551616", "99999999999999999999", "9999999999999999999",
		"000000000000000000001", "1772323200.077329", "0.028097", "1.", ".5", ".", "1.1234567891234", "9000000000", "9000000001",
		"1e9", "1.5E3", "12a", "-", "(empty)", "0.000000001", "0.0000000001"} {
		sameValues(t, s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0123456789...0123456789e:x"
	for range 200_000 {
		b := make([]byte, r.IntN(22))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		sameValues(t, string(b))
	}
	for range 10_000 {
		v := r.Uint64() >> r.IntN(64)
		sameValues(t, strconv.FormatUint(v, 10))
		sameValues(t, strconv.FormatFloat(float64(v%9_000_000_000)+r.Float64(), 'f', r.IntN(12), 64))
	}
}

// FuzzValueParsersAsBefore is TestValueParsersAsBefore on any input.
func FuzzValueParsersAsBefore(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "01.2.3.4", "1772323200.077329", "18446744073709551616", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(sameValues)
}
