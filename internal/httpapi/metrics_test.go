package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

type fixedWAL []entente.WALStats

func (f fixedWAL) WALStats() []entente.WALStats { return f }

// TestWALMetrics: every figure a store reports is exposed under its
// database's label, read at scrape time.
func TestWALMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	src := fixedWAL{
		{Database: "objects", Bytes: 123456, LimitBytes: 64 << 20, PendingFrames: 7, CheckpointLag: 1500 * time.Millisecond, Checkpoints: 40, Truncations: 3, Incomplete: 1,
			GaveUpWriter: 1, GaveUpReads: 2, GaveUpSnapshots: 3, GaveUpError: 4, ReadsHeld: 12, ReadsHeldTime: 250 * time.Millisecond},
		{Database: "audit", Bytes: 0, LimitBytes: 64 << 20},
	}
	if err := httpapi.RegisterWALMetrics(reg, src); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	want := map[string]float64{}
	for _, db := range []string{"objects", "audit"} {
		for _, name := range []string{"entente_store_wal_bytes", "entente_store_wal_limit_bytes", "entente_store_wal_pending_frames", "entente_store_checkpoint_lag_seconds",
			"entente_store_checkpoints_total", "entente_store_wal_truncations_total", "entente_store_wal_truncations_incomplete_total",
			"entente_store_wal_reads_held_total", "entente_store_wal_reads_held_seconds_total"} {
			want[name+"/"+db] = 0
		}
		for _, why := range []string{"writer", "reads", "snapshots", "error"} {
			want["entente_store_wal_truncations_gave_up_total/"+db+"/"+why] = 0
		}
	}
	for k, v := range map[string]float64{
		"entente_store_wal_bytes/objects": 123456, "entente_store_wal_limit_bytes/objects": 64 << 20, "entente_store_wal_limit_bytes/audit": 64 << 20,
		"entente_store_wal_pending_frames/objects": 7, "entente_store_checkpoint_lag_seconds/objects": 1.5, "entente_store_checkpoints_total/objects": 40,
		"entente_store_wal_truncations_total/objects": 3, "entente_store_wal_truncations_incomplete_total/objects": 1,
		"entente_store_wal_reads_held_total/objects": 12, "entente_store_wal_reads_held_seconds_total/objects": 0.25,
		"entente_store_wal_truncations_gave_up_total/objects/writer": 1, "entente_store_wal_truncations_gave_up_total/objects/reads": 2,
		"entente_store_wal_truncations_gave_up_total/objects/snapshots": 3, "entente_store_wal_truncations_gave_up_total/objects/error": 4,
	} {
		want[k] = v
	}
	if len(got) != len(want) {
		t.Errorf("%d metrics, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if err := httpapi.RegisterWALMetrics(reg, src); err == nil {
		t.Error("registering twice succeeded")
	}
}

// gather returns every metric of reg as name/database → value (and
// /waiting_for, for the truncations given up).
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += "/" + l.GetValue()
			}
			got[k] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return got
}

// TestWALMetricsSQLite exposes a real SQLite store's logs after a write.
func TestWALMetricsSQLite(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.PutSetting(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := httpapi.RegisterWALMetrics(reg, st); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	if got["entente_store_wal_bytes/objects"] <= 0 {
		t.Errorf("the objects' log is empty after a write: %v", got)
	}
	for _, db := range []string{"objects", "audit"} {
		if got["entente_store_wal_limit_bytes/"+db] != 64<<20 {
			t.Errorf("%s: limit %v, want 64 MiB", db, got["entente_store_wal_limit_bytes/"+db])
		}
	}
}
