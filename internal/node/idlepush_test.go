package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/federation"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

// queryCountingStore is a SQLite store that counts its page queries.
type queryCountingStore struct {
	*sqlite.Store
	queries atomic.Int64
}

func (c *queryCountingStore) QueryObjects(ctx context.Context, q entente.ObjectQuery) (entente.Page, error) {
	c.queries.Add(1)
	return c.Store.QueryObjects(ctx, q)
}

// recordingRemote is a push peer that accepts everything and records the
// ids it received.
type recordingRemote struct {
	mu  sync.Mutex
	ids []string
}

func (r *recordingRemote) Pull(context.Context, string, json.RawMessage, func(*federation.Pulled) error) error {
	return nil
}

func (r *recordingRemote) Push(_ context.Context, _ string, objs []json.RawMessage) (int, int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, raw := range objs {
		var o struct{ ID string }
		if err := json.Unmarshal(raw, &o); err != nil {
			return 0, len(objs), err
		}
		r.ids = append(r.ids, o.ID)
	}
	return len(objs), 0, nil
}

func (r *recordingRemote) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func malware(n int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"malware","spec_version":"2.1","id":"malware--8e2e2d2b-17d4-4cbf-938f-%012x",`+
		`"created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"m%d","is_family":false}`, n, n))
}

// TestIdlePeriodicPushQueriesNothing checks that a periodic sync of a
// push peer that finds nothing added since its checkpoint runs no page
// query, and that a sync after an addition, after an addition the gate
// withholds, and after an agreement change still queries and pushes what
// the gate releases: the object the widened agreement now covers
// included.
func TestIdlePeriodicPushQueriesNothing(t *testing.T) {
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	st := &queryCountingStore{Store: sq}
	remote := &recordingRemote{}
	s := node.New(st, node.Config{Org: org, Dial: func(federation.Peer) federation.Remote { return remote }}, nil)
	t.Cleanup(s.Close)
	const partner = "identity--5f0c1a8e-2b6e-4a7e-9c57-0d8f7e1e6a11"
	c, err := s.CreateCollection(ctx, admin, entente.Collection{Alias: "shared", Title: "Shared", DefaultMarking: stix.TLPGreen.MarkingID(),
		ReadRoles: []entente.Role{entente.RoleAnalyst, entente.RolePartner}, WriteRoles: []entente.Role{entente.RoleAnalyst}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPartner(ctx, admin, policy.Party{ID: partner, Name: "Partner", Country: "FR"}); err != nil {
		t.Fatal(err)
	}
	agree := func(types ...string) {
		t.Helper()
		if _, err := s.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: partner}, Collections: []string{c.ID},
			ObjectTypes: types, MaxTLP: stix.TLPGreen}); err != nil {
			t.Fatal(err)
		}
	}
	agree("malware")
	if _, err := s.AddPeer(ctx, admin, node.Peer{ID: "peer", Name: "peer", APIRoot: "https://peer.invalid/taxii2/api1/", Collection: "inbox",
		LocalCollection: c.ID, Token: "t", Org: partner, Direction: node.DirectionPush}); err != nil {
		t.Fatal(err)
	}
	add := func(objs ...json.RawMessage) {
		t.Helper()
		if st, err := s.AddObjects(ctx, admin, c.ID, objs); err != nil || st.FailureCount > 0 {
			t.Fatalf("add: %v %+v", err, st)
		}
		if err := s.WaitIdle(ctx); err != nil { // the immediate push, if any
			t.Fatal(err)
		}
	}
	// addElsewhere adds objects as another replica sharing the store
	// would: no immediate push follows, only the periodic sync sees them.
	addElsewhere := func(objs ...json.RawMessage) {
		t.Helper()
		var decoded []*stix.Object
		for _, raw := range objs {
			o, err := stix.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			decoded = append(decoded, o)
		}
		if _, err := sq.AddObjects(ctx, c.ID, decoded); err != nil {
			t.Fatal(err)
		}
	}
	// sync runs one periodic sync and says whether it queried the store.
	sync := func(step string) bool {
		t.Helper()
		if err := s.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		before := st.queries.Load()
		if _, err := s.SyncPeer(ctx, admin, "peer"); err != nil {
			t.Fatalf("%s: sync: %v", step, err)
		}
		return st.queries.Load() > before
	}
	ind := idOfRaw(t, indicator(1, "2024-01-01T00:00:00.000Z"))
	for _, step := range []struct {
		name      string
		do        func()
		wantQuery bool
		want      []string // every id the peer holds after the step
	}{
		{"first sync, empty collection", func() {}, true, nil},
		{"idle", func() {}, false, nil},
		// The immediate push sends it: the periodic sync finds nothing.
		{"after an addition", func() { add(malware(1)) }, false, []string{idOfRaw(t, malware(1))}},
		{"idle after the addition", func() {}, false, []string{idOfRaw(t, malware(1))}},
		{"after an addition by another replica", func() { addElsewhere(malware(2)) }, true, []string{idOfRaw(t, malware(1)), idOfRaw(t, malware(2))}},
		{"idle after that addition", func() {}, false, []string{idOfRaw(t, malware(1)), idOfRaw(t, malware(2))}},
		{"after a withheld addition", func() { add(indicator(1, "2024-01-01T00:00:00.000Z")) }, true, []string{idOfRaw(t, malware(1)), idOfRaw(t, malware(2))}},
		// The withheld indicator is after the checkpoint: every sync
		// asks the gate again.
		{"withheld object still after the checkpoint", func() {}, true, []string{idOfRaw(t, malware(1)), idOfRaw(t, malware(2))}},
		{"after the agreement widened", func() { agree("malware", "indicator") }, true, []string{idOfRaw(t, malware(1)), idOfRaw(t, malware(2)), ind}},
		{"idle after the widened push", func() {}, false, []string{idOfRaw(t, malware(1)), idOfRaw(t, malware(2)), ind}},
		{"after an agreement change that adds nothing", func() { agree("malware", "indicator") }, true, []string{idOfRaw(t, malware(1)), idOfRaw(t, malware(2)), ind}},
		{"idle again", func() {}, false, []string{idOfRaw(t, malware(1)), idOfRaw(t, malware(2)), ind}},
	} {
		step.do()
		if got := sync(step.name); got != step.wantQuery {
			t.Errorf("%s: sync queried the store: %v, want %v", step.name, got, step.wantQuery)
		}
		got := remote.received()
		slices.Sort(got)
		got = slices.Compact(got)
		want := slices.Clone(step.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: peer holds %v, want %v", step.name, got, want)
		}
	}
	// The loop syncs the peer as it listed it, with the same outcome.
	last, err := s.Peer(ctx, admin, "peer")
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	before := st.queries.Load()
	go func() { s.RunPeerSync(ctx2, time.Hour); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := s.Peer(ctx, admin, "peer")
		if err != nil {
			t.Fatal(err)
		}
		if p.LastSync.After(last.LastSync) {
			if p.LastError != "" {
				t.Errorf("the loop's sync failed: %s", p.LastError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sync loop did not sync within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if got := st.queries.Load(); got != before {
		t.Errorf("an idle sync of the loop ran %d page queries, want none", got-before)
	}
}
