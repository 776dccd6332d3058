package main

import "testing"

// FuzzParseColumns checks that any --columns value gives a mapping with a
// value column or an error, never a panic.
func FuzzParseColumns(f *testing.F) {
	for _, s := range []string{"value=2,type=3", "value=url,first_seen=dateadded,header=true,comma=;", "type=3", "value=", "comma=ab,value=1", "fixed_kind=ipv4,value=1", "header=maybe,value=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseColumns(s)
		if err == nil && c.Value == "" {
			t.Fatalf("%q accepted without a value column", s)
		}
	})
}
