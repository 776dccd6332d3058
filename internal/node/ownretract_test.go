package node_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

// termsCountingStore is a SQLite store that counts the changes of the
// terms in force (the gate's egress.terms setting written anew).
type termsCountingStore struct {
	*sqlite.Store
	terms atomic.Int32
}

func (c *termsCountingStore) PutSetting(ctx context.Context, name string, value []byte) error {
	if name == "egress.terms" {
		c.terms.Add(1)
	}
	return c.Store.PutSetting(ctx, name, value)
}

// TestOwnRetractionAppliedOnce checks that a retraction the node makes
// itself (a false positive marked, a partner quarantined) is applied
// once: by the action, which answers only once what it withdraws has
// left every output, and not a second time by the background worker
// that pushes it (a second change of terms, which every push and export
// then pays for, and a second pass of correlation over what it names,
// both before the pushes to every partner start). One change of terms
// for a false positive; for a quarantine one for the partner's trust and
// one for the retraction of what it contributed to the one collection
// it wrote to.
// quarantineNode returns a node over st that holds a national alert
// raised by two French organisations' sightings and a German CERT's
// (certDE) sightings and indicator, in a collection of their own.
func quarantineNode(t *testing.T, st store.Store) (*node.Service, *clock, node.Identity, entente.Principal) {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	s := node.New(st, node.Config{Now: clk.now, Dial: dial}, nil)
	t.Cleanup(s.Close)
	id, _, err := s.Init(ctx, "Alerting node", "FR", "")
	if err != nil {
		t.Fatal(err)
	}
	admin := node.LocalAdmin(id.ID)
	if stat, err := s.AddObjects(ctx, admin, node.CollectionIntel, alertFixture()); err != nil || stat.FailureCount > 0 {
		t.Fatalf("store threat and identities: %v %+v", err, stat)
	}
	analyst := sensorOf(t, s, id, entente.RoleAnalyst)
	now := clk.now()
	report(t, s, id, 0, alertSighting(0, now))
	report(t, s, id, 1, alertSighting(1, now))
	// A partner contributes sightings and an indicator.
	inbox, err := s.CreateCollection(ctx, admin, entente.Collection{Alias: "inbox", Title: "Inbox",
		ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RolePartner}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPartner(ctx, admin, policy.Party{ID: certDE, Name: "CERT DE", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	_, k, err := s.CreateKey(ctx, admin, node.NewKey{Name: "CERT DE", Role: entente.RolePartner, Org: certDE})
	if err != nil {
		t.Fatal(err)
	}
	de := entente.Principal{KeyID: k.ID, Org: certDE, Role: entente.RolePartner}
	junk := json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"indicator--0a1b2c3d-0000-4000-8000-0000000000de","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '203.0.113.77']","pattern_type":"stix","valid_from":"2026-11-01T00:00:00Z"}`)
	if stat, err := s.AddObjects(ctx, de, inbox.ID, []json.RawMessage{alertSighting(2, now), alertSighting(3, now), junk}); err != nil || stat.FailureCount > 0 {
		t.Fatalf("CERT DE pushes: %v %+v", err, stat)
	}
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	return s, clk, id, analyst
}

// certDE is the partner quarantineNode's node quarantines.
const certDE = "identity--0a1b2c3d-0000-4000-b000-0000000000de"

func TestOwnRetractionAppliedOnce(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &termsCountingStore{Store: st}
	s, clk, id, analyst := quarantineNode(t, cs)
	admin := node.LocalAdmin(id.ID)

	for _, tc := range []struct {
		name  string
		act   func() error
		terms int32
	}{
		{"false positive", func() error {
			_, err := s.MarkFalsePositive(ctx, analyst, alertIndicator, "a resolver")
			return err
		}, 1},
		{"quarantine", func() error {
			_, err := s.QuarantinePartner(ctx, admin, certDE, "fabricated sightings")
			return err
		}, 2},
	} {
		clk.add(time.Minute)
		before := cs.terms.Load()
		if err := tc.act(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := s.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if n := cs.terms.Load() - before; n != tc.terms {
			t.Errorf("%s: %d changes of terms, want %d", tc.name, n, tc.terms)
		}
	}
	if got := onlyAlert(t, s, analyst); !got.Withdrawn {
		t.Errorf("the alert is %s after the false positive and the quarantine, want withdrawn", got.Status)
	}
}

// blockingStates is a SQLite store whose alert lifecycle saves (alone or
// with the alert objects), once armed, say so on entered and wait for
// release.
type blockingStates struct {
	*sqlite.Store
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStates) PutAlertState(ctx context.Context, st correlate.State) error {
	if b.armed.CompareAndSwap(true, false) {
		close(b.entered)
		<-b.release
	}
	return b.Store.PutAlertState(ctx, st)
}

func (b *blockingStates) AddOwn(ctx context.Context, o store.Own) ([]entente.AddOutcome, error) {
	if len(o.AlertStates) > 0 && b.armed.CompareAndSwap(true, false) {
		close(b.entered)
		<-b.release
	}
	return b.Store.AddOwn(ctx, o)
}

// TestQuarantineRetractsBeforeItCorrelates checks that a quarantine
// stores its retractions (and so starts their pushes to every partner
// that received what the partner contributed) before this node's
// correlation withdraws the partner's alerts: the federation's
// withdrawal does not wait for the node's correlation lock and alert
// writes. The node's first alert write is held until the retraction is
// seen stored.
func TestQuarantineRetractsBeforeItCorrelates(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	bs := &blockingStates{Store: st, entered: make(chan struct{}), release: make(chan struct{})}
	s, clk, id, analyst := quarantineNode(t, bs)
	admin := node.LocalAdmin(id.ID)
	clk.add(time.Minute)
	bs.armed.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := s.QuarantinePartner(ctx, admin, certDE, "fabricated sightings")
		done <- err
	}()
	select {
	case <-bs.entered:
	case err := <-done:
		t.Fatalf("the quarantine ended (%v) without a change of alert", err)
	}
	page, err := s.Objects(ctx, admin, "inbox", entente.ObjectQuery{Types: []string{"opinion"}, Limit: 100})
	close(bs.release)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) == 0 {
		t.Error("the quarantine's correlation ran before its retraction was stored")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := onlyAlert(t, s, analyst); got.Sources != 2 {
		t.Errorf("after the quarantine: %+v, want the 2 French organisations' alert", got)
	}
}
