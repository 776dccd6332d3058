package taxii

import "testing"

func TestAcceptable(t *testing.T) {
	tests := []struct {
		accept string
		want   bool
	}{
		{"application/taxii+json;version=2.1", true},
		{"application/taxii+json; version=2.1", true},
		{"application/taxii+json", true},
		{"APPLICATION/TAXII+JSON;version=2.1", true},
		{"application/json, application/taxii+json;version=2.1;q=0.5", true},
		{"", true},
		{"*/*", true},
		{"application/*", true},
		{"application/taxii+json;version=2.0", false},
		{"application/taxii+json;version=2.1;q=0", false},
		{"application/stix+json;version=2.1", false},
		{"application/json", false},
		{"text/html", false},
		{"application/taxii+json;version=2.1;q=abc", false},
		{";;;", false},
	}
	for _, tt := range tests {
		if got := Acceptable(tt.accept); got != tt.want {
			t.Errorf("Acceptable(%q) = %v, want %v", tt.accept, got, tt.want)
		}
	}
}

func TestContentTypeOK(t *testing.T) {
	tests := []struct {
		ct   string
		want bool
	}{
		{"application/taxii+json;version=2.1", true},
		{"application/taxii+json ; version=2.1", true},
		{"application/taxii+json", true},
		{"application/taxii+json;version=2.0", false},
		{"application/stix+json;version=2.1", false},
		{"application/json", false},
		{"", false},
		{"*/*", false},
	}
	for _, tt := range tests {
		if got := ContentTypeOK(tt.ct); got != tt.want {
			t.Errorf("ContentTypeOK(%q) = %v, want %v", tt.ct, got, tt.want)
		}
	}
}

func TestSTIXMediaTypeFor(t *testing.T) {
	for in, want := range map[string]string{
		"":    STIXMediaType,
		"2.1": STIXMediaType,
		"2.0": "application/stix+json;version=2.0",
	} {
		if got := STIXMediaTypeFor(in); got != want {
			t.Errorf("STIXMediaTypeFor(%q) = %q, want %q", in, got, want)
		}
	}
}
