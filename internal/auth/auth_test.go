package auth

import (
	"bytes"
	"net/http/httptest"
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

func TestFromRequest(t *testing.T) {
	tests := []struct {
		name   string
		header string
		basic  [2]string
		want   string
		wantOK bool
	}{
		{name: "none"},
		{name: "bearer", header: "Bearer ent_a_b", want: "ent_a_b", wantOK: true},
		{name: "bearer lower case", header: "bearer ent_a_b", want: "ent_a_b", wantOK: true},
		{name: "empty bearer", header: "Bearer  "},
		{name: "basic", basic: [2]string{"anyone", "ent_x_y"}, want: "ent_x_y", wantOK: true},
		{name: "basic without password", basic: [2]string{"anyone", ""}},
		{name: "unknown scheme", header: "Digest abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			if tt.basic[0] != "" {
				r.SetBasicAuth(tt.basic[0], tt.basic[1])
			}
			got, ok := FromRequest(r)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("FromRequest = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
