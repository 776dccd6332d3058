package dashboard_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// TestEditorsInBrowser edits an agreement and a feed on a real node as an
// admin: the change is previewed (what the agreement would release that
// it withholds now; the feed's fields that change) before Save is
// enabled, saved, and shown again after a reload. An analyst sees no
// edit links, is refused the pages, and the node API refuses it the
// change (403). The pages pass axe-core when it is available.
func TestEditorsInBrowser(t *testing.T) {
	ctx := browser(t)
	tn, partner, feed := editorsNode(t)
	dir := artifacts(t)
	cons := watchConsole(t, ctx)
	bg := context.Background()
	id, _ := tn.svc.Identity(bg)
	admin := node.LocalAdmin(id.ID)
	signIn(t, ctx, tn.srv.URL, tn.keys[entente.RoleAdmin])

	// The agreement: AMBER instead of GREEN releases the AMBER indicators.
	var changed string
	var changes int
	var counts []string
	step(t, ctx, "open the agreement",
		chromedp.Navigate(tn.srv.URL+"/ui/#/partners"),
		chromedp.WaitVisible(chromedp.CSS(`a.edit-agreement[data-partner="`+partner+`"]`)),
		chromedp.Click(chromedp.CSS(`a.edit-agreement[data-partner="`+partner+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#ag-tlp`)),
		poll(`document.getElementById("edit-save").disabled`))
	shows(t, ctx, dir, "60-agreement-edit")
	step(t, ctx, "change and preview",
		chromedp.SetValue(chromedp.CSS(`#ag-tlp`), "amber"),
		run(`document.getElementById("ag-tlp").dispatchEvent(new Event("change", {bubbles: true}))`),
		chromedp.Click(chromedp.CSS(`#edit-preview`)),
		chromedp.WaitVisible(chromedp.CSS(`#agreement-changes`)),
		poll(`!document.getElementById("edit-save").disabled`),
		into(&changed, chromedp.Text(chromedp.CSS(`#agreement-changed`))),
		into(&counts, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#agreement-summary tbody td")].map(td => td.textContent)`)),
		into(&changes, chromedp.Evaluate[int](`document.querySelectorAll("#agreement-changes tbody tr").length`)))
	page := shows(t, ctx, dir, "61-agreement-preview")
	// Every object of the fixture is AMBER (marked, or by the
	// collection's default): GREEN withholds them all, AMBER releases
	// them.
	if n := len(fixture()); changes != n || changed != fmt.Sprintf("%d objects change:", n) || !strings.Contains(page, threats[0].indicator) {
		t.Errorf("the preview lists %d changes (%q), want the fixture's %d AMBER objects", changes, changed, n)
	}
	// Released and withheld, now and with the change: the change
	// releases the withheld.
	var r0, w0, r1, w1 int
	if len(counts) == 4 {
		fmt.Sscan(strings.Join(counts, " "), &r0, &w0, &r1, &w1)
	}
	if n := len(fixture()); len(counts) != 4 || w0 != n || r1 != r0+n || w1 != 0 {
		t.Errorf("the preview's counts (now released, withheld; then released, withheld): %q", counts)
	}
	if a, _ := tn.svc.Agreement(bg, admin, partner); a.MaxTLP != stix.TLPGreen {
		t.Errorf("the preview saved the agreement: %+v", a)
	}
	var tlp, status string
	step(t, ctx, "save and reload",
		chromedp.Click(chromedp.CSS(`#edit-save`)),
		poll(`document.getElementById("edit-status") && document.getElementById("edit-status").textContent === "agreement saved"`),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#ag-tlp`)),
		into(&tlp, chromedp.Value(chromedp.CSS(`#ag-tlp`))),
		into(&status, chromedp.Text(chromedp.CSS(`#edit-status`))))
	if tlp != "amber" {
		t.Errorf("after saving and reloading, the agreement's TLP is %q", tlp)
	}
	if a, _ := tn.svc.Agreement(bg, admin, partner); a.MaxTLP != stix.TLPAmber || len(a.Collections) != 1 {
		t.Errorf("saved agreement: %+v", a)
	}
	shows(t, ctx, dir, "62-agreement-saved")

	// The feed: a new name and interval, previewed, saved.
	var rows int
	step(t, ctx, "open the feed",
		chromedp.Navigate(tn.srv.URL+"/ui/#/audit"),
		chromedp.WaitVisible(chromedp.CSS(`a.edit-feed[data-feed="`+feed.ID+`"]`)),
		chromedp.Click(chromedp.CSS(`a.edit-feed[data-feed="`+feed.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#feed-name`)),
		poll(`document.getElementById("feed-interval").value === "2h"`),
		chromedp.Click(chromedp.CSS(`#edit-preview`)),
		chromedp.WaitVisible(chromedp.CSS(`#feed-changes-none`)),
		run(`document.getElementById("feed-name").value = ""; document.getElementById("feed-interval").value = ""`),
		chromedp.SendKeys(chromedp.CSS(`#feed-name`), "blocklist (hourly)"),
		chromedp.SendKeys(chromedp.CSS(`#feed-interval`), "1h"),
		chromedp.Click(chromedp.CSS(`#edit-preview`)),
		chromedp.WaitVisible(chromedp.CSS(`#feed-changes`)),
		into(&rows, chromedp.Evaluate[int](`document.querySelectorAll("#feed-changes tbody tr").length`)))
	shows(t, ctx, dir, "63-feed-preview")
	if rows != 2 {
		t.Errorf("the feed's preview lists %d changes, want 2 (name, interval)", rows)
	}
	var name string
	step(t, ctx, "save the feed",
		chromedp.Click(chromedp.CSS(`#edit-save`)),
		poll(`document.getElementById("edit-status") && document.getElementById("edit-status").textContent === "feed saved"`),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#feed-name`)),
		poll(`document.getElementById("feed-interval").value === "1h"`),
		into(&name, chromedp.Value(chromedp.CSS(`#feed-name`))))
	if name != "blocklist (hourly)" {
		t.Errorf("after saving, the feed is named %q", name)
	}
	cons.check(t, "editors")

	// An analyst: no edit links, the pages refused, the API refuses.
	step(t, ctx, "sign out", chromedp.Navigate(tn.srv.URL+"/ui/#/overview"), chromedp.WaitVisible(chromedp.CSS(`#signout`)),
		chromedp.Click(chromedp.CSS(`#signout`)), chromedp.WaitVisible(chromedp.CSS(`#login-key`)))
	signIn(t, ctx, tn.srv.URL, tn.keys[entente.RoleAnalyst])
	var links int
	var refused string
	var apiStatus int
	step(t, ctx, "analyst",
		chromedp.Navigate(tn.srv.URL+"/ui/#/partners"),
		chromedp.WaitVisible(chromedp.CSS(`#partners tbody tr`)),
		into(&links, chromedp.Evaluate[int](`document.querySelectorAll("a.edit-agreement, #edit-save").length`)),
		chromedp.Navigate(tn.srv.URL+"/ui/#/agreement/"+partner),
		chromedp.WaitVisible(chromedp.CSS(`#view .error`)),
		into(&refused, chromedp.Text(chromedp.CSS(`#view .error`))),
		into(&apiStatus, chromedp.Evaluate[int](`fetch("api/v1/agreements/`+partner+`", {method: "PUT", credentials: "same-origin",
			headers: {"Content-Type": "application/json", "X-CSRF-Token": state.csrf},
			body: JSON.stringify({partner: {id: "`+partner+`"}, collections: ["intel"], max_tlp: "clear"})}).then(r => r.status)`, chromedp.EvalAwaitPromise)))
	shows(t, ctx, dir, "64-agreement-analyst")
	if links != 0 || !strings.Contains(refused, "admin") || apiStatus != 403 {
		t.Errorf("an analyst sees %d edit links, the page says %q, the API answers %d", links, refused, apiStatus)
	}
	if a, _ := tn.svc.Agreement(bg, admin, partner); a.MaxTLP != stix.TLPAmber {
		t.Errorf("the analyst changed the agreement: %+v", a)
	}
	cons.check(t, "analyst")
}

// editorsNode is a test node with a partner, a GREEN agreement with it
// over the intel collection (whose fixture is AMBER), and a feed.
func editorsNode(t *testing.T) (*testNode, string, node.Feed) {
	t.Helper()
	tn := newTestNode(t)
	bg := context.Background()
	id, _ := tn.svc.Identity(bg)
	admin := node.LocalAdmin(id.ID)
	partner := orgID(2)
	if err := tn.svc.PutPartner(bg, admin, policy.Party{ID: partner, Name: "Partner CERT", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.svc.PutAgreement(bg, admin, policy.Agreement{Partner: policy.Party{ID: partner}, Collections: []string{node.CollectionIntel}, MaxTLP: stix.TLPGreen}); err != nil {
		t.Fatal(err)
	}
	// Its TLP and collection spelt otherwise than the editor's choices:
	// saving the form unchanged must change neither.
	feed, err := tn.svc.AddFeed(bg, admin, node.Feed{Name: "blocklist", URL: "http://127.0.0.1:9/list.txt", Format: "plain", Interval: 2 * time.Hour,
		TLP: "TLP:AMBER", Collection: intelID(t, tn)})
	if err != nil {
		t.Fatal(err)
	}
	return tn, partner, feed
}

// TestEditorsAccessibility runs axe-core on the agreement and feed
// editors with their previews shown: no serious or critical violations.
func TestEditorsAccessibility(t *testing.T) {
	src := axeSource(t)
	ctx := browser(t)
	tn, partner, feed := editorsNode(t)
	signIn(t, ctx, tn.srv.URL, tn.keys[entente.RoleAdmin])
	// Each page is waited for by its own form: going from one editor to
	// the other changes only the hash, so the first page's Preview button
	// stays visible until the second has rendered, and a click on it
	// would be lost (CI saw this once).
	for _, p := range []struct{ hash, form, ready string }{
		{"#/agreement/" + partner, "#agreement-form", "#agreement-summary"},
		{"#/feed/" + feed.ID, "#feed-form", "#feed-changes-none"},
	} {
		step(t, ctx, p.hash, chromedp.Navigate(tn.srv.URL+"/ui/"+p.hash), chromedp.WaitVisible(chromedp.CSS(p.form)),
			chromedp.WaitVisible(chromedp.CSS(`#edit-preview`)),
			chromedp.Click(chromedp.CSS(`#edit-preview`)), chromedp.WaitVisible(chromedp.CSS(p.ready)), chromedp.Sleep(100*time.Millisecond))
		for _, v := range runAxe(t, ctx, src) {
			t.Errorf("%s: %s (%s): %s at %v", p.hash, v.ID, v.Impact, v.Help, v.Nodes)
		}
	}
}

// TestLabelPickerInBrowser labels an indicator with a MISP taxonomy tag
// on a real node: typing suggests the taxonomies' tags and says what the
// chosen one means; a tag the taxonomy does not list is refused with the
// node's message naming it; a free label is added.
func TestLabelPickerInBrowser(t *testing.T) {
	ctx := browser(t)
	tn := newTestNode(t)
	dir := artifacts(t)
	cons := watchConsole(t, ctx)
	signIn(t, ctx, tn.srv.URL, tn.keys[entente.RoleAnalyst])
	const tag = `admiralty-scale:source-reliability="b"`
	var suggested []string
	var hint string
	step(t, ctx, "type a tag",
		chromedp.Navigate(tn.srv.URL+"/ui/#/object/"+threats[0].indicator),
		chromedp.WaitVisible(chromedp.CSS(`#label-add`)),
		chromedp.SendKeys(chromedp.CSS(`#label-add`), "admiralty-scale:source-rel"),
		poll(`document.querySelectorAll("#tag-suggestions option").length > 0`),
		into(&suggested, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#tag-suggestions option")].map(o => o.value)`)),
		run(`document.getElementById("label-add").value = ""`),
		chromedp.SendKeys(chromedp.CSS(`#label-add`), tag),
		poll(`document.getElementById("label-hint").textContent.includes("Usually reliable")`),
		into(&hint, chromedp.Text(chromedp.CSS(`#label-hint`))))
	shows(t, ctx, dir, "65-label-picker")
	if len(suggested) != 7 || suggested[1] != tag {
		t.Errorf("typing admiralty-scale:source-rel suggests %q, want the 7 source reliabilities", suggested)
	}
	var labels, status string
	step(t, ctx, "add the tag",
		chromedp.Click(chromedp.CSS(`#label-add-btn`)),
		poll(`document.getElementById("action-status") && document.getElementById("action-status").textContent === "label added"`),
		chromedp.WaitVisible(chromedp.CSS(`#object-labels`)),
		into(&labels, chromedp.Text(chromedp.CSS(`#object-labels`))),
		chromedp.SendKeys(chromedp.CSS(`#label-add`), "tlp:purple"),
		chromedp.Click(chromedp.CSS(`#label-add-btn`)),
		poll(`document.getElementById("action-status").className === "error"`),
		into(&status, chromedp.Text(chromedp.CSS(`#action-status`))))
	shows(t, ctx, dir, "66-label-refused")
	if !strings.Contains(labels, tag) {
		t.Errorf("the labels after adding %s: %q", tag, labels)
	}
	if !strings.Contains(status, `"tlp:purple"`) || !strings.Contains(status, "no predicate") {
		t.Errorf("adding tlp:purple says %q", status)
	}
	step(t, ctx, "a free label",
		run(`document.getElementById("label-add").value = ""`),
		chromedp.SendKeys(chromedp.CSS(`#label-add`), "seen in our sector"),
		chromedp.Click(chromedp.CSS(`#label-add-btn`)),
		poll(`document.getElementById("action-status").textContent === "label added"`),
		into(&labels, chromedp.Text(chromedp.CSS(`#object-labels`))))
	if !strings.Contains(labels, "seen in our sector") || !strings.Contains(labels, tag) {
		t.Errorf("the labels after a free one: %q", labels)
	}
	cons.check(t, "label picker")
}

// intelID is the id of the node's intel collection.
func intelID(t *testing.T, tn *testNode) string {
	t.Helper()
	id, _ := tn.svc.Identity(context.Background())
	cs, err := tn.svc.Collections(context.Background(), node.LocalAdmin(id.ID))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Alias == node.CollectionIntel || c.ID == node.CollectionIntel {
			return c.ID
		}
	}
	t.Fatal("no intel collection")
	return ""
}
