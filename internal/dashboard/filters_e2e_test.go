package dashboard_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/node"
)

// TestSearchFiltersInBrowser filters a search on a real node by
// collection, source and time, beside type and TLP: each filter is a
// control of the search page, kept in the page's address, and passed to
// GET /api/v1/search.
func TestSearchFiltersInBrowser(t *testing.T) {
	ctx := browser(t)
	tn := newTestNode(t)
	dir := artifacts(t)
	cons := watchConsole(t, ctx)
	sourced := storeSourced(t, tn)
	signIn(t, ctx, tn.srv.URL, tn.keys[entente.RoleAnalyst])
	results := func() []string { return rowIDs(t, ctx, "#search-results") }
	all := []string{threats[0].indicator, threats[1].indicator, sourced}
	slices.Sort(all)
	for _, c := range []struct {
		name    string
		actions []chromedp.Action[chromedp.Void]
		hash    string
		want    []string
	}{
		{"type", []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(tn.srv.URL + "/ui/#/search"), chromedp.WaitReady(chromedp.CSS(`#search-source option[value="` + orgID(0) + `"]`)),
			setControls("search-type", "indicator"),
		}, "#/search?type=indicator", all},
		{"source", []chromedp.Action[chromedp.Void]{setControls("search-source", orgID(0))},
			"#/search?type=indicator&source=" + urlQuery(orgID(0)), []string{sourced}},
		{"no source, modified from 2026-11-03", []chromedp.Action[chromedp.Void]{setControls("search-source", "", "search-from", "2026-11-03")},
			"#/search?type=indicator&from=2026-11-03", []string{sourced}},
		{"modified up to 2026-11-01", []chromedp.Action[chromedp.Void]{setControls("search-from", "", "search-to", "2026-11-01")},
			"#/search?type=indicator&to=2026-11-01", []string{threats[0].indicator, threats[1].indicator}},
		{"collection sightings", []chromedp.Action[chromedp.Void]{setControls("search-to", "", "search-collection", "sightings")},
			"#/search?type=indicator&collection=sightings", nil},
		{"collection intel, TLP amber", []chromedp.Action[chromedp.Void]{setControls("search-collection", "intel", "search-tlp", "amber")},
			"#/search?type=indicator&tlp=amber&collection=intel", all},
		{"reload keeps the filters", []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(tn.srv.URL + "/ui/#/search?q=C2&collection=intel&source=" + urlQuery(orgID(0)) + "&from=2026-11-05&to=2026-11-05"),
		}, "#/search?q=C2&collection=intel&source=" + urlQuery(orgID(0)) + "&from=2026-11-05&to=2026-11-05", []string{sourced}},
	} {
		step(t, ctx, c.name, append(c.actions, waitDrawn(c.hash))...)
		if got := results(); !slices.Equal(got, c.want) {
			t.Errorf("%s: results %v, want %v", c.name, got, c.want)
		}
	}
	var kept []string
	step(t, ctx, "controls", into(&kept, chromedp.Evaluate[[]string](`["search-collection", "search-source", "search-from", "search-to"].map(id => document.getElementById(id).value)`)))
	if want := []string{"intel", orgID(0), "2026-11-05", "2026-11-05"}; !slices.Equal(kept, want) {
		t.Errorf("after a reload the filters show %v, want %v", kept, want)
	}
	shows(t, ctx, dir, "67-search-filters")
	cons.check(t, "search filters")
}

// TestBrowseFiltersInBrowser filters the browse list of a type on a
// real node as the search is filtered: by collection, source and time,
// beside TLP, each kept in the page's address and passed to
// GET /api/v1/search; the type tabs keep the filters.
func TestBrowseFiltersInBrowser(t *testing.T) {
	ctx := browser(t)
	tn := newTestNode(t)
	dir := artifacts(t)
	cons := watchConsole(t, ctx)
	sourced := storeSourced(t, tn)
	signIn(t, ctx, tn.srv.URL, tn.keys[entente.RoleAnalyst])
	results := func() []string { return rowIDs(t, ctx, "#browse-results") }
	all := []string{threats[0].indicator, threats[1].indicator, sourced}
	slices.Sort(all)
	for _, c := range []struct {
		name    string
		actions []chromedp.Action[chromedp.Void]
		hash    string
		want    []string
	}{
		{"indicators", []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(tn.srv.URL + "/ui/#/browse/indicator"), chromedp.WaitReady(chromedp.CSS(`#browse-source option[value="` + orgID(0) + `"]`)),
		}, "#/browse/indicator", all},
		{"source", []chromedp.Action[chromedp.Void]{setControls("browse-source", orgID(0))},
			"#/browse/indicator?source=" + urlQuery(orgID(0)), []string{sourced}},
		{"no source, modified from 2026-11-03", []chromedp.Action[chromedp.Void]{setControls("browse-source", "", "browse-from", "2026-11-03")},
			"#/browse/indicator?from=2026-11-03", []string{sourced}},
		{"modified up to 2026-11-01", []chromedp.Action[chromedp.Void]{setControls("browse-from", "", "browse-to", "2026-11-01")},
			"#/browse/indicator?to=2026-11-01", []string{threats[0].indicator, threats[1].indicator}},
		{"collection sightings", []chromedp.Action[chromedp.Void]{setControls("browse-to", "", "browse-collection", "sightings")},
			"#/browse/indicator?collection=sightings", nil},
		{"collection intel, TLP amber", []chromedp.Action[chromedp.Void]{setControls("browse-collection", "intel", "browse-tlp", "amber")},
			"#/browse/indicator?tlp=amber&collection=intel", all},
		{"reload keeps the filters", []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(tn.srv.URL + "/ui/#/browse/indicator?collection=intel&source=" + urlQuery(orgID(0)) + "&from=2026-11-05&to=2026-11-05"),
		}, "#/browse/indicator?collection=intel&source=" + urlQuery(orgID(0)) + "&from=2026-11-05&to=2026-11-05", []string{sourced}},
	} {
		step(t, ctx, c.name, append(c.actions, waitDrawn(c.hash))...)
		if got := results(); !slices.Equal(got, c.want) {
			t.Errorf("%s: results %v, want %v", c.name, got, c.want)
		}
	}
	var kept []string
	var none string
	step(t, ctx, "controls", into(&kept, chromedp.Evaluate[[]string](`["browse-collection", "browse-source", "browse-from", "browse-to"].map(id => document.getElementById(id).value)`)))
	if want := []string{"intel", orgID(0), "2026-11-05", "2026-11-05"}; !slices.Equal(kept, want) {
		t.Errorf("after a reload the filters show %v, want %v", kept, want)
	}
	shows(t, ctx, dir, "68-browse-filters")
	// Another type keeps the filters: Org 0 made no malware.
	step(t, ctx, "malware, same filters",
		chromedp.Click(chromedp.CSS(`#view nav.tabs a[data-type="malware"]`)),
		waitDrawn("#/browse/malware?collection=intel&source="+urlQuery(orgID(0))+"&from=2026-11-05&to=2026-11-05"),
		into(&none, chromedp.Text(chromedp.CSS(`#browse-none`))))
	if none != "No malware matches these filters." {
		t.Errorf("the malware list, filtered, says %q", none)
	}
	cons.check(t, "browse filters")
}

// storeSourced stores an indicator by Org 0, modified later than the
// fixture, TLP amber, and returns its id.
func storeSourced(t *testing.T, tn *testNode) string {
	t.Helper()
	bg := context.Background()
	id, _ := tn.svc.Identity(bg)
	const sourced = "indicator--0a1b2c3d-0000-4000-8000-0000000000b1"
	raw := json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"` + sourced + `","created":"2026-11-05T00:00:00.000Z","modified":"2026-11-05T00:00:00.000Z",` +
		`"name":"Org 0 C2","pattern":"[ipv4-addr:value = '192.0.2.44']","pattern_type":"stix","valid_from":"2026-11-05T00:00:00Z","created_by_ref":"` + orgID(0) + `",` +
		`"object_marking_refs":["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]}`)
	if st, err := tn.svc.AddObjects(bg, node.LocalAdmin(id.ID), node.CollectionIntel, []json.RawMessage{raw}); err != nil || st.FailureCount > 0 {
		t.Fatalf("store: %v %+v", err, st)
	}
	return sourced
}

// waitDrawn waits for the page drawn for hash, the address.
func waitDrawn(hash string) chromedp.Action[chromedp.Void] {
	return poll(`document.getElementById("view").dataset.drawn === ` + jsonString(hash))
}

// setControls sets controls (id, value pairs) of a page, and changes
// the last.
func setControls(kv ...string) chromedp.Action[chromedp.Void] {
	js := ""
	for i := 0; i < len(kv); i += 2 {
		js += `document.getElementById(` + jsonString(kv[i]) + `).value = ` + jsonString(kv[i+1]) + `;`
	}
	return run(js + `document.getElementById(` + jsonString(kv[len(kv)-2]) + `).dispatchEvent(new Event("change"))`)
}

// jsonString quotes s for JavaScript.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// rowIDs returns the sorted object ids of the rows of the results table
// table (a CSS selector).
func rowIDs(t *testing.T, ctx context.Context, table string) []string {
	t.Helper()
	var ids []string
	step(t, ctx, "results", into(&ids, chromedp.Evaluate[[]string](`[...document.querySelectorAll("`+table+` tbody tr")].map(r => r.dataset.id)`)))
	slices.Sort(ids)
	return ids
}
