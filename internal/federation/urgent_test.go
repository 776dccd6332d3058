package federation_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/federation"
	"github.com/entente-cti/entente/internal/policy"
)

// agreedPeers is a memPeers whose every partner has an agreement
// covering one collection.
type agreedPeers struct {
	*memPeers
	collection string
}

func (a agreedPeers) Agreement(context.Context, string) (policy.Agreement, error) {
	return policy.Agreement{Collections: []string{a.collection}}, nil
}

// stuckRemote is a peer whose ordinary pushes hang until released, and
// which records what every push carried.
type stuckRemote struct {
	mu      sync.Mutex
	pushed  [][]string // the ids of each push
	urgent  chan []string
	release chan struct{}
}

func (r *stuckRemote) Pull(context.Context, string, json.RawMessage, func(*federation.Pulled) error) error {
	return nil
}

func (r *stuckRemote) Push(ctx context.Context, _ string, objs []json.RawMessage) (int, int, error) {
	var ids []string
	for _, o := range objs {
		var v struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(o, &v)
		ids = append(ids, v.ID)
	}
	r.mu.Lock()
	r.pushed = append(r.pushed, ids)
	r.mu.Unlock()
	if slices.ContainsFunc(ids, func(id string) bool { return id[:8] == "sighting" }) {
		select {
		case <-r.release:
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
		return len(objs), 0, nil
	}
	r.urgent <- ids
	return len(objs), 0, nil
}

// TestPushUrgentPassesABusyPush checks the urgent lane: while a peer's
// ordinary push hangs (carrying sightings), a retraction pushed urgently
// reaches it, read through the gate's push channel by its id alone, and
// the peer's push checkpoint is not moved by it.
func TestPushUrgentPassesABusyPush(t *testing.T) {
	const (
		coll     = "c0000000-0000-4000-8000-000000000001"
		org      = "identity--00000000-0000-4000-8000-00000000000a"
		sighting = "sighting--00000000-0000-4000-8000-000000000001"
		opinion  = "opinion--00000000-0000-4000-8000-000000000001"
	)
	peers := agreedPeers{&memPeers{peers: map[string]federation.Peer{
		"p1": {ID: "p1", Org: org, Collection: "remote", LocalCollection: coll, Direction: federation.DirectionPush},
	}}, coll}
	remote := &stuckRemote{urgent: make(chan []string, 1), release: make(chan struct{})}
	var mu sync.Mutex
	var released []entente.ObjectQuery
	added := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	svc := federation.New(federation.Config{
		Peers: peers,
		Release: func(_ context.Context, p entente.Principal, channel, collection string, q entente.ObjectQuery) (entente.Page, error) {
			if channel != "push" || p.Role != entente.RolePartner || p.Org != org || collection != coll {
				t.Errorf("released on channel %q to %+v from %s", channel, p, collection)
			}
			mu.Lock()
			released = append(released, q)
			mu.Unlock()
			if len(q.IDs) > 0 {
				var page entente.Page
				for _, id := range q.IDs {
					page.Entries = append(page.Entries, entente.ObjectEntry{ID: id, Type: "opinion", DateAdded: added.Add(time.Hour),
						Raw: json.RawMessage(`{"type":"opinion","id":"` + id + `"}`)})
				}
				return page, nil
			}
			if q.AddedAfter.IsZero() {
				return entente.Page{Entries: []entente.ObjectEntry{{ID: sighting, Type: "sighting", DateAdded: added,
					Raw: json.RawMessage(`{"type":"sighting","id":"` + sighting + `"}`)}}}, nil
			}
			return entente.Page{}, nil
		},
		Receive:    noReceiver{},
		Dial:       func(federation.Peer) federation.Remote { return remote },
		Collection: func(_ context.Context, id string) (entente.Collection, error) { return entente.Collection{ID: id}, nil },
		Org:        "identity--00000000-0000-4000-8000-000000000001",
	})
	ctx := context.Background()
	svc.Stored(ctx, coll, []string{"sighting"})
	svc.PushUrgent(ctx, coll, []string{opinion})
	select {
	case ids := <-remote.urgent:
		if !slices.Equal(ids, []string{opinion}) {
			t.Errorf("urgent push carried %v", ids)
		}
	case <-time.After(time.Minute):
		t.Fatal("the urgent push did not pass the hanging push")
	}
	if p, _ := peers.Peer(ctx, "p1"); len(p.Checkpoint) > 0 {
		t.Errorf("the urgent push moved the checkpoint: %s", p.Checkpoint)
	}
	close(remote.release)
	svc.Close()
	mu.Lock()
	defer mu.Unlock()
	if !slices.ContainsFunc(released, func(q entente.ObjectQuery) bool { return slices.Equal(q.IDs, []string{opinion}) }) {
		t.Errorf("the gate never released the opinion by id: %+v", released)
	}
}
