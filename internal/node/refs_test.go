package node_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/testutil"
)

const attackAPT28 = "intrusion-set--bef4c620-0787-42a8-a96d-b7eb6e85917c"

// TestRefsRefreshedAfterImport imports ATT&CK Enterprise and, without
// any view asking, waits for the node to bring its relationship index up
// to date with APT28's relationships in the background; the matrix
// filtered by APT28 then marks exactly the techniques APT28 uses.
func TestRefsRefreshedAfterImport(t *testing.T) {
	data := testutil.SharedGzip(t, "attack", "enterprise-attack-18.1.json.gz")
	var objs []json.RawMessage
	rels := map[string]bool{} // APT28's relationships
	uses := map[string]bool{} // what APT28 uses
	if err := stix.ScanBundle(data, func(_ int, raw json.RawMessage) error {
		objs = append(objs, raw)
		var o struct {
			Type   string `json:"type"`
			ID     string `json:"id"`
			RType  string `json:"relationship_type"`
			Source string `json:"source_ref"`
			Target string `json:"target_ref"`
		}
		if json.Unmarshal(raw, &o) == nil && o.Type == "relationship" && (o.Source == attackAPT28 || o.Target == attackAPT28) {
			rels[o.ID] = true
			if o.Source == attackAPT28 && o.RType == "uses" {
				uses[o.Target] = true
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(rels) < 50 {
		t.Fatalf("the bundle holds %d relationships of APT28", len(rels))
	}

	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, _, err := node.New(st, node.Config{}, nil).Init(ctx, "Matrix CERT", "FR", "")
	if err != nil {
		t.Fatal(err)
	}
	s := node.New(st, node.Config{Org: id.ID}, nil)
	t.Cleanup(s.Close)
	if _, err := s.ImportObjects(ctx, node.LocalAdmin(id.ID), node.CollectionIntel, objs); err != nil {
		t.Fatalf("import ATT&CK: %v", err)
	}

	// No view reads the index: only the background refresh fills it.
	deadline := time.Now().Add(60 * time.Second)
	for len(s.RefsOf(attackAPT28)) < len(rels) {
		if time.Now().After(deadline) {
			t.Fatalf("a minute after the import, the relationship index holds %d of APT28's %d relationships", len(s.RefsOf(attackAPT28)), len(rels))
		}
		time.Sleep(20 * time.Millisecond)
	}

	_, analyst := key(t, s, entente.RoleAnalyst)
	m, err := s.Matrix(ctx, analyst, attackAPT28)
	if err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, tc := range m.Tactics {
		for _, tech := range tc.Techniques {
			want := uses[tech.ID]
			for _, sub := range tech.Subtechniques {
				if sub.InFilter != uses[sub.ID] {
					t.Errorf("sub-technique %s %s: in filter %v, APT28 uses it: %v", sub.ExternalID, sub.Name, sub.InFilter, uses[sub.ID])
				}
				want = want || uses[sub.ID]
			}
			if tech.InFilter != want {
				t.Errorf("technique %s %s: in filter %v, want %v", tech.ExternalID, tech.Name, tech.InFilter, want)
			}
			if tech.InFilter {
				marked++
			}
		}
	}
	if marked < 10 {
		t.Errorf("the matrix marks %d techniques of APT28", marked)
	}
}

// TestRefsOneShotLeavesIndex checks that a one-shot service (a CLI
// command's) does not read just-imported relationships into the index in
// the background, and that a view still finds them: the refresh is done
// when asked.
func TestRefsOneShotLeavesIndex(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, _, err := node.New(st, node.Config{}, nil).Init(ctx, "One-shot CERT", "FR", "")
	if err != nil {
		t.Fatal(err)
	}
	s := node.New(st, node.Config{Org: id.ID, OneShot: true}, nil)
	t.Cleanup(s.Close)
	const set = "intrusion-set--4e7a3b2c-0000-4000-8000-000000000001"
	var objs []json.RawMessage
	for i := range 5 {
		objs = append(objs, json.RawMessage(`{"type":"relationship","spec_version":"2.1","id":"relationship--4e7a3b2c-0000-4000-8000-00000000010`+string(rune('0'+i))+`",`+
			`"created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","relationship_type":"uses",`+
			`"source_ref":"`+set+`","target_ref":"attack-pattern--4e7a3b2c-0000-4000-8000-00000000020`+string(rune('0'+i))+`"}`))
	}
	if _, err := s.ImportObjects(ctx, node.LocalAdmin(id.ID), node.CollectionIntel, objs); err != nil {
		t.Fatalf("import: %v", err)
	}
	// Four times the quiet period a service that is not one-shot waits
	// before it refreshes.
	time.Sleep(time.Second)
	if got := s.RefsOf(set); len(got) != 0 {
		t.Fatalf("a one-shot service refreshed its index in the background: %d relationships", len(got))
	}
	_, analyst := key(t, s, entente.RoleAnalyst)
	if _, err := s.Matrix(ctx, analyst, set); err != nil {
		t.Fatal(err)
	}
	if got := s.RefsOf(set); len(got) != len(objs) {
		t.Errorf("after a view the index holds %d of the %d relationships", len(got), len(objs))
	}
}
