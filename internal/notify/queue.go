package notify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/entente-cti/entente"
)

// Delivery is one payload waiting to be delivered to one target.
type Delivery struct {
	// ID identifies the delivery; Enqueue fills it in when empty.
	ID string `json:"id"`
	// Target is where to deliver: a webhook URL.
	Target string `json:"target"`
	// ContentType is the body's media type (default application/json).
	ContentType string `json:"content_type,omitempty"`
	// Body is the payload, exactly as it will be sent and signed.
	Body []byte `json:"body"`
	// Created is when it was enqueued; NextAt when it is next due.
	Created time.Time `json:"created"`
	NextAt  time.Time `json:"next_at"`
	// Attempts counts failed attempts so far; LastError is the last one's.
	Attempts  int    `json:"attempts,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// Queue holds deliveries until they succeed. Implementations are safe for
// concurrent use; a delivery handed out by Due stays queued until it is
// acknowledged or rescheduled, so a crash means it is delivered again (at
// least once).
type Queue interface {
	// Enqueue stores d durably, due at d.NextAt (or at once when zero).
	Enqueue(ctx context.Context, d Delivery) error
	// Due returns up to n deliveries due at now, oldest due first.
	Due(ctx context.Context, now time.Time, n int) ([]Delivery, error)
	// Ack removes a delivered (or abandoned) delivery. Acknowledging an
	// unknown id is not an error.
	Ack(ctx context.Context, id string) error
	// Retry records a failed attempt and makes the delivery due again at
	// at. It returns an *entente.Error ENOTFOUND for an unknown id.
	Retry(ctx context.Context, id string, at time.Time, lastErr string) error
}

// FileQueue is a [Queue] kept in an append-only journal of JSON lines in
// one file. Enqueues are synced to disk before they return; acks and
// retries are written but not synced (after a crash a delivery may be
// attempted once more). The journal is compacted when it is opened and
// whenever it holds more than twice as many records as live deliveries.
type FileQueue struct {
	path string

	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	items   map[string]*Delivery
	records int // lines in the journal
	closed  bool
	// Skipped counts journal lines that could not be read when the queue
	// was opened (a torn last write after a crash, for example).
	Skipped int
}

var _ Queue = (*FileQueue)(nil)

// record is one journal line.
type record struct {
	Op        string    `json:"op"` // "enqueue", "ack", "retry"
	Delivery  *Delivery `json:"delivery,omitempty"`
	ID        string    `json:"id,omitempty"`
	At        time.Time `json:"at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// OpenFileQueue opens (creating it if needed) the queue journal at path
// and compacts it.
func OpenFileQueue(path string) (*FileQueue, error) {
	q := &FileQueue{path: path, items: make(map[string]*Delivery)}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open delivery queue: %w", err)
	}
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			q.Skipped++
			continue
		}
		q.apply(&r)
	}
	if err := q.compact(); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *FileQueue) apply(r *record) {
	switch r.Op {
	case "enqueue":
		if r.Delivery != nil && r.Delivery.ID != "" {
			d := *r.Delivery
			q.items[d.ID] = &d
		}
	case "ack":
		delete(q.items, r.ID)
	case "retry":
		if d, ok := q.items[r.ID]; ok {
			d.Attempts++
			d.NextAt = r.At
			d.LastError = r.LastError
		}
	}
}

// compact rewrites the journal with one enqueue record per live delivery
// (carrying its attempts), atomically, and reopens it for appending.
func (q *FileQueue) compact() error {
	if q.f != nil {
		if err := q.w.Flush(); err != nil {
			return fmt.Errorf("compact delivery queue %s: %w", q.path, err)
		}
		q.f.Close()
		q.f = nil
	}
	tmp := q.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("compact delivery queue: %w", err)
	}
	w := bufio.NewWriter(f)
	ids := make([]string, 0, len(q.items))
	for id := range q.items {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	enc := json.NewEncoder(w)
	for _, id := range ids {
		if err := enc.Encode(record{Op: "enqueue", Delivery: q.items[id]}); err != nil {
			f.Close()
			return fmt.Errorf("compact delivery queue: %w", err)
		}
	}
	if err := w.Flush(); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, q.path)
	}
	if err != nil {
		return fmt.Errorf("compact delivery queue %s: %w", q.path, err)
	}
	syncDir(filepath.Dir(q.path))
	q.records = len(ids)
	q.f, err = os.OpenFile(q.path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open delivery queue %s: %w", q.path, err)
	}
	q.w = bufio.NewWriter(q.f)
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

func (q *FileQueue) write(r record, sync bool) error {
	if q.closed {
		return entente.Errorf(entente.EUNAVAILABLE, "delivery queue is closed")
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("write delivery queue: %w", err)
	}
	b = append(b, '\n')
	if _, err := q.w.Write(b); err != nil {
		return fmt.Errorf("write delivery queue %s: %w", q.path, err)
	}
	if err := q.w.Flush(); err != nil {
		return fmt.Errorf("write delivery queue %s: %w", q.path, err)
	}
	if sync {
		if err := q.f.Sync(); err != nil {
			return fmt.Errorf("sync delivery queue %s: %w", q.path, err)
		}
	}
	q.records++
	if q.records > 64 && q.records > 2*len(q.items) {
		return q.compact()
	}
	return nil
}

// Enqueue stores d durably. An empty ID gets a new one; an ID already
// queued is a conflict.
func (q *FileQueue) Enqueue(ctx context.Context, d Delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.Target == "" {
		return entente.Errorf(entente.EINVALID, "delivery has no target")
	}
	if d.ID == "" {
		d.ID = newID()
	}
	if d.Created.IsZero() {
		d.Created = time.Now().UTC()
	}
	if d.NextAt.IsZero() {
		d.NextAt = d.Created
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.items[d.ID]; ok {
		return entente.Errorf(entente.ECONFLICT, "delivery %s is already queued", d.ID)
	}
	if err := q.write(record{Op: "enqueue", Delivery: &d}, true); err != nil {
		return err
	}
	q.items[d.ID] = &d
	return nil
}

// Due returns up to n deliveries due at now, the earliest due first (ties
// by id).
func (q *FileQueue) Due(ctx context.Context, now time.Time, n int) ([]Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Delivery
	for _, d := range q.items {
		if !d.NextAt.After(now) {
			out = append(out, *d)
		}
	}
	slices.SortFunc(out, func(a, b Delivery) int {
		if c := a.NextAt.Compare(b.NextAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// Next returns when the earliest delivery is due, and false when the
// queue is empty.
func (q *FileQueue) Next() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var next time.Time
	for _, d := range q.items {
		if next.IsZero() || d.NextAt.Before(next) {
			next = d.NextAt
		}
	}
	return next, !next.IsZero()
}

// Len returns the number of queued deliveries.
func (q *FileQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Ack removes a delivery.
func (q *FileQueue) Ack(ctx context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.items[id]; !ok {
		return nil
	}
	if err := q.write(record{Op: "ack", ID: id}, false); err != nil {
		return err
	}
	delete(q.items, id)
	return nil
}

// Retry records a failed attempt and reschedules the delivery at at.
func (q *FileQueue) Retry(ctx context.Context, id string, at time.Time, lastErr string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	d, ok := q.items[id]
	if !ok {
		return entente.Errorf(entente.ENOTFOUND, "delivery %s is not queued", id)
	}
	if err := q.write(record{Op: "retry", ID: id, At: at, LastError: lastErr}, false); err != nil {
		return err
	}
	d.Attempts++
	d.NextAt = at
	d.LastError = lastErr
	return nil
}

// Close flushes and syncs the journal and closes it.
func (q *FileQueue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	err := q.w.Flush()
	if serr := q.f.Sync(); err == nil {
		err = serr
	}
	if cerr := q.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close delivery queue %s: %w", q.path, err)
	}
	return nil
}
