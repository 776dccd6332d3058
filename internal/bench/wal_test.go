package bench

import (
	"reflect"
	"testing"
)

// TestEmitEmptyings: the objects' emptyings, completed and given up by
// what they waited for, are read from the node's metrics lines; a build
// that does not count them by cause says so, and one without the
// counters emits nothing.
func TestEmitEmptyings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  []Figure
	}{
		{"by cause", []string{
			`entente_store_wal_truncations_gave_up_total{database="audit",waiting_for="writer"} 9`,
			`entente_store_wal_truncations_gave_up_total{database="objects",waiting_for="error"} 0`,
			`entente_store_wal_truncations_gave_up_total{database="objects",waiting_for="reads"} 2`,
			`entente_store_wal_truncations_gave_up_total{database="objects",waiting_for="snapshots"} 1`,
			`entente_store_wal_truncations_gave_up_total{database="objects",waiting_for="writer"} 12`,
			`entente_store_wal_truncations_incomplete_total{database="audit"} 9`,
			`entente_store_wal_truncations_incomplete_total{database="objects"} 15`,
			`entente_store_wal_truncations_total{database="audit"} 3`,
			`entente_store_wal_truncations_total{database="objects"} 205`,
		}, []Figure{
			{Name: "wal.emptyings.completed", Value: 205, Unit: "checkpoints", Better: Info},
			{Name: "wal.emptyings.gave-up", Value: 15, Unit: "checkpoints", Better: Lower, Note: "waiting for: writer 12, reads 2, snapshots 1, error 0"},
		}},
		{"no causes", []string{
			`entente_store_wal_truncations_incomplete_total{database="objects"} 15`,
			`entente_store_wal_truncations_total{database="objects"} 205`,
		}, []Figure{
			{Name: "wal.emptyings.completed", Value: 205, Unit: "checkpoints", Better: Info},
			{Name: "wal.emptyings.gave-up", Value: 15, Unit: "checkpoints", Better: Lower, Note: "this build does not say what they waited for"},
		}},
		{"no counters", []string{`entente_store_wal_bytes{database="objects"} 1`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Env{}
			emitEmptyings(e, tc.lines)
			if !reflect.DeepEqual(e.figures, tc.want) {
				t.Errorf("figures %+v, want %+v", e.figures, tc.want)
			}
		})
	}
}
