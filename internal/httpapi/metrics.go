package httpapi

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-cti/entente"
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

// walCollector exposes a store's write-ahead logs (see
// entente.WALReporter), read at every scrape.
type walCollector struct {
	src                                  entente.WALReporter
	bytes, limit, pending, lag           *prometheus.Desc
	checkpoints, truncations, incomplete *prometheus.Desc
	readsHeld, readsHeldTime             *prometheus.Desc
	gaveUp                               *prometheus.Desc
}

// RegisterWALMetrics registers, on reg, gauges and counters of the
// write-ahead logs src reports, labelled by database: the log's size and
// limit in bytes, the frames the last checkpoint left in it, the
// checkpoint lag in seconds, the checkpoints run, completed
// truncations and truncations that gave up waiting, and the reads held
// back while a truncation waited and their time held.
func RegisterWALMetrics(reg prometheus.Registerer, src entente.WALReporter) error {
	l := []string{"database"}
	c := &walCollector{
		src:           src,
		bytes:         prometheus.NewDesc("entente_store_wal_bytes", "Size of the store's write-ahead log.", l, nil),
		limit:         prometheus.NewDesc("entente_store_wal_limit_bytes", "Size the store keeps its write-ahead log to (it may pass it by what is written between two checkpoints).", l, nil),
		pending:       prometheus.NewDesc("entente_store_wal_pending_frames", "Committed pages the last checkpoint left in the write-ahead log, not yet in the database file.", l, nil),
		lag:           prometheus.NewDesc("entente_store_checkpoint_lag_seconds", "Time since a checkpoint last left nothing pending in the write-ahead log (0 when nothing is).", l, nil),
		checkpoints:   prometheus.NewDesc("entente_store_checkpoints_total", "Checkpoints of the write-ahead log.", l, nil),
		truncations:   prometheus.NewDesc("entente_store_wal_truncations_total", "Checkpoints that emptied the write-ahead log.", l, nil),
		incomplete:    prometheus.NewDesc("entente_store_wal_truncations_incomplete_total", "Truncating checkpoints that gave up waiting for the writer or for readers of older snapshots (retried later).", l, nil),
		readsHeld:     prometheus.NewDesc("entente_store_wal_reads_held_total", "Reads held back while a truncating checkpoint waited for the readers of older snapshots.", l, nil),
		readsHeldTime: prometheus.NewDesc("entente_store_wal_reads_held_seconds_total", "Time the reads held back by truncating checkpoints waited, in all.", l, nil),
		gaveUp: prometheus.NewDesc("entente_store_wal_truncations_gave_up_total", "Truncating checkpoints that gave up, by what they waited for: the writer connection (writer), reads in flight (reads), readers of older snapshots SQLite still found (snapshots), or an error (error).",
			[]string{"database", "waiting_for"}, nil),
	}
	if err := reg.Register(c); err != nil {
		return fmt.Errorf("register WAL metrics: %w", err)
	}
	return nil
}

// Describe sends the collector's descriptions.
func (c *walCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.limit, c.pending, c.lag, c.checkpoints, c.truncations, c.incomplete, c.readsHeld, c.readsHeldTime, c.gaveUp} {
		ch <- d
	}
}

// Collect reads the logs' figures now.
func (c *walCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.src.WALStats() {
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes), s.Database)
		ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(s.LimitBytes), s.Database)
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(s.PendingFrames), s.Database)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, s.CheckpointLag.Seconds(), s.Database)
		ch <- prometheus.MustNewConstMetric(c.checkpoints, prometheus.CounterValue, float64(s.Checkpoints), s.Database)
		ch <- prometheus.MustNewConstMetric(c.truncations, prometheus.CounterValue, float64(s.Truncations), s.Database)
		ch <- prometheus.MustNewConstMetric(c.incomplete, prometheus.CounterValue, float64(s.Incomplete), s.Database)
		ch <- prometheus.MustNewConstMetric(c.readsHeld, prometheus.CounterValue, float64(s.ReadsHeld), s.Database)
		ch <- prometheus.MustNewConstMetric(c.readsHeldTime, prometheus.CounterValue, s.ReadsHeldTime.Seconds(), s.Database)
		for _, g := range []struct {
			why string
			n   int64
		}{{"writer", s.GaveUpWriter}, {"reads", s.GaveUpReads}, {"snapshots", s.GaveUpSnapshots}, {"error", s.GaveUpError}} {
			ch <- prometheus.MustNewConstMetric(c.gaveUp, prometheus.CounterValue, float64(g.n), s.Database, g.why)
		}
	}
}
