package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/config"
)

// serveUntilListening runs "entente serve args..." in-process until it
// listens, then stops it, and returns its stderr.
func serveUntilListening(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var errb syncBuffer
	e := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &errb, Getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() { done <- Run(ctx, e, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(errb.String(), "listening on") {
		select {
		case code := <-done:
			cancel()
			t.Fatalf("serve exited with %d: %s", code, errb.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start: %s", errb.String())
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve stopped with %d: %s", code, errb.String())
	}
	return errb.String()
}

// TestServeLogsAndAdminKey: the admin key of a first start is a framed
// block of its own, and logs are text or JSON as asked, JSON when stderr
// is not a terminal (issue 14, item 5).
func TestServeLogsAndAdminKey(t *testing.T) {
	dir := t.TempDir()
	errs := serveUntilListening(t, "--data", dir, "--org", "Example CERT", "--country", "DE", "--log-format", "text")
	lines := strings.Split(errs, "\n")
	keyAt := -1
	for i, l := range lines {
		if strings.Contains(l, "ent_") {
			keyAt = i
		}
	}
	if keyAt < 0 {
		t.Fatalf("no admin key on stderr:\n%s", errs)
	}
	// The frame: a rule above and below, every line in between boxed.
	top, bottom := keyAt, keyAt
	for top > 0 && strings.HasPrefix(lines[top], "| ") {
		top--
	}
	for bottom < len(lines)-1 && strings.HasPrefix(lines[bottom], "| ") {
		bottom++
	}
	if !strings.HasPrefix(lines[top], "====") || !strings.HasPrefix(lines[bottom], "====") || len(lines[top]) != len(lines[bottom]) {
		t.Fatalf("the key is not framed:\n%s", strings.Join(lines[max(top-1, 0):min(bottom+2, len(lines))], "\n"))
	}
	for _, l := range lines[top+1 : bottom] {
		if len(l) != len(lines[top]) || !strings.HasSuffix(l, " |") {
			t.Errorf("ragged frame line %q", l)
		}
	}
	if !strings.Contains(errs, "level=INFO msg=serving") {
		t.Errorf("no text log line:\n%s", errs)
	}

	// Later starts: no key; JSON when asked, and by default off a terminal.
	for _, args := range [][]string{{"--log-format", "json"}, {}} {
		errs := serveUntilListening(t, append([]string{"--data", dir}, args...)...)
		if strings.Contains(errs, "ent_") {
			t.Errorf("a later start printed a key:\n%s", errs)
		}
		logs := 0
		for _, l := range strings.Split(strings.TrimSpace(errs), "\n") {
			if strings.HasPrefix(l, "Entente node ") {
				continue // the one line for people
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil {
				t.Errorf("%v: not a JSON log line: %q", args, l)
			}
			logs++
		}
		if logs == 0 {
			t.Errorf("%v: no log lines:\n%s", args, errs)
		}
	}
	if code, _, errs := run(t, nil, nil, "serve", "--data", dir, "--log-format", "xml"); code != 2 || !strings.Contains(errs, "log_format") {
		t.Errorf("--log-format xml: exit %d: %s", code, errs)
	}
}

// TestServePrintConfig: --print-config prints the configuration in effect
// (file, then flags) as TOML that loads back, with the store's password
// redacted, and starts nothing.
func TestServePrintConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "entente.toml")
	if err := os.WriteFile(file, []byte("listen = \"127.0.0.1:9999\"\ntitle = \"From the file\"\nburst = 5\n[tls]\nclient_ca = \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, nil, nil, "serve", "--config", file, "--print-config", "--data", "/srv/entente", "--log-format", "json")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	printed := filepath.Join(t.TempDir(), "printed.toml")
	if err := os.WriteFile(printed, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(printed, func(string) string { return "" })
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, out)
	}
	want := config.Default()
	want.Listen, want.Title, want.Burst, want.Data, want.LogFormat = "127.0.0.1:9999", "From the file", 5, "/srv/entente", "json"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("printed\n%+v\nwant\n%+v", got, want)
	}
	code, out, _ = run(t, nil, nil, "serve", "--print-config", "--store", "postgres://entente:hunter2@db.example/entente")
	if code != 0 || strings.Contains(out, "hunter2") || !strings.Contains(out, "postgres://entente:xxxxx@db.example/entente") {
		t.Fatalf("store password not redacted (exit %d):\n%s", code, out)
	}
}
