package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{
			name: "overrides and env",
			text: "listen = \"127.0.0.1:9000\"\nstore = \"${PGURL}\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
			env:  map[string]string{"PGURL": "postgres://u@h/db"},
			check: func(t *testing.T, c Config) {
				if c.Listen != "127.0.0.1:9000" || c.Store != "postgres://u@h/db" || c.TLS.Cert != "c.pem" {
					t.Fatalf("got %+v", c)
				}
				if c.APIRoot != "api1" {
					t.Fatalf("default api_root lost: %q", c.APIRoot)
				}
			},
		},
		{name: "missing env", text: "store = \"${NOPE}\"\n", wantErr: "NOPE"},
		{name: "unknown key", text: "lisen = \"x\"\n", wantErr: `unknown setting "lisen"`},
		{name: "bad listen", text: "listen = \"nowhere\"\n", wantErr: "listen:"},
		{name: "bad store", text: "store = \"mysql://x\"\n", wantErr: "store:"},
		{name: "tls half", text: "[tls]\ncert = \"c\"\n", wantErr: "tls:"},
		{name: "syntax", text: "listen = \n", wantErr: "config"},
		{name: "bad api root", text: "api_root = \"a/b\"\n", wantErr: "api_root"},
		{name: "gc percent too low", text: "gc_percent = 10\n", wantErr: "gc_percent"},
		{name: "negative memory limit", text: "memory_limit = -1\n", wantErr: "memory_limit"},
		{name: "body memory per key too low", text: "body_memory_per_key = 1000\n", wantErr: "body_memory_per_key: 1000 is below 1 MiB"},
		{name: "body memory total below per key", text: "body_memory_per_key = 536870912\nbody_memory_total = 268435456\n", wantErr: "body_memory_total: 268435456 is below body_memory_per_key"},
		{
			name: "body memory bounds",
			text: "body_memory_per_key = 67108864\nbody_memory_total = 134217728\n",
			check: func(t *testing.T, c Config) {
				if c.BodyMemoryPerKey != 64<<20 || c.BodyMemoryTotal != 128<<20 {
					t.Fatalf("body_memory_per_key %d, body_memory_total %d", c.BodyMemoryPerKey, c.BodyMemoryTotal)
				}
			},
		},
		{
			name: "body memory defaults",
			text: "",
			check: func(t *testing.T, c Config) {
				if c.BodyMemoryPerKey != DefaultBodyMemoryPerKey || c.BodyMemoryTotal != DefaultBodyMemoryTotal {
					t.Fatalf("body_memory_per_key %d, body_memory_total %d", c.BodyMemoryPerKey, c.BodyMemoryTotal)
				}
			},
		},
		{
			name: "gc settings",
			text: "gc_percent = 200\nmemory_limit = 1073741824\n",
			check: func(t *testing.T, c Config) {
				if c.GCPercent != 200 || c.MemoryLimit != 1<<30 {
					t.Fatalf("gc_percent %d, memory_limit %d", c.GCPercent, c.MemoryLimit)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "entente.toml")
			if err := os.WriteFile(p, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestBlindSecret(t *testing.T) {
	for _, tc := range []struct {
		secret string
		n      int
		err    string
	}{
		{"", 0, ""},
		{"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==", 34, ""},
		{"c2hvcnQ=", 0, "blind.secret: 5 bytes, at least 32"},
		{"not base64!", 0, "blind.secret: not base64"},
	} {
		c := Default()
		c.Blind.Secret = tc.secret
		s, err := c.Blind.BlindSecret()
		verr := c.Validate()
		if tc.err == "" {
			if err != nil || verr != nil || len(s) != tc.n {
				t.Errorf("%q: %d bytes, %v, %v", tc.secret, len(s), err, verr)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || verr == nil {
			t.Errorf("%q: %v (validate: %v), want %q", tc.secret, err, verr, tc.err)
		}
	}
}
