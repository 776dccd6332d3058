package dashboard_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/entente-cti/entente"
)

// console collects what the page wrote to the console as errors:
// console.error calls, uncaught exceptions and the browser's error log
// (failed requests are listed apart: a refused request is a page's
// business, not a fault).
type console struct {
	mu      sync.Mutex
	errors  []string
	network []string
}

func watchConsole(t *testing.T, ctx context.Context) *console {
	c := &console{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && !m.IsException() {
				continue
			}
			c.mu.Lock()
			if m.Source == "network" {
				c.network = append(c.network, m.Text+" "+m.URL)
			} else {
				c.errors = append(c.errors, m.String())
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// check fails t if the page wrote errors to the console so far.
func (c *console) check(t *testing.T, where string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errors {
		t.Errorf("console error on %s: %s", where, e)
	}
	for _, e := range c.network {
		t.Logf("a request failed on %s: %s", where, e)
	}
	c.errors, c.network = nil, nil
}

// poll waits until the JavaScript expression is true.
func poll(expr string) chromedp.Action[chromedp.Void] {
	var ok bool
	return into(&ok, chromedp.Poll[bool](expr))
}

// run evaluates JavaScript for its effects.
func run(expr string) chromedp.Action[chromedp.Void] {
	var v json.RawMessage
	return into(&v, chromedp.Evaluate[json.RawMessage](expr))
}

// junk are what a page must never show: JavaScript's values leaking into
// the text.
var junk = []string{"null", "undefined", "NaN", "[object Object]"}

// shows fails t when the page's text holds one of junk, and keeps a
// screenshot of it.
func shows(t *testing.T, ctx context.Context, dir, name string) string {
	t.Helper()
	var s string
	step(t, ctx, name+": text", into(&s, chromedp.Evaluate[string](`document.getElementById("main").innerText`)), screenshot(t, dir, name))
	for _, j := range junk {
		if strings.Contains(s, j) {
			i := strings.Index(s, j)
			t.Errorf("the %s page shows %q: …%s…", name, j, s[max(0, i-80):min(len(s), i+80)])
		}
	}
	return s
}

// TestWorkbenchInBrowser drives the analyst's workbench in Chromium
// against the node API's contract (contractAPI): search a name and open
// the result; browse a type; the matrix, filtered by an intrusion set;
// the graph of 1,000 neighbours, expanded by a click; an indicator with a
// broken pattern, whose error is shown at its column, fixed and saved; a
// note, an opinion, a label and a false positive. No page shows null,
// undefined, NaN or [object Object], and nothing is written to the
// console as an error.
func TestWorkbenchInBrowser(t *testing.T) {
	ctx := browser(t)
	tn := newTestNode(t)
	api := newContractAPI(t, tn.keys[entente.RoleAnalyst])
	tn.dash.SetAPI(api)
	dir := artifacts(t)
	t.Logf("screenshots in %s", dir)
	cons := watchConsole(t, ctx)
	signIn(t, ctx, tn.srv.URL, tn.keys[entente.RoleAnalyst])

	// Search a name; open the result.
	var title, tlp string
	step(t, ctx, "search a name",
		chromedp.Click(chromedp.CSS(`#nav a[data-page="search"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#search-input`)),
		chromedp.SendKeys(chromedp.CSS(`#search-input`), "APT28\n"),
		chromedp.WaitVisible(chromedp.CSS(`#search-results tbody tr a`)))
	shows(t, ctx, dir, "20-search")
	step(t, ctx, "open the result",
		chromedp.Click(chromedp.CSS(`#search-results tbody tr[data-id="`+apt28+`"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#object-title`)),
		chromedp.WaitVisible(chromedp.CSS(`#rel-out`)),
		into(&title, chromedp.Text(chromedp.CSS(`#object-title`))),
		into(&tlp, chromedp.Text(chromedp.CSS(`#object-tlp`))))
	page := shows(t, ctx, dir, "21-object")
	if title != "APT28" {
		t.Errorf("the object page is titled %q, want APT28", title)
	}
	if tlp != "TLP:CLEAR" || strings.Contains(page, "Markings\nnone") {
		t.Errorf("the TLP shows %q, want TLP:CLEAR", tlp)
	}
	for _, want := range []string{"X-Agent", "uses", "The MITRE Corporation", "APT28 is a threat group.", "description"} {
		if !strings.Contains(page, want) {
			t.Errorf("the object page lacks %q", want)
		}
	}
	cons.check(t, "search and object")

	// A note and an opinion.
	step(t, ctx, "add a note",
		chromedp.SendKeys(chromedp.CSS(`#note-content`), "Seen in our sector since November."),
		chromedp.Click(chromedp.CSS(`#note-add`)),
		poll(`document.getElementById("action-status") && document.getElementById("action-status").textContent === "note added"`))
	// A second note: the page says so again (the same address).
	step(t, ctx, "add a second note",
		run(`document.getElementById("action-status").textContent = ""`),
		chromedp.SendKeys(chromedp.CSS(`#note-content`), "And in another sector."),
		chromedp.Click(chromedp.CSS(`#note-add`)),
		poll(`document.getElementById("action-status").textContent === "note added" && !document.getElementById("note-add").disabled`))
	step(t, ctx, "add an opinion",
		run(`document.getElementById("opinion-value").value = "agree"`),
		chromedp.SendKeys(chromedp.CSS(`#opinion-explanation`), "matches our telemetry"),
		chromedp.Click(chromedp.CSS(`#opinion-add`)),
		poll(`document.getElementById("action-status").textContent === "opinion added"`))
	step(t, ctx, "add a label",
		chromedp.SendKeys(chromedp.CSS(`#label-add`), `admiralty-scale:source-reliability="b"`),
		chromedp.Click(chromedp.CSS(`#label-add-btn`)),
		poll(`document.getElementById("action-status").textContent === "label added"`))
	shows(t, ctx, dir, "22-annotated")
	if p := api.posted("/" + apt28 + "/notes"); len(p) != 2 || p[0].Body["content"] != "Seen in our sector since November." || p[1].Body["content"] != "And in another sector." {
		t.Errorf("notes posted: %+v", p)
	}
	if p := api.posted("/" + apt28 + "/opinions"); len(p) != 1 || p[0].Body["opinion"] != "agree" || p[0].Body["explanation"] != "matches our telemetry" {
		t.Errorf("opinions posted: %+v", p)
	}
	if p := api.posted("/" + apt28 + "/labels"); len(p) != 1 || fmt.Sprint(p[0].Body["add"]) != `[admiralty-scale:source-reliability="b"]` {
		t.Errorf("labels posted: %+v", p)
	}

	// Browse a type, and page on.
	var rows int
	step(t, ctx, "browse",
		chromedp.Click(chromedp.CSS(`#nav a[data-page="browse"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#browse-results tbody tr`)),
		into(&rows, chromedp.Evaluate[int](`document.querySelectorAll("#browse-results tbody tr").length`)))
	if rows != 31 {
		t.Errorf("the intrusion sets list %d rows, want 31", rows)
	}
	shows(t, ctx, dir, "23-browse")
	step(t, ctx, "browse malware",
		chromedp.Click(chromedp.CSS(`.tabs a[data-type="malware"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#browse-results tbody tr[data-id="`+xagent+`"]`)))
	cons.check(t, "browse")

	// The matrix, then filtered by an intrusion set picked by search.
	var cells, inFilter int
	step(t, ctx, "matrix",
		chromedp.Click(chromedp.CSS(`#nav a[data-page="matrix"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#matrix .tech`)),
		into(&cells, chromedp.Evaluate[int](`document.querySelectorAll("#matrix .tech").length`)))
	if cells != 14*40 {
		t.Errorf("the matrix shows %d techniques, want %d", cells, 14*40)
	}
	shows(t, ctx, dir, "24-matrix")
	step(t, ctx, "matrix filter",
		chromedp.SendKeys(chromedp.CSS(`#matrix-filter-input`), "APT28\n"),
		chromedp.WaitVisible(chromedp.CSS(`#matrix-picks a.pick`)),
		chromedp.Click(chromedp.CSS(`#matrix-picks a.pick`)),
		chromedp.WaitVisible(chromedp.CSS(`#matrix-filter`)),
		into(&inFilter, chromedp.Evaluate[int](`document.querySelectorAll("#matrix .tech.in").length`)))
	if inFilter != 80 {
		t.Errorf("%d techniques marked as the filter's, want 80", inFilter)
	}
	shows(t, ctx, dir, "25-matrix-filtered")
	cons.check(t, "matrix")

	// The graph of a malware with 1,000 neighbours; a click expands one.
	var nodes int
	var drawMs float64
	step(t, ctx, "graph",
		chromedp.Navigate(tn.srv.URL+"/ui/#/graph/"+hub),
		chromedp.WaitVisible(chromedp.CSS(`#graph-canvas[data-nodes]`)),
		into(&nodes, chromedp.Evaluate[int](`Number(document.getElementById("graph-canvas").dataset.nodes)`)),
		into(&drawMs, chromedp.Evaluate[float64](`Number(document.getElementById("graph-canvas").dataset.totalMs)`)))
	if nodes != 1+hubNeighbours+hubNeighbours/50 {
		t.Errorf("the graph holds %d objects, want %d", nodes, 1+hubNeighbours+hubNeighbours/50)
	}
	t.Logf("graph of %d objects fetched, laid out and drawn in %.0f ms", nodes, drawMs)
	if drawMs > 1000 {
		t.Errorf("the graph of %d objects took %.0f ms to draw, want < 1 s", nodes, drawMs)
	}
	shows(t, ctx, dir, "26-graph")
	// Click the first neighbour, due east of the centre on the first
	// ring (110 units out): the graph grows by its neighbours.
	before := nodes
	step(t, ctx, "expand a node",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			xy, err := chromedp.Evaluate[[]float64](`(() => { const c = document.getElementById("graph-canvas"), b = c.getBoundingClientRect();
				const k = Math.min(c.clientWidth, c.clientHeight) / (2 * Number(c.dataset.radius));
				return [b.left + c.clientWidth / 2 + 110 * k, b.top + c.clientHeight / 2]; })()`)(ctx, tg)
			if err != nil {
				return err
			}
			_, err = chromedp.MouseClickXY(xy[0], xy[1])(ctx, tg)
			return err
		}),
		chromedp.WaitVisible(chromedp.CSS(`#graph-selected a.obj`)),
		poll(fmt.Sprintf(`Number(document.getElementById("graph-canvas").dataset.nodes) > %d`, before)))
	shows(t, ctx, dir, "27-graph-expanded")
	cons.check(t, "graph")

	// A new indicator with a broken pattern: the error is at its column.
	broken := "[ipv4-addr:value = '198.51.100.7' AND]"
	_, _, col := validate(broken)
	var caret string
	step(t, ctx, "broken pattern",
		chromedp.Click(chromedp.CSS(`#nav a[data-page="indicator"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#ind-pattern`)),
		chromedp.SendKeys(chromedp.CSS(`#ind-name`), "Test C2"),
		chromedp.SendKeys(chromedp.CSS(`#ind-pattern`), broken),
		chromedp.WaitVisible(chromedp.CSS(`#pattern-caret`)),
		// The caret of the whole pattern, not of a prefix checked while
		// it was being typed (a slow machine shows that one first).
		poll(fmt.Sprintf(`document.getElementById("pattern-caret").textContent.split("\n")[0] === %q`, broken)),
		into(&caret, chromedp.TextContent(chromedp.CSS(`#pattern-caret`))))
	shows(t, ctx, dir, "28-indicator-broken")
	lines := strings.Split(caret, "\n")
	if len(lines) != 2 || lines[0] != broken || strings.Index(lines[1], "^") != col || strings.TrimSpace(lines[1]) != "^" {
		t.Errorf("the caret under the pattern is\n%s\nwant ^ under column %d", caret, col)
	}
	var status string
	step(t, ctx, "fix the pattern and save",
		run(`document.getElementById("ind-pattern").value = ""`),
		chromedp.SendKeys(chromedp.CSS(`#ind-pattern`), "[ipv4-addr:value = '198.51.100.7']"),
		chromedp.WaitVisible(chromedp.CSS(`#pattern-status.ok`)),
		poll(`document.getElementById("pattern-caret").hidden`),
		screenshot(t, dir, "29-indicator-fixed"),
		chromedp.Click(chromedp.CSS(`#ind-save`)),
		chromedp.WaitVisible(chromedp.CSS(`#object-title`)),
		into(&status, chromedp.Text(chromedp.CSS(`#action-status`))))
	if status != "indicator created" {
		t.Errorf("after saving, the page says %q", status)
	}
	if p := api.posted("indicators"); len(p) != 1 || p[0].Body["pattern"] != "[ipv4-addr:value = '198.51.100.7']" || p[0].Body["name"] != "Test C2" || p[0].Body["collection"] != "intel" {
		t.Errorf("indicators posted: %+v", p)
	}
	cons.check(t, "indicator form")

	// Mark an indicator a false positive.
	step(t, ctx, "false positive",
		chromedp.Navigate(tn.srv.URL+"/ui/#/object/"+badIndicator),
		chromedp.WaitVisible(chromedp.CSS(`#object-sightings-chart`)),
		chromedp.WaitVisible(chromedp.CSS(`svg.map path[data-cc="FR"].s3`)),
		chromedp.WaitVisible(chromedp.CSS(`svg.map path[data-cc="DE"].s1`)),
		chromedp.SendKeys(chromedp.CSS(`#fp-reason`), "a documentation address"),
		chromedp.Click(chromedp.CSS(`#fp-btn`)),
		poll(`document.getElementById("action-status") && document.getElementById("action-status").textContent === "marked a false positive"`))
	shows(t, ctx, dir, "30-false-positive")
	if p := api.posted("/" + badIndicator + "/false-positive"); len(p) != 1 || p[0].Body["reason"] != "a documentation address" {
		t.Errorf("false positives posted: %+v", p)
	}

	// A report grouping objects.
	step(t, ctx, "report",
		chromedp.Navigate(tn.srv.URL+"/ui/#/report/new?refs="+apt28),
		chromedp.WaitVisible(chromedp.CSS(`#rep-name`)),
		chromedp.SendKeys(chromedp.CSS(`#rep-name`), "Campaign against the sector"),
		chromedp.SendKeys(chromedp.CSS(`#rep-search`), "X-Agent\n"),
		chromedp.WaitVisible(chromedp.CSS(`#rep-found button.pick`)),
		chromedp.Click(chromedp.CSS(`#rep-found button.pick`)),
		screenshot(t, dir, "31-report"),
		chromedp.Click(chromedp.CSS(`#rep-save`)),
		chromedp.WaitVisible(chromedp.CSS(`#object-title`)))
	if p := api.posted("reports"); len(p) != 1 || fmt.Sprint(p[0].Body["object_refs"]) != "["+apt28+" "+xagent+"]" {
		t.Errorf("reports posted: %+v", p)
	}
	cons.check(t, "false positive and report")
}

// TestWorkbenchRolesInBrowser: the sign-in page shows no navigation; an
// analyst sees the pages the node lets analysts use (partners with their
// collections' aliases, not peers, not the audit log); an admin sees
// every page.
func TestWorkbenchRolesInBrowser(t *testing.T) {
	ctx := browser(t)
	tn := newTestNode(t)
	dir := artifacts(t)
	var headerShown bool
	step(t, ctx, "sign-in page",
		chromedp.Navigate(tn.srv.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#login-key")),
		into(&headerShown, chromedp.Evaluate[bool](`getComputedStyle(document.getElementById("top")).display !== "none"`)),
		screenshot(t, dir, "40-sign-in"))
	if headerShown {
		t.Errorf("the sign-in page shows the navigation and Sign out")
	}
	for _, tc := range []struct {
		role  entente.Role
		shown []string
	}{
		{entente.RoleAnalyst, []string{"overview", "alerts", "search", "browse", "matrix", "indicator", "devices", "partners"}},
		{entente.RoleAdmin, []string{"overview", "alerts", "search", "browse", "matrix", "indicator", "devices", "partners", "audit"}},
	} {
		signIn(t, ctx, tn.srv.URL, tn.keys[tc.role])
		var nav []string
		step(t, ctx, "nav", into(&nav, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#nav a")].filter(a => getComputedStyle(a).display !== "none").map(a => a.dataset.page)`)))
		if strings.Join(nav, " ") != strings.Join(tc.shown, " ") {
			t.Errorf("%s sees the pages %v, want %v", tc.role, nav, tc.shown)
		}
		step(t, ctx, "partners",
			chromedp.Click(chromedp.CSS(`#nav a[data-page="partners"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#partners`)))
		s := shows(t, ctx, dir, "41-partners-"+string(tc.role))
		if strings.Contains(s, "requires the admin role") {
			t.Errorf("%s is told a page needs the admin role: %q", tc.role, s)
		}
		if tc.role == entente.RoleAnalyst {
			var msg string
			step(t, ctx, "audit by URL",
				chromedp.Navigate(tn.srv.URL+"/ui/#/audit"),
				chromedp.WaitVisible(chromedp.CSS(`#view .error`)),
				into(&msg, chromedp.Text(chromedp.CSS(`#view .error`))))
			if !strings.Contains(msg, "admin") {
				t.Errorf("an analyst opening the audit page reads %q", msg)
			}
		}
		step(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`#signout`)), chromedp.WaitVisible(chromedp.CSS(`#login-key`)))
	}
}

// axeVersion is the axe-core release the accessibility test runs.
const axeVersion = "4.14.1"

// axeSource returns axe-core's axe.min.js: from $ENTENTE_AXE when set,
// else from the user's cache, else fetched from the npm registry with
// npm pack (and cached). It skips the test when it can have none.
func axeSource(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ENTENTE_AXE"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("ENTENTE_AXE: %v", err)
		}
		return string(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	file := filepath.Join(cache, "entente", "axe-core-"+axeVersion, "axe.min.js")
	if b, err := os.ReadFile(file); err == nil {
		return string(b)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skipf("the accessibility test needs axe-core: set ENTENTE_AXE to axe.min.js, or install npm to fetch it (%v)", err)
	}
	tmp := t.TempDir()
	cmd := exec.Command(npm, "pack", "axe-core@"+axeVersion, "--pack-destination", tmp)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("npm pack axe-core@%s failed (no registry?): %v\n%s", axeVersion, err, out)
	}
	f, err := os.Open(filepath.Join(tmp, "axe-core-"+axeVersion+".tgz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("axe.min.js not in the axe-core package: %v", err)
		}
		if h.Name == "package/axe.min.js" {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err == nil {
				os.WriteFile(file, b, 0o644)
			}
			return string(b)
		}
	}
}

// axeViolation is one serious or critical finding of axe-core.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// runAxe checks the page as it is with axe-core and returns its serious
// and critical violations.
func runAxe(t *testing.T, ctx context.Context, src string) []axeViolation {
	t.Helper()
	var js string
	step(t, ctx, "axe",
		run(src+";0"),
		into(&js, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations
			.filter(v => v.impact === "serious" || v.impact === "critical")
			.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))))`, chromedp.EvalAwaitPromise)))
	var vs []axeViolation
	if err := json.Unmarshal([]byte(js), &vs); err != nil {
		t.Fatalf("axe's answer %q: %v", js, err)
	}
	return vs
}

// TestAccessibility runs axe-core (from the npm registry) on every page
// of the dashboard, signed out and in as an admin: no serious or
// critical violations.
func TestAccessibility(t *testing.T) {
	src := axeSource(t)
	ctx := browser(t)
	tn := newTestNode(t)
	api := newContractAPI(t, tn.keys[entente.RoleAdmin])
	tn.dash.SetAPI(api)
	tn.postSightings(t, sightingsBundle(0, 0, 1))
	check := func(name string) {
		t.Helper()
		for _, v := range runAxe(t, ctx, src) {
			t.Errorf("%s: %s (%s): %s at %v", name, v.ID, v.Impact, v.Help, v.Nodes)
		}
	}
	step(t, ctx, "sign-in page", chromedp.Navigate(tn.srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#login-key")))
	check("sign-in")
	signIn(t, ctx, tn.srv.URL, tn.keys[entente.RoleAdmin])
	for _, p := range []struct{ hash, ready string }{
		{"#/overview", "#count-sightings"},
		{"#/alerts", "#alerts-table tbody tr"},
		{"#/search?q=APT28", "#search-results tbody tr"},
		{"#/browse/intrusion-set", "#browse-results tbody tr"},
		{"#/object/" + apt28, "#rel-out"},
		{"#/object/" + badIndicator, "#object-sightings-chart"},
		{"#/graph/" + apt28, "#graph-canvas[data-nodes]"},
		{"#/matrix?filter=" + apt28 + "&name=APT28", "#matrix .tech"},
		{"#/indicator/new", "#ind-pattern"},
		{"#/report/new", "#rep-name"},
		{"#/partners", "#partners"},
		{"#/audit", "#audit"},
	} {
		step(t, ctx, p.hash, chromedp.Navigate(tn.srv.URL+"/ui/"+p.hash), chromedp.WaitVisible(chromedp.CSS(p.ready)), chromedp.Sleep(100*time.Millisecond))
		check(p.hash)
	}
	// The indicator form with a pattern error shown.
	step(t, ctx, "broken pattern",
		chromedp.Navigate(tn.srv.URL+"/ui/#/indicator/new"),
		chromedp.WaitVisible(chromedp.CSS("#ind-pattern")),
		chromedp.SendKeys(chromedp.CSS("#ind-pattern"), "[ipv4-addr:value = "),
		chromedp.WaitVisible(chromedp.CSS("#pattern-caret")))
	check("#/indicator/new with an error")
}
