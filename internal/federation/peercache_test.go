package federation_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/federation"
)

// readCountingPeers is countingPeers with a count of the reads of one
// peer's record.
type readCountingPeers struct {
	*countingPeers
	reads atomic.Int64
}

func (c *readCountingPeers) Peer(ctx context.Context, id string) (federation.Peer, error) {
	c.reads.Add(1)
	return c.countingPeers.Peer(ctx, id)
}

// rootRecorder is a peer that records the API root of the Remote each
// push went through, and refuses pushes while fail is set.
type rootRecorder struct {
	root string
	mu   *sync.Mutex
	got  *[]string
	fail *atomic.Bool
}

func (rootRecorder) Pull(context.Context, string, json.RawMessage, func(*federation.Pulled) error) error {
	return nil
}

func (r rootRecorder) Push(_ context.Context, _ string, objs []json.RawMessage) (int, int, error) {
	if r.fail.Load() {
		return 0, 0, context.DeadlineExceeded
	}
	r.mu.Lock()
	*r.got = append(*r.got, r.root)
	r.mu.Unlock()
	return len(objs), 0, nil
}

// TestPushReadsPeerOnce: immediate pushes to a peer read its record once,
// not at every push; a change of the peer through this node (replaced
// with another API root and organisation, a failed push) is seen by the
// very next push, and a change made elsewhere (another replica) within
// the cache's bound.
func TestPushReadsPeerOnce(t *testing.T) {
	mp := &readCountingPeers{countingPeers: &countingPeers{memPeers: &memPeers{peers: map[string]federation.Peer{}}}}
	coll := &growingCollection{prefix: "sighting--"}
	var (
		mu   sync.Mutex
		got  []string
		fail atomic.Bool
	)
	svc := federation.New(federation.Config{
		Peers:   mp,
		Release: coll.release,
		Receive: noReceiver{},
		Dial: func(p federation.Peer) federation.Remote {
			return rootRecorder{root: p.APIRoot, mu: &mu, got: &got, fail: &fail}
		},
		Collection: func(_ context.Context, id string) (entente.Collection, error) {
			return entente.Collection{ID: id}, nil
		},
		Org: "identity--00000000-0000-4000-8000-000000000001",
	})
	t.Cleanup(svc.Close)
	federation.SetPeerStateEvery(svc, time.Hour)
	federation.SetPeerCacheTTL(svc, time.Hour)
	admin := entente.Principal{KeyID: "admin", Role: entente.RoleAdmin}
	ctx := t.Context()
	add := func(root, org string) {
		t.Helper()
		if _, err := svc.AddPeer(ctx, admin, federation.Peer{ID: "p1", APIRoot: root, Collection: "remote",
			LocalCollection: "c", Direction: federation.DirectionPush, Org: org}); err != nil {
			t.Fatal(err)
		}
	}
	add("https://old.example/api1/", "identity--00000000-0000-4000-8000-000000000002")
	round := 0
	// push adds an object, pushes at once and returns the API root the
	// push went to ("" when it failed).
	push := func() string {
		t.Helper()
		round++
		coll.add(round)
		mu.Lock()
		n := len(got)
		mu.Unlock()
		svc.Stored(ctx, "c", []string{"sighting"})
		deadline := time.Now().Add(10 * time.Second)
		for svc.Busy() {
			if time.Now().After(deadline) {
				t.Fatal("pushes still running after 10 s")
			}
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) == n {
			return ""
		}
		return got[len(got)-1]
	}
	before := mp.reads.Load()
	for range 5 {
		if r := push(); r != "https://old.example/api1/" {
			t.Fatalf("pushed to %q, want the old API root", r)
		}
	}
	if n := mp.reads.Load() - before; n != 1 {
		t.Errorf("5 immediate pushes read the peer's record %d times, want 1", n)
	}

	// Replaced through this node: the next push goes to the new root.
	add("https://new.example/api1/", "identity--00000000-0000-4000-8000-000000000003")
	if r := push(); r != "https://new.example/api1/" {
		t.Fatalf("after the peer was replaced, pushed to %q, want the new API root", r)
	}

	// A failed push is recorded at once, and the retry reads the record
	// (with its error) again.
	fail.Store(true)
	before = mp.reads.Load()
	round++
	coll.add(round)
	svc.Stored(ctx, "c", []string{"sighting"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := mp.memPeers.Peer(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		if p.LastError != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failed push was not recorded within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	fail.Store(false)
	if r := push(); r != "https://new.example/api1/" {
		t.Fatalf("after a failure, pushed to %q, want the new API root", r)
	}
	if n := mp.reads.Load() - before; n < 1 {
		t.Errorf("the pushes after a failure did not read the peer's record again")
	}

	// Changed in the store behind this node's back (another replica):
	// seen once the cache's bound has passed.
	p, err := mp.memPeers.Peer(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	p.APIRoot = "https://replica.example/api1/"
	if err := mp.memPeers.PutPeer(ctx, p); err != nil {
		t.Fatal(err)
	}
	federation.SetPeerCacheTTL(svc, time.Nanosecond)
	if r := push(); r != "https://replica.example/api1/" {
		t.Fatalf("after the cache's bound, pushed to %q, want the root another replica recorded", r)
	}
}
