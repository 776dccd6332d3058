package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// BenchmarkPeerPull pulls a collection of ENTENTE_BENCH_PULL objects
// (default 100,000) from one node to another over loopback TAXII: the
// source's gate and egress audit, the client, and the destination's
// storage with provenance and checkpoints. It reports objects/s.
func BenchmarkPeerPull(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("ENTENTE_BENCH_PULL")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	src, _, _ := newServiceTB(b)
	c, err := src.CreateCollection(ctx, admin, entente.Collection{Alias: "intel", Title: "Intel", DefaultMarking: stix.TLPGreen.MarkingID(),
		ReadRoles: []entente.Role{entente.RoleAnalyst, entente.RolePartner}})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 10000
	objs := make([]json.RawMessage, 0, batch)
	for i := 0; i < n; i++ {
		objs = append(objs, json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-%012x",`+
			`"created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.%d.%d.%d']",`+
			`"pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}`, i, i>>16&255, i>>8&255, i&255)))
		if len(objs) == batch || i == n-1 {
			if st, err := src.AddObjects(ctx, admin, c.ID, objs); err != nil || st.FailureCount > 0 {
				b.Fatalf("add: %v", err)
			}
			objs = objs[:0]
		}
	}
	if err := src.PutPartner(ctx, admin, policy.Party{ID: partnerB, Country: "DE"}); err != nil {
		b.Fatal(err)
	}
	if _, err := src.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: partnerB}, Collections: []string{"intel"}, MaxTLP: stix.TLPAmber}); err != nil {
		b.Fatal(err)
	}
	key, _ := keyTB(b, src, entente.RolePartner, partnerB)
	srv := httptest.NewServer(httpapi.New(src, httpapi.Options{}, nil, prometheus.NewRegistry()))
	defer srv.Close()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		dst, _, _ := newServiceTB(b)
		if _, err := dst.CreateCollection(ctx, admin, entente.Collection{Alias: "intel", Title: "Intel"}); err != nil {
			b.Fatal(err)
		}
		if _, err := dst.AddPeer(ctx, admin, node.Peer{ID: "src", APIRoot: srv.URL + "/taxii2/api1/", Collection: "intel",
			LocalCollection: "intel", Token: key, Org: org2}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := dst.SyncPeer(ctx, admin, "src")
		if err != nil || res.Stored != n {
			b.Fatalf("sync: stored %d of %d: %v", res.Stored, n, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "objects/s")
}
