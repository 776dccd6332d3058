package match

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/stix/pattern"
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
	// Patterns, when not empty, are evaluated against each record (see
	// [PatternSet]).
	Patterns *PatternSet
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
	Stats sensor.Stats
	Hits  int64 // hits of the snapshot and of the patterns
	// PatternHits counts the hits of Options.Patterns; Evaluated counts
	// the (record, pattern) pairs evaluated, and EvalErrors the records
	// that could not be decoded for the evaluator or patterns too
	// expensive to evaluate on a window.
	PatternHits, Evaluated, EvalErrors int64
	// EvalProblems describe the first evaluation errors ("file:line: ...").
	EvalProblems []string
	Sightings    []Sighting // sorted by indicator id
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
	// The pattern evaluator, when there are patterns; stream events of
	// the current chunk for the in-order stage.
	ev                              *evaluator
	events                          []streamEvent
	patternHits, evaluated, evalErr int64
	evalProblems                    []string
}

// maxEvalProblems is how many evaluation errors a run describes.
const maxEvalProblems = 20

// evalProblem counts an evaluation error and describes the first ones.
func (h *handler) evalProblem(where string, err error) {
	h.evalErr++
	if len(h.evalProblems) < maxEvalProblems {
		h.evalProblems = append(h.evalProblems, where+": "+err.Error())
	}
}

type runner struct {
	opts     Options
	mu       sync.Mutex
	next     int
	pending  map[int]chunkOut
	werr     error
	handlers []*handler
	// The in-order stage of the patterns decided over the stream, and
	// the sightings it found (guarded by mu).
	stream     *streamStage
	streamAggs map[string]*agg
	streamHits int64
	streamBuf  []byte
}

// chunkOut is what a worker found in a chunk, written in input order.
type chunkOut struct {
	hits   []byte
	events []streamEvent
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

// Line defers the line. Its values are parsed and their table slots
// noted now, while they are at hand; the bytes of a value are copied
// only when matching will read them again (a value not parsed as an
// address, or any value when patterns are evaluated) and they lie outside
// the line (in the parser's scratch space): the line stays in its chunk
// until ChunkDone.
func (h *handler) Line(c *sensor.Chunk, line int64, raw []byte, obs []sensor.Obs, p sensor.Parser) {
	o0 := len(h.pobs)
	for i := range obs {
		if h.m.prefetch(&obs[i]) && h.ev == nil {
			// An address: matching reads what prefetch parsed.
			h.pobs = append(h.pobs, sensor.Obs{Kind: obs[i].Kind})
			continue
		}
		o := obs[i]
		if !within(o.Value, raw) || !within(o.Aux, raw) {
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
		}
		h.pobs = append(h.pobs, o)
	}
	h.pend = append(h.pend, pending{c: c, line: line, raw: raw, p: p, o0: o0, o1: len(h.pobs)})
	if len(h.pend) >= batchLines {
		h.Flush()
	}
}

// within reports whether b lies inside raw (an empty b does).
func within(b, raw []byte) bool {
	if len(b) == 0 {
		return true
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	r := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	return p >= r && p+uintptr(len(b)) <= r+uintptr(len(raw))
}

// Flush matches the deferred lines: the slots their values will read,
// noted by Line, are touched first, all together.
func (h *handler) Flush() {
	if len(h.pend) == 0 {
		return
	}
	h.m.touch()
	for _, pl := range h.pend {
		h.match(pl.c, pl.line, pl.raw, h.pobs[pl.o0:pl.o1], h.m.pre[pl.o0:pl.o1], pl.p)
	}
	h.m.pre = h.m.pre[:0]
	h.pend = h.pend[:0]
	clear(h.pobs) // drop references to old arenas and to chunks
	h.pobs = h.pobs[:0]
	h.arena = h.arena[:0]
}

// Drop forgets the deferred lines without matching them: the rest of
// their chunk could not be read (a mapped file truncated while read).
func (h *handler) Drop() {
	h.m.pf, h.m.pf24, h.m.pfs = h.m.pf[:0], h.m.pf24[:0], h.m.pfs[:0]
	h.m.pf6, h.m.pf32 = h.m.pf6[:0], h.m.pf32[:0]
	h.m.pre = h.m.pre[:0]
	h.pend = h.pend[:0]
	clear(h.pobs)
	h.pobs = h.pobs[:0]
	h.arena = h.arena[:0]
}

func (h *handler) match(c *sensor.Chunk, line int64, raw []byte, obs []sensor.Obs, pre []parsed, p sensor.Parser) {
	hits := h.hitBuf[:0]
	for i := range obs {
		hits = h.m.matchParsed(&obs[i], &pre[i], hits)
	}
	h.hitBuf = hits
	if h.ev != nil {
		h.evaluate(c, line, raw, obs, p)
	}
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
		addAgg(h.aggs, id, ts)
		if h.r.opts.Hits != nil {
			h.rec = HitRecord{File: c.File, Line: line, Kind: string(hit.Kind), Observed: hit.Observed, Matched: hit.Matched, Indicator: id}
			b, _ := json.Marshal(&h.rec)
			h.buf = append(append(h.buf, b...), '\n')
		}
	}
}

func addAgg(aggs map[string]*agg, id string, ts time.Time) {
	a := aggs[id]
	if a == nil {
		a = &agg{first: ts, last: ts}
		aggs[id] = a
	}
	a.count++
	if ts.Before(a.first) {
		a.first = ts
	}
	if ts.After(a.last) {
		a.last = ts
	}
}

// evaluate evaluates the candidate patterns on the record of one line:
// the patterns a record decides are hits at once; for the others the
// record goes to the in-order stage when it satisfies one of their
// observation expressions.
func (h *handler) evaluate(c *sensor.Chunk, line int64, raw []byte, obs []sensor.Obs, p sensor.Parser) {
	cands := h.ev.candidates(obs)
	if len(cands) == 0 {
		return
	}
	rp, ok := p.(sensor.Recorder)
	if !ok {
		return
	}
	where := c.File + ":" + strconv.FormatInt(line, 10)
	rec, err := rp.Record(raw)
	if err != nil {
		h.evalProblem(where, err)
		return
	}
	ts, ok := p.Time(raw)
	if !ok {
		ts = h.now
	}
	o := pattern.NewObservation(where, ts, recordObjects(rec, rp.SetSeparator()))
	one := []pattern.Observation{o}
	for _, i := range cands {
		ep := h.ev.ps.pats[i]
		h.evaluated++
		if !ep.stream {
			res, err := pattern.Match(ep.p, one)
			if err != nil {
				h.evalProblem(where, fmt.Errorf("indicator %s: %w", ep.id, err))
				continue
			}
			if res.Matched {
				h.patternHits++
				h.hits++
				addAgg(h.aggs, ep.id, ts)
				h.appendPatternHit(c.File, line, where, ep)
			}
			continue
		}
		// Which observation expressions the record satisfies: the stream
		// stage matches a window only when they make a match possible.
		var leaves uint64
		for j, l := range ep.leaves {
			res, err := pattern.Match(l, one)
			if err == nil && res.Matched {
				leaves |= leafBit(j)
			}
		}
		if leaves != 0 {
			h.events = append(h.events, streamEvent{pat: i, obs: o, file: c.File, line: line, leaves: leaves})
		}
	}
}

func (h *handler) appendPatternHit(file string, line int64, observed string, ep *evalPattern) {
	if h.r.opts.Hits == nil {
		return
	}
	h.rec = HitRecord{File: file, Line: line, Kind: "pattern", Observed: observed, Matched: ep.src, Indicator: ep.id}
	b, _ := json.Marshal(&h.rec)
	h.buf = append(append(h.buf, b...), '\n')
}

func (h *handler) ChunkDone(c *sensor.Chunk) {
	h.Flush()
	r := h.r
	out := chunkOut{hits: h.buf, events: h.events}
	h.buf, h.events = nil, nil
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending[c.Seq] = out
	for {
		o, ok := r.pending[r.next]
		if !ok {
			break
		}
		delete(r.pending, r.next)
		r.next++
		if len(o.hits) > 0 && r.werr == nil && r.opts.Hits != nil {
			_, r.werr = r.opts.Hits.Write(o.hits)
		}
		r.streamEvents(o.events)
	}
}

// streamEvents runs the in-order stage on a chunk's events; r.mu is held.
func (r *runner) streamEvents(events []streamEvent) {
	for i := range events {
		ev := &events[i]
		ok, where := r.stream.add(ev)
		if !ok {
			continue
		}
		p := r.stream.ps.pats[ev.pat]
		r.streamHits++
		addAgg(r.streamAggs, p.id, ev.obs.LastObserved)
		if r.opts.Hits != nil && r.werr == nil {
			rec := HitRecord{File: ev.file, Line: ev.line, Kind: "pattern", Observed: strings.Join(where, " "), Matched: p.src, Indicator: p.id}
			b, _ := json.Marshal(&rec)
			_, r.werr = r.opts.Hits.Write(append(b, '\n'))
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
	r := &runner{opts: opts, pending: map[int]chunkOut{}, streamAggs: map[string]*agg{}}
	if opts.Patterns.Len() > 0 {
		opts.Patterns.snapshot()
		r.stream = &streamStage{ps: opts.Patterns, windows: map[int]*window{}}
	}
	t := now().UTC()
	stats, err := sensor.Scan(ctx, opts.Logs, opts.Scan, func(int) sensor.Handler {
		h := &handler{r: r, m: NewMatcher(opts.Snapshot), aggs: map[string]*agg{}, now: t}
		if r.stream != nil {
			h.ev = newEvaluator(opts.Patterns)
		}
		r.mu.Lock()
		r.handlers = append(r.handlers, h)
		r.mu.Unlock()
		return h
	})
	res := &Result{Stats: stats, Hits: r.streamHits, PatternHits: r.streamHits}
	if r.stream != nil {
		res.EvalErrors = r.stream.errs
		res.EvalProblems = r.stream.problems
	}
	all := map[string]*agg{}
	for _, aggs := range append([]map[string]*agg{r.streamAggs}, handlerAggs(r.handlers)...) {
		for id, a := range aggs {
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
	for _, h := range r.handlers {
		res.Hits += h.hits
		res.PatternHits += h.patternHits
		res.Evaluated += h.evaluated
		res.EvalErrors += h.evalErr
		for _, p := range h.evalProblems {
			if len(res.EvalProblems) < maxEvalProblems {
				res.EvalProblems = append(res.EvalProblems, p)
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

func handlerAggs(hs []*handler) []map[string]*agg {
	out := make([]map[string]*agg, len(hs))
	for i, h := range hs {
		out[i] = h.aggs
	}
	return out
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
		", pattern hits " + strconv.FormatInt(r.PatternHits, 10) + " (" + strconv.FormatInt(r.Evaluated, 10) + " evaluations, " +
		strconv.FormatInt(r.EvalErrors, 10) + " errors), indicators sighted " + strconv.Itoa(len(r.Sightings))
}
