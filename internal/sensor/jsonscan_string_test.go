package sensor

import (
	"bytes"
	"testing"
)

// scanStringRef is scanString as it was before it looked eight bytes at a
// time (FuzzScanStringAsBefore holds scanString to it).
func scanStringRef(b []byte, i int) (int, bool, error) {
	j := i + 1
	esc := false
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return i, false, &jsonError{i, "unterminated string"}
		}
		seg := b[j : j+k]
		if bytes.IndexByte(seg, '\\') < 0 {
			return j + k + 1, esc, nil
		}
		// Walk the segment to see whether the quote is escaped.
		esc = true
		p := j
		for p < j+k {
			if b[p] == '\\' {
				p += 2
				continue
			}
			p++
		}
		if p == j+k {
			return j + k + 1, esc, nil
		}
		// The quote at j+k was escaped: continue after it.
		j = j + k + 1
	}
}

func checkScanStringAsBefore(t *testing.T, b []byte) {
	for i := range b {
		if b[i] != '"' {
			continue
		}
		end, esc, err := scanString(b, i)
		wend, wesc, werr := scanStringRef(b, i)
		if end != wend || esc != wesc || (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
			t.Fatalf("scanString(%q, %d) = %d, %v, %v; before %d, %v, %v", b, i, end, esc, err, wend, wesc, werr)
		}
	}
}

var scanStringSeeds = []string{`"abc"`, `"a\"b"`, `"a\\"b"`, `"\\\\\\\""x"`, `"unterminated`, `"ends in \`, `"ends in \"`,
	`"a long string of more than sixteen bytes \" with \\ escapes \n and a quote" tail "x"`, `""`, `"\`, `"12345678\"12345678"`}

func TestScanStringAsBefore(t *testing.T) {
	for _, s := range scanStringSeeds {
		checkScanStringAsBefore(t, []byte(s))
	}
}

func FuzzScanStringAsBefore(f *testing.F) {
	for _, s := range scanStringSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkScanStringAsBefore)
}
