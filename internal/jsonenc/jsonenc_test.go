package jsonenc

import (
	"encoding/json"
	"testing"
)

// TestAppendStringIsMarshal holds AppendString to json.Marshal on plain
// ASCII, escapes, HTML characters, control bytes, UTF-8 and invalid UTF-8.
func TestAppendStringIsMarshal(t *testing.T) {
	for _, s := range []string{"", "198.51.100.7", `a"b`, `c:\d`, "<script>&", "tab\there", "\x00\x1f\x7f", "Zürich", "\xff\xfe", "\u2028"} {
		want, _ := json.Marshal(s)
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("AppendString(%q) = %s, want x%s", s, got, want)
		}
	}
}

// FuzzAppendString checks any string against json.Marshal.
func FuzzAppendString(f *testing.F) {
	f.Add("plain")
	f.Add("<&>\"\\\n\x80")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}
