package dashboard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium for the test, or skips the test
// when there is none (outside CI).
func browser(t testing.TB) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but %s is missing: .ci/run installs the chromium package", chromiumPath)
		}
		t.Skipf("end-to-end tests need %s (apt-get install chromium); skipped", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return ctx
}

// artifacts is where screenshots go: $ENTENTE_ARTIFACTS/dashboard when
// set (CI keeps it), else the test's artifact directory (kept under the
// output directory with go test -artifacts).
func artifacts(t *testing.T) string {
	if d := os.Getenv("ENTENTE_ARTIFACTS"); d != "" {
		dir := filepath.Join(d, "dashboard")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.ArtifactDir()
}

func screenshot(t *testing.T, dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return fmt.Errorf("screenshot %s: %w", name, err)
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
	})
}

// into runs a, storing its value in dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		v, err := a(ctx, tg)
		*dst = v
		return err
	})
}

// step runs actions, failing the test with the step's name.
func step(t testing.TB, ctx context.Context, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		// What the page showed, for the artifacts.
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("main").innerText`))
		t.Fatalf("%s: %v; the page shows:\n%s", name, err, html)
	}
}

func signIn(t testing.TB, ctx context.Context, base, key string) {
	step(t, ctx, "sign in",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#login-key")),
		chromedp.SendKeys(chromedp.CSS("#login-key"), key),
		chromedp.Click(chromedp.CSS("#login-btn")),
		chromedp.WaitVisible(chromedp.CSS("#count-sightings")),
		chromedp.WaitVisible(chromedp.CSS(`svg.map path[data-cc="FR"]`)),
	)
}

// TestDashboardInBrowser drives the dashboard in headless Chromium: sign
// in; sightings posted by a sensor raise an alert that appears on the
// map and in the list without reloading; acknowledge it; search for an
// indicator and open it; sign out; then the same on a narrow screen.
func TestDashboardInBrowser(t *testing.T) {
	ctx := browser(t)
	tn := newTestNode(t)
	base := tn.srv.URL
	dir := artifacts(t)
	t.Logf("screenshots in %s", dir)

	signIn(t, ctx, base, tn.keys[entente.RoleAnalyst])
	var shown string
	step(t, ctx, "overview", screenshot(t, dir, "01-overview-empty"), into(&shown, chromedp.Text(chromedp.CSS("#view"))))
	if strings.Contains(shown, "null") || strings.Contains(shown, "undefined") {
		t.Fatalf("the overview shows a JavaScript null: %q", shown)
	}
	var alerted int
	step(t, ctx, "no alert yet", into(&alerted, chromedp.Evaluate[int](`document.querySelectorAll("svg.map path.alerted").length`)))
	if alerted != 0 {
		t.Fatalf("%d countries shaded as alerted before any sighting", alerted)
	}

	// Two organisations in France sight threat 0: a national alert. The
	// map shows it without a reload.
	start := time.Now()
	tn.postSightings(t, sightingsBundle(0, 0, 1))
	step(t, ctx, "alert on the map",
		chromedp.WaitVisible(chromedp.CSS(`svg.map path[data-cc="FR"].alerted[data-alerts="1"]`)))
	t.Logf("map updated %v after the sightings were posted", time.Since(start).Round(time.Millisecond))
	var open string
	step(t, ctx, "counts", into(&open, chromedp.Text(chromedp.CSS("#count-open"))), screenshot(t, dir, "02-overview-alert"))
	if open != "1" {
		t.Fatalf("open alerts shows %q, want 1", open)
	}

	// On the alerts page, a second threat sighted in France and Germany
	// appears in the list without a reload.
	step(t, ctx, "alerts list",
		chromedp.Click(chromedp.CSS(`#nav a[data-page="alerts"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#alerts-table tbody tr[data-id]`)))
	var rows int
	step(t, ctx, "count rows", into(&rows, chromedp.Evaluate[int](`document.querySelectorAll("#alerts-table tbody tr").length`)))
	if rows != 1 {
		t.Fatalf("alerts list has %d rows, want 1", rows)
	}
	tn.postSightings(t, sightingsBundle(1, 0, 1, 2))
	step(t, ctx, "second alert in the list",
		chromedp.WaitVisible(chromedp.CSS(`#alerts-table tbody tr:nth-child(2)`)),
		screenshot(t, dir, "03-alerts"))

	// Open the first alert and acknowledge it.
	var status string
	step(t, ctx, "acknowledge",
		chromedp.Click(chromedp.CSS(`#alerts-table tbody tr[data-status="new"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#ack-btn:not([disabled])`)),
		chromedp.WaitVisible(chromedp.CSS(`#alert-sightings tbody tr`)),
		screenshot(t, dir, "04-alert-detail"),
		chromedp.Click(chromedp.CSS(`#ack-btn`)),
		chromedp.WaitVisible(chromedp.CSS(`#alert-status.status-acknowledged`)),
		into(&status, chromedp.Text(chromedp.CSS(`#alert-status`))))
	if status != "acknowledged" {
		t.Fatalf("alert status %q after acknowledging", status)
	}

	// Search for the first threat's address and open its indicator.
	var objectID string
	step(t, ctx, "search",
		chromedp.Click(chromedp.CSS(`#nav a[data-page="search"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#search-input`)),
		chromedp.SendKeys(chromedp.CSS(`#search-input`), threats[0].ip+"\n"),
		chromedp.WaitVisible(chromedp.CSS(`#search-results tbody tr a`)),
		screenshot(t, dir, "05-search"),
		chromedp.Click(chromedp.CSS(`#search-results tbody tr a`)),
		chromedp.WaitVisible(chromedp.CSS(`#object-json`)),
		into(&objectID, chromedp.Text(chromedp.CSS(`#object-id`))),
		screenshot(t, dir, "06-object"))
	if objectID != threats[0].indicator {
		t.Fatalf("search opened %q, want %s", objectID, threats[0].indicator)
	}

	// Sign out: the session ends on the server, not only in the page.
	var after int
	step(t, ctx, "sign out",
		chromedp.Click(chromedp.CSS(`#signout`)),
		chromedp.WaitVisible(chromedp.CSS(`#login-key`)),
		into(&after, chromedp.Evaluate[int](`fetch("api/session").then(r => r.status)`, chromedp.EvalAwaitPromise)))
	if after != 401 {
		t.Fatalf("after signing out, the session answers %d, want 401", after)
	}

	// A narrow screen (a phone): the pages fit its width.
	step(t, ctx, "narrow viewport", chromedp.EmulateViewport(375, 740))
	signIn(t, ctx, base, tn.keys[entente.RoleAnalyst])
	for _, page := range []string{"overview", "alerts", "search", "browse", "matrix", "indicator", "partners"} {
		var overflow bool
		var text string
		step(t, ctx, "narrow "+page,
			chromedp.Click(chromedp.CSS(`#nav a[data-page="`+page+`"]`)),
			chromedp.Sleep(300*time.Millisecond),
			into(&overflow, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)),
			into(&text, chromedp.Text(chromedp.CSS("#view"))),
			screenshot(t, dir, "07-narrow-"+page))
		if overflow {
			t.Errorf("on a 375-pixel screen, the %s page is wider than the screen", page)
		}
		if strings.Contains(text, "null") || strings.Contains(text, "undefined") {
			t.Errorf("the %s page shows a JavaScript null: %q", page, text)
		}
	}
}

// TestDashboardRefusesOtherRoles: sensor and partner keys cannot sign
// in, in the browser either.
func TestDashboardRefusesOtherRoles(t *testing.T) {
	ctx := browser(t)
	tn := newTestNode(t)
	var msg string
	step(t, ctx, "sensor key",
		chromedp.Navigate(tn.srv.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#login-key")),
		chromedp.SendKeys(chromedp.CSS("#login-key"), tn.keys[entente.RoleSensor]),
		chromedp.Click(chromedp.CSS("#login-btn")),
		chromedp.WaitVisible(chromedp.CSS("#login-error:not(:empty)")),
		into(&msg, chromedp.Text(chromedp.CSS("#login-error"))))
	if !strings.Contains(msg, "analyst and admin") {
		t.Fatalf("sensor sign-in message %q", msg)
	}
}

// TestDashboardAdminPagesInBrowser: an admin sees each partner with its
// agreement and the preview of what it would receive and why, the peers,
// the audit log and the feeds; an analyst sees partners and agreements
// only.
func TestDashboardAdminPagesInBrowser(t *testing.T) {
	tn := newTestNode(t)
	ctx := browser(t)
	dir := artifacts(t)
	bg := context.Background()
	id, _ := tn.svc.Identity(bg)
	admin := node.LocalAdmin(id.ID)
	party := policy.Party{ID: orgID(2), Name: "CERT Partner", Country: "DE"}
	if err := tn.svc.PutPartner(bg, admin, party); err != nil {
		t.Fatal(err)
	}
	intel, err := tn.svc.Collection(bg, admin, node.CollectionIntel)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tn.svc.PutAgreement(bg, admin, policy.Agreement{Partner: party, Collections: []string{intel.ID}, MaxTLP: stix.TLPGreen}); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.svc.AddFeed(bg, admin, store.Feed{Name: "local list", URL: "http://127.0.0.1:9/list.txt", Format: "plain", Collection: node.CollectionIntel}); err != nil {
		t.Fatal(err)
	}

	signIn(t, ctx, tn.srv.URL, tn.keys[entente.RoleAdmin])
	var partner, withheld string
	step(t, ctx, "partners and preview",
		chromedp.Click(chromedp.CSS(`#nav a[data-page="partners"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#partners tbody tr`)),
		into(&partner, chromedp.Text(chromedp.CSS(`#partners tbody tr`))),
		chromedp.Click(chromedp.CSS(`#partners tbody tr button`)),
		chromedp.WaitVisible(chromedp.CSS(`#preview table tbody tr`)),
		into(&withheld, chromedp.Text(chromedp.CSS(`#preview`))),
		chromedp.WaitVisible(chromedp.CSS(`#peers`)),
		screenshot(t, dir, "10-partners"))
	if !strings.Contains(partner, "CERT Partner") || !strings.Contains(partner, "up to TLP:GREEN") {
		t.Errorf("partner row %q", partner)
	}
	// The fixture's indicators are marked TLP:AMBER, above the agreement's
	// GREEN: the preview says they are withheld, and why.
	if !strings.Contains(withheld, "withheld") || !strings.Contains(withheld, threats[0].indicator) {
		t.Errorf("preview %q", withheld)
	}
	var audit, feeds string
	step(t, ctx, "audit and feeds",
		chromedp.Click(chromedp.CSS(`#nav a[data-page="audit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#audit tbody tr`)),
		chromedp.WaitVisible(chromedp.CSS(`#feeds tbody tr`)),
		into(&audit, chromedp.Text(chromedp.CSS(`#audit`))),
		into(&feeds, chromedp.Text(chromedp.CSS(`#feeds`))),
		screenshot(t, dir, "11-audit"))
	if !strings.Contains(audit, "agreement.put") || !strings.Contains(feeds, "local list") {
		t.Errorf("audit %q, feeds %q", audit, feeds)
	}

	step(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`#signout`)), chromedp.WaitVisible(chromedp.CSS(`#login-key`)))
	// An analyst sees partners and agreements (the node lets analysts
	// read them), with the collections named by their alias, and neither
	// peers nor the audit log (admin only).
	signIn(t, ctx, tn.srv.URL, tn.keys[entente.RoleAnalyst])
	var seen string
	var peers int
	step(t, ctx, "analyst on partners",
		chromedp.Click(chromedp.CSS(`#nav a[data-page="partners"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#partners tbody tr`)),
		into(&seen, chromedp.Text(chromedp.CSS(`#view`))),
		into(&peers, chromedp.Evaluate[int](`document.querySelectorAll("#peers").length`)),
		screenshot(t, dir, "12-partners-analyst"))
	if !strings.Contains(seen, "collections: intel") || strings.Contains(seen, intel.ID) || strings.Contains(seen, "requires the admin role") || peers != 0 {
		t.Errorf("analyst on the partners page sees %q (%d peer tables); want the collections' aliases, no peers, no refusal", seen, peers)
	}
}
