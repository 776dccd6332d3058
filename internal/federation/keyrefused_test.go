package federation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/federation"
	"github.com/entente-cti/entente/internal/pin"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// memPeers is an in-memory PeerStore.
type memPeers struct {
	mu     sync.Mutex
	peers  map[string]federation.Peer
	audits []audit.Record
}

func (m *memPeers) PutPeer(_ context.Context, p federation.Peer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peers[p.ID] = p
	return nil
}
func (m *memPeers) Peer(_ context.Context, id string) (federation.Peer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.peers[id]
	if !ok {
		return p, entente.Errorf(entente.ENOTFOUND, "no peer %q", id)
	}
	return p, nil
}
func (m *memPeers) Peers(context.Context) ([]federation.Peer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []federation.Peer
	for _, p := range m.peers {
		out = append(out, p)
	}
	return out, nil
}
func (m *memPeers) DeletePeer(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.peers, id)
	return nil
}
func (m *memPeers) UpdatePeerSync(_ context.Context, id string, cp json.RawMessage, at time.Time, lastErr string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.peers[id]
	if cp != nil {
		p.Checkpoint = cp
	}
	p.LastSync, p.LastError = at, lastErr
	m.peers[id] = p
	return nil
}
func (m *memPeers) Agreement(context.Context, string) (policy.Agreement, error) {
	return policy.Agreement{}, entente.Errorf(entente.ENOTFOUND, "none")
}
func (m *memPeers) AppendAudit(_ context.Context, recs []audit.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.audits = append(m.audits, recs...)
	return nil
}

// impostor is a peer whose TLS key is not the one pinned.
type impostor struct {
	want string
	got  *string // the key presented, read at each connection
}

func (i impostor) Pull(context.Context, string, json.RawMessage, func(*federation.Pulled) error) error {
	return fmt.Errorf("GET https://peer/api1/collections/c/objects/: %w", &pin.MismatchError{Want: i.want, Got: *i.got})
}
func (i impostor) Push(context.Context, string, []json.RawMessage) (int, int, error) {
	return 0, 0, &pin.MismatchError{Want: i.want, Got: *i.got}
}

type noReceiver struct{}

func (noReceiver) Receive(context.Context, string, []*stix.Object, federation.Origin) (int, error) {
	return 0, nil
}

// TestKeyMismatchRefusedAuditedLogged syncs a pinned peer that presents
// another key: the sync fails, the refusal is logged at error level every
// time and audited once per presented key and hour.
func TestKeyMismatchRefusedAuditedLogged(t *testing.T) {
	const want, got, other = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	const org = "identity--00000000-0000-4000-8000-00000000000a"
	store := &memPeers{peers: map[string]federation.Peer{}}
	presented := got
	var logs bytes.Buffer
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	svc := federation.New(federation.Config{
		Peers: store,
		Release: func(context.Context, entente.Principal, string, string, entente.ObjectQuery) (entente.Page, error) {
			return entente.Page{}, nil
		},
		Receive: noReceiver{},
		Dial:    func(p federation.Peer) federation.Remote { return impostor{want: p.Pin, got: &presented} },
		Collection: func(_ context.Context, id string) (entente.Collection, error) {
			return entente.Collection{ID: id}, nil
		},
		Org:    "identity--00000000-0000-4000-8000-000000000001",
		Now:    func() time.Time { return now },
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	defer svc.Close()
	admin := entente.Principal{KeyID: "admin", Role: entente.RoleAdmin}
	if _, err := svc.AddPeer(t.Context(), admin, federation.Peer{ID: "p", Name: "CERT-X", Org: org, APIRoot: "https://peer.example/api1/",
		Collection: "c", LocalCollection: "l", Direction: federation.DirectionBoth, Pin: want + "="}); err != nil {
		t.Fatal(err)
	}
	if p, _ := store.Peer(t.Context(), "p"); p.Pin != want {
		t.Errorf("pin stored as %q, want the canonical %q", p.Pin, want)
	}
	store.audits = nil
	keyAudits := func() []audit.Record {
		var out []audit.Record
		for _, r := range store.audits {
			if r.Rule == federation.RuleKeyMismatch {
				out = append(out, r)
			}
		}
		return out
	}
	for range 3 {
		if _, err := svc.SyncPeer(t.Context(), admin, "p"); err == nil {
			t.Fatal("a sync with a peer presenting another key succeeded")
		}
	}
	recs := keyAudits()
	if len(recs) != 1 {
		t.Fatalf("%d audit records after 3 refused syncs, want 1 (once per key and hour): %+v", len(recs), recs)
	}
	if r := recs[0]; r.Action != audit.Admin || r.Partner != org || !strings.Contains(r.Detail, got) || !strings.Contains(r.Detail, want) {
		t.Errorf("audit record %+v does not name the partner and both keys", r)
	}
	if n := strings.Count(logs.String(), `"level":"ERROR","msg":"peer presented another TLS key`); n != 3 {
		t.Errorf("%d error logs for 3 refusals, want 3:\n%s", n, logs.String())
	}
	if p, _ := store.Peer(t.Context(), "p"); !strings.Contains(p.LastError, "not the pinned") {
		t.Errorf("last error %q does not say the key was refused", p.LastError)
	}
	// Another key is audited at once; the same one again after an hour.
	presented = other
	svc.SyncPeer(t.Context(), admin, "p")
	now = now.Add(61 * time.Minute)
	presented = got
	svc.SyncPeer(t.Context(), admin, "p")
	if n := len(keyAudits()); n != 3 {
		t.Errorf("%d audit records, want 3 (a new key, then the first after an hour)", n)
	}
}

// TestAddPeerChecksPin refuses malformed pins and pins on plain HTTP.
func TestAddPeerChecksPin(t *testing.T) {
	store := &memPeers{peers: map[string]federation.Peer{}}
	svc := federation.New(federation.Config{Peers: store, Receive: noReceiver{},
		Dial:       func(federation.Peer) federation.Remote { return nil },
		Collection: func(_ context.Context, id string) (entente.Collection, error) { return entente.Collection{ID: id}, nil }})
	defer svc.Close()
	admin := entente.Principal{KeyID: "admin", Role: entente.RoleAdmin}
	for _, tc := range []struct{ root, pin, err string }{
		{"https://peer/api1/", "MD5:00", "pin:"},
		{"http://peer/api1/", "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", "is not https"},
	} {
		_, err := svc.AddPeer(t.Context(), admin, federation.Peer{APIRoot: tc.root, Collection: "c", LocalCollection: "l", Pin: tc.pin})
		if entente.ErrorCode(err) != entente.EINVALID || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("AddPeer %s pin %s: %v, want EINVALID with %q", tc.root, tc.pin, err, tc.err)
		}
	}
}
