package blind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/cloudflare/circl/oprf"
)

// Translator is the partner's side: it translates the inputs it is given
// into membership answers through a [Peer], once per epoch each: it
// blinds a batch, has the peer evaluate it, finalises the outputs and
// looks their keys up in the epoch's set. Answers are cached until the
// epoch changes. A Translator is safe for concurrent use.
//
// When the epoch info gives the node's public key for the epoch (k·G),
// the translator blinds additively: B = H(x) + r·G, unblinded as
// k·B − r·(k·G) = k·H(x), the same output as RFC 9497's multiplicative
// blinding r·H(x) (B is as uniformly random), for two fixed-base
// multiplications instead of two variable-base ones. The node's side is
// RFC 9497's BlindEvaluate either way. Without a public key it blinds as
// RFC 9497 does.
type Translator struct {
	peer Peer
	// Workers is the number of batches in flight (default GOMAXPROCS).
	Workers int
	// BatchSize is the number of elements per request (default 256,
	// never more than the peer takes).
	BatchSize int

	mu    sync.Mutex
	info  *EpochInfo
	set   *Set
	add   *additiveClient   // nil: multiplicative blinding
	cache map[string]uint64 // input -> key of its output; hits are in hits
	hits  map[string]uint64
	spent int64
}

// NewTranslator returns a translator that asks peer.
func NewTranslator(peer Peer) *Translator { return &Translator{peer: peer} }

// Start fetches the peer's current epoch and, when it changed, its set
// (checked against the digest the epoch info gives), dropping the answers
// of the previous epoch. It returns the epoch info.
func (t *Translator) Start(ctx context.Context) (*EpochInfo, error) {
	info, err := t.peer.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("blind: epoch info: %w", err)
	}
	t.mu.Lock()
	same := t.info != nil && t.info.Epoch == info.Epoch && t.info.SetDigest == info.SetDigest
	t.mu.Unlock()
	if same {
		t.mu.Lock()
		t.info = info
		t.mu.Unlock()
		return info, nil
	}
	data, err := t.peer.Set(ctx, info.Epoch)
	if err != nil {
		return nil, fmt.Errorf("blind: set of epoch %d: %w", info.Epoch, err)
	}
	if d := Digest(data); d != info.SetDigest {
		return nil, fmt.Errorf("blind: set of epoch %d: digest %s, the epoch info says %s", info.Epoch, d, info.SetDigest)
	}
	set, err := DecodeSet(data)
	if err != nil {
		return nil, err
	}
	var add *additiveClient
	if info.PublicKey != nil {
		if add, err = newAdditiveClient(info.PublicKey); err != nil {
			return nil, fmt.Errorf("blind: epoch %d: %w", info.Epoch, err)
		}
	}
	if set.Epoch != info.Epoch || !slices.Equal(set.Params.V4Lengths, info.Params.V4Lengths) || !slices.Equal(set.Params.V6Lengths, info.Params.V6Lengths) {
		return nil, fmt.Errorf("blind: the set is of epoch %d with params %v, the epoch info says epoch %d with %v", set.Epoch, set.Params, info.Epoch, info.Params)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.info, t.set, t.add = info, set, add
	t.cache, t.hits = map[string]uint64{}, map[string]uint64{}
	return info, nil
}

// Info returns the epoch info of the last Start, or nil.
func (t *Translator) Info() *EpochInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.info
}

// TranslateStats counts a translation.
type TranslateStats struct {
	// Asked is the number of distinct inputs asked for, Cached those
	// answered from the cache, Evaluated those evaluated by the peer now,
	// Left those not translated (budget exhausted or an error).
	Asked, Cached, Evaluated, Left int
	// Batches is the number of requests made.
	Batches int
}

// Translate translates the inputs that are not yet cached. When the
// budget runs out it stops and returns the refusal (an *Error with
// ReasonBudget and RetryAfter), with the inputs translated so far cached;
// the others are counted in Left. Call Start first.
func (t *Translator) Translate(ctx context.Context, inputs []string) (TranslateStats, error) {
	t.mu.Lock()
	info, set, add := t.info, t.set, t.add
	var todo []string
	st := TranslateStats{}
	seen := map[string]struct{}{}
	for _, in := range inputs {
		if _, dup := seen[in]; dup {
			continue
		}
		seen[in] = struct{}{}
		st.Asked++
		if _, ok := t.cache[in]; ok {
			st.Cached++
			continue
		}
		todo = append(todo, in)
	}
	t.mu.Unlock()
	if info == nil {
		return st, errors.New("blind: translate before Start")
	}
	size := t.BatchSize
	if size <= 0 {
		size = 256
	}
	size = min(size, info.MaxBatch)
	workers := t.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		next     int
		firstErr error
	)
	client := oprf.NewClient(suite)
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				mu.Lock()
				lo := next
				next += size
				mu.Unlock()
				if lo >= len(todo) {
					return
				}
				batch := todo[lo:min(lo+size, len(todo))]
				var keys []uint64
				var err error
				if add != nil {
					keys, err = t.batchAdditive(ctx, add, info.Epoch, batch)
				} else {
					keys, err = t.batch(ctx, client, info.Epoch, batch)
				}
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				st.Batches++
				st.Evaluated += len(batch)
				mu.Unlock()
				t.mu.Lock()
				if t.info != nil && t.info.Epoch == info.Epoch {
					for i, in := range batch {
						t.cache[in] = keys[i]
						if set.Contains(keys[i]) {
							t.hits[in] = keys[i]
						}
					}
					t.spent += int64(len(batch))
				}
				t.mu.Unlock()
			}
		})
	}
	wg.Wait()
	st.Left = len(todo) - st.Evaluated
	if firstErr == nil && st.Left > 0 {
		firstErr = ctx.Err()
	}
	return st, firstErr
}

// batch blinds, sends and finalises one batch, returning the keys of the
// outputs.
func (t *Translator) batch(ctx context.Context, client oprf.Client, epoch uint64, batch []string) ([]uint64, error) {
	in := make([][]byte, len(batch))
	for i, s := range batch {
		in[i] = []byte(s)
	}
	fin, req, err := client.Blind(in)
	if err != nil {
		return nil, fmt.Errorf("blind: blind %d inputs: %w", len(in), err)
	}
	wire := &EvalRequest{Epoch: epoch, Elements: make([][]byte, len(req.Elements))}
	for i, e := range req.Elements {
		if wire.Elements[i], err = e.MarshalBinaryCompress(); err != nil {
			return nil, fmt.Errorf("blind: encode element: %w", err)
		}
	}
	resp, err := t.peer.Evaluate(ctx, wire)
	if err != nil {
		return nil, err
	}
	if resp.Epoch != epoch || len(resp.Elements) != len(batch) {
		return nil, fmt.Errorf("blind: the peer answered %d elements of epoch %d for %d of epoch %d", len(resp.Elements), resp.Epoch, len(batch), epoch)
	}
	ev := &oprf.Evaluation{Elements: make([]oprf.Evaluated, len(resp.Elements))}
	for i, b := range resp.Elements {
		e, bad := DecodeElement(b)
		if bad != nil {
			return nil, fmt.Errorf("blind: the peer's evaluation %d: %s", i, bad.Message)
		}
		ev.Elements[i] = e
	}
	out, err := client.Finalize(fin, ev)
	if err != nil {
		return nil, fmt.Errorf("blind: finalize: %w", err)
	}
	keys := make([]uint64, len(out))
	for i, o := range out {
		keys[i] = Key(o)
	}
	return keys, nil
}

// batchAdditive is batch with additive blinding.
func (t *Translator) batchAdditive(ctx context.Context, c *additiveClient, epoch uint64, batch []string) ([]uint64, error) {
	els, rs, err := c.blind(batch)
	if err != nil {
		return nil, err
	}
	resp, err := t.peer.Evaluate(ctx, &EvalRequest{Epoch: epoch, Elements: els})
	if err != nil {
		return nil, err
	}
	if resp.Epoch != epoch || len(resp.Elements) != len(batch) {
		return nil, fmt.Errorf("blind: the peer answered %d elements of epoch %d for %d of epoch %d", len(resp.Elements), resp.Epoch, len(batch), epoch)
	}
	return c.finalizeAll(batch, resp.Elements, rs)
}

// Answer returns the answer for an input: whether it is in the set, with
// its blinded reference, and whether it was translated in this epoch.
func (t *Translator) Answer(input string) (hit bool, ref Ref, translated bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key, ok := t.cache[input]
	if !ok {
		return false, Ref{}, false
	}
	_, hit = t.hits[input]
	return hit, Ref{Epoch: t.info.Epoch, Key: key}, true
}

// Hits returns the inputs translated in this epoch that are in the set,
// sorted, with their references.
func (t *Translator) Hits() ([]string, []Ref) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ins := make([]string, 0, len(t.hits))
	for in := range t.hits {
		ins = append(ins, in)
	}
	slices.SortFunc(ins, func(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) })
	refs := make([]Ref, len(ins))
	for i, in := range ins {
		refs[i] = Ref{Epoch: t.info.Epoch, Key: t.hits[in]}
	}
	return ins, refs
}

// Translated returns the number of inputs cached in this epoch and the
// evaluations this translator has spent.
func (t *Translator) Translated() (cached int, spent int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.cache), t.spent
}
