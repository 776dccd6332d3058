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
	bg := context.Background()
	id, _ := tn.svc.Identity(bg)
	// An indicator by Org 0, modified later than the fixture.
	const sourced = "indicator--0a1b2c3d-0000-4000-8000-0000000000b1"
	raw := json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"` + sourced + `","created":"2026-11-05T00:00:00.000Z","modified":"2026-11-05T00:00:00.000Z",` +
		`"name":"Org 0 C2","pattern":"[ipv4-addr:value = '192.0.2.44']","pattern_type":"stix","valid_from":"2026-11-05T00:00:00Z","created_by_ref":"` + orgID(0) + `",` +
		`"object_marking_refs":["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]}`)
	if st, err := tn.svc.AddObjects(bg, node.LocalAdmin(id.ID), node.CollectionIntel, []json.RawMessage{raw}); err != nil || st.FailureCount > 0 {
		t.Fatalf("store: %v %+v", err, st)
	}
	signIn(t, ctx, tn.srv.URL, tn.keys[entente.RoleAnalyst])
	results := func() []string {
		var ids []string
		step(t, ctx, "results", into(&ids, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#search-results tbody tr")].map(r => r.dataset.id)`)))
		slices.Sort(ids)
		return ids
	}
	all := []string{threats[0].indicator, threats[1].indicator, sourced}
	slices.Sort(all)
	// waitFor waits for the page drawn for the filters in the address.
	waitFor := func(hash string) chromedp.Action[chromedp.Void] {
		return poll(`document.getElementById("view").dataset.drawn === ` + jsonString(hash))
	}
	// set sets the search page's controls, and changes the last.
	set := func(kv ...string) chromedp.Action[chromedp.Void] {
		js := ""
		for i := 0; i < len(kv); i += 2 {
			js += `document.getElementById(` + jsonString(kv[i]) + `).value = ` + jsonString(kv[i+1]) + `;`
		}
		return run(js + `document.getElementById(` + jsonString(kv[len(kv)-2]) + `).dispatchEvent(new Event("change"))`)
	}
	for _, c := range []struct {
		name    string
		actions []chromedp.Action[chromedp.Void]
		hash    string
		want    []string
	}{
		{"type", []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(tn.srv.URL + "/ui/#/search"), chromedp.WaitReady(chromedp.CSS(`#search-source option[value="` + orgID(0) + `"]`)),
			set("search-type", "indicator"),
		}, "#/search?type=indicator", all},
		{"source", []chromedp.Action[chromedp.Void]{set("search-source", orgID(0))},
			"#/search?type=indicator&source=" + urlQuery(orgID(0)), []string{sourced}},
		{"no source, modified from 2026-11-03", []chromedp.Action[chromedp.Void]{set("search-source", "", "search-from", "2026-11-03")},
			"#/search?type=indicator&from=2026-11-03", []string{sourced}},
		{"modified up to 2026-11-01", []chromedp.Action[chromedp.Void]{set("search-from", "", "search-to", "2026-11-01")},
			"#/search?type=indicator&to=2026-11-01", []string{threats[0].indicator, threats[1].indicator}},
		{"collection sightings", []chromedp.Action[chromedp.Void]{set("search-to", "", "search-collection", "sightings")},
			"#/search?type=indicator&collection=sightings", nil},
		{"collection intel, TLP amber", []chromedp.Action[chromedp.Void]{set("search-collection", "intel", "search-tlp", "amber")},
			"#/search?type=indicator&tlp=amber&collection=intel", all},
		{"reload keeps the filters", []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(tn.srv.URL + "/ui/#/search?q=C2&collection=intel&source=" + urlQuery(orgID(0)) + "&from=2026-11-05&to=2026-11-05"),
		}, "#/search?q=C2&collection=intel&source=" + urlQuery(orgID(0)) + "&from=2026-11-05&to=2026-11-05", []string{sourced}},
	} {
		step(t, ctx, c.name, append(c.actions, waitFor(c.hash))...)
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

// jsonString quotes s for JavaScript.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
