package match

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/stix"
)

// Options configure [Run].
type Options struct {
	// Snapshot holds the indicators to match.
	Snapshot *Snapshot
	// Logs are the log inputs.
	Logs []sensor.Input
	// Scan configures the log readers (format, workers, limits).
	Scan sensor.Options
	// Hits, when not nil, receives one JSON line per hit, in input order.
	Hits io.Writer
	// Now returns the current time (for records without a timestamp);
	// nil means time.Now.
	Now func() time.Time
}

// HitRecord is the JSON line written for each hit.
type HitRecord struct {
	File      string `json:"file"`
	Line      int64  `json:"line"`
	Kind      string `json:"kind"`
	Observed  string `json:"observed"`
	Matched   string `json:"matched"`
	Indicator string `json:"indicator"`
}

// Sighting aggregates the hits on one indicator.
type Sighting struct {
	Indicator string
	Count     int64
	FirstSeen time.Time
	LastSeen  time.Time
}

// Result is what a run found.
type Result struct {
	Stats     sensor.Stats
	Hits      int64
	Sightings []Sighting // sorted by indicator id
}

type agg struct {
	count       int64
	first, last time.Time
}

// handler is one worker's matcher, hit buffer and aggregates.
type handler struct {
	r      *runner
	m      *Matcher
	buf    []byte
	aggs   map[string]*agg
	hits   int64
	rec    HitRecord
	hitBuf []Hit
	now    time.Time
	// Lines deferred for batched matching (see batchLines).
	pend  []pending
	pobs  []sensor.Obs
	arena []byte
}

type runner struct {
	opts     Options
	mu       sync.Mutex
	next     int
	pending  map[int][]byte
	werr     error
	handlers []*handler
}

// batchLines is how many lines a handler defers before matching them:
// their table slots are touched first, all together, so that the cache
// misses of many lookups overlap instead of following one another.
const batchLines = 64

// pending is a line whose matching is deferred.
type pending struct {
	c      *sensor.Chunk
	line   int64
	raw    []byte // points into the chunk, valid until ChunkDone
	p      sensor.Parser
	o0, o1 int // its observables in handler.pobs
}

// Line defers the line: the observables are copied (they may point into
// the parser's scratch space), the line itself stays in its chunk.
func (h *handler) Line(c *sensor.Chunk, line int64, raw []byte, obs []sensor.Obs, p sensor.Parser) {
	o0 := len(h.pobs)
	for _, o := range obs {
		v := len(h.arena)
		h.arena = append(h.arena, o.Value...)
		a := len(h.arena)
		h.arena = append(h.arena, o.Aux...)
		// Slices keep pointing at an old arena when append moves it;
		// the old one is not written to again before the flush.
		o.Value = h.arena[v:a:a]
		if o.Aux != nil {
			o.Aux = h.arena[a:len(h.arena):len(h.arena)]
		}
		h.pobs = append(h.pobs, o)
	}
	h.pend = append(h.pend, pending{c: c, line: line, raw: raw, p: p, o0: o0, o1: len(h.pobs)})
	if len(h.pend) >= batchLines {
		h.Flush()
	}
}

// Flush matches the deferred lines.
func (h *handler) Flush() {
	if len(h.pend) == 0 {
		return
	}
	for _, o := range h.pobs {
		h.m.prefetch(o)
	}
	h.m.touch()
	for _, pl := range h.pend {
		h.match(pl.c, pl.line, pl.raw, h.pobs[pl.o0:pl.o1], h.m.pre[pl.o0:pl.o1], pl.p)
	}
	h.m.pre = h.m.pre[:0]
	h.pend = h.pend[:0]
	clear(h.pobs) // drop references to old arenas
	h.pobs = h.pobs[:0]
	h.arena = h.arena[:0]
}

func (h *handler) match(c *sensor.Chunk, line int64, raw []byte, obs []sensor.Obs, pre []parsed, p sensor.Parser) {
	hits := h.hitBuf[:0]
	for i, o := range obs {
		hits = h.m.matchParsed(o, &pre[i], hits)
	}
	h.hitBuf = hits
	if len(hits) == 0 {
		return
	}
	ts, ok := p.Time(raw)
	if !ok {
		ts = h.now
	}
	for _, hit := range hits {
		id := h.m.s.IndicatorID(hit.Ref, hit.Kind, hit.Matched)
		h.hits++
		a := h.aggs[id]
		if a == nil {
			a = &agg{first: ts, last: ts}
			h.aggs[id] = a
		}
		a.count++
		if ts.Before(a.first) {
			a.first = ts
		}
		if ts.After(a.last) {
			a.last = ts
		}
		if h.r.opts.Hits != nil {
			h.rec = HitRecord{File: c.File, Line: line, Kind: string(hit.Kind), Observed: hit.Observed, Matched: hit.Matched, Indicator: id}
			b, _ := json.Marshal(&h.rec)
			h.buf = append(append(h.buf, b...), '\n')
		}
	}
}

func (h *handler) ChunkDone(c *sensor.Chunk) {
	h.Flush()
	r := h.r
	buf := h.buf
	h.buf = nil
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending[c.Seq] = buf
	for {
		b, ok := r.pending[r.next]
		if !ok {
			break
		}
		delete(r.pending, r.next)
		r.next++
		if len(b) > 0 && r.werr == nil && r.opts.Hits != nil {
			_, r.werr = r.opts.Hits.Write(b)
		}
	}
}

// Run matches the logs against the snapshot on all workers, writes the
// hits and returns the aggregated sightings. Bad lines are counted in the
// result's stats; errors reading an input are returned after all other
// inputs were matched, with the result.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Snapshot == nil {
		return nil, fmt.Errorf("match: no indicator snapshot")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	r := &runner{opts: opts, pending: map[int][]byte{}}
	t := now().UTC()
	stats, err := sensor.Scan(ctx, opts.Logs, opts.Scan, func(int) sensor.Handler {
		h := &handler{r: r, m: NewMatcher(opts.Snapshot), aggs: map[string]*agg{}, now: t}
		r.mu.Lock()
		r.handlers = append(r.handlers, h)
		r.mu.Unlock()
		return h
	})
	res := &Result{Stats: stats}
	all := map[string]*agg{}
	for _, h := range r.handlers {
		res.Hits += h.hits
		for id, a := range h.aggs {
			b := all[id]
			if b == nil {
				all[id] = a
				continue
			}
			b.count += a.count
			if a.first.Before(b.first) {
				b.first = a.first
			}
			if a.last.After(b.last) {
				b.last = a.last
			}
		}
	}
	for id, a := range all {
		res.Sightings = append(res.Sightings, Sighting{Indicator: id, Count: a.count, FirstSeen: a.first, LastSeen: a.last})
	}
	sort.Slice(res.Sightings, func(i, j int) bool { return res.Sightings[i].Indicator < res.Sightings[j].Indicator })
	if r.werr != nil {
		return res, fmt.Errorf("write hits: %w", r.werr)
	}
	return res, err
}

// maxCount is the largest sighting count STIX allows.
const maxCount = 999999999

// SightingsBundle returns a STIX 2.1 bundle with one sighting per
// indicator in sightings, each sighted by identity (the organisation
// running the sensor, an identity--… id), created at now.
func SightingsBundle(sightings []Sighting, identity string, now time.Time) ([]byte, error) {
	if identity == "" {
		return nil, fmt.Errorf("sightings need the identity of this organisation (identity--...)")
	}
	if t, _, _ := cutID(identity); t != "identity" {
		return nil, fmt.Errorf("sightings: %q is not an identity id", identity)
	}
	created := stix.FormatTimestamp(now.Truncate(time.Millisecond))
	objs := make([]json.RawMessage, 0, len(sightings))
	for _, s := range sightings {
		count := s.Count
		if count > maxCount {
			count = maxCount
		}
		first, last := s.FirstSeen, s.LastSeen
		if last.Before(first) {
			first, last = last, first
		}
		o := map[string]any{
			"type":               "sighting",
			"spec_version":       "2.1",
			"id":                 stix.NewID("sighting"),
			"created":            created,
			"modified":           created,
			"created_by_ref":     identity,
			"sighting_of_ref":    s.Indicator,
			"count":              count,
			"first_seen":         stix.FormatTimestamp(first),
			"last_seen":          stix.FormatTimestamp(last),
			"where_sighted_refs": []string{identity},
		}
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		objs = append(objs, b)
	}
	return json.Marshal(map[string]any{"type": "bundle", "id": stix.NewID("bundle"), "objects": objs})
}

func cutID(id string) (typ, uuid string, ok bool) {
	for i := 0; i+1 < len(id); i++ {
		if id[i] == '-' && id[i+1] == '-' {
			return id[:i], id[i+2:], true
		}
	}
	return "", "", false
}

// Summary returns a one-line account of a run for people.
func (r *Result) Summary() string {
	return "inputs " + strconv.Itoa(r.Stats.Inputs) + ", lines " + strconv.FormatInt(r.Stats.Lines, 10) +
		", bad lines " + strconv.FormatInt(r.Stats.Bad, 10) + ", hits " + strconv.FormatInt(r.Hits, 10) +
		", indicators sighted " + strconv.Itoa(len(r.Sightings))
}
