package federation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/federation"
	"github.com/entente-cti/entente/internal/policy"
)

// countingPeers is memPeers with push peers' agreements and a count of
// peer-state writes.
type countingPeers struct {
	*memPeers
	writes atomic.Int64
}

func (c *countingPeers) Agreement(context.Context, string) (policy.Agreement, error) {
	return policy.Agreement{Collections: []string{"c"}}, nil
}

func (c *countingPeers) UpdatePeerSync(ctx context.Context, id string, cp json.RawMessage, at time.Time, lastErr string) error {
	c.writes.Add(1)
	return c.memPeers.UpdatePeerSync(ctx, id, cp, at, lastErr)
}

// acceptAll is a peer that takes every push, or, when it is the failing
// peer and fail is set, refuses every push.
type acceptAll struct {
	pushes  *atomic.Int64
	fail    *atomic.Bool
	failing bool
}

func (acceptAll) Pull(context.Context, string, json.RawMessage, func(*federation.Pulled) error) error {
	return nil
}

func (a acceptAll) Push(_ context.Context, _ string, objs []json.RawMessage) (int, int, error) {
	if a.failing && a.fail.Load() {
		return 0, 0, errors.New("connection refused")
	}
	a.pushes.Add(1)
	return len(objs), 0, nil
}

// TestPeerStateWrittenTogether pushes at once to 20 peers, three times:
// no push writes its peer's checkpoint itself (each used to, one durable
// write per peer, the first at once and then every 2 s, rarely two at the
// same time); the records wait and are written together, the latest of
// each peer, in one group. A failure is recorded at once, and the record
// that waited for that peer does not land after it.
func TestPeerStateWrittenTogether(t *testing.T) {
	const n = 20
	mp := &countingPeers{memPeers: &memPeers{peers: map[string]federation.Peer{}}}
	coll := &growingCollection{prefix: "sighting--"}
	var pushes atomic.Int64
	var fail atomic.Bool
	svc := federation.New(federation.Config{
		Peers:   mp,
		Release: coll.release,
		Receive: noReceiver{},
		Dial: func(p federation.Peer) federation.Remote {
			return acceptAll{pushes: &pushes, fail: &fail, failing: p.ID == "p07"}
		},
		Collection: func(_ context.Context, id string) (entente.Collection, error) {
			return entente.Collection{ID: id}, nil
		},
		Org: "identity--00000000-0000-4000-8000-000000000001",
	})
	// Only Close writes what waits.
	federation.SetPeerStateEvery(svc, time.Hour)
	admin := entente.Principal{KeyID: "admin", Role: entente.RoleAdmin}
	ctx := t.Context()
	for i := range n {
		_, err := svc.AddPeer(ctx, admin, federation.Peer{ID: fmt.Sprintf("p%02d", i), APIRoot: "https://peer.example/api1/", Collection: "remote",
			LocalCollection: "c", Direction: federation.DirectionPush, Org: fmt.Sprintf("identity--00000000-0000-4000-8000-%012d", i+2)})
		if err != nil {
			t.Fatal(err)
		}
	}
	idle := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for svc.Busy() {
			if time.Now().After(deadline) {
				t.Fatal("pushes still running after 10 s")
			}
			time.Sleep(time.Millisecond)
		}
	}
	for round := range 3 {
		coll.add(round + 1)
		svc.Stored(ctx, "c", []string{"sighting"})
		idle()
	}
	if got := pushes.Load(); got != 3*n {
		t.Fatalf("%d pushes, want %d", got, 3*n)
	}
	if got := mp.writes.Load(); got != 0 {
		t.Errorf("%d peer-state writes while pushing, want none: the records wait to be written together", got)
	}
	// One peer fails: its error is recorded at once.
	coll.add(4)
	fail.Store(true)
	svc.Stored(ctx, "c", []string{"sighting"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := mp.Peer(ctx, "p07")
		if err != nil {
			t.Fatal(err)
		}
		if p.LastError != "" && pushes.Load() == 4*n-1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a failed push was not recorded at once")
		}
		time.Sleep(time.Millisecond)
	}
	if got := mp.writes.Load(); got < 1 || svc.PeerStateGroups() != 0 {
		t.Errorf("%d peer-state writes, %d groups before the close, want the failure's alone", got, svc.PeerStateGroups())
	}
	svc.Close()
	if got := svc.PeerStateGroups(); got != 1 {
		t.Errorf("%d groups of peer-state records written, want 1", got)
	}
	for i := range n {
		p, err := mp.Peer(ctx, fmt.Sprintf("p%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		var cp struct {
			Push struct {
				AddedAfter time.Time `json:"added_after"`
			} `json:"push"`
		}
		if err := json.Unmarshal(p.Checkpoint, &cp); err != nil {
			t.Fatalf("peer %s: checkpoint %s: %v", p.ID, p.Checkpoint, err)
		}
		want, wantErr := collectionBase.Add(4*time.Second), false
		if p.ID == "p07" {
			// Its record of round 3 waited; the failure's, newer, was
			// written at once and must not be overwritten by it.
			want, wantErr = collectionBase.Add(3*time.Second), true
		}
		if !cp.Push.AddedAfter.Equal(want) || (p.LastError != "") != wantErr {
			t.Errorf("peer %s: push checkpoint %s, last error %q; want %s, an error %v", p.ID, cp.Push.AddedAfter, p.LastError, want, wantErr)
		}
	}
}

// TestStoredLaterWaitsAndCoalesces: objects no peer needs at once
// (StoredLater) are pushed within the delay, one push for every addition
// made meanwhile, and not at all again when a push started since (for
// something needed at once) sent them.
func TestStoredLaterWaitsAndCoalesces(t *testing.T) {
	mp := &countingPeers{memPeers: &memPeers{peers: map[string]federation.Peer{}}}
	coll := &growingCollection{prefix: "x-entente-alert--"}
	var pushes atomic.Int64
	var fail atomic.Bool
	svc := federation.New(federation.Config{
		Peers:   mp,
		Release: coll.release,
		Receive: noReceiver{},
		Dial:    func(federation.Peer) federation.Remote { return acceptAll{pushes: &pushes, fail: &fail} },
		Collection: func(_ context.Context, id string) (entente.Collection, error) {
			return entente.Collection{ID: id}, nil
		},
		Org: "identity--00000000-0000-4000-8000-000000000001",
	})
	defer svc.Close()
	const delay = 300 * time.Millisecond
	federation.SetLazyPushDelay(svc, delay)
	admin := entente.Principal{KeyID: "admin", Role: entente.RoleAdmin}
	ctx := t.Context()
	if _, err := svc.AddPeer(ctx, admin, federation.Peer{ID: "member", APIRoot: "https://peer.example/api1/", Collection: "remote",
		LocalCollection: "c", Direction: federation.DirectionPush, Org: "identity--00000000-0000-4000-8000-000000000002"}); err != nil {
		t.Fatal(err)
	}
	add := coll.add
	idle := func() time.Time {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for svc.Busy() {
			if time.Now().After(deadline) {
				t.Fatal("still busy after 10 s")
			}
			time.Sleep(time.Millisecond)
		}
		return time.Now()
	}
	// Three additions of evidence: one push, after the delay.
	start := time.Now()
	for k := 1; k <= 3; k++ {
		add(k)
		svc.StoredLater(ctx, "c", []string{"x-entente-alert"})
	}
	if got := pushes.Load(); got != 0 {
		t.Fatalf("%d pushes at once, want none before the delay", got)
	}
	if !svc.Busy() {
		t.Error("a later push is scheduled but the service says it is idle")
	}
	if end := idle(); end.Sub(start) < delay {
		t.Errorf("the later push ended %s after the additions, before the %s delay", end.Sub(start), delay)
	}
	if got := pushes.Load(); got != 1 {
		t.Fatalf("%d pushes for three additions of evidence, want 1", got)
	}
	// Evidence, then something needed at once: the push at once sends
	// both, and the later push is not made.
	add(4)
	svc.StoredLater(ctx, "c", []string{"x-entente-alert"})
	add(5)
	svc.Stored(ctx, "c", []string{"x-entente-alert"})
	idle()
	time.Sleep(delay / 2)
	idle()
	if got := pushes.Load(); got != 2 {
		t.Errorf("%d pushes in all, want 2: the later push was not needed", got)
	}
}

// collectionBase is when a growingCollection's entry 0 would be added.
var collectionBase = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

// growingCollection is a local collection that the tests add to: entry
// k is added k seconds after collectionBase, with id prefix and its index;
// release serves those added after the query's added_after.
type growingCollection struct {
	prefix string
	mu     sync.Mutex
	added  []time.Time
}

func (c *growingCollection) add(k int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.added = append(c.added, collectionBase.Add(time.Duration(k)*time.Second))
}

func (c *growingCollection) release(_ context.Context, _ entente.Principal, _, _ string, q entente.ObjectQuery) (entente.Page, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var page entente.Page
	for i, at := range c.added {
		if at.After(q.AddedAfter) {
			page.Entries = append(page.Entries, entente.ObjectEntry{ID: fmt.Sprintf("%s%d", c.prefix, i), DateAdded: at, Raw: json.RawMessage(`{}`)})
		}
	}
	return page, nil
}
