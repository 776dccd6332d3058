package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
)

// TestScaleOutReplicasAgree runs two "entente serve" replicas on one
// PostgreSQL database, writes through one and reads through both: every
// request gets the same answer from either replica, and a paging cursor
// issued by one is honoured by the other.
func TestScaleOutReplicasAgree(t *testing.T) {
	pg := testutil.PostgresSchemaURL(t)
	bundle := testutil.SharedData(t, "stix", "examples", "oasis-json-schemas", "threat-reports", "apt1.json")

	code, out, errs := run(t, nil, nil, "init", "--store", pg, "--org", "CERT Scale", "--country", "NL")
	if code != 0 {
		t.Fatalf("init on PostgreSQL: %s", errs)
	}
	key := strings.TrimSpace(out)
	a := startNode(t, "--store", pg)
	b := startNode(t, "--store", pg)

	if code, _, errs := run(t, map[string]string{"ENTENTE_SERVER": a, "ENTENTE_TOKEN": key}, nil, "ingest", "--quiet", bundle); code != 0 {
		t.Fatalf("ingest through replica A: %s", errs)
	}

	get := func(base, path string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	paths := []string{
		"/taxii2/api1/collections/",
		"/taxii2/api1/collections/intel/objects/",
		"/taxii2/api1/collections/intel/objects/?limit=7",
		"/taxii2/api1/collections/intel/manifest/?limit=5",
		"/taxii2/api1/collections/intel/objects/?match[type]=indicator,malware",
		"/taxii2/api1/collections/intel/objects/?match[version]=all&limit=20",
	}
	for _, p := range paths {
		ca, ba, ha := get(a, p)
		cb, bb, hb := get(b, p)
		if ca != 200 || ca != cb || ba != bb {
			t.Fatalf("GET %s: replica A answered %d (%d bytes), replica B %d (%d bytes)", p, ca, len(ba), cb, len(bb))
		}
		for _, h := range []string{"X-TAXII-Date-Added-First", "X-TAXII-Date-Added-Last"} {
			if ha.Get(h) != hb.Get(h) {
				t.Fatalf("GET %s: %s differs: %q vs %q", p, h, ha.Get(h), hb.Get(h))
			}
		}
	}

	// A cursor from A, followed on B, gives what following it on A gives.
	_, first, _ := get(a, "/taxii2/api1/collections/intel/objects/?limit=3")
	next := between(first, `"next":"`, `"`)
	if next == "" {
		t.Fatalf("first page has no next: %s", first)
	}
	_, onA, _ := get(a, "/taxii2/api1/collections/intel/objects/?limit=3&next="+next)
	_, onB, _ := get(b, "/taxii2/api1/collections/intel/objects/?limit=3&next="+next)
	if onA != onB || !strings.Contains(onB, `"objects"`) {
		t.Fatalf("the second page differs between replicas:\nA: %s\nB: %s", onA, onB)
	}
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}
