package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/testutil"
)

// loadAttack stores the real ATT&CK Enterprise bundle in the node's
// intel collection.
func loadAttack(t testing.TB, tn *testNode) {
	t.Helper()
	data := testutil.SharedGzip(t, "attack", "enterprise-attack-18.1.json.gz")
	var objs []json.RawMessage
	if err := stix.ScanBundle(data, func(_ int, raw json.RawMessage) error {
		objs = append(objs, raw)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, _ := tn.svc.Identity(ctx)
	start := time.Now()
	for i := 0; i < len(objs); i += 2000 {
		if _, err := tn.svc.AddObjects(ctx, node.LocalAdmin(id.ID), node.CollectionIntel, objs[i:min(len(objs), i+2000)]); err != nil {
			t.Fatalf("store ATT&CK: %v", err)
		}
	}
	t.Logf("stored %d ATT&CK objects in %v", len(objs), time.Since(start).Round(time.Millisecond))
}

// TestWorkbenchOnNodeInBrowser drives the workbench on a real node
// holding ATT&CK, through the node API the dashboard forwards to: search
// "APT28" and open it; its graph and the matrix filtered by it; a note
// and an opinion on it; an indicator with a broken pattern (the node's
// error shown at its column), fixed, saved and marked a false positive.
func TestWorkbenchOnNodeInBrowser(t *testing.T) {
	ctx := browser(t)
	tn := newTestNode(t)
	loadAttack(t, tn)
	dir := artifacts(t)
	cons := watchConsole(t, ctx)
	signIn(t, ctx, tn.srv.URL, tn.keys[entente.RoleAnalyst])

	var title string
	step(t, ctx, "search APT28",
		chromedp.Click(chromedp.CSS(`#nav a[data-page="search"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#search-input`)),
		chromedp.SendKeys(chromedp.CSS(`#search-input`), "APT28\n"),
		chromedp.WaitVisible(chromedp.CSS(`#search-results tbody tr a`)))
	shows(t, ctx, dir, "50-node-search")
	step(t, ctx, "open APT28",
		chromedp.Click(chromedp.CSS(`#search-results tbody tr[data-id="`+apt28+`"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#object-title`)),
		into(&title, chromedp.Text(chromedp.CSS(`#object-title`))))
	page := shows(t, ctx, dir, "51-node-object")
	if title != "APT28" || !strings.Contains(page, "uses") {
		t.Errorf("the object page is titled %q, want APT28 with its relationships", title)
	}
	step(t, ctx, "note and opinion",
		chromedp.SendKeys(chromedp.CSS(`#note-content`), "Seen in our sector."),
		chromedp.Click(chromedp.CSS(`#note-add`)),
		poll(`document.getElementById("action-status") && document.getElementById("action-status").textContent === "note added"`),
		chromedp.SendKeys(chromedp.CSS(`#opinion-explanation`), "matches our telemetry"),
		chromedp.Click(chromedp.CSS(`#opinion-add`)),
		poll(`document.getElementById("action-status").textContent === "opinion added"`))
	shows(t, ctx, dir, "52-node-annotated")
	cons.check(t, "search, object and annotations")

	var nodes, techniques, inFilter int
	step(t, ctx, "graph",
		chromedp.Navigate(tn.srv.URL+"/ui/#/graph/"+apt28),
		chromedp.WaitVisible(chromedp.CSS(`#graph-canvas[data-nodes]`)),
		into(&nodes, chromedp.Evaluate[int](`Number(document.getElementById("graph-canvas").dataset.nodes)`)))
	if nodes < 50 {
		t.Errorf("APT28's graph holds %d objects", nodes)
	}
	shows(t, ctx, dir, "53-node-graph")
	step(t, ctx, "matrix",
		chromedp.Navigate(tn.srv.URL+"/ui/#/matrix?filter="+apt28+"&name=APT28"),
		chromedp.WaitVisible(chromedp.CSS(`#matrix .tech`)),
		into(&techniques, chromedp.Evaluate[int](`document.querySelectorAll("#matrix .tech").length`)),
		into(&inFilter, chromedp.Evaluate[int](`document.querySelectorAll("#matrix .tech.in").length`)))
	if techniques < 200 || inFilter < 10 {
		t.Errorf("the matrix shows %d techniques, %d of APT28's", techniques, inFilter)
	}
	shows(t, ctx, dir, "54-node-matrix")
	cons.check(t, "graph and matrix")

	broken := "[ipv4-addr:value = '198.51.100.7' AND]"
	_, _, col := validate(broken)
	var caret, status string
	step(t, ctx, "broken pattern",
		chromedp.Navigate(tn.srv.URL+"/ui/#/indicator/new"),
		chromedp.WaitVisible(chromedp.CSS(`#ind-pattern`)),
		chromedp.SendKeys(chromedp.CSS(`#ind-name`), "Test C2"),
		chromedp.SendKeys(chromedp.CSS(`#ind-pattern`), broken),
		chromedp.WaitVisible(chromedp.CSS(`#pattern-caret`)),
		// The caret of the whole pattern, not of a prefix checked while
		// it was being typed (a slow machine shows that one first).
		poll(fmt.Sprintf(`document.getElementById("pattern-caret").textContent.split("\n")[0] === %q`, broken)),
		into(&caret, chromedp.TextContent(chromedp.CSS(`#pattern-caret`))))
	shows(t, ctx, dir, "55-node-indicator-broken")
	if lines := strings.Split(caret, "\n"); len(lines) != 2 || strings.Index(lines[1], "^") != col {
		t.Errorf("the caret under the pattern is\n%s\nwant ^ under column %d", caret, col)
	}
	step(t, ctx, "fix and save",
		run(`document.getElementById("ind-pattern").value = ""`),
		chromedp.SendKeys(chromedp.CSS(`#ind-pattern`), "[ipv4-addr:value = '198.51.100.7']"),
		chromedp.WaitVisible(chromedp.CSS(`#pattern-status.ok`)),
		chromedp.Click(chromedp.CSS(`#ind-save`)),
		chromedp.WaitVisible(chromedp.CSS(`#object-title`)),
		into(&status, chromedp.Text(chromedp.CSS(`#action-status`))),
		into(&title, chromedp.Text(chromedp.CSS(`#object-title`))))
	if status != "indicator created" || title != "Test C2" {
		t.Errorf("after saving, the page is %q and says %q", title, status)
	}
	// Edit it: a new version, whose diff the page shows.
	var versions string
	step(t, ctx, "edit",
		chromedp.Click(chromedp.CSS(`#edit-link`)),
		chromedp.WaitVisible(chromedp.CSS(`#ind-pattern`)),
		poll(`document.getElementById("ind-name").value === "Test C2"`),
		run(`document.getElementById("ind-name").value = ""`),
		chromedp.SendKeys(chromedp.CSS(`#ind-name`), "Test C2 renamed"),
		chromedp.Click(chromedp.CSS(`#ind-save`)),
		poll(`document.getElementById("action-status") && document.getElementById("action-status").textContent === "indicator saved"`),
		into(&title, chromedp.Text(chromedp.CSS(`#object-title`))),
		into(&versions, chromedp.Text(chromedp.CSS(`#object-versions`))))
	if title != "Test C2 renamed" || !strings.Contains(versions, "Test C2 renamed") {
		t.Errorf("after editing, the page is %q with versions %q", title, versions)
	}
	shows(t, ctx, dir, "56-node-indicator-edited")
	step(t, ctx, "false positive",
		chromedp.SendKeys(chromedp.CSS(`#fp-reason`), "a documentation address"),
		chromedp.Click(chromedp.CSS(`#fp-btn`)),
		poll(`document.getElementById("action-status") && document.getElementById("action-status").textContent === "marked a false positive"`))
	shows(t, ctx, dir, "57-node-false-positive")
	cons.check(t, "indicator")
}
