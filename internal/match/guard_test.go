package match_test

import (
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/sensor"
)

// TestBuilderGuard: a guarded builder compiles no protected value,
// compiles only what remains of a network around protected space, and
// leaves out the per-record patterns that name a protected value,
// counting each in LoadStats.Protected; addresses of the log then match
// exactly when they are not protected.
func TestBuilderGuard(t *testing.T) {
	ws, err := safety.ShippedWarninglists()
	if err != nil {
		t.Fatal(err)
	}
	n, err := safety.New(safety.Config{IANA: true, Warninglists: ws, WidestIPv4: 8, WidestIPv6: 16})
	if err != nil {
		t.Fatal(err)
	}
	b := match.NewBuilder()
	b.Guard(n.Guard(safety.OutputMatch))
	ps := match.NewPatternSet()
	b.CollectPatterns(ps)
	list := "0.0.0.0/0\n10.0.0.0/8\n224.0.0.251\n100.0.0.0/8\n45.33.32.156\nff02::fb\n"
	st, err := match.LoadFile(b, "list.txt", strings.NewReader(list), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.Protected != 5 || st.Values != 1 {
		t.Fatalf("stats %+v: want 5 protected (4 left out, 1 cut) and 1 value as given", st)
	}
	bundle := `{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[
{"type":"indicator","spec_version":"2.1","id":"indicator--a932fcc6-e032-476c-826f-cb970a5a1ade","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[network-traffic:dst_ref.value = '224.0.0.251' AND network-traffic:dst_port = 5353]","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"},
{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[network-traffic:dst_ref.value = '45.33.32.156' AND network-traffic:dst_port = 443]","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}]}`
	st, err = match.LoadFile(b, "bundle.json", strings.NewReader(bundle), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.Protected != 1 || st.Evaluated != 1 || ps.Len() != 1 {
		t.Fatalf("patterns: %+v, %d in the set: want the multicast one left out", st, ps.Len())
	}
	m := match.NewMatcher(b.Snapshot())
	for addr, want := range map[string]bool{"10.1.2.3": false, "224.0.0.251": false, "100.64.0.1": false, "100.1.2.3": true,
		"100.200.0.1": true, "45.33.32.156": true, "8.8.8.8": false, "ff02::fb": false} {
		hits := m.Match(sensor.Obs{Kind: sensor.ObsIP, Value: []byte(addr)}, nil)
		if (len(hits) > 0) != want {
			t.Errorf("%s: %d hits, want a hit: %v", addr, len(hits), want)
		}
	}
}
