package httpapi

import (
	"net/http/httptest"
	"testing"
)

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
			got, ok := keyFromRequest(r)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("keyFromRequest = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
