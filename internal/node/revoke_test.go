package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/postgres"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/testutil"
)

// storeOpeners open a fresh store of each backend for a test: SQLite in
// a temporary directory, PostgreSQL in a fresh schema (skipped, saying
// so, where no server is reachable; required in CI).
var storeOpeners = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"sqlite", func(t *testing.T) store.Store {
		st, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"postgres", func(t *testing.T) store.Store {
		st, err := postgres.Open(context.Background(), testutil.PostgresSchemaURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

// ipIndicator is an indicator of one address, with the given object
// markings and optional granular markings of its description.
func ipIndicator(n int, modified, ip string, refs []string, granular string) json.RawMessage {
	o := map[string]any{"type": "indicator", "spec_version": "2.1", "id": fmt.Sprintf("indicator--6b1d3f0e-2a4c-4e8b-9f10-%012x", n),
		"created": "2024-01-01T00:00:00.000Z", "modified": modified, "pattern": "[ipv4-addr:value = '" + ip + "']",
		"pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z", "description": "seen beaconing from the victim's network"}
	if len(refs) > 0 {
		o["object_marking_refs"] = refs
	}
	if granular != "" {
		o["granular_markings"] = []map[string]any{{"selectors": []string{"description"}, "marking_ref": granular}}
	}
	b, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	return b
}

// everyPath is what one partner key receives on every path out of a
// node: the ids of each TAXII read, the addresses in each export format
// and in the snapshot, the ids a push delivers, and whether any object
// carried a description.
type everyPath struct {
	reads    map[string][]string // channel -> object ids
	exports  map[string][]string // format -> addresses found
	snapshot []string            // addresses the snapshot matches
	withDesc []string            // ids released with their description
}

// egressNode is a node with one partner-readable collection (AMBER by
// default) and a partner under an AMBER agreement.
type egressNode struct {
	s       *node.Service
	coll    entente.Collection
	partner string
	secret  string
	ips     map[string]string // address -> indicator id
}

const revokePartner = "identity--7a0c3e59-1d4b-4f6a-8e2d-5b9c0f1e2d3c"

func newEgressNode(t *testing.T, st store.Store) *egressNode {
	t.Helper()
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := node.New(st, node.Config{Org: org, Now: c.now, Dial: dial}, nil)
	t.Cleanup(s.Close)
	coll, err := s.CreateCollection(ctx, admin, entente.Collection{Alias: "intel", Title: "Intel", DefaultMarking: stix.TLPAmber.MarkingID(),
		ReadRoles: []entente.Role{entente.RoleAnalyst, entente.RoleSensor, entente.RolePartner}, WriteRoles: []entente.Role{entente.RoleAnalyst}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPartner(ctx, admin, policy.Party{ID: revokePartner, Name: "Partner", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: revokePartner}, Collections: []string{"intel"}, MaxTLP: stix.TLPAmber}); err != nil {
		t.Fatal(err)
	}
	secret, _, err := s.CreateKey(ctx, admin, node.NewKey{Name: "partner", Role: entente.RolePartner, Org: revokePartner})
	if err != nil {
		t.Fatal(err)
	}
	return &egressNode{s: s, coll: coll, partner: revokePartner, secret: secret, ips: map[string]string{}}
}

// add stores indicators of the given addresses and markings.
func (n *egressNode) add(t *testing.T, first int, ips []string, refs []string, granular string) {
	t.Helper()
	var raws []json.RawMessage
	for i, ip := range ips {
		raw := ipIndicator(first+i, "2024-01-01T00:00:00.000Z", ip, refs, granular)
		o, err := stix.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		n.ips[ip] = o.ID
		raws = append(raws, raw)
	}
	st, err := n.s.AddObjects(context.Background(), admin, n.coll.ID, raws)
	if err != nil || st.FailureCount > 0 {
		t.Fatalf("add: %v %+v", err, st)
	}
}

// read collects what the partner key receives on every path now. A key
// that no longer authenticates receives nothing.
func (n *egressNode) read(t *testing.T) everyPath {
	t.Helper()
	ctx := context.Background()
	out := everyPath{reads: map[string][]string{}, exports: map[string][]string{}}
	p, err := n.s.Authenticate(ctx, n.secret)
	if err != nil {
		if entente.ErrorCode(err) != entente.EUNAUTHORIZED {
			t.Fatalf("authenticate: %v", err)
		}
		return out
	}
	add := func(channel string, page entente.Page) {
		for _, e := range page.Entries {
			out.reads[channel] = append(out.reads[channel], e.ID)
			if e.Raw != nil && bytes.Contains(e.Raw, []byte(`"description"`)) {
				out.withDesc = append(out.withDesc, e.ID)
			}
		}
	}
	page, err := n.s.Objects(ctx, p, "intel", entente.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	add("objects", page)
	page, err = n.s.Manifest(ctx, p, "intel", entente.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	add("manifest", page)
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for _, id := range n.ips {
			if !yield(id) {
				return
			}
		}
	}) {
		page, err := n.s.Object(ctx, p, "intel", id, entente.ObjectQuery{})
		if err == nil {
			add("object", page)
		} else if entente.ErrorCode(err) != entente.ENOTFOUND {
			t.Fatal(err)
		}
		page, err = n.s.Versions(ctx, p, "intel", id, entente.ObjectQuery{})
		if err == nil {
			add("versions", page)
		} else if entente.ErrorCode(err) != entente.ENOTFOUND {
			t.Fatal(err)
		}
	}
	for _, f := range export.Formats {
		res, err := n.s.Export(ctx, p, node.ExportRequest{Format: f, Options: export.Options{NoAggregate: true}})
		if err != nil {
			t.Fatalf("export %s: %v", f, err)
		}
		body := string(res.Body())
		for ip := range n.ips {
			if strings.Contains(body, ip) || strings.Contains(body, reverseIP(ip)) {
				out.exports[f] = append(out.exports[f], ip)
			}
		}
		slices.Sort(out.exports[f])
	}
	snap, err := n.s.Snapshot(ctx, p, "")
	if err != nil {
		t.Fatal(err)
	}
	out.snapshot = snapshotIPs(t, snap.Data, n.ips)
	for k := range out.reads {
		slices.Sort(out.reads[k])
		out.reads[k] = slices.Compact(out.reads[k])
	}
	slices.Sort(out.withDesc)
	out.withDesc = slices.Compact(out.withDesc)
	return out
}

// upperID spells a STIX id with upper-case hex digits, as the schema
// allows: the same object.
func upperID(id string) string {
	typ, u, _ := strings.Cut(id, "--")
	return typ + "--" + strings.ToUpper(u)
}

// syncPush runs a push of peer id, waiting for an immediate push that is
// running (the node pushes new objects at once) to end first.
func syncPush(t *testing.T, s *node.Service, id string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, err := s.SyncPeer(context.Background(), admin, id)
		if err == nil {
			return
		}
		if entente.ErrorCode(err) != entente.ECONFLICT || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reverseIP is an address as an RPZ trigger names it.
func reverseIP(ip string) string {
	parts := strings.Split(ip, ".")
	slices.Reverse(parts)
	return "32." + strings.Join(parts, ".") + ".rpz-ip"
}

// fatalTB is what test helpers need of a *testing.T or a *rapid.T.
type fatalTB interface {
	Helper()
	Fatal(args ...any)
}

// snapshotIPs returns the addresses of ips the snapshot matches.
func snapshotIPs(t fatalTB, data []byte, ips map[string]string) []string {
	t.Helper()
	snap, err := match.ReadSnapshot(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	m := match.NewMatcher(snap)
	var out []string
	for ip := range ips {
		if len(m.Match(sensor.Obs{Kind: sensor.ObsIP, Value: []byte(ip)}, nil)) > 0 {
			out = append(out, ip)
		}
	}
	slices.Sort(out)
	return out
}

// ids returns the indicator ids of addresses, sorted.
func (n *egressNode) ids(ips ...string) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, n.ips[ip])
	}
	slices.Sort(out)
	return out
}

// check compares what the partner received with what the terms in force
// allow: exactly the indicators of allowed, on every path, and a
// description only on withDesc.
func (n *egressNode) check(t *testing.T, step string, got everyPath, allowed, withDesc []string) {
	t.Helper()
	slices.Sort(allowed)
	want := n.ids(allowed...)
	for _, ch := range []string{"objects", "manifest", "object", "versions"} {
		if !slices.Equal(got.reads[ch], want) {
			t.Errorf("%s: TAXII %s released %v, the terms allow %v", step, ch, got.reads[ch], want)
		}
	}
	for _, f := range export.Formats {
		if f == export.FormatHosts {
			continue // a hosts file lists domain names only
		}
		if !slices.Equal(got.exports[f], allowed) {
			t.Errorf("%s: export %s holds %v, the terms allow %v", step, f, got.exports[f], allowed)
		}
	}
	if !slices.Equal(got.snapshot, allowed) {
		t.Errorf("%s: the snapshot matches %v, the terms allow %v", step, got.snapshot, allowed)
	}
	if wd := n.ids(withDesc...); !slices.Equal(got.withDesc, wd) {
		t.Errorf("%s: released with a description: %v, want %v", step, got.withDesc, wd)
	}
}

// TestRevocationOnEveryPath changes the agreement under a partner that
// reads on every path, exports and snapshots served from the gate's cache
// included: the very next request after a deletion or narrowing returns
// nothing the new terms forbid, and a revoked key receives nothing. It
// runs on both stores.
func TestRevocationOnEveryPath(t *testing.T) {
	for _, o := range storeOpeners {
		t.Run(o.name, func(t *testing.T) {
			n := newEgressNode(t, o.open(t))
			ctx := context.Background()
			amber := []string{"45.1.7.9", "45.2.7.9", "45.3.7.9"}
			n.add(t, 1, amber, nil, "") // the collection's default: AMBER
			n.add(t, 10, []string{"45.10.7.9"}, []string{stix.TLPGreen.MarkingID()}, "")
			n.add(t, 11, []string{"45.11.7.9"}, []string{stix.TLPClear.MarkingID()}, "")
			n.add(t, 12, []string{"45.12.7.9"}, []string{upperID(stix.TLPRed.MarkingID())}, "")
			n.add(t, 13, []string{"45.13.7.9"}, []string{stix.TLPGreen.MarkingID()}, stix.TLPRed.MarkingID())
			all := append(slices.Clone(amber), "45.10.7.9", "45.11.7.9", "45.13.7.9")
			desc := append(slices.Clone(amber), "45.10.7.9", "45.11.7.9")

			// Twice: the second is served from the gate's caches.
			n.check(t, "under the AMBER agreement", n.read(t), all, desc)
			n.check(t, "under the AMBER agreement, from the cache", n.read(t), all, desc)

			// Narrowed to GREEN: the AMBER ones go at once.
			if _, err := n.s.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: n.partner}, Collections: []string{"intel"}, MaxTLP: stix.TLPGreen}); err != nil {
				t.Fatal(err)
			}
			n.check(t, "narrowed to GREEN", n.read(t), []string{"45.10.7.9", "45.11.7.9", "45.13.7.9"}, []string{"45.10.7.9", "45.11.7.9"})

			// Deleted: only the node's own CLEAR objects, to anyone with a key.
			if err := n.s.DeleteAgreement(ctx, admin, n.partner); err != nil {
				t.Fatal(err)
			}
			n.check(t, "agreement deleted", n.read(t), []string{"45.11.7.9"}, []string{"45.11.7.9"})

			// Restored, then the key revoked: nothing at all.
			if _, err := n.s.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: n.partner}, Collections: []string{"intel"}, MaxTLP: stix.TLPAmber}); err != nil {
				t.Fatal(err)
			}
			n.check(t, "restored", n.read(t), all, desc)
			keys, err := n.s.Keys(ctx, admin)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if k.Org == n.partner {
					if err := n.s.RevokeKey(ctx, admin, k.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
			n.check(t, "key revoked", n.read(t), nil, nil)
		})
	}
}

// TestRevocationOfPushesAndWebhooks checks the two paths a node starts
// itself: after the agreement with a push peer's organisation is
// narrowed, the next push carries nothing the new terms forbid.
func TestRevocationOfPushes(t *testing.T) {
	for _, o := range storeOpeners {
		t.Run(o.name, func(t *testing.T) {
			ctx := context.Background()
			n := newEgressNode(t, o.open(t))
			// The peer: a node that takes what n's organisation pushes.
			dst, _, _ := newService(t)
			inbox, err := dst.CreateCollection(ctx, admin, entente.Collection{Alias: "inbox", Title: "Inbox",
				ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RolePartner}})
			if err != nil {
				t.Fatal(err)
			}
			token, _, err := dst.CreateKey(ctx, admin, node.NewKey{Name: "from n", Role: entente.RolePartner, Org: org})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(httpapi.New(dst, httpapi.Options{}, nil, prometheus.NewRegistry()))
			defer srv.Close()
			if _, err := n.s.AddPeer(ctx, admin, node.Peer{ID: "dst", APIRoot: srv.URL + "/taxii2/api1/", Collection: inbox.ID,
				LocalCollection: "intel", Token: token, Org: n.partner, Direction: node.DirectionPush}); err != nil {
				t.Fatal(err)
			}
			received := func() []string {
				page, err := dst.Objects(ctx, admin, inbox.ID, entente.ObjectQuery{})
				if err != nil {
					t.Fatal(err)
				}
				return entryIDs(page)
			}
			n.add(t, 1, []string{"45.1.7.9"}, nil, "")
			syncPush(t, n.s, "dst")
			if got, want := received(), n.ids("45.1.7.9"); !slices.Equal(got, want) {
				t.Fatalf("pushed under the AMBER agreement: %v, want %v", got, want)
			}
			if _, err := n.s.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: n.partner}, Collections: []string{"intel"}, MaxTLP: stix.TLPGreen}); err != nil {
				t.Fatal(err)
			}
			n.add(t, 2, []string{"45.2.7.9"}, nil, "")                                 // AMBER: no longer
			n.add(t, 3, []string{"45.3.7.9"}, []string{stix.TLPGreen.MarkingID()}, "") // GREEN: still
			n.add(t, 4, []string{"45.4.7.9"}, []string{stix.TLPGreen.MarkingID()}, stix.TLPAmber.MarkingID())
			syncPush(t, n.s, "dst")
			if got, want := received(), n.ids("45.1.7.9", "45.3.7.9", "45.4.7.9"); !slices.Equal(got, want) {
				t.Fatalf("pushed after narrowing to GREEN: %v, want %v", got, want)
			}
			page, err := dst.Object(ctx, admin, inbox.ID, n.ips["45.4.7.9"], entente.ObjectQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(page.Entries[0].Raw, []byte("description")) {
				t.Errorf("a description marked AMBER was pushed under a GREEN agreement: %s", page.Entries[0].Raw)
			}
			// Every version that left has its egress record.
			log, err := n.s.QueryAudit(ctx, admin, node.AuditQuery{Action: node.AuditEgress, Partner: n.partner})
			if err != nil {
				t.Fatal(err)
			}
			var audited []string
			for _, r := range log.Records {
				if strings.HasPrefix(r.Detail, "push ") {
					audited = append(audited, r.ObjectID)
				}
			}
			slices.Sort(audited)
			if want := n.ids("45.1.7.9", "45.3.7.9", "45.4.7.9"); !slices.Equal(audited, want) {
				t.Errorf("push audit records %v, want one for each of %v", audited, want)
			}
		})
	}
}
