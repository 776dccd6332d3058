// Package jsonenc appends JSON values to byte slices exactly as
// encoding/json writes them, without its reflection, for the encoders
// written by hand on hot paths (status records, a feed's indicators).
package jsonenc

import "encoding/json"

// AppendString appends s as a JSON string, byte for byte what
// json.Marshal writes: printable ASCII that needs no escape as it is,
// anything else through json.Marshal.
func AppendString(b []byte, s string) []byte {
	if PlainASCII(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// PlainASCII reports whether s is printable ASCII that JSON writes
// without escapes (encoding/json escapes <, > and & too).
func PlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
