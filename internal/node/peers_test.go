package node_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

// TestPeerSyncLoopIsolatesPeers runs the background sync with three
// peers: one answering HTML, one that never answers, and a real node.
// The real node's objects arrive with their provenance while the others
// fail or hang, and the HTML peer's error is recorded.
func TestPeerSyncLoopIsolatesPeers(t *testing.T) {
	ctx := context.Background()
	// The source: a node serving TAXII, with partner key for the
	// destination's organisation under an agreement.
	src := newGatedNode(t)
	srcSrv := httptest.NewServer(httpapi.New(src.s, httpapi.Options{}, nil, prometheus.NewRegistry()))
	defer srcSrv.Close()
	keyB, _ := keyFor(t, src.s, entente.RolePartner, partnerB)

	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html>maintenance</html>")
	}))
	defer html.Close()
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang)

	dst, _, _ := newServiceDial(t, taxiiclient.Dialer(nil, taxiiclient.Limits{MaxRetries: -1, HeaderTimeout: time.Minute}))
	c, err := dst.CreateCollection(ctx, admin, entente.Collection{Alias: "intel", Title: "Intel", ReadRoles: []entente.Role{entente.RoleAnalyst, entente.RolePartner}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []node.Peer{
		{ID: "slow", APIRoot: slow.URL + "/api1/", Collection: "intel", LocalCollection: "intel"},
		{ID: "html", APIRoot: html.URL + "/api1/", Collection: "intel", LocalCollection: "intel"},
		{ID: "src", APIRoot: srcSrv.URL + "/taxii2/api1/", Collection: "intel", LocalCollection: "intel", Token: keyB, Org: org2},
	} {
		if _, err := dst.AddPeer(ctx, admin, p); err != nil {
			t.Fatal(err)
		}
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		dst.RunPeerSync(lctx, time.Hour)
	}()
	var peers map[string]node.Peer
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := dst.Peers(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		peers = map[string]node.Peer{}
		for _, p := range list {
			peers[p.ID] = p
		}
		if !peers["src"].LastSync.IsZero() && !peers["html"].LastSync.IsZero() || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p := peers["src"]; p.LastSync.IsZero() || p.LastError != "" {
		t.Errorf("the real peer did not sync while another hangs: %+v", p)
	}
	if p := peers["html"]; !strings.Contains(p.LastError, "media type") {
		t.Errorf("the HTML peer's error is not recorded: %+v", p)
	}
	if !peers["slow"].LastSync.IsZero() {
		t.Errorf("the hanging peer reports a sync: %+v", peers["slow"])
	}
	if peers["src"].Token != "" {
		t.Error("Peers shows a peer's token")
	}
	// What arrived is the source's release to B, and is known to be a
	// third party's: it is not passed on as the node's own.
	ex, err := dst.Preview(ctx, admin, partnerC, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, e := range ex {
		if e.Object.Collection != c.ID {
			continue
		}
		got++
		if e.Object.Origin != org2 || e.Object.ReceivedFromPeer != "src" {
			t.Errorf("%s: provenance %q via %q, want %s via src", e.Object.ID, e.Object.Origin, e.Object.ReceivedFromPeer, org2)
		}
		if e.Decision.Allow {
			t.Errorf("%s: a third party's object released without an agreement (%s)", e.Object.ID, e.Decision.Rule)
		}
	}
	if got != 7 { // amber, green, clear, unmarked, sighting, marking, location
		t.Errorf("received %d objects from the source, want 7", got)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunPeerSync did not stop with its context")
	}
}

const org2 = "identity--00000002-0000-4000-8000-000000000000"
