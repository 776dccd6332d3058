package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

// tlsNode is a node serving its own key pair (serve --tls).
type tlsNode struct {
	name, url, admin, org, pin string
	hc                         *http.Client
}

var fingerprintLine = regexp.MustCompile(`fingerprint, for its peers to pin \(peer add --pin\): (SHA256:[A-Za-z0-9+/]{43})\n`)

func startTLSNode(t *testing.T, name, country string) *tlsNode {
	t.Helper()
	dir := t.TempDir()
	code, out, errs := run(t, nil, nil, "init", "--data", dir, "--org", name, "--country", country)
	if code != 0 {
		t.Fatalf("init %s: %d %s", name, code, errs)
	}
	m := fingerprintLine.FindStringSubmatch(errs)
	if m == nil {
		t.Fatalf("init printed no TLS key fingerprint on stderr: %q", errs)
	}
	if strings.Contains(out, "SHA256:") || strings.Contains(errs, "PRIVATE KEY") {
		t.Fatalf("init: stdout must carry only the admin key, and no key may be printed: %q / %q", out, errs)
	}
	n := &tlsNode{name: name, admin: strings.TrimSpace(out), pin: m[1]}
	n.url = startNode(t, "--data", dir, "--tls", "--sync-interval", "0")
	if !strings.HasPrefix(n.url, "https://") {
		t.Fatalf("serve --tls listens on %s", n.url)
	}
	hc, err := taxiiclient.HTTPFor(nil, n.pin, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.hc = hc
	var who struct {
		Org string `json:"org"`
	}
	n.get(t, "/api/v1/whoami", &who)
	n.org = who.Org
	return n
}

func (n *tlsNode) get(t *testing.T, path string, v any) string {
	t.Helper()
	req, _ := http.NewRequest("GET", n.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+n.admin)
	resp, err := n.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return string(b)
}

// cli runs an entente command against the node, pinning its key.
func (n *tlsNode) cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return run(t, map[string]string{"ENTENTE_SERVER": n.url, "ENTENTE_TOKEN": n.admin, "ENTENTE_SERVER_PIN": n.pin}, nil, args...)
}

func (n *tlsNode) mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := n.cli(t, args...)
	if code != 0 {
		t.Fatalf("%s: entente %s: exit %d: %s", n.name, strings.Join(args, " "), code, errs)
	}
	return out
}

// TestFederationPinnedTLS federates two nodes that serve their own keys:
// B pulls from A over TLS with A's key pinned at peer add; a peer pinned
// to another key is refused, audited, logged and counted; the CLI reaches
// a node by its pinned key too.
func TestFederationPinnedTLS(t *testing.T) {
	a := startTLSNode(t, "Node A", "FR")
	b := startTLSNode(t, "Node B", "DE")
	if a.pin == b.pin {
		t.Fatal("two nodes have the same key")
	}
	// The CLI refuses a self-signed node without its pin, and another pin.
	if code, _, errs := run(t, map[string]string{"ENTENTE_SERVER": a.url, "ENTENTE_TOKEN": a.admin}, nil, "peer", "list"); code == 0 || !strings.Contains(errs, "certificate") {
		t.Errorf("CLI without the pin: exit %d, %q; want a certificate error", code, errs)
	}
	if code, _, errs := run(t, map[string]string{"ENTENTE_SERVER": a.url, "ENTENTE_TOKEN": a.admin, "ENTENTE_SERVER_PIN": b.pin}, nil, "peer", "list"); code == 0 || !strings.Contains(errs, "not the pinned") {
		t.Errorf("CLI with B's pin for A: exit %d, %q; want a refusal", code, errs)
	}

	keyBatA := strings.TrimSpace(a.mustCLI(t, "key", "create", "--role", "partner", "--org", b.org, "--name", b.name))
	a.mustCLI(t, "partner", "add", "--id", b.org, "--name", b.name, "--country", "DE")
	a.mustCLI(t, "agreement", "set", "--partner", b.org, "--collections", "intel", "--max-tlp", "amber")
	cl := &taxiiclient.Client{APIRoot: a.url + "/taxii2/api1/", Auth: taxiiclient.Auth{Token: a.admin}, HTTP: a.hc}
	if res, err := cl.Push(context.Background(), "intel", []json.RawMessage{indicatorObj(1, stix.TLPGreen.MarkingID())}); err != nil || res.Failure > 0 {
		t.Fatalf("push to A: %v %+v", err, res)
	}

	// B pins A's key: the check at peer add and the pulls go through.
	b.mustCLI(t, "peer", "add", "--id", "a", "--name", "A", "--api-root", a.url+"/taxii2/api1/", "--collection", "intel", "--into", "intel",
		"--peer-token", keyBatA, "--org", a.org, "--pin", a.pin)
	if out := b.mustCLI(t, "peer", "sync", "a"); !strings.Contains(out, "pulled 1\tstored 1") {
		t.Errorf("sync with the pinned peer: %s", out)
	}
	// The check at peer add refuses a peer pinned to another key...
	code, _, errs := b.cli(t, "peer", "add", "--id", "wrong", "--name", "A?", "--api-root", a.url+"/taxii2/api1/", "--collection", "intel",
		"--into", "intel", "--peer-token", keyBatA, "--org", a.org, "--pin", b.pin)
	if code == 0 || !strings.Contains(errs, "not the pinned") {
		t.Errorf("peer add with another key pinned: exit %d, %q; want the check to refuse it", code, errs)
	}
	// ... and a peer added without the check is refused at every sync.
	b.mustCLI(t, "peer", "add", "--id", "wrong", "--name", "A?", "--api-root", a.url+"/taxii2/api1/", "--collection", "intel",
		"--into", "intel", "--peer-token", keyBatA, "--org", a.org, "--pin", b.pin, "--no-check")
	for range 2 {
		if code, _, errs := b.cli(t, "peer", "sync", "wrong"); code == 0 || !strings.Contains(errs, "not the pinned") {
			t.Errorf("sync with a peer presenting another key: exit %d, %q", code, errs)
		}
	}
	audit := b.mustCLI(t, "audit", "list", "--action", "admin")
	if n := strings.Count(audit, "peer.key_mismatch"); n != 1 {
		t.Errorf("%d peer.key_mismatch audit records after 2 refused syncs, want 1:\n%s", n, audit)
	}
	if !strings.Contains(audit, a.pin) {
		t.Errorf("the audit record does not name the key presented (%s):\n%s", a.pin, audit)
	}
	if m := regexp.MustCompile(`(?m)^entente_peer_key_mismatch_total (\d+)`).FindStringSubmatch(b.get(t, "/metrics", nil)); m == nil || m[1] == "0" {
		t.Errorf("metric entente_peer_key_mismatch_total = %v, want at least 1 (the check and the 2 syncs)", m)
	}
}
