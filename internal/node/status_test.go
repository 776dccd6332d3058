package node_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/ingest"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/taxii"
)

// TestSubmittedStatusComplete checks that a submitted status, once
// complete, reads the same as the record the store keeps (the service
// answers the last polls from memory), for its creator and admins only,
// and that an invalid object's failure is in it.
func TestSubmittedStatusComplete(t *testing.T) {
	s, st, _ := newService(t)
	ctx := context.Background()
	c, err := s.CreateCollection(ctx, admin, entente.Collection{Title: "T", DefaultMarking: stix.TLPClear.MarkingID(),
		ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RoleAnalyst}})
	if err != nil {
		t.Fatal(err)
	}
	_, analyst := key(t, s, entente.RoleAnalyst)
	_, other := key(t, s, entente.RoleAnalyst)
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
