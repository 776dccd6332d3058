package blind

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BatchRecord is what the audit log keeps of an evaluation batch: who,
// how many, when, and why it was refused. The elements are not kept: they
// are random to the node.
type BatchRecord struct {
	Partner string
	Epoch   uint64
	Count   int
	Time    time.Time
	// Refused is the reason of a refusal, empty for a batch evaluated.
	Refused Reason
}

// Server is the node's side of blind access: it evaluates batches for its
// partners within their budgets and keeps each partner's set up to date.
// The node authenticates the partner and looks up its agreement before
// calling it. A Server is safe for concurrent use.
type Server struct {
	keys     *Keys
	epochs   Epochs
	params   Params
	ledger   Ledger
	replay   ReplayGuard
	audit    func(context.Context, BatchRecord)
	maxBatch int
	now      func() time.Time
	workers  int

	mu       sync.Mutex
	partners map[string]*partnerState
}

// Config configures a [Server].
type Config struct {
	// Secret is the node's blind-access secret (at least MinSecretLen
	// random bytes), from which every key is derived.
	Secret []byte
	// Epochs default to DefaultEpochs.
	Epochs Epochs
	// Params default to DefaultParams.
	Params *Params
	// Ledger defaults to a MemoryLedger, Replay to a MemoryReplay.
	Ledger Ledger
	Replay ReplayGuard
	// Audit, when set, is called for every batch, evaluated or refused.
	Audit func(context.Context, BatchRecord)
	// MaxBatch is the most elements per request (default 1024).
	MaxBatch int
	// Now defaults to time.Now.
	Now func() time.Time
	// Workers evaluate the OPRF when sets are built (default GOMAXPROCS).
	Workers int
}

// DefaultMaxBatch is the default largest batch.
const DefaultMaxBatch = 1024

// NewServer returns a server.
func NewServer(c Config) (*Server, error) {
	keys, err := NewKeys(c.Secret)
	if err != nil {
		return nil, err
	}
	s := &Server{keys: keys, epochs: c.Epochs, ledger: c.Ledger, replay: c.Replay, audit: c.Audit,
		maxBatch: c.MaxBatch, now: c.Now, workers: c.Workers, partners: map[string]*partnerState{}}
	if s.epochs == (Epochs{}) {
		s.epochs = DefaultEpochs
	}
	if err := s.epochs.Validate(); err != nil {
		return nil, err
	}
	s.params = DefaultParams()
	if c.Params != nil {
		s.params = *c.Params
	}
	if err := s.params.Validate(); err != nil {
		return nil, err
	}
	if s.ledger == nil {
		s.ledger = &MemoryLedger{}
	}
	if s.replay == nil {
		s.replay = &MemoryReplay{}
	}
	if s.maxBatch == 0 {
		s.maxBatch = DefaultMaxBatch
	}
	if s.maxBatch < 1 || s.maxBatch > MaxBatchLimit {
		return nil, fmt.Errorf("blind: max batch %d out of range 1-%d", s.maxBatch, MaxBatchLimit)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// MaxBatch returns the largest batch the server evaluates.
func (s *Server) MaxBatch() int { return s.maxBatch }

// Params returns the prefix lengths of the server's sets.
func (s *Server) Params() Params { return s.params }

// Epochs returns the server's epochs.
func (s *Server) Epochs() Epochs { return s.epochs }

// Keys returns the server's key schedule.
func (s *Server) Keys() *Keys { return s.keys }

// Evaluate evaluates a batch of blinded elements for partner within
// budget. It checks, in this order and before any costly work: the epoch
// (current, or the previous one within the grace), the batch size, each
// element's length, duplicates within the batch, a replay of a batch
// already evaluated; then it charges the budget for every element, and
// only then decodes the elements (each must be the canonical encoding of
// a group element other than the identity) and evaluates them. A batch
// refused after the charge (a bad element, a replay that raced) stays
// charged: malformed input costs the partner what it costs the node.
func (s *Server) Evaluate(ctx context.Context, partner string, budget Budget, req *EvalRequest) (*EvalResponse, error) {
	now := s.now()
	resp, err := s.evaluate(ctx, partner, budget, req, now)
	if s.audit != nil {
		rec := BatchRecord{Partner: partner, Epoch: req.Epoch, Count: len(req.Elements), Time: now}
		if e, ok := errors.AsType[*Error](err); ok {
			rec.Refused = e.Reason
		} else if err != nil {
			rec.Refused = "internal"
		}
		s.audit(ctx, rec)
	}
	return resp, err
}

func (s *Server) evaluate(ctx context.Context, partner string, budget Budget, req *EvalRequest, now time.Time) (*EvalResponse, error) {
	if budget.Limit <= 0 || budget.Period <= 0 {
		return nil, refuse(ReasonNoAccess, -1, "no blind access: the agreement sets no budget")
	}
	if !s.epochs.Accepts(req.Epoch, now) {
		cur := s.epochs.At(now)
		return nil, refuse(ReasonEpochExpired, -1, "epoch %d is not accepted: the current epoch is %d; fetch its set and translate again", req.Epoch, cur)
	}
	n := len(req.Elements)
	if n == 0 {
		return nil, refuse(ReasonEmpty, -1, "elements: the batch is empty")
	}
	if n > s.maxBatch {
		return nil, refuse(ReasonBatchTooLarge, -1, "elements: %d in one batch, at most %d", n, s.maxBatch)
	}
	seen := make(map[[ElementLen]byte]int, n)
	h := sha256.New()
	var eb [8]byte
	binary.BigEndian.PutUint64(eb[:], req.Epoch)
	h.Write(eb[:])
	for i, e := range req.Elements {
		if len(e) != ElementLen {
			return nil, refuse(ReasonLength, i, "elements[%d]: %d bytes, a ristretto255 element has %d", i, len(e), ElementLen)
		}
		k := [ElementLen]byte(e)
		if j, dup := seen[k]; dup {
			return nil, refuse(ReasonReplay, i, "elements[%d]: the same blinded element as elements[%d]; blind every input afresh", i, j)
		}
		seen[k] = i
		h.Write(e)
	}
	var digest [32]byte
	h.Sum(digest[:0])
	if dup, err := s.replay.Seen(ctx, partner, req.Epoch, digest); err != nil {
		return nil, fmt.Errorf("blind: replay guard: %w", err)
	} else if dup {
		return nil, refuse(ReasonReplay, -1, "this batch was already evaluated; blind the inputs afresh")
	}
	start, next := budget.periodOf(now)
	used, ok, err := s.ledger.Spend(ctx, partner, start, int64(n), budget.Limit)
	if err != nil {
		return nil, fmt.Errorf("blind: budget ledger: %w", err)
	}
	if !ok {
		e := refuse(ReasonBudget, -1, "blind budget %s: %d of %d used this period, the batch needs %d; the period ends at %s",
			budget, used, budget.Limit, n, next.Format(time.RFC3339))
		e.RetryAfter = next.Sub(now)
		return nil, e
	}
	if fresh, err := s.replay.Add(ctx, partner, req.Epoch, digest); err != nil {
		return nil, fmt.Errorf("blind: replay guard: %w", err)
	} else if !fresh {
		return nil, refuse(ReasonReplay, -1, "this batch was already evaluated; blind the inputs afresh")
	}
	key, err := s.keys.Key(partner, req.Epoch)
	if err != nil {
		return nil, err
	}
	out, err := EvaluateElements(key, req.Elements)
	if err != nil {
		return nil, err
	}
	return &EvalResponse{Epoch: req.Epoch, Elements: out,
		Budget: BudgetState{Limit: budget.Limit, Period: budget.String(), Used: used, Reset: next}}, nil
}

// Info returns partner's current epoch, with its set's size and digest
// and its budget's use.
func (s *Server) Info(ctx context.Context, partner string, budget Budget) (*EpochInfo, error) {
	if budget.Limit <= 0 || budget.Period <= 0 {
		return nil, refuse(ReasonNoAccess, -1, "no blind access: the agreement sets no budget")
	}
	now := s.now()
	e := s.epochs.At(now)
	pub, err := s.published(partner, e)
	if err != nil {
		return nil, err
	}
	start, next := budget.periodOf(now)
	used, err := s.ledger.Used(ctx, partner, start)
	if err != nil {
		return nil, fmt.Errorf("blind: budget ledger: %w", err)
	}
	pk, err := s.PublicKey(partner, e)
	if err != nil {
		return nil, err
	}
	return &EpochInfo{Suite: SuiteID, Epoch: e, Start: s.epochs.Start(e), End: s.epochs.Start(e + 1), Grace: Duration(s.epochs.Grace),
		Params: s.params, MaxBatch: s.maxBatch, SetLen: pub.Len, SetBytes: len(pub.Data), SetDigest: pub.Digest,
		Budget: BudgetState{Limit: budget.Limit, Period: budget.String(), Used: used, Reset: next}, PublicKey: pk}, nil
}

// PublicKey returns the encoding of k·G for partner's key k of epoch
// (see [EpochInfo.PublicKey]).
func (s *Server) PublicKey(partner string, epoch uint64) ([]byte, error) {
	key, err := s.keys.Key(partner, epoch)
	if err != nil {
		return nil, err
	}
	return PublicKey(key)
}

// Published is an encoded set.
type Published struct {
	Epoch  uint64
	Data   []byte
	Digest string // "sha256:" + hex
	Len    int
}

// Set returns partner's encoded set of epoch, which must be the current
// one.
func (s *Server) Set(_ context.Context, partner string, epoch uint64) (*Published, error) {
	cur := s.epochs.At(s.now())
	if epoch != cur {
		return nil, refuse(ReasonEpochExpired, -1, "epoch %d: the set of the current epoch %d only is served", epoch, cur)
	}
	return s.published(partner, epoch)
}

// Digest returns "sha256:" and the hex SHA-256 of an encoded set.
func Digest(data []byte) string {
	d := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(d[:])
}

// partnerState is one partner's builders.
type partnerState struct {
	mu        sync.Mutex
	cur       *Builder
	next      *Builder
	pub       *Published
	rekeying  bool
	pending   []update
	buildErrs []Problem
}

type update struct {
	add, remove []Indicator
}

func (s *Server) state(partner string) *partnerState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.partners[partner]
	if st == nil {
		st = &partnerState{}
		s.partners[partner] = st
	}
	return st
}

// builder returns the partner's builder for epoch, making it (from the
// previous epoch's indicators, or empty) when the server has none; the
// partner's state is locked.
func (s *Server) builder(partner string, st *partnerState, epoch uint64) (*Builder, error) {
	if st.cur != nil && st.cur.epoch == epoch {
		return st.cur, nil
	}
	if st.next != nil && st.next.epoch == epoch {
		st.cur, st.next, st.pub = st.next, nil, nil
		return st.cur, nil
	}
	key, err := s.keys.Key(partner, epoch)
	if err != nil {
		return nil, err
	}
	var b *Builder
	if st.cur == nil {
		b, err = NewBuilder(key, epoch, s.params)
		if b != nil {
			b.Workers = s.workers
		}
	} else {
		// No set was prepared ahead (see Prepare): build it now.
		b, st.buildErrs, err = st.cur.Rekey(key, epoch)
	}
	if err != nil {
		return nil, err
	}
	st.cur, st.next, st.pub = b, nil, nil
	return b, nil
}

func (s *Server) published(partner string, epoch uint64) (*Published, error) {
	st := s.state(partner)
	st.mu.Lock()
	defer st.mu.Unlock()
	b, err := s.builder(partner, st, epoch)
	if err != nil {
		return nil, err
	}
	if st.pub != nil && st.pub.Epoch == epoch {
		return st.pub, nil
	}
	set, err := b.Set()
	if err != nil {
		return nil, err
	}
	data, err := set.MarshalBinary()
	if err != nil {
		return nil, err
	}
	st.pub = &Published{Epoch: epoch, Data: data, Digest: Digest(data), Len: set.Len()}
	return st.pub, nil
}

// Update adds and removes indicators of partner's set (the node calls it
// when its gate decides what the partner's blind access covers). Only the
// indicators named are evaluated. It returns the indicators refused.
func (s *Server) Update(_ context.Context, partner string, add, remove []Indicator) ([]Problem, error) {
	st := s.state(partner)
	st.mu.Lock()
	defer st.mu.Unlock()
	b, err := s.builder(partner, st, s.epochs.At(s.now()))
	if err != nil {
		return nil, err
	}
	b.Remove(remove)
	problems := b.Add(add)
	if st.next != nil {
		st.next.Remove(remove)
		st.next.Add(add)
	}
	if st.rekeying {
		st.pending = append(st.pending, update{add: add, remove: remove})
	}
	st.pub = nil
	return problems, nil
}

// Prepare builds partner's set of the next epoch ahead of time, from the
// current indicators, so that the epoch's change costs no request a wait.
// Updates made meanwhile are applied to it too. The node calls it for each
// blind partner some time before each epoch ends (building a set of 1M
// indicators takes tens of seconds).
func (s *Server) Prepare(ctx context.Context, partner string) error {
	st := s.state(partner)
	st.mu.Lock()
	now := s.now()
	cur, err := s.builder(partner, st, s.epochs.At(now))
	if err != nil || st.rekeying || st.next != nil {
		st.mu.Unlock()
		return err
	}
	st.rekeying = true
	st.mu.Unlock()
	e := cur.epoch + 1
	key, err := s.keys.Key(partner, e)
	var nb *Builder
	if err == nil {
		nb, _, err = cur.Rekey(key, e)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.rekeying = false
	if err != nil {
		st.pending = nil
		return err
	}
	for _, u := range st.pending {
		nb.Remove(u.remove)
		nb.Add(u.add)
	}
	st.pending = nil
	if st.cur == cur {
		st.next = nb
	}
	return ctx.Err()
}

// Forget drops partner's sets (its blind access ended).
func (s *Server) Forget(partner string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.partners, partner)
}

// Resolve returns the handles of the indicators that a blinded reference
// from partner names (the partner asks what it hit; the node then decides
// under its own rules what to release). It returns nil when the reference
// names nothing in the partner's set of that epoch (an old epoch, or a
// false positive of the filter).
func (s *Server) Resolve(partner string, ref Ref) []uint32 {
	s.mu.Lock()
	st := s.partners[partner]
	s.mu.Unlock()
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, b := range []*Builder{st.cur, st.next} {
		if b != nil && b.epoch == ref.Epoch {
			return b.Resolve(ref.Key)
		}
	}
	return nil
}

// Ref is a blinded reference: it names an entry of a partner's set of one
// epoch without naming the indicator. The partner reports hits with it;
// only the node can resolve it.
type Ref struct {
	Epoch uint64
	Key   uint64
}

// String writes the reference as "blind:EPOCH:KEY" (KEY in hex).
func (r Ref) String() string { return fmt.Sprintf("blind:%d:%016x", r.Epoch, r.Key) }

// ParseRef reads a reference written by [Ref.String].
func ParseRef(s string) (Ref, error) {
	rest, ok := strings.CutPrefix(s, "blind:")
	e, k, ok2 := strings.Cut(rest, ":")
	epoch, err1 := strconv.ParseUint(e, 10, 64)
	key, err2 := strconv.ParseUint(k, 16, 64)
	r := Ref{Epoch: epoch, Key: key}
	if !ok || !ok2 || err1 != nil || err2 != nil || len(k) != 16 || r.String() != s {
		return Ref{}, fmt.Errorf("blinded reference %q: want blind:EPOCH:KEY, KEY 16 lower-case hex digits", s)
	}
	return r, nil
}
