package notify_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/notify"
)

func openQueue(t *testing.T, path string) *notify.FileQueue {
	t.Helper()
	q, err := notify.OpenFileQueue(path)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestFileQueueSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "deliveries.jsonl")
	q := openQueue(t, path)
	for i, id := range []string{"a", "b", "c"} {
		d := notify.Delivery{ID: id, Target: "http://127.0.0.1:1/hook", Body: []byte(`{"n":` + string('0'+rune(i)) + `}`),
			Created: now, NextAt: now.Add(time.Duration(i) * time.Second)}
		if err := q.Enqueue(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Enqueue(ctx, notify.Delivery{ID: "a", Target: "x"}); entente.ErrorCode(err) != entente.ECONFLICT {
		t.Errorf("second enqueue of a: %v, want a conflict", err)
	}
	if err := q.Ack(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := q.Retry(ctx, "a", now.Add(time.Minute), "status 503"); err != nil {
		t.Fatal(err)
	}
	if err := q.Retry(ctx, "zz", now, ""); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Errorf("retry of an unknown id: %v", err)
	}
	before, err := q.Due(ctx, now.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q2 := openQueue(t, path)
	defer q2.Close()
	after, err := q2.Due(ctx, now.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("queue changed across close and reopen (-before +after):\n%s", diff)
	}
	if len(after) != 2 || after[0].ID != "c" || after[1].ID != "a" || after[1].Attempts != 1 || after[1].LastError != "status 503" {
		t.Errorf("want c then a (retried once), got %+v", after)
	}
	// Only c is due two seconds in.
	due, _ := q2.Due(ctx, now.Add(2*time.Second), 10)
	if len(due) != 1 || due[0].ID != "c" {
		t.Errorf("due at +2s: %+v", due)
	}
}

func TestFileQueueToleratesATornWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.jsonl")
	q := openQueue(t, path)
	if err := q.Enqueue(ctx, notify.Delivery{ID: "a", Target: "http://127.0.0.1:1/", Body: []byte("{}"), Created: now}); err != nil {
		t.Fatal(err)
	}
	q.Close()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"op":"ack","id":"a"`) // crash in the middle of a line
	f.Close()
	q2 := openQueue(t, path)
	defer q2.Close()
	if q2.Skipped != 1 || q2.Len() != 1 {
		t.Fatalf("skipped %d, len %d; want 1 and 1", q2.Skipped, q2.Len())
	}
}

func TestFileQueueCompacts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.jsonl")
	q := openQueue(t, path)
	defer q.Close()
	for i := range 500 {
		id := string(rune('a'+i%26)) + string(rune('a'+i/26))
		if err := q.Enqueue(ctx, notify.Delivery{ID: id, Target: "http://127.0.0.1:1/", Body: []byte("{}"), Created: now}); err != nil {
			t.Fatal(err)
		}
		if err := q.Ack(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 64<<10 {
		t.Errorf("journal of an empty queue is %d bytes after 1000 records: not compacted", st.Size())
	}
}
