package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/testutil"
)

// syncBuffer is a bytes.Buffer safe for a command writing and a test
// reading at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run runs the CLI in-process and returns its exit code, stdout and stderr.
func run(t *testing.T, env map[string]string, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	var out, errb syncBuffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	e := &Env{Stdin: stdin, Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	code := Run(context.Background(), e, args)
	return code, out.String(), errb.String()
}

// startNode runs "entente serve" in-process on 127.0.0.1 and returns its
// URL; the server stops when the test ends.
func startNode(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var errb syncBuffer
	e := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &errb, Getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, e, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop within 15s of cancellation")
		}
	})
	re := regexp.MustCompile(`listening on (https?://127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(errb.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d: %s", code, errb.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start: %s", errb.String())
	return ""
}

func initNode(t *testing.T, dir string) string {
	t.Helper()
	code, out, errs := run(t, nil, nil, "init", "--data", dir, "--org", "CERT Test", "--country", "DE")
	if code != 0 {
		t.Fatalf("init exited %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ent_") {
		t.Fatalf("init stdout must be exactly the admin key, got %q", out)
	}
	return lines[0]
}

func taxiiGet(t *testing.T, url, key string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	req.SetBasicAuth("anyone", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("decode %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

func TestHelpAndUnknownCommand(t *testing.T) {
	if code, _, errs := run(t, nil, nil, "help"); code != 0 || !strings.Contains(errs, "serve") {
		t.Fatalf("help: %d %q", code, errs)
	}
	if code, _, errs := run(t, nil, nil, "frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %d %q", code, errs)
	}
	for _, c := range commands {
		code, _, errs := run(t, nil, nil, c.name, "--help")
		if code != 0 || !strings.Contains(errs, "Usage: entente "+c.name) {
			t.Errorf("%s --help: exit %d, stderr %q", c.name, code, errs)
		}
	}
}

func TestInitRefusesTwiceAndBadCountry(t *testing.T) {
	dir := t.TempDir()
	initNode(t, dir)
	if code, out, errs := run(t, nil, nil, "init", "--data", dir, "--org", "X", "--country", "DE"); code == 0 || out != "" || !strings.Contains(errs, "already initialised") {
		t.Fatalf("second init: %d %q %q", code, out, errs)
	}
	if code, _, errs := run(t, nil, nil, "init", "--data", t.TempDir(), "--org", "X", "--country", "XX"); code == 0 || !strings.Contains(errs, "country") {
		t.Fatalf("bad country: %d %q", code, errs)
	}
}

// TestNodeEndToEnd runs the README's path: init, serve, ingest the real
// ATT&CK bundle over TAXII, read it back paged, manage keys.
func TestNodeEndToEnd(t *testing.T) {
	attack := testutil.SharedData(t, "attack", "enterprise-attack-18.1.json.gz")
	dir := t.TempDir()
	key := initNode(t, dir)
	url := startNode(t, "--data", dir)
	env := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": key}

	code, _, errs := run(t, env, nil, "ingest", "--quiet", attack)
	if code != 0 || !strings.Contains(errs, "stored 24772 objects, rejected 0") {
		t.Fatalf("ingest: exit %d: %s", code, errs)
	}

	// Page through the collection with limit 1000: every object once.
	seen := map[string]bool{}
	next := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		u := url + "/taxii2/api1/collections/intel/objects/?limit=1000"
		if next != "" {
			u += "&next=" + next
		}
		var env struct {
			More    bool              `json:"more"`
			Next    string            `json:"next"`
			Objects []json.RawMessage `json:"objects"`
		}
		if code := taxiiGet(t, u, key, &env); code != 200 {
			t.Fatalf("GET %s: %d", u, code)
		}
		for _, o := range env.Objects {
			var h struct{ ID string }
			json.Unmarshal(o, &h)
			if seen[h.ID] {
				t.Fatalf("object %s returned twice", h.ID)
			}
			seen[h.ID] = true
		}
		if !env.More {
			break
		}
		next = env.Next
	}
	if len(seen) != 24772 {
		t.Fatalf("read back %d objects, want 24772", len(seen))
	}

	// Keys: create a sensor key, see it listed, revoke it, and it is refused.
	code, out, errs := run(t, env, nil, "key", "create", "--role", "sensor", "--name", "zeek-1")
	if code != 0 {
		t.Fatalf("key create: %d %s", code, errs)
	}
	sensorKey := strings.TrimSpace(out)
	if code := taxiiGet(t, url+"/taxii2/", sensorKey, nil); code != 200 {
		t.Fatalf("new sensor key refused: %d", code)
	}
	code, out, _ = run(t, env, nil, "key", "list")
	if code != 0 || !strings.Contains(out, "zeek-1") || strings.Contains(out, sensorKey) {
		t.Fatalf("key list must show the key but never a secret: %q", out)
	}
	id := strings.Split(strings.TrimPrefix(sensorKey, "ent_"), "_")[0]
	if code, _, errs := run(t, env, nil, "key", "revoke", id); code != 0 {
		t.Fatalf("key revoke: %s", errs)
	}
	if code := taxiiGet(t, url+"/taxii2/", sensorKey, nil); code != 401 {
		t.Fatalf("revoked key answered %d, want 401", code)
	}
	if code := taxiiGet(t, url+"/taxii2/", "", nil); code != 401 {
		t.Fatalf("no key answered %d, want 401", code)
	}
}

// TestIngestBadInput checks that every kind of bad file is reported with
// its name and that what was valid is still stored.
func TestIngestBadInput(t *testing.T) {
	dir := t.TempDir()
	initNode(t, dir)
	tmp := t.TempDir()
	var code int
	var out, errs string
	write := func(name string, data []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	valid := `{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.7']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`
	invalid := `{"type":"indicator","spec_version":"2.1","id":"indicator--not-a-uuid","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z"}`
	mixed := write("mixed.json", []byte(`{"type":"bundle","id":"bundle--0b1c7a4e-5b0e-4d52-9f1e-3a1e0d2c9b11","objects":[`+valid+`,`+invalid+`]}`))
	malformed := write("malformed.json", []byte(`{"type":"bundle","objects":[{"type":`))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprintf(zw, `{"type":"bundle","id":"bundle--0b1c7a4e-5b0e-4d52-9f1e-3a1e0d2c9b12","objects":[%s]}`, valid)
	zw.Close()
	truncated := write("truncated.json.gz", gz.Bytes()[:gz.Len()-10])

	code, _, errs = run(t, nil, nil, "ingest", "--data", dir, mixed, malformed, truncated)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errs)
	}
	for _, want := range []string{
		"stored 1 objects, rejected 1",
		"mixed.json indicator--not-a-uuid",
		"malformed.json",
		"truncated.json.gz: gzip stream broken",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("summary lacks %q:\n%s", want, errs)
		}
	}

	// The valid object is there, once.
	url := startNode(t, "--data", dir)
	code, out, errs = run(t, nil, nil, "key", "create", "--data", dir, "--role", "analyst")
	if code != 0 {
		t.Fatalf("key create offline: %s", errs)
	}
	var env struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if code := taxiiGet(t, url+"/taxii2/api1/collections/intel/objects/", strings.TrimSpace(out), &env); code != 200 || len(env.Objects) != 1 {
		t.Fatalf("after bad input: %d, %d objects, want 1", code, len(env.Objects))
	}
}

func TestCollectionCreateRemoteAndOffline(t *testing.T) {
	dir := t.TempDir()
	key := initNode(t, dir)
	url := startNode(t, "--data", dir)
	env := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": key}
	code, out, errs := run(t, env, nil, "collection", "create", "--title", "Phishing", "--alias", "phish", "--read", "analyst,partner", "--tlp", "green")
	if code != 0 || strings.TrimSpace(out) == "" {
		t.Fatalf("collection create over the API: %d %s", code, errs)
	}
	if code, _, errs := run(t, nil, nil, "collection", "create", "--data", dir, "--title", "Malware", "--alias", "malware"); code != 0 {
		t.Fatalf("collection create offline: %s", errs)
	}
	code, out, errs = run(t, env, nil, "collection", "list")
	if code != 0 || !strings.Contains(out, "phish") || !strings.Contains(out, "malware") || !strings.Contains(out, "GREEN") {
		t.Fatalf("collection list: %d %q %s", code, out, errs)
	}
	if code, _, errs := run(t, env, nil, "collection", "create", "--title", "Dup", "--alias", "phish"); code == 0 || !strings.Contains(errs, "phish") {
		t.Fatalf("a taken alias must be refused, naming it: %d %s", code, errs)
	}
}

// TestServeCreatesANewNode runs the README's one command on an empty
// directory: the node is created, its admin key printed once, and served.
func TestServeCreatesANewNode(t *testing.T) {
	if code, _, errs := run(t, nil, nil, "serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0"); code != 2 || !strings.Contains(errs, "--country") {
		t.Fatalf("serve on a new node without --country: exit %d, %q", code, errs)
	}
	dir := t.TempDir()
	url := startNode(t, "--data", dir, "--org", "Example CERT", "--country", "DE")
	code, out, errs := run(t, nil, nil, "key", "list", "--data", dir)
	if code != 0 || !strings.Contains(out, "first admin") {
		t.Fatalf("the new node has no admin key: %d %q %s", code, out, errs)
	}
	if code := taxiiGet(t, url+"/taxii2/", "", nil); code != 401 {
		t.Fatalf("discovery without a key: %d, want 401", code)
	}
}

// safetyOff writes a configuration whose safety net protects nothing and
// returns its path, for tests of other features whose data are
// documentation (192.0.2.0/24, 198.51.100.0/24) or multicast addresses,
// which the default net rightly never acts on (safety_test.go tests the
// net itself).
func safetyOff(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "safety-off.toml")
	if err := os.WriteFile(p, []byte("[safety]\niana = false\nshipped_warninglists = false\nwidest_ipv4 = 0\nwidest_ipv6 = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
