package dashboard_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/entente-cti/entente"
)

// BenchmarkGraphInBrowser measures, in Chromium, the relationship graph
// of a malware with 1,000 neighbours (1,021 objects): from the request
// to the graph drawn on its canvas (fetch, radial layout, drawing), as
// the page measures it; "ms/graph" is that time. The API is the
// contract's (contractAPI), in memory, so the figure is the page's.
//
//	go test ./internal/dashboard -run '^$' -bench BenchmarkGraphInBrowser -benchtime 20x
func BenchmarkGraphInBrowser(b *testing.B) {
	benchPage(b, "#/graph/"+hub, `#graph-canvas[data-total-ms]`, `Number(document.getElementById("graph-canvas").dataset.totalMs)`, "ms/graph")
}

// BenchmarkMatrixInBrowser measures, in Chromium, the ATT&CK matrix page
// (14 tactics, 560 techniques, filtered by an intrusion set) from the
// request to the page drawn; "ms/matrix" is that time.
//
//	go test ./internal/dashboard -run '^$' -bench BenchmarkMatrixInBrowser -benchtime 20x
func BenchmarkMatrixInBrowser(b *testing.B) {
	benchPage(b, "#/matrix?filter="+apt28+"&name=APT28", `#view[data-render-ms]`, `Number(document.getElementById("view").dataset.renderMs)`, "ms/matrix")
}

// benchPage opens hash b.N times, each after clearing the page, waits
// for ready and reports the mean of the page's own measure.
func benchPage(b *testing.B, hash, ready, measure, unit string) {
	ctx := browser(b)
	tn := newTestNode(b)
	tn.dash.SetAPI(newContractAPI(b, tn.keys[entente.RoleAnalyst]))
	signIn(b, ctx, tn.srv.URL, tn.keys[entente.RoleAnalyst])
	var total float64
	n := 0
	for b.Loop() {
		var ms float64
		step(b, ctx, "open "+hash,
			run(`location.hash = "#/overview"; document.getElementById("view").replaceChildren(); delete document.getElementById("view").dataset.renderMs`),
			chromedp.WaitVisible(chromedp.CSS(`#count-sightings`)),
			run(`location.hash = `+jsString(hash)),
			chromedp.WaitVisible(chromedp.CSS(ready)),
			into(&ms, chromedp.Evaluate[float64](measure)))
		total += ms
		n++
	}
	b.ReportMetric(total/float64(n), unit)
}

func jsString(s string) string { return "'" + s + "'" }
