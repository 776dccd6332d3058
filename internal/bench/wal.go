package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// walLimit is the WAL size the SQLite store keeps to (journal_size_limit).
const walLimit = 64 << 20

// walBound is the multiple of walLimit the WAL must stay under while the
// mixed load runs.
const walBound = 2

// mixedLoad is the state of the wal workload's clients.
type mixedLoad struct {
	hc         *http.Client
	key        string
	collection string // objects URL of the collection
	root       string // API root URL
	posted     atomic.Int64
	reads      atomic.Int64
	refused    atomic.Int64 // 429 and 503 answers (back-pressure)
	notYet     atomic.Int64 // objects asked for that were accepted but not yet stored
	errs       atomic.Int64
	firstErr   atomic.Value
	ids        sync.Map // client -> highest posted sequence
}

// walDuration is how long the wal workload's load runs.
func walDuration(o *Options) time.Duration {
	switch {
	case o.WALDuration > 0:
		return o.WALDuration
	case o.Mode == Full:
		return 60 * time.Second
	}
	return 30 * time.Second
}

// walBudget bounds the wal workload: its load, and two minutes to start
// the node and end.
func walBudget(o *Options) time.Duration { return walDuration(o) + 2*time.Minute }

// walWorkload runs a mixed load against one node for a bounded time: a
// quarter of the clients post envelopes of 100 new indicators back to
// back, the others read (the collection fully paged with limit 100, single
// objects by id, and pages of 1,000 added after a recent time). It samples
// the size of the node's SQLite write-ahead log every 250 ms and reports
// the largest against the limit, and the size once the load has stopped
// and the node has been idle for 3 s.
func walWorkload(ctx context.Context, e *Env) error {
	dur := walDuration(e.opts)
	clients := e.opts.WALClients
	if clients <= 0 {
		clients = 16
	}
	node, err := e.StartNode(ctx, "")
	if err != nil {
		return err
	}
	l := &mixedLoad{hc: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients * 2}}, key: node.Key}
	if err := l.resolve(ctx, node.URL); err != nil {
		return err
	}
	walPath := filepath.Join(node.Dir, "entente.db-wal")
	var maxWAL, sumWAL, samples int64
	sample := func() {
		if fi, err := os.Stat(walPath); err == nil {
			maxWAL = max(maxWAL, fi.Size())
			sumWAL += fi.Size()
			samples++
		}
	}
	e.Logf("%d clients for %v (a quarter posting, the rest reading); WAL sampled every 250 ms", clients, dur)
	lctx, stop := context.WithTimeout(ctx, dur)
	defer stop()
	var wg sync.WaitGroup
	cpu0, _ := node.CPU()
	t0 := time.Now()
	for c := range clients {
		wg.Go(func() { l.client(lctx, c) })
	}
	tick := time.NewTicker(250 * time.Millisecond)
	for done := false; !done; {
		select {
		case <-lctx.Done():
			done = true
		case <-tick.C:
			sample()
		}
	}
	tick.Stop()
	wg.Wait()
	el := time.Since(t0)
	cpu1, _ := node.CPU()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	select {
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	var idle int64
	if fi, err := os.Stat(walPath); err == nil {
		idle = fi.Size()
	}
	if n := l.errs.Load(); n > 0 {
		return fmt.Errorf("%d requests failed; first: %v", n, l.firstErr.Load())
	}
	note := fmt.Sprintf("%d clients for %v; limit %d MiB", clients, dur, walLimit>>20)
	e.Emit(Figure{Name: "wal.max", Value: float64(maxWAL) / (1 << 20), Unit: "MiB", Better: Lower, Goal: AtMost(walBound * walLimit >> 20), Note: note})
	if samples > 0 {
		e.Emit(Figure{Name: "wal.mean", Value: float64(sumWAL) / float64(samples) / (1 << 20), Unit: "MiB", Better: Lower})
	}
	e.Emit(Figure{Name: "wal.after-idle", Value: float64(idle) / (1 << 20), Unit: "MiB", Better: Lower, Goal: AtMost(walLimit >> 20)})
	e.Emit(Figure{Name: "wal.load.posted", Value: float64(l.posted.Load()) / el.Seconds(), Unit: "objects/s", Better: Higher, Note: "accepted (202) during the mixed load"})
	e.Emit(Figure{Name: "wal.load.reads", Value: float64(l.reads.Load()) / el.Seconds(), Unit: "requests/s", Better: Higher})
	e.Emit(Figure{Name: "wal.load.refused", Value: float64(l.refused.Load()), Unit: "requests", Better: Lower, Note: "answered 429 or 503 (back-pressure)"})
	e.Emit(Figure{Name: "wal.load.not-yet-stored", Value: float64(l.notYet.Load()), Unit: "requests", Better: Info, Note: "object GETs of objects accepted but not yet stored (404)"})
	e.Emit(Figure{Name: "wal.load.server-cpu", Value: (cpu1 - cpu0).Seconds() / el.Seconds(), Unit: "cores", Better: Info})
	if m, err := l.walMetrics(ctx, node.URL); err != nil {
		e.Logf("WAL metrics: %v", err)
	} else {
		e.Logf("/metrics after the load: %s", strings.Join(m, "; "))
		emitEmptyings(e, m)
	}
	return nil
}

// emitEmptyings emits the objects' log's emptying checkpoints, completed
// and given up, by what they waited for, from the node's metrics lines
// (builds that do not count them emit none).
func emitEmptyings(e *Env, lines []string) {
	const db = `database="objects"`
	value := func(name string, labels ...string) (float64, bool) {
		for _, line := range lines {
			rest, ok := strings.CutPrefix(line, name+"{")
			if !ok {
				continue
			}
			ls, v, ok := strings.Cut(rest, "} ")
			if !ok {
				continue
			}
			match := true
			for _, l := range labels {
				match = match && strings.Contains(ls, l)
			}
			if f, err := strconv.ParseFloat(v, 64); match && err == nil {
				return f, true
			}
		}
		return 0, false
	}
	if n, ok := value("entente_store_wal_truncations_total", db); ok {
		e.Emit(Figure{Name: "wal.emptyings.completed", Value: n, Unit: "checkpoints", Better: Info})
	}
	if n, ok := value("entente_store_wal_truncations_incomplete_total", db); ok {
		var by []string
		for _, why := range []string{"writer", "reads", "snapshots", "error"} {
			if k, ok := value("entente_store_wal_truncations_gave_up_total", db, `waiting_for="`+why+`"`); ok {
				by = append(by, fmt.Sprintf("%s %.0f", why, k))
			}
		}
		note := "waiting for: " + strings.Join(by, ", ")
		if len(by) == 0 {
			note = "this build does not say what they waited for"
		}
		e.Emit(Figure{Name: "wal.emptyings.gave-up", Value: n, Unit: "checkpoints", Better: Lower, Note: note})
	}
}

// resolve finds the API root and the first read/write collection.
func (l *mixedLoad) resolve(ctx context.Context, base string) error {
	var d struct {
		Default  string   `json:"default"`
		APIRoots []string `json:"api_roots"`
	}
	if err := l.getJSON(ctx, base+"/taxii2/", &d); err != nil {
		return err
	}
	root := d.Default
	if root == "" && len(d.APIRoots) > 0 {
		root = d.APIRoots[0]
	}
	if root == "" {
		return errors.New("discovery names no API root")
	}
	if !strings.HasPrefix(root, "http") {
		root = base + "/" + strings.TrimLeft(root, "/")
	}
	l.root = strings.TrimRight(root, "/") + "/"
	var cs struct {
		Collections []struct {
			ID       string `json:"id"`
			CanRead  bool   `json:"can_read"`
			CanWrite bool   `json:"can_write"`
		} `json:"collections"`
	}
	if err := l.getJSON(ctx, l.root+"collections/", &cs); err != nil {
		return err
	}
	for _, c := range cs.Collections {
		if c.CanRead && c.CanWrite {
			l.collection = l.root + "collections/" + c.ID + "/objects/"
			return nil
		}
	}
	return errors.New("no collection the admin key can read and write")
}

func (l *mixedLoad) request(ctx context.Context, method, u string, body []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	req.SetBasicAuth("bench", l.key)
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	if body != nil {
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	}
	resp, err := l.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b, err
}

func (l *mixedLoad) getJSON(ctx context.Context, u string, v any) error {
	resp, b, err := l.request(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.200s", u, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

// fail records a failed request unless the load is over.
func (l *mixedLoad) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	l.errs.Add(1)
	l.firstErr.CompareAndSwap(nil, err.Error())
}

// backOff reports whether an answer is back-pressure (429 or 503), and
// waits a little if so.
func (l *mixedLoad) backOff(ctx context.Context, code int) bool {
	if code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable {
		return false
	}
	l.refused.Add(1)
	select {
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
	}
	return true
}

func benchIndicatorID(client int, seq int64) string {
	return fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", client, seq)
}

// client runs one client's share of the load until ctx ends.
func (l *mixedLoad) client(ctx context.Context, c int) {
	rng := rand.New(rand.NewPCG(uint64(c), 42))
	var seq int64
	for ctx.Err() == nil {
		switch c % 4 {
		case 0: // post an envelope of 100 new indicators
			var b bytes.Buffer
			b.WriteString(`{"objects":[`)
			now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
			for i := range 100 {
				if i > 0 {
					b.WriteByte(',')
				}
				seq++
				fmt.Fprintf(&b, `{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"name":"mixed load %d/%d","pattern":"[ipv4-addr:value = '10.%d.%d.%d']","pattern_type":"stix","valid_from":%q}`,
					benchIndicatorID(c, seq), now, now, c, seq, c%256, (seq>>8)&255, seq&255, now)
			}
			b.WriteString(`]}`)
			resp, body, err := l.request(ctx, "POST", l.collection, b.Bytes())
			if err != nil {
				l.fail(ctx, err)
				continue
			}
			if l.backOff(ctx, resp.StatusCode) {
				seq -= 100
				continue
			}
			if resp.StatusCode/100 != 2 {
				l.fail(ctx, fmt.Errorf("POST: %s: %.200s", resp.Status, body))
				continue
			}
			l.posted.Add(100)
			l.ids.Store(c, seq)
		case 1: // page through the collection, limit 100, up to 100 pages
			next := ""
			for p := 0; p < 100 && ctx.Err() == nil; p++ {
				q := url.Values{"limit": {"100"}}
				if next != "" {
					q.Set("next", next)
				}
				var env struct {
					More bool   `json:"more"`
					Next string `json:"next"`
				}
				if !l.read(ctx, l.collection+"?"+q.Encode(), &env) || !env.More {
					break
				}
				next = env.Next
			}
		case 2: // one object by id, among those posted
			w := rng.IntN(4) * 4 // a posting client
			v, ok := l.ids.Load(w)
			if !ok {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			n := v.(int64)
			l.readObject(ctx, l.collection+benchIndicatorID(w, 1+rng.Int64N(n))+"/")
		case 3: // a page of 1,000 added in the last seconds
			since := time.Now().Add(-5 * time.Second).UTC().Format("2006-01-02T15:04:05.000000Z")
			l.read(ctx, l.collection+"?"+url.Values{"limit": {"1000"}, "added_after": {since}}.Encode(), nil)
		}
	}
}

// read GETs u, decoding the answer into v when not nil, and reports
// whether it succeeded.
func (l *mixedLoad) read(ctx context.Context, u string, v any) bool {
	resp, body, err := l.request(ctx, "GET", u, nil)
	if err != nil {
		l.fail(ctx, err)
		return false
	}
	if l.backOff(ctx, resp.StatusCode) {
		return false
	}
	if resp.StatusCode != http.StatusOK {
		l.fail(ctx, fmt.Errorf("GET %s: %s: %.200s", u, resp.Status, body))
		return false
	}
	l.reads.Add(1)
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			l.fail(ctx, fmt.Errorf("GET %s: %w", u, err))
			return false
		}
	}
	return true
}

// readObject GETs one object; a 404 is counted apart, not as a failure:
// the object was accepted (202, pending) and is not stored yet.
func (l *mixedLoad) readObject(ctx context.Context, u string) {
	resp, body, err := l.request(ctx, "GET", u, nil)
	switch {
	case err != nil:
		l.fail(ctx, err)
	case l.backOff(ctx, resp.StatusCode):
	case resp.StatusCode == http.StatusNotFound:
		l.notYet.Add(1)
	case resp.StatusCode != http.StatusOK:
		l.fail(ctx, fmt.Errorf("GET %s: %s: %.200s", u, resp.Status, body))
	default:
		l.reads.Add(1)
	}
}

// walMetrics returns the store's WAL lines of the node's /metrics.
func (l *mixedLoad) walMetrics(ctx context.Context, base string) ([]string, error) {
	resp, b, err := l.request(ctx, "GET", base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	var keep []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "entente_store_") {
			keep = append(keep, line)
		}
	}
	if len(keep) == 0 {
		return nil, errors.New("no entente_store_ metrics (this build does not expose them)")
	}
	return keep, nil
}
