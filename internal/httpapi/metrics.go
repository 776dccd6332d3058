package httpapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the adapter's Prometheus metrics.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	added    prometheus.Counter
	refused  prometheus.Counter
	reg      prometheus.Registerer
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "entente_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		added: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entente_taxii_objects_added_total",
			Help: "STIX objects stored by Add Objects requests (including versions already held), counted when the request completes.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entente_taxii_objects_refused_total",
			Help: "STIX objects refused by TAXII Add Objects requests because they are not valid.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.added, m.refused)
		m.reg = reg
	}
	return m
}

// bodyMemory exports the memory charged to request bodies in b.
func (m *metrics) bodyMemory(b *budget) {
	if m.reg == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "entente_http_body_memory_bytes",
		Help: "Memory charged to request bodies being read, decoded and stored (see the body memory limits).",
	}, func() float64 { total, _ := b.inUse(""); return float64(total) }))
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}
