package node_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/ingest"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/taxii"
)

// TestSubmittedStatusComplete checks that a submitted status, once
// complete, reads the same as the record the store keeps (the service
// answers the last polls from memory), for its creator and admins only,
// and that an invalid object's failure is in it.
func TestSubmittedStatusComplete(t *testing.T) {
	s, st, _ := newService(t)
	ctx := context.Background()
	c, analyst, other := analystsCollection(t, s)
	objs := []json.RawMessage{indicator(1, "2024-01-01T00:00:00.000Z"), json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-000000000002"}`), indicator(3, "2024-01-01T00:00:00.500Z")}
	pending, err := s.SubmitObjects(ctx, analyst, c.ID, objs)
	if err != nil {
		t.Fatal(err)
	}
	var got *entente.Status
	for deadline := time.Now().Add(10 * time.Second); ; {
		if got, err = s.Status(ctx, analyst, pending.ID); err != nil {
			t.Fatal(err)
		}
		if got.Status == taxii.StatusComplete {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %s still pending", pending.ID)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got.SuccessCount != 2 || got.FailureCount != 1 || got.Failures[0].ID != "indicator--8e2e2d2b-17d4-4cbf-938f-000000000002" {
		t.Errorf("complete status %+v: want 2 successes and the invalid object's failure", got)
	}
	body, err := st.Status(ctx, pending.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, stored, err := ingest.DecodeStatusRecord(body)
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(stored)
	if diff := cmp.Diff(string(wantJSON), string(gotJSON)); diff != "" {
		t.Errorf("status (-stored +served):\n%s", diff)
	}
	if _, err := s.Status(ctx, admin, pending.ID); err != nil {
		t.Errorf("Status by admin: %v", err)
	}
	_, err = s.Status(ctx, other, pending.ID)
	wantCode(t, err, entente.ENOTFOUND)
}

// heldStore is a store whose submissions' Done waits, on the store's
// writer, until hold is closed: their objects are durable but their
// statuses still pending.
type heldStore struct {
	*sqlite.Store
	hold chan struct{}
}

func (h heldStore) Submit(ctx context.Context, sub store.Submission) error {
	done := sub.Done
	sub.Done = func(out []entente.AddOutcome, err error) {
		<-h.hold
		done(out, err)
	}
	return h.Store.Submit(ctx, sub)
}

// statusWaitBound is ingest's statusWait, the longest a poll of a pending
// status waits.
const statusWaitBound = 250 * time.Millisecond

// TestStatusPollWaits checks that a poll of a pending status waits for it
// to complete, within its bound: answered pending after the bound while the
// status stays pending, and complete as soon as it is complete when that
// happens while it waits; a poll by another key is answered at once (not
// found) without waiting.
func TestStatusPollWaits(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := heldStore{Store: st, hold: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(h.hold)
		}
	}
	t.Cleanup(func() { release(); st.Close() })
	s := node.New(h, node.Config{Org: org, KeyCacheTTL: 10 * time.Second, Dial: dial}, nil)
	ctx := context.Background()
	c, analyst, other := analystsCollection(t, s)
	pending, err := s.SubmitObjects(ctx, analyst, c.ID, []json.RawMessage{indicator(1, "2024-01-01T00:00:00.000Z")})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Status(ctx, other, pending.ID)
	wantCode(t, err, entente.ENOTFOUND)
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("a poll by another key took %v: it waited", d)
	}
	start = time.Now()
	got, err := s.Status(ctx, analyst, pending.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); got.Status != taxii.StatusPending || d < statusWaitBound || d > 5*time.Second {
		t.Errorf("held status polled: %s after %v, want pending after about %v", got.Status, d, statusWaitBound)
	}
	// A poll waiting when the status completes answers it complete.
	res := make(chan *entente.Status, 1)
	go func() {
		st, err := s.Status(ctx, analyst, pending.ID)
		if err != nil {
			t.Error(err)
		}
		res <- st
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case st := <-res:
		t.Fatalf("the poll answered %s before the status completed", st.Status)
	default:
	}
	release()
	select {
	case got := <-res:
		if got == nil || got.Status != taxii.StatusComplete || got.SuccessCount != 1 {
			t.Errorf("poll waiting at completion answered %+v, want complete with 1 success", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting poll did not answer")
	}
	// Complete: answered at once.
	start = time.Now()
	if got, err := s.Status(ctx, analyst, pending.ID); err != nil || got.Status != taxii.StatusComplete || time.Since(start) > 50*time.Millisecond {
		t.Errorf("complete status polled: %v %v after %v", got, err, time.Since(start))
	}
}

// analystsCollection creates a collection analysts read and write, and
// two analysts' keys: the one that posts and another.
func analystsCollection(t *testing.T, s *node.Service) (entente.Collection, entente.Principal, entente.Principal) {
	t.Helper()
	c, err := s.CreateCollection(context.Background(), admin, entente.Collection{Title: "T", DefaultMarking: stix.TLPClear.MarkingID(),
		ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RoleAnalyst}})
	if err != nil {
		t.Fatal(err)
	}
	_, analyst := key(t, s, entente.RoleAnalyst)
	_, other := key(t, s, entente.RoleAnalyst)
	return c, analyst, other
}
