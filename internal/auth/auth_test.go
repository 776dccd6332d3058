package auth

import (
	"bytes"
	"testing"
)

func TestNewKeyIsRandomAndHashMatches(t *testing.T) {
	s1, id1, h1 := NewKey()
	s2, id2, _ := NewKey()
	if s1 == s2 || id1 == id2 {
		t.Fatalf("two keys are equal: %q %q", s1, s2)
	}
	if !bytes.Equal(h1, Hash(s1)) {
		t.Fatal("stored hash does not match secret")
	}
	if IDOf(s1) != id1 {
		t.Fatalf("IDOf(%q) = %q, want %q", s1, IDOf(s1), id1)
	}
	if bytes.Contains(h1, []byte(s1)) {
		t.Fatal("hash contains the secret")
	}
}
