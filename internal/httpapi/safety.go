package httpapi

import (
	"net/http"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/prometheus/client_golang/prometheus"
)

// ExplainPath is the route that explains the safety net's decision on a
// value.
const ExplainPath = "/api/v1/explain"

// explain serves GET /api/v1/explain?value=V: what the node's safety net
// does with V in every output (exports, the sensor snapshot, offline
// matching, correlation) and which rules decide it. The node's own keys
// only (admin, analyst, sensor): the answer reveals the constituency and
// the allowlist, which are not a partner's business.
func (h *handler) explain(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if p.Role == entente.RolePartner || p.Role == "" {
		h.writeError(w, r, entente.Errorf(entente.EFORBIDDEN, "explaining the safety net is for the node's own keys (admin, analyst, sensor)"))
		return
	}
	if class := r.URL.Query().Get("class"); class != "" {
		h.explainClass(w, r, class)
		return
	}
	v := r.URL.Query().Get("value")
	if v == "" {
		h.writeError(w, r, entente.Errorf(entente.EINVALID, "give the value to explain: %s?value=VALUE", ExplainPath))
		return
	}
	if len(v) > 8192 {
		h.writeError(w, r, entente.Errorf(entente.EINVALID, "value is %d bytes long (at most 8192)", len(v)))
		return
	}
	ex, err := h.opts.Safety.Explain(v)
	if err != nil {
		h.writeError(w, r, entente.Errorf(entente.EINVALID, "%v", err))
		return
	}
	h.writeAPI(w, r, http.StatusOK, ex)
}

// safetyCollector exposes the safety net's suppressions as
// entente_safety_suppressed_total{rule,source,output}.
type safetyCollector struct {
	net  *safety.Net
	desc *prometheus.Desc
}

func newSafetyCollector(n *safety.Net) *safetyCollector {
	return &safetyCollector{net: n, desc: prometheus.NewDesc("entente_safety_suppressed_total",
		"Values the safety net kept out (left out, cut or refused), by kind of rule, source of the rule (registry, warninglist, constituency, allowlist, too-broad) and output (export, snapshot, match, correlation).",
		[]string{"rule", "source", "output"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *safetyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *safetyCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ rule, source, output string }
	sums := map[key]int64{}
	var order []key
	for _, n := range c.net.Counts() {
		k := key{string(n.Rule.Kind), n.Rule.Source, n.Output.String()}
		if _, ok := sums[k]; !ok {
			order = append(order, k)
		}
		sums[k] += n.N
	}
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(sums[k]), k.rule, k.source, k.output)
	}
}
