package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

// receivedStore is what testReceived needs of a store.
type receivedStore interface {
	store.Store
	store.PolicyStore
	store.ReceivedAdder
}

// testReceived checks AddReceived: objects, provenance and status are
// written together; a version already held keeps its first provenance;
// nothing is written when the addition fails; concurrent calls (which a
// store may commit together) each get their own provenance.
func testReceived(t *testing.T, open Opener) {
	s, ok := open(t).(receivedStore)
	if !ok {
		t.Fatalf("the store does not implement store.ReceivedAdder")
	}
	newCollection(t, s, "in")
	at := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	const orgA, orgB = "identity--00000000-0000-4000-8000-00000000000a", "identity--00000000-0000-4000-8000-00000000000b"
	objs := Indicators(t, 0, 300)
	status := func(out []entente.AddOutcome) []byte {
		b, _ := json.Marshal(map[string]int{"success_count": len(out)})
		return b
	}
	out, err := s.AddReceived(ctx(t), store.Received{Collection: "in", Objects: objs, Origin: orgA, Peer: "key:k1", ReceivedAt: at,
		StatusID: "status-1", Status: status})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(objs) {
		t.Fatalf("%d outcomes for %d objects", len(out), len(objs))
	}
	body, err := s.Status(ctx(t), "status-1")
	if err != nil {
		t.Fatalf("status written with the objects: %v", err)
	}
	if string(body) != `{"success_count":300}` {
		t.Errorf("status %s, want the outcome's", body)
	}
	ids := make([]string, len(objs))
	for i, o := range objs {
		ids[i] = o.ID
	}
	prov, err := s.Provenance(ctx(t), "in", ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(prov) != len(objs) {
		t.Fatalf("%d provenance records for %d new versions", len(prov), len(objs))
	}
	for _, o := range objs {
		vn, _ := store.UnixNano(o.Version())
		p := prov[store.VersionKey{ID: o.ID, Version: vn}]
		if p.Origin != orgA || p.Peer != "key:k1" || !p.ReceivedAt.Equal(at) || p.Collection != "in" {
			t.Fatalf("provenance of %s = %+v", o.ID, p)
		}
	}

	// The same versions again from B, and one new version: the held
	// versions keep A as their origin, the new one gets B.
	newer := Object(t, "indicator", objs[0].ID, v(5))
	again := append(objs[:10:10], newer)
	out, err = s.AddReceived(ctx(t), store.Received{Collection: "in", Objects: again, Origin: orgB, Peer: "p2", ReceivedAt: at.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	dups := 0
	for _, o := range out {
		if o.Duplicate {
			dups++
		}
	}
	if dups != 10 {
		t.Errorf("%d duplicates, want 10", dups)
	}
	prov, err = s.Provenance(ctx(t), "in", []string{objs[0].ID, objs[1].ID})
	if err != nil {
		t.Fatal(err)
	}
	v0, _ := store.UnixNano(objs[0].Version())
	v5, _ := store.UnixNano(newer.Version())
	v1, _ := store.UnixNano(objs[1].Version())
	if p := prov[store.VersionKey{ID: objs[0].ID, Version: v0}]; p.Origin != orgA {
		t.Errorf("held version's provenance changed to %+v", p)
	}
	if p := prov[store.VersionKey{ID: objs[1].ID, Version: v1}]; p.Origin != orgA {
		t.Errorf("held version's provenance changed to %+v", p)
	}
	if p := prov[store.VersionKey{ID: objs[0].ID, Version: v5}]; p.Origin != orgB || p.Peer != "p2" {
		t.Errorf("new version's provenance = %+v, want from %s through p2", p, orgB)
	}

	// A failed addition writes nothing: no status, no provenance.
	_, err = s.AddReceived(ctx(t), store.Received{Collection: "nope", Objects: Indicators(t, 1000, 3), Origin: orgB, Peer: "p2",
		ReceivedAt: at, StatusID: "status-2", Status: status})
	if got := entente.ErrorCode(err); got != entente.ENOTFOUND {
		t.Errorf("unknown collection: %v (code %q), want ENOTFOUND", err, got)
	}
	if _, err := s.Status(ctx(t), "status-2"); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Errorf("status of a failed addition: %v, want ENOTFOUND", err)
	}
	cancelled, cancel := context.WithCancel(ctx(t))
	cancel()
	if _, err := s.AddReceived(cancelled, store.Received{Collection: "in", Objects: Indicators(t, 2000, 3), Origin: orgB, Peer: "p2", ReceivedAt: at}); err == nil {
		t.Errorf("a cancelled addition succeeded")
	}
	if page, err := s.QueryObjects(ctx(t), entente.ObjectQuery{Collection: "in", IDs: []string{indicatorID(2000)}}); err != nil || len(page.Entries) != 0 {
		t.Errorf("a cancelled addition stored %d objects (%v)", len(page.Entries), err)
	}

	// Concurrent additions, each with its own origin.
	var wg sync.WaitGroup
	const calls = 24
	errs := make([]error, calls)
	for i := range calls {
		wg.Go(func() {
			_, errs[i] = s.AddReceived(ctx(t), store.Received{Collection: "in", Objects: Indicators(t, 5000+10*i, 10),
				Origin: fmt.Sprintf("peer:%d", i), Peer: fmt.Sprintf("p%d", i), ReceivedAt: at, StatusID: fmt.Sprintf("c-%d", i), Status: status})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		var ids []string
		for k := range 10 {
			ids = append(ids, indicatorID(5000+10*i+k))
		}
		prov, err := s.Provenance(ctx(t), "in", ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(prov) != 10 {
			t.Fatalf("call %d: %d provenance records, want 10", i, len(prov))
		}
		for k, p := range prov {
			if p.Origin != fmt.Sprintf("peer:%d", i) {
				t.Errorf("call %d: %s from %q", i, k.ID, p.Origin)
			}
		}
		if _, err := s.Status(ctx(t), fmt.Sprintf("c-%d", i)); err != nil {
			t.Errorf("call %d: status: %v", i, err)
		}
	}
}
