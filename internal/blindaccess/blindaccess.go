// Package blindaccess is a node's blind access (internal/blind): it serves
// the partners whose agreement grants blind access their blinded sets,
// evaluations within their budgets and the resolution of the blinded
// references of their hits — all through the node's one policy gate
// (internal/egress):
//
//   - a partner's set is a blind rendering of the gate (egress.Query with
//     Blind): the gate decides which indicators' values are in it
//     (policy.Gate.CheckBlind), caches it under the terms in force and the
//     collections' content, and audits every serving; the renderer keeps
//     the partner's blind.Server builder up to date incrementally (only
//     what was added since its last rendering is read and evaluated; the
//     terms changing makes it read everything again, and evaluate only
//     what changed);
//   - every evaluation batch is audited by the gate (partner, count,
//     time, outcome) before the answer leaves; budgets and the replay
//     guard are kept by the Ledger and ReplayGuard given (the store, so
//     that a restart or another replica shares them);
//   - a blinded reference is resolved to the indicators it names, each
//     released through the gate as any read is: only if the agreement
//     also allows its release.
package blindaccess

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/egress"
	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// Gate is what blind access needs of the node's policy gate
// (*egress.Gate).
type Gate interface {
	Release(ctx context.Context, p entente.Principal, q egress.Query) (*egress.Released, error)
	BlindGrant(ctx context.Context, p entente.Principal) (policy.BlindAccess, error)
	AuditBlind(ctx context.Context, p entente.Principal, rule, detail string, refused error) error
}

// Config configures a [Service].
type Config struct {
	// Gate is the node's policy gate. Required.
	Gate Gate
	// Secret is the node's blind-access secret (at least
	// blind.MinSecretLen random bytes). Required; never logged.
	Secret []byte
	// Ledger and Replay keep budgets and batch digests (the store, so
	// that replicas and restarts share them); in memory when nil.
	Ledger blind.Ledger
	Replay blind.ReplayGuard
	// Epochs, Params and MaxBatch default to blind's defaults.
	Epochs   blind.Epochs
	Params   *blind.Params
	MaxBatch int
	// Guard is the node's safety net: values it protects are never in a
	// set, networks around protected space are cut (nil guards nothing).
	Guard match.Guard
	// Workers evaluate the OPRF when sets are built (GOMAXPROCS when 0).
	Workers int
	// Now defaults to time.Now.
	Now func() time.Time
	// Logger may be nil.
	Logger *slog.Logger
}

// Service is a node's blind access. It is safe for concurrent use.
type Service struct {
	gate   Gate
	srv    *blind.Server
	ledger blind.Ledger
	guard  match.Guard
	now    func() time.Time
	log    *slog.Logger

	handles handles

	mu       sync.Mutex
	partners map[string]*partnerState

	refresh refresher
}

// New returns the blind access of a node.
func New(cfg Config) (*Service, error) {
	if cfg.Gate == nil {
		return nil, errors.New("blind access: no gate")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Ledger == nil {
		cfg.Ledger = &blind.MemoryLedger{}
	}
	srv, err := blind.NewServer(blind.Config{Secret: cfg.Secret, Epochs: cfg.Epochs, Params: cfg.Params, Ledger: cfg.Ledger,
		Replay: cfg.Replay, MaxBatch: cfg.MaxBatch, Now: cfg.Now, Workers: cfg.Workers})
	if err != nil {
		return nil, fmt.Errorf("blind access: %w", err)
	}
	s := &Service{gate: cfg.Gate, srv: srv, ledger: cfg.Ledger, guard: cfg.Guard, now: cfg.Now, log: cfg.Logger,
		partners: map[string]*partnerState{}}
	s.refresh.init()
	return s, nil
}

// Server returns the blind server (keys, epochs, parameters).
func (s *Service) Server() *blind.Server { return s.srv }

// MaxBatch returns the largest evaluation batch.
func (s *Service) MaxBatch() int { return s.srv.MaxBatch() }

// Grant returns partner principal p's budget, through the gate
// (egress.Gate.BlindGrant): EFORBIDDEN when it has no blind access now.
func (s *Service) Grant(ctx context.Context, p entente.Principal) (blind.Budget, error) {
	g, err := s.gate.BlindGrant(ctx, p)
	if err != nil {
		return blind.Budget{}, err
	}
	return g.Budget, nil
}

// setChannel names blinded sets in the audit log.
const setChannel = "blind set"

// render asks the gate for p's set of the current epoch.
func (s *Service) render(ctx context.Context, p entente.Principal, epoch uint64, peek bool, ifNoneMatch string) (*egress.Released, error) {
	return s.gate.Release(ctx, p, egress.Query{Channel: setChannel, Render: &renderer{s: s, epoch: epoch}, Blind: true, Peek: peek, IfNoneMatch: ifNoneMatch})
}

// Info returns partner principal p's current epoch: its set's size and
// digest (the set is built, through the gate, when it is not current),
// and its budget's use.
func (s *Service) Info(ctx context.Context, p entente.Principal, budget blind.Budget) (*blind.EpochInfo, error) {
	now := s.now()
	ep := s.srv.Epochs()
	e := ep.At(now)
	rel, err := s.render(ctx, p, e, true, "")
	if err != nil {
		return nil, err
	}
	meta, ok := s.state(p.Org).meta(rel.Artifact.ETag)
	if !ok {
		return nil, fmt.Errorf("blind access: the set %s of %s is not known", rel.Artifact.ETag, p.Org)
	}
	start, next := budget.PeriodOf(now)
	used, err := s.ledger.Used(ctx, p.Org, start)
	if err != nil {
		return nil, fmt.Errorf("blind access: budget ledger: %w", err)
	}
	pk, err := s.srv.PublicKey(p.Org, e)
	if err != nil {
		return nil, fmt.Errorf("blind access: %w", err)
	}
	return &blind.EpochInfo{PublicKey: pk, Suite: blind.SuiteID, Epoch: e, Start: ep.Start(e), End: ep.Start(e + 1), Grace: blind.Duration(ep.Grace),
		Params: meta.params, MaxBatch: s.srv.MaxBatch(), SetLen: meta.inputs, SetBytes: meta.bytes, SetDigest: meta.digest,
		Budget: blind.BudgetState{Limit: budget.Limit, Period: budget.String(), Used: used, Reset: next}}, nil
}

// Set returns partner principal p's set of epoch, which must be the
// current one, through the gate (which audits it), or only its digest
// when ifNoneMatch names it (nothing leaves).
func (s *Service) Set(ctx context.Context, p entente.Principal, epoch uint64, ifNoneMatch string) (*blind.Published, bool, error) {
	cur := s.srv.Epochs().At(s.now())
	if epoch != cur {
		return nil, false, &blind.Error{Reason: blind.ReasonEpochExpired, Index: -1,
			Message: fmt.Sprintf("epoch %d: the set of the current epoch %d only is served", epoch, cur)}
	}
	rel, err := s.render(ctx, p, epoch, false, ifNoneMatch)
	if err != nil {
		return nil, false, err
	}
	if rel.NotModified {
		return &blind.Published{Epoch: epoch, Digest: unquote(rel.ETag)}, true, nil
	}
	data := rel.Artifact.Files[0].Data
	meta, _ := s.state(p.Org).meta(rel.Artifact.ETag)
	return &blind.Published{Epoch: epoch, Data: data, Digest: unquote(rel.Artifact.ETag), Len: meta.inputs}, false, nil
}

func unquote(etag string) string {
	if len(etag) >= 2 && etag[0] == '"' && etag[len(etag)-1] == '"' {
		return etag[1 : len(etag)-1]
	}
	return etag
}

// Evaluate evaluates one batch for partner principal p within budget
// (blind.Server.Evaluate: checks, budget, replay guard, then the
// evaluation), and has the gate audit it — partner, count, time, outcome,
// never an element — before anything is answered: a batch whose record
// cannot be appended is not answered.
func (s *Service) Evaluate(ctx context.Context, p entente.Principal, budget blind.Budget, req *blind.EvalRequest) (*blind.EvalResponse, error) {
	resp, err := s.srv.Evaluate(ctx, p.Org, budget, req)
	detail := fmt.Sprintf("epoch %d: %d elements", req.Epoch, len(req.Elements))
	var refused error
	switch e, ok := errors.AsType[*blind.Error](err); {
	case ok:
		refused = errors.New(string(e.Reason) + ": " + e.Message)
	case err != nil:
		refused = errors.New("internal error")
	default:
		detail += fmt.Sprintf("; budget %d of %s used", resp.Budget.Used, budget)
	}
	if aerr := s.gate.AuditBlind(ctx, p, egress.RuleBlindEvaluate, detail, refused); aerr != nil {
		return nil, fmt.Errorf("blind access: %w", aerr)
	}
	return resp, err
}

// Resolve answers what blinded references from partner principal p name:
// each indicator a reference names is released through the gate as any
// read is (under the release rules: TLP, residency, collections…), and
// the reference is released when one of them is, withheld when none is,
// unknown when it names nothing in p's set (another epoch, or a false
// positive). The request is audited (counts, never values) before the
// answer leaves; released indicators are audited by their release.
func (s *Service) Resolve(ctx context.Context, p entente.Principal, refs []blind.Ref) (*blind.ResolveResponse, error) {
	// The partner's set is brought up to date first: a reference to an
	// indicator added since the last rendering resolves.
	if _, err := s.render(ctx, p, s.srv.Epochs().At(s.now()), true, ""); err != nil {
		return nil, err
	}
	out := &blind.ResolveResponse{Results: make([]blind.Resolution, len(refs))}
	counts := map[string]int{}
	for i, ref := range refs {
		r := blind.Resolution{Ref: ref.String(), Status: blind.ResolveUnknown}
		for _, h := range s.srv.Resolve(p.Org, ref) {
			coll, id, ok := s.handles.of(h)
			if !ok {
				continue
			}
			if r.Status == blind.ResolveUnknown {
				r.Status = blind.ResolveWithheld
			}
			rel, err := s.gate.Release(ctx, p, egress.Query{Channel: "blind resolve", Collection: coll,
				Objects: entente.ObjectQuery{IDs: []string{id}, Types: []string{"indicator"}}})
			if err != nil {
				switch entente.ErrorCode(err) {
				case entente.EFORBIDDEN, entente.ENOTFOUND:
					continue // a collection the partner may not read: withheld
				}
				return nil, err
			}
			for _, e := range rel.Page.Entries {
				r.Objects = append(r.Objects, e.Raw)
				r.Status = blind.ResolveReleased
			}
		}
		counts[r.Status]++
		out.Results[i] = r
	}
	detail := fmt.Sprintf("%d references: %d released, %d withheld, %d unknown", len(refs),
		counts[blind.ResolveReleased], counts[blind.ResolveWithheld], counts[blind.ResolveUnknown])
	if err := s.gate.AuditBlind(ctx, p, egress.RuleBlindResolve, detail, nil); err != nil {
		return nil, fmt.Errorf("blind access: %w", err)
	}
	return out, nil
}

// Usage returns partner's use of budget in the current period and when
// the period ends (for the dashboard).
func (s *Service) Usage(ctx context.Context, partner string, budget blind.Budget) (used int64, reset time.Time, err error) {
	start, next := budget.PeriodOf(s.now())
	used, err = s.ledger.Used(ctx, partner, start)
	return used, next, err
}

// SetStatus is what the node knows of a partner's set, for its people.
type SetStatus struct {
	// Indicators are the indicators whose values are in it, Inputs its
	// distinct OPRF inputs, Bytes its encoded size.
	Indicators int `json:"indicators"`
	Inputs     int `json:"inputs"`
	Bytes      int `json:"bytes"`
	// Epoch is the epoch of its last rendering, Built when that was.
	Epoch uint64    `json:"epoch"`
	Built time.Time `json:"built"`
}

// Status returns what this replica knows of partner's set: nothing (ok
// false) until the set was rendered here.
func (s *Service) Status(partner string) (SetStatus, bool) {
	s.mu.Lock()
	st := s.partners[partner]
	s.mu.Unlock()
	if st == nil {
		return SetStatus{}, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.last.Built.IsZero() {
		return SetStatus{}, false
	}
	return st.last, true
}

// handles numbers the indicators of the node's collections (a collection
// and an indicator id) for blind.Indicator.Ref: the set resolves a
// blinded reference to them. Numbers are never reused.
type handles struct {
	mu  sync.Mutex
	by  map[handleKey]uint32
	all []handleKey
}

type handleKey struct{ coll, id string }

func (h *handles) get(coll, id string) (uint32, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := handleKey{coll, id}
	if n, ok := h.by[k]; ok {
		return n, nil
	}
	if len(h.all) >= 1<<31-1 {
		return 0, errors.New("blind access: too many indicators")
	}
	if h.by == nil {
		h.by = map[handleKey]uint32{}
	}
	n := uint32(len(h.all))
	h.by[k] = n
	h.all = append(h.all, k)
	return n, nil
}

func (h *handles) of(n uint32) (coll, id string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if int(n) >= len(h.all) {
		return "", "", false
	}
	k := h.all[n]
	return k.coll, k.id, true
}

// partnerState is what the renderer keeps of one partner's set between
// renderings.
type partnerState struct {
	mu sync.Mutex
	// terms and colls are what the entries were decided under; a change
	// of either makes the next rendering read everything again.
	terms string
	colls []string
	// watermark is, by collection, the latest date_added read.
	watermark map[string]time.Time
	// entries are the indicators in the set, by handle.
	entries map[uint32]*entry
	// nextExpiry is the earliest valid_until among the entries.
	nextExpiry time.Time
	// metas describe the sets rendered, by entity tag (the latest few).
	metas []setMeta
	last  SetStatus
	// prepared is the epoch whose set was built ahead.
	prepared  uint64
	buildTime time.Duration
}

// entry is one indicator in a set: its version and expiry, and its values.
type entry struct {
	version int64
	expires time.Time
	vals    []blind.Indicator
}

type setMeta struct {
	etag   string
	inputs int
	bytes  int
	digest string
	params blind.Params
}

// maxMetas is how many rendered sets a partner's state describes (the
// gate may serve any of them to one of the partner's keys).
const maxMetas = 64

func (st *partnerState) meta(etag string) (setMeta, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, m := range st.metas {
		if m.etag == etag {
			return m, true
		}
	}
	return setMeta{}, false
}

func (s *Service) state(partner string) *partnerState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.partners[partner]
	if st == nil {
		st = &partnerState{}
		s.partners[partner] = st
	}
	return st
}

// renderer renders a partner's set of one epoch for the gate.
type renderer struct {
	s     *Service
	epoch uint64
}

// Key implements egress.Renderer.
func (r *renderer) Key() string { return "blind-set|" + strconv.FormatUint(r.epoch, 10) }

// Render implements egress.Renderer: it brings the partner's set up to
// date with what src yields and encodes it.
func (r *renderer) Render(ctx context.Context, src *egress.Source) (*egress.Artifact, error) {
	s := r.s
	if !src.Blind() || !src.Partner() {
		return nil, errors.New("blind access: a set is rendered blind, for a partner")
	}
	partner := src.Audience().Org
	st := s.state(partner)
	st.mu.Lock()
	defer st.mu.Unlock()
	start := time.Now()
	now := src.Now()
	colls := make([]string, 0, len(src.Collections()))
	for _, c := range src.Collections() {
		colls = append(colls, c.ID)
	}
	slices.Sort(colls)
	full := st.entries == nil || st.terms != src.Terms() || !slices.Equal(st.colls, colls)
	entries := st.entries
	watermark := map[string]time.Time{}
	if full {
		entries = map[uint32]*entry{}
	} else {
		for k, v := range st.watermark {
			watermark[k] = v
		}
	}
	// changes are the entries to set (nil: to delete), applied once the
	// builder took them.
	changes := map[uint32]*entry{}
	var add, remove []blind.Indicator
	var adder adder
	defer adder.wait()
	seen := map[uint32]bool{}
	var read, problems int
	for _, c := range src.Collections() {
		q := entente.ObjectQuery{Types: []string{"indicator"}, Limit: 5000}
		if !full {
			q.AddedAfter = watermark[c.ID]
		}
		for e, err := range src.Read(ctx, c, q) {
			if err != nil {
				return nil, err
			}
			read++
			if e.DateAdded.After(watermark[c.ID]) {
				watermark[c.ID] = e.DateAdded
			}
			h, err := s.handles.get(c.ID, e.ID)
			if err != nil {
				return nil, err
			}
			seen[h] = true
			ver := e.Version.UnixNano()
			old := st.entries[h]
			if c, ok := changes[h]; ok {
				old = c
			}
			if old != nil && (ver < old.version || ver == old.version && e.Raw != nil) {
				if full {
					entries[h] = old
				}
				continue // an older version, or the one held
			}
			var ne *entry
			if e.Raw != nil {
				ne = s.entry(h, e.Raw, ver, now, &problems)
			}
			var oldVals []blind.Indicator
			if old != nil {
				oldVals = old.vals
			}
			var newVals []blind.Indicator
			if ne != nil {
				newVals = ne.vals
			}
			for _, v := range oldVals {
				if !slices.Contains(newVals, v) {
					remove = append(remove, v)
				}
			}
			for _, v := range newVals {
				if !slices.Contains(oldVals, v) {
					add = append(add, v)
				}
			}
			changes[h] = ne
			if len(add) >= addChunk {
				// The values read so far are evaluated while the rest
				// is read.
				if err := adder.wait(); err != nil {
					return nil, s.updateFailed(st, partner, err)
				}
				adder.start(ctx, s, partner, add)
				add = nil
			}
		}
	}
	if err := adder.wait(); err != nil {
		return nil, s.updateFailed(st, partner, err)
	}
	// What a full reading did not find again leaves the set.
	if full {
		for h, e := range st.entries {
			if !seen[h] {
				remove = append(remove, e.vals...)
			}
		}
	}
	// Expired indicators leave it.
	next := time.Time{}
	apply := func(h uint32, e *entry) {
		if e == nil {
			delete(entries, h)
			return
		}
		entries[h] = e
	}
	for h, e := range changes {
		apply(h, e)
	}
	for h, e := range entries {
		if e.expires.IsZero() {
			continue
		}
		if !e.expires.After(now) {
			remove = append(remove, e.vals...)
			delete(entries, h)
			continue
		}
		if next.IsZero() || e.expires.Before(next) {
			next = e.expires
		}
	}
	probs, err := s.srv.Update(ctx, partner, add, remove)
	if err != nil {
		return nil, s.updateFailed(st, partner, err)
	}
	probs = append(adder.probs, probs...)
	if len(probs) > 0 {
		s.log.WarnContext(ctx, "indicator values left out of a blinded set", "partner", partner, "count", len(probs), "first", probs[0].Error())
	}
	st.terms, st.colls, st.watermark, st.entries, st.nextExpiry = src.Terms(), colls, watermark, entries, next
	pub, err := s.srv.Set(ctx, partner, r.epoch)
	if err != nil {
		return nil, err
	}
	etag := `"` + pub.Digest + `"`
	m := setMeta{etag: etag, inputs: pub.Len, bytes: len(pub.Data), digest: pub.Digest, params: s.srv.Params()}
	st.metas = append(st.metas, m)
	if len(st.metas) > maxMetas {
		st.metas = st.metas[len(st.metas)-maxMetas:]
	}
	st.buildTime = time.Since(start)
	st.last = SetStatus{Indicators: len(entries), Inputs: pub.Len, Bytes: len(pub.Data), Epoch: r.epoch, Built: now}
	s.log.InfoContext(ctx, "blinded set rendered", "partner", partner, "epoch", r.epoch, "full", full, "read", read,
		"added", len(add), "removed", len(remove), "indicators", len(entries), "inputs", pub.Len, "bytes", len(pub.Data),
		"problems", problems+len(probs), "duration", st.buildTime)
	expires := s.srv.Epochs().Start(r.epoch + 1)
	if !next.IsZero() && next.Before(expires) {
		expires = next
	}
	return &egress.Artifact{Files: []egress.File{{Name: "blind-set", Data: pub.Data}}, ETag: etag, Items: len(entries), Expires: expires}, nil
}

// addChunk is how many values a rendering reads before it has them
// evaluated, in the background, while it reads on.
const addChunk = 1 << 16

// adder evaluates the values a rendering adds, one chunk at a time in
// the background.
type adder struct {
	done  chan struct{}
	err   error
	probs []blind.Problem
}

func (a *adder) start(ctx context.Context, s *Service, partner string, add []blind.Indicator) {
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		probs, err := s.srv.Update(ctx, partner, add, nil)
		a.probs = append(a.probs, probs...)
		if err != nil && a.err == nil {
			a.err = err
		}
	}()
}

// wait waits for the chunk in flight, and returns the first error.
func (a *adder) wait() error {
	if a.done != nil {
		<-a.done
		a.done = nil
	}
	return a.err
}

// updateFailed forgets partner's set, so that the next rendering starts
// afresh from an empty builder, and returns the error.
func (s *Service) updateFailed(st *partnerState, partner string, err error) error {
	s.srv.Forget(partner)
	st.entries = nil
	return fmt.Errorf("blind access: update the set of %s: %w", partner, err)
}

// entry reads an indicator's values (nil when it is revoked, expired or
// holds none the set can: a pattern for the evaluator).
func (s *Service) entry(h uint32, raw json.RawMessage, version int64, now time.Time, problems *int) *entry {
	o, err := stix.Decode(raw)
	if err != nil || o.Type != "indicator" {
		*problems++
		return nil
	}
	if o.Revoked || !o.ValidUntil.IsZero() && !o.ValidUntil.After(now) {
		return nil
	}
	var ind struct {
		Pattern     string `json:"pattern"`
		PatternType string `json:"pattern_type"`
	}
	if err := json.Unmarshal(raw, &ind); err != nil || ind.PatternType != "" && ind.PatternType != "stix" {
		return nil
	}
	vals, err := match.PatternValues(ind.Pattern)
	if err != nil {
		*problems++
		return nil
	}
	e := &entry{version: version, expires: o.ValidUntil}
	for _, v := range vals {
		if s.guard == nil {
			e.vals = append(e.vals, blind.Indicator{Ref: h, Kind: v.Kind, Value: v.Value})
			continue
		}
		whole, parts := s.guard.Admit(v.Kind, v.Value)
		if whole {
			e.vals = append(e.vals, blind.Indicator{Ref: h, Kind: v.Kind, Value: v.Value})
			continue
		}
		for _, p := range parts {
			if k, n, err := observable.NormalizeKind(v.Kind, p); err == nil {
				e.vals = append(e.vals, blind.Indicator{Ref: h, Kind: k, Value: n})
			}
		}
	}
	if len(e.vals) == 0 {
		return nil
	}
	return e
}
