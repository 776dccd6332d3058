package blind

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/testutil"
)

func zeekInputs(t *testing.T, dir string, names ...string) []sensor.Input {
	var logs []sensor.Input
	for _, n := range names {
		p := filepath.Join(dir, n)
		logs = append(logs, sensor.Input{Name: n, Open: func() (io.ReadCloser, error) { return os.Open(p) }})
	}
	return logs
}

type hitKey struct {
	file     string
	line     int64
	observed string
}

func readHits(t *testing.T, data []byte) (map[hitKey][]match.HitRecord, []match.HitRecord) {
	t.Helper()
	m := map[hitKey][]match.HitRecord{}
	var all []match.HitRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var h match.HitRecord
		if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
			t.Fatalf("hit line %q: %v", sc.Text(), err)
		}
		k := hitKey{h.File, h.Line, h.Observed}
		m[k] = append(m[k], h)
		all = append(all, h)
	}
	return m, all
}

// TestZeekPlanted matches real Zeek logs (../shared/data/logs) against a
// partner's blinded set in which values seen in the logs are planted
// among decoys: an address, a network around another address, a domain's
// parent, a URL, and the blind match must find exactly the hits that the
// plain matcher finds with the same indicators in the clear, no more.
// Every hit's blinded reference resolves, at the node, to the planted
// indicator it came from.
func TestZeekPlanted(t *testing.T) {
	dir := testutil.SharedData(t, "logs", "zeek", "slips-test9-mixed")
	logs := zeekInputs(t, dir, "conn.log", "dns.log", "http.log")
	ctx := context.Background()
	p := DefaultParams()
	observed, stats, err := Collect(ctx, p, logs, sensor.Options{})
	if err != nil || stats.Bad != 0 || stats.Lines < 1000 {
		t.Fatalf("collect: %v, %+v", err, stats)
	}
	slices.Sort(observed)
	byTag := map[string][]string{}
	for _, in := range observed {
		tag, v, _ := strings.Cut(in, "\x00")
		byTag[tag] = append(byTag[tag], v)
	}
	for _, tag := range []string{"ipv4", "domain", "url"} {
		if len(byTag[tag]) < 10 {
			t.Fatalf("the logs have only %d %s values", len(byTag[tag]), tag)
		}
	}
	// Planted: values the logs hold. Decoys: values they do not.
	addr := byTag["ipv4"][len(byTag["ipv4"])/3]
	netAddr := mustAddr(t, byTag["ipv4"][2*len(byTag["ipv4"])/3])
	network, _ := netAddr.Prefix(20)
	var parent string
	for _, d := range byTag["domain"] {
		if strings.Count(d, ".") >= 2 {
			parent = d[strings.IndexByte(d, '.')+1:]
			break
		}
	}
	u := "http://" + byTag["url"][len(byTag["url"])/2]
	planted := []Indicator{
		{Ref: 1, Kind: observable.IPv4, Value: addr},
		{Ref: 2, Kind: observable.CIDR4, Value: network.String()},
		{Ref: 3, Kind: observable.Domain, Value: parent},
		{Ref: 4, Kind: observable.URL, Value: u},
	}
	decoys := sampleIndicators(300)
	for i := range decoys {
		decoys[i].Ref += 100
	}
	all := append(slices.Clone(planted), decoys...)
	t.Logf("planted: %v", planted)

	// The plain matcher, with the same indicators in the clear.
	pb := match.NewBuilder()
	for _, it := range all {
		r, _ := pb.Indicator(fmt.Sprintf("indicator--%d", it.Ref))
		if err := pb.Add(it.Kind, it.Value, r); err != nil {
			t.Fatal(err)
		}
	}
	var plainOut bytes.Buffer
	now := func() time.Time { return time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC) }
	plainRes, err := match.Run(ctx, match.Options{Snapshot: pb.Snapshot(), Logs: logs, Hits: &plainOut, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	plain, plainAll := readHits(t, plainOut.Bytes())

	// The blind path: node A holds the indicators, partner B matches.
	srv := newTestServer(t)
	if probs, err := srv.Update(ctx, "B", all, nil); err != nil || len(probs) != 0 {
		t.Fatal(err, probs)
	}
	tr := NewTranslator(&LocalPeer{Server: srv, Partner: "B", Budget: Budget{Limit: 100000, Period: 24 * time.Hour}})
	var blindOut bytes.Buffer
	res, err := Match(ctx, tr, MatchOptions{Logs: logs, Hits: &blindOut, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	blind, blindAll := readHits(t, blindOut.Bytes())
	if res.Translate.Left != 0 || res.Inputs != len(observed) {
		t.Fatalf("translation: %+v for %d inputs", res.Translate, len(observed))
	}

	if len(plainAll) == 0 || plainRes.Hits != int64(len(plainAll)) {
		t.Fatalf("plain matcher: %d hits", len(plainAll))
	}
	if len(blind) != len(plain) || len(blindAll) != len(plainAll) {
		t.Errorf("blind match: %d hits on %d (line, value) pairs; plain: %d on %d", len(blindAll), len(blind), len(plainAll), len(plain))
	}
	for k, hs := range plain {
		if _, ok := blind[k]; !ok {
			t.Errorf("missed %s:%d %s (%s)", k.file, k.line, k.observed, hs[0].Indicator)
		}
	}
	seen := map[uint32]bool{}
	for k, hs := range blind {
		if _, ok := plain[k]; !ok {
			t.Errorf("extra hit %s:%d %s", k.file, k.line, k.observed)
		}
		for _, h := range hs {
			ref, err := ParseRef(h.Indicator)
			if err != nil {
				t.Fatalf("hit names %q: %v", h.Indicator, err)
			}
			refs := srv.Resolve("B", ref)
			if len(refs) != 1 || refs[0] > 4 {
				t.Fatalf("reference %s resolves to %v, want one planted indicator", ref, refs)
			}
			seen[refs[0]] = true
		}
	}
	for _, it := range planted {
		if !seen[it.Ref] {
			t.Errorf("planted %s %s was not hit", it.Kind, it.Value)
		}
	}
	if _, spent := tr.Translated(); spent != int64(len(observed)) {
		t.Errorf("spent %d evaluations for %d distinct inputs", spent, len(observed))
	}
	// A second run in the same epoch costs nothing.
	res2, err := Match(ctx, tr, MatchOptions{Logs: logs, Now: now})
	if err != nil || res2.Translate.Evaluated != 0 || res2.Hits != res.Hits {
		t.Errorf("second run: %v, %+v, hits %d (first %d)", err, res2.Translate, res2.Hits, res.Hits)
	}
}

// naiveCollector is the reference of Collect: every value of every line
// through Params.Observed.
type naiveCollector struct {
	p  Params
	mu *sync.Mutex
	in map[string]bool
}

func (n naiveCollector) Line(_ *sensor.Chunk, _ int64, _ []byte, obs []sensor.Obs, _ sensor.Parser) {
	n.mu.Lock()
	for _, o := range obs {
		for _, in := range n.p.Observed(o, nil) {
			n.in[in] = true
		}
	}
	n.mu.Unlock()
}

func (naiveCollector) ChunkDone(*sensor.Chunk) {}

// TestCollectMatchesObserved: Collect's fast paths (IPv4 addresses kept
// as numbers) find exactly the inputs that Params.Observed gives for
// every value of every line, on every real Zeek log and for other prefix
// lengths.
func TestCollectMatchesObserved(t *testing.T) {
	ctx := context.Background()
	for _, set := range []string{"slips-test9-mixed", "slips-test10-mixed"} {
		dir := testutil.SharedData(t, "logs", "zeek", set)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".log") {
				names = append(names, e.Name())
			}
		}
		logs := zeekInputs(t, dir, names...)
		for _, p := range []Params{DefaultParams(), {V4Lengths: []int{12, 20, 28}, V6Lengths: []int{48}}} {
			got, _, err := Collect(ctx, p, logs, sensor.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ref := naiveCollector{p: p, mu: &sync.Mutex{}, in: map[string]bool{}}
			if _, err := sensor.Scan(ctx, logs, sensor.Options{}, func(int) sensor.Handler { return ref }); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, in := range got {
				if seen[in] {
					t.Errorf("%s: %q twice", set, in)
				}
				seen[in] = true
				if !ref.in[in] {
					t.Errorf("%s %v: Collect gives %q, which no value needs", set, p, in)
				}
			}
			for in := range ref.in {
				if !seen[in] {
					t.Errorf("%s %v: Collect misses %q", set, p, in)
				}
			}
			if len(got) < 100 {
				t.Errorf("%s: only %d inputs", set, len(got))
			}
		}
	}
}
