package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/dashboard"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/store/storetest"
)

// The benchmark store: benchObjects objects in all, benchAlerts of them
// alerts, each raised by two organisations of one country sighting an
// indicator of its own (benchCountries countries, two organisations
// each).
const (
	benchObjects   = 1_000_000
	benchAlerts    = 10_000
	benchCountries = 20
)

var benchCC = []string{"FR", "DE", "IT", "ES", "NL", "BE", "PL", "SE", "AT", "PT", "FI", "DK", "IE", "CZ", "RO", "HU", "GR", "BG", "HR", "SK"}

func benchOrg(country, k int) string {
	return fmt.Sprintf("identity--0b1b2c3d-0000-4000-9000-%06x%06x", country, k)
}

func benchIndicator(i int) string {
	return fmt.Sprintf("indicator--0b1b2c3d-0000-4000-8000-%012x", i)
}

func benchIndicatorJSON(i int, ts string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"name":"Bench threat %d","pattern":"[ipv4-addr:value = '192.0.%d.%d']","pattern_type":"stix","valid_from":%q}`,
		benchIndicator(i), ts, ts, i, i>>8&255, i&255, ts))
}

func benchSightings(i int, seen time.Time) []json.RawMessage {
	return sightingsOf(benchIndicator(i), i%benchCountries, fmt.Sprintf("%012x", i), seen)
}

// sightingsOf is the sightings of indicator by the two organisations of
// country c; uniq (12 hex digits) makes their ids.
func sightingsOf(indicator string, c int, uniq string, seen time.Time) []json.RawMessage {
	ts := seen.Format("2006-01-02T15:04:05.000Z")
	var out []json.RawMessage
	for k := range 2 {
		out = append(out, json.RawMessage(fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":"sighting--0b1b2c3d-0000-4000-a%03d-%s","created":%q,"modified":%q,"first_seen":%q,"last_seen":%q,"count":1,"sighting_of_ref":%q,"where_sighted_refs":[%q]}`,
			k, uniq, ts, ts, ts, ts, indicator, benchOrg(c, k))))
	}
	return out
}

// benchDir returns the directory of the benchmark store, building it
// the first time (a few minutes): $ENTENTE_BENCH_DIR, else a directory
// under the system's temporary directory that later runs reuse.
func benchDir(b *testing.B) string {
	dir := os.Getenv("ENTENTE_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "entente-dashboard-bench-1M")
	}
	if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	buildBenchStore(b, dir, benchObjects, benchAlerts)
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// buildBenchStore fills a node's store in dir with objects objects in
// all, alerts of them alerts (and 1,000 spare threats), and checks that
// the node raised every alert.
func buildBenchStore(b testing.TB, dir string, objects, alerts int) {
	ctx := context.Background()
	start := time.Now()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc := node.New(st, node.Config{}, nil)
	id, _, err := svc.Init(ctx, "Bench CERT", "FR", "")
	if err != nil {
		b.Fatal(err)
	}
	svc = node.New(st, node.Config{Org: id.ID}, nil)
	admin := node.LocalAdmin(id.ID)
	var objs []json.RawMessage
	for c, cc := range benchCC {
		for k := range 2 {
			objs = append(objs, json.RawMessage(fmt.Sprintf(`{"type":"identity","spec_version":"2.1","id":%q,"created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","name":"Org %s %d","identity_class":"organization","x_entente_country":%q}`, benchOrg(c, k), cc, k, cc)))
		}
	}
	ts := time.Now().UTC().Add(-48 * time.Hour).Format("2006-01-02T15:04:05.000Z")
	for i := range alerts + 1000 { // 1,000 spare threats for BenchmarkAlertToMap
		objs = append(objs, benchIndicatorJSON(i, ts))
	}
	if st, err := svc.AddObjects(ctx, admin, node.CollectionIntel, objs); err != nil || st.FailureCount > 0 {
		b.Fatalf("threats: %v %+v", err, st)
	}
	// Filler: generated indicators, straight into the store.
	intel, err := svc.Collection(ctx, admin, node.CollectionIntel)
	if err != nil {
		b.Fatal(err)
	}
	filler := objects - len(objs) - 3*alerts
	at := time.Now().UTC().Add(-72 * time.Hour)
	batch := make([]*stix.Object, 0, 10000)
	for i := 0; i < filler; i += cap(batch) {
		batch = batch[:0]
		for j := i; j < min(filler, i+cap(batch)); j++ {
			batch = append(batch, storetest.GenIndicator(j, at))
		}
		if _, err := st.AddObjects(ctx, intel.ID, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("filled %d objects in %v", filler+len(objs), time.Since(start))
	// Alerts: sightings through the node, which correlates them. The
	// node's own sensors vouch for France's organisations; each other
	// country's are pushed by a partner of that country (its CERT): one
	// source may raise a national alert only in its own country.
	reporters := make([]entente.Principal, benchCountries)
	reporters[0] = entente.Principal{KeyID: "bench", Org: id.ID, Role: entente.RoleSensor}
	for c := 1; c < benchCountries; c++ {
		cert := fmt.Sprintf("identity--0b1b2c3d-0000-4000-a000-%012x", c)
		if err := svc.PutPartner(ctx, admin, policy.Party{ID: cert, Name: "CERT " + benchCC[c], Country: benchCC[c]}); err != nil {
			b.Fatal(err)
		}
		_, k, err := svc.CreateKey(ctx, admin, node.NewKey{Name: "cert " + benchCC[c], Role: entente.RolePartner, Org: cert})
		if err != nil {
			b.Fatal(err)
		}
		reporters[c] = entente.Principal{KeyID: k.ID, Org: k.Org, Role: k.Role}
	}
	seen := time.Now().UTC().Add(-2 * time.Hour)
	for i := 0; i < alerts; i += 500 {
		byCountry := make([][]json.RawMessage, benchCountries)
		for j := i; j < min(alerts, i+500); j++ {
			byCountry[j%benchCountries] = append(byCountry[j%benchCountries], benchSightings(j, seen)...)
		}
		for c, sg := range byCountry {
			if len(sg) == 0 {
				continue
			}
			// The node's own sensor reports through the sensor API's
			// path (AddSightings, which correlates what it stored); a
			// partner's push is correlated once durable.
			add := svc.AddObjects
			if c == 0 {
				add = func(ctx context.Context, p entente.Principal, _ string, objs []json.RawMessage) (*entente.Status, error) {
					return svc.AddSightings(ctx, p, objs)
				}
			}
			if st, err := add(ctx, reporters[c], node.CollectionSightings, sg); err != nil || st.FailureCount > 0 {
				b.Fatalf("sightings of %s: %v %+v", benchCC[c], err, st)
			}
		}
	}
	if err := svc.WaitIdle(ctx); err != nil {
		b.Fatal(err)
	}
	list, err := svc.ListAlerts(ctx, admin, node.AlertFilter{})
	if err != nil || len(list) != alerts {
		b.Fatalf("%d alerts (%v), want %d", len(list), err, alerts)
	}
	b.Logf("built the benchmark store (%d objects, %d alerts) in %v", objects, len(list), time.Since(start))
}

// benchCold is how long the first overview took after the node
// started; benchReplay how long correlation then took to replay the
// stored sightings.
var benchCold, benchReplay time.Duration

// benchServer starts a node on the benchmark store with the dashboard,
// and returns its URL, the service and an analyst's key.
func benchServer(b *testing.B) (string, *node.Service, string) {
	dir := benchDir(b)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	svc := node.New(st, node.Config{}, nil)
	id, err := svc.Identity(ctx)
	if err != nil {
		b.Fatal(err)
	}
	svc = node.New(st, node.Config{Org: id.ID}, nil)
	key, _, err := svc.CreateKey(ctx, node.LocalAdmin(id.ID), node.NewKey{Name: "bench analyst", Role: entente.RoleAnalyst})
	if err != nil {
		b.Fatal(err)
	}
	// The first overview after a start does not wait for correlation,
	// which replays the stored sightings in the background; wait for
	// that, so that benchmarks measure a node in its steady state.
	admin := node.LocalAdmin(id.ID)
	t0 := time.Now()
	if _, err := svc.Overview(ctx, admin, 24*time.Hour, 24, time.Time{}); err != nil {
		b.Fatal(err)
	}
	benchCold = time.Since(t0)
	for {
		o, err := svc.Overview(ctx, admin, time.Hour, 1, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		if !o.Replaying {
			break
		}
		time.Sleep(time.Second)
	}
	benchReplay = time.Since(t0)
	dash := dashboard.New(svc, dashboard.Options{})
	srv := httptest.NewServer(httpapi.New(svc, httpapi.Options{Dashboard: dash}, nil, nil))
	b.Cleanup(func() { dash.Close(); srv.Close() })
	return srv.URL, svc, key
}

// BenchmarkFirstScreen measures, over HTTP, every request the first
// screen makes (the page, its script, style and map, the session and
// the overview of the last 24 hours) on a store of 1,000,000 objects
// and 10,000 alerts. The node's first overview, which replays the
// stored sightings into correlation, is reported apart as cold-ms.
func BenchmarkFirstScreen(b *testing.B) {
	base, _, key := benchServer(b)
	c := &http.Client{}
	// Sign in.
	req, _ := http.NewRequest("POST", base+"/ui/api/login", strings.NewReader(`{"key":"`+key+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("sign in: %v %v", err, resp)
	}
	cookie := resp.Cookies()[0]
	resp.Body.Close()
	get := func(path string) []byte {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.AddCookie(cookie)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %s", path, resp.Status)
		}
		return body
	}
	var bytes int
	for b.Loop() {
		bytes = 0
		for _, p := range []string{"/ui/", "/ui/static/app.js", "/ui/static/app.css", "/ui/api/session", "/ui/api/overview?window=24h&buckets=24", "/ui/static/world.json"} {
			bytes += len(get(p))
		}
	}
	b.ReportMetric(float64(bytes), "bytes/screen")
	b.ReportMetric(float64(benchCold.Microseconds())/1000, "cold-ms")
	b.ReportMetric(float64(benchReplay.Milliseconds())/1000, "replay-s")
}

// BenchmarkFirstScreenBrowser measures, in headless Chromium, from
// opening /ui/ (signed in) to the overview drawn: counts and map.
func BenchmarkFirstScreenBrowser(b *testing.B) {
	base, _, key := benchServer(b)
	ctx := benchBrowser(b)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#login-key")),
		chromedp.SendKeys(chromedp.CSS("#login-key"), key), chromedp.Click(chromedp.CSS("#login-btn")),
		chromedp.WaitVisible(chromedp.CSS(`svg.map path[data-cc="FR"]`))); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/#/overview"),
			chromedp.WaitVisible(chromedp.CSS("#count-sightings")),
			chromedp.WaitVisible(chromedp.CSS(`svg.map path[data-cc="FR"]`))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAlertToMap measures, in headless Chromium on the overview,
// from posting the sightings that raise a new alert in France to the
// map showing one more alert there.
func BenchmarkAlertToMap(b *testing.B) {
	base, svc, key := benchServer(b)
	ctx := benchBrowser(b)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#login-key")),
		chromedp.SendKeys(chromedp.CSS("#login-key"), key), chromedp.Click(chromedp.CSS("#login-btn")),
		chromedp.WaitVisible(chromedp.CSS(`svg.map path[data-cc="FR"]`))); err != nil {
		b.Fatal(err)
	}
	id, _ := svc.Identity(context.Background())
	sensor := entente.Principal{KeyID: "bench", Org: id.ID, Role: entente.RoleSensor}
	var total, posted time.Duration
	n := 0
	for b.Loop() {
		b.StopTimer()
		before, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('svg.map path[data-cc="FR"]').dataset.alerts || "0"`))
		if err != nil {
			b.Fatal(err)
		}
		prev, _ := strconv.Atoi(before)
		// A new threat, sighted by the two organisations in France.
		uniq := fmt.Sprintf("%012x", time.Now().UnixNano()&0xffffffffffff)
		ind := "indicator--0b1b2c3d-0000-4000-8fff-" + uniq
		ts := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04:05.000Z")
		raw := json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"pattern":"[domain-name:value = 'x%s.example']","pattern_type":"stix","valid_from":%q}`, ind, ts, ts, uniq, ts))
		if st, err := svc.AddObjects(context.Background(), node.LocalAdmin(id.ID), node.CollectionIntel, []json.RawMessage{raw}); err != nil || st.FailureCount > 0 {
			b.Fatalf("threat: %v %+v", err, st)
		}
		b.StartTimer()
		t0 := time.Now()
		if st, err := svc.AddSightings(context.Background(), sensor, sightingsOf(ind, 0, uniq, time.Now().UTC().Add(-time.Minute))); err != nil || st.FailureCount > 0 {
			b.Fatalf("sightings: %v %+v", err, st)
		}
		posted += time.Since(t0)
		sel := fmt.Sprintf(`svg.map path[data-cc="FR"][data-alerts="%d"]`, prev+1)
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(sel)))
		cancel()
		if err != nil {
			b.Fatalf("waiting for %s: %v", sel, err)
		}
		total += time.Since(t0)
		n++
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(n), "ms-to-map")
	// Of which storing and correlating the sightings, before any event.
	b.ReportMetric(float64(posted.Microseconds())/1000/float64(n), "ms-post")
}

func benchBrowser(b *testing.B) context.Context {
	if _, err := os.Stat(chromiumPath); err != nil {
		b.Skipf("needs %s", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(b.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		b.Fatal(err)
	}
	return ctx
}

// BenchmarkSearchAndObject measures, through the node, a search by value
// (the indicator whose pattern holds it, from the compiled snapshot of
// about 971,000 indicators, and its observable by SCO id) and the
// indicator's page, on the benchmark store. The first search compiles
// and decodes the snapshot: reported as cold-s.
func BenchmarkSearchAndObject(b *testing.B) {
	_, svc, _ := benchServer(b)
	ctx := context.Background()
	id, _ := svc.Identity(ctx)
	analyst := entente.Principal{KeyID: "bench", Org: id.ID, Role: entente.RoleAnalyst}
	t0 := time.Now()
	res, err := svc.Search(ctx, analyst, "192.0.0.5")
	if err != nil || len(res) != 1 || res[0].ID != benchIndicator(5) {
		b.Fatalf("search: %v %+v", err, res)
	}
	cold := time.Since(t0)
	for b.Loop() {
		res, err := svc.Search(ctx, analyst, "192.0.0.5")
		if err != nil || len(res) != 1 {
			b.Fatalf("search: %v %+v", err, res)
		}
		d, err := svc.ObjectDetail(ctx, analyst, res[0].ID)
		if err != nil || len(d.Sightings) != 2 {
			b.Fatalf("object: %v, %d sightings", err, len(d.Sightings))
		}
	}
	b.ReportMetric(cold.Seconds(), "cold-s")
}

// TestBenchStoreRaisesEveryAlert builds a small benchmark store as the
// benchmarks build theirs: every threat sighted by two organisations of
// one country becomes an alert, those of other countries than the
// node's pushed by a partner of that country (the node's own sensors
// alone may raise a national alert only in its own country).
func TestBenchStoreRaisesEveryAlert(t *testing.T) {
	buildBenchStore(t, t.TempDir(), 20_000, 1_200) // three batches of 500: the first alone hid that the own sensor's later ones went uncorrelated
}
