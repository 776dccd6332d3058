package blind

import (
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/cloudflare/circl/oprf"

	"github.com/entente-cti/entente/internal/observable"
)

// Indicator is one indicator value that a partner's agreement grants
// blind access to.
type Indicator struct {
	// Ref is the node's own handle of the indicator (an index into its
	// table of indicator ids, say): [Builder.Resolve] returns it for a
	// blinded reference the partner reports.
	Ref uint32
	// Kind and Value are the value, canonical (see observable.Normalize).
	Kind  observable.Kind
	Value string
}

// Builder keeps one partner's blinded set for one epoch up to date: adding
// an indicator evaluates the OPRF on its inputs only (each distinct input
// of a batch once), removing one evaluates nothing (the builder remembers
// each indicator's keys), and [Builder.Set] rebuilds only the shards that
// changed. It remembers the indicators, so that the next epoch's set can
// be built from them ([Builder.Rekey]), and which indicator each key came
// from, for [Builder.Resolve]. A Builder is safe for concurrent use.
type Builder struct {
	epoch  uint64
	key    *oprf.PrivateKey
	params Params
	// Workers is the number of goroutines that evaluate the OPRF
	// (default GOMAXPROCS).
	Workers int

	mu sync.Mutex
	// items are the indicators held, each with the key of its one input;
	// those of more inputs (networks) have their keys in netKeys.
	items   map[Indicator]uint64
	netKeys map[Indicator][]uint64
	shards  [nShards]map[uint64]uint32 // key -> ref, or multiBit|index into multi
	multi   [][]uint32
	free    []uint32 // unused indexes of multi
	dirty   [nShards]bool
	last    *Set
}

// multiBit marks a key that several indicators share.
const multiBit = 1 << 31

// maxRef is the largest indicator handle a builder takes.
const maxRef = multiBit - 1

// NewBuilder returns an empty builder of a set for epoch under key.
func NewBuilder(key *oprf.PrivateKey, epoch uint64, params Params) (*Builder, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	b := &Builder{epoch: epoch, key: key, params: params,
		items: map[Indicator]uint64{}, netKeys: map[Indicator][]uint64{}}
	for i := range b.shards {
		b.shards[i] = map[uint64]uint32{}
		b.dirty[i] = true
	}
	return b, nil
}

// Epoch returns the epoch of the builder's key.
func (b *Builder) Epoch() uint64 { return b.epoch }

// Problem is an indicator that could not be added.
type Problem struct {
	Indicator Indicator
	Err       error
}

func (p Problem) Error() string {
	return fmt.Sprintf("indicator %d (%s %q): %v", p.Indicator.Ref, p.Indicator.Kind, p.Indicator.Value, p.Err)
}

// keyed is an input's key for one indicator.
type keyed struct {
	key uint64
	ref uint32
}

// evaluate expands the indicators and evaluates the OPRF on their
// distinct inputs on all workers; it returns the keys of each indicator's
// inputs (nil for those it refused) and the indicators it refused.
func (b *Builder) evaluate(items []Indicator) ([][]uint64, []Problem) {
	var problems []Problem
	inputs := make([]string, 0, len(items))  // distinct
	at := make(map[string]int32, len(items)) // input -> index in inputs
	idx := make([]int32, 0, len(items))      // indexes in inputs, item after item
	end := make([]int, len(items))           // item i's are idx[end[i-1]:end[i]]
	refused := make([]bool, len(items))
	var buf []string
	for i, it := range items {
		if it.Ref > maxRef {
			problems = append(problems, Problem{it, fmt.Errorf("handle %d above %d", it.Ref, maxRef)})
			refused[i], end[i] = true, len(idx)
			continue
		}
		var err error
		buf, err = b.params.Expand(it.Kind, it.Value, buf[:0])
		if err != nil {
			problems = append(problems, Problem{it, err})
			refused[i], end[i] = true, len(idx)
			continue
		}
		for _, in := range buf {
			k, ok := at[in]
			if !ok {
				k = int32(len(inputs))
				at[in] = k
				inputs = append(inputs, in)
			}
			idx = append(idx, k)
		}
		end[i] = len(idx)
	}
	keys := evaluateInputs(b.key, inputs, b.Workers)
	// One array holds every item's keys (a million items would otherwise
	// be a million small allocations).
	all := make([]uint64, len(idx))
	for j, k := range idx {
		all[j] = keys[k]
	}
	out := make([][]uint64, len(items))
	start := 0
	for i := range items {
		if !refused[i] {
			out[i] = all[start:end[i]:end[i]]
		}
		start = end[i]
	}
	return out, problems
}

// evaluateInputs returns the keys of the OPRF outputs of inputs under
// key, on workers goroutines (GOMAXPROCS when 0).
func evaluateInputs(key *oprf.PrivateKey, inputs []string, workers int) []uint64 {
	out := make([]uint64, len(inputs))
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	kb, err := key.MarshalBinary()
	if err != nil {
		panic(fmt.Sprintf("blind: key: %v", err))
	}
	k, err := scalarOf(kb)
	if err != nil {
		panic(fmt.Sprintf("blind: key: %v", err))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	const chunk = 256
	next := 0
	for range min(workers, (len(inputs)+chunk-1)/chunk) {
		wg.Go(func() {
			be := newBatchEvaluator(k)
			for {
				mu.Lock()
				lo := next
				next += chunk
				mu.Unlock()
				if lo >= len(inputs) {
					return
				}
				hi := min(lo+chunk, len(inputs))
				be.evaluate(out[lo:hi], inputs[lo:hi])
			}
		})
	}
	wg.Wait()
	return out
}

// Add adds indicators, evaluating the OPRF on their inputs, and returns
// those it refused (a network too wide for the prefix lengths, a value
// that is not canonical).
func (b *Builder) Add(items []Indicator) []Problem {
	b.mu.Lock()
	fresh := make([]Indicator, 0, len(items))
	seen := make(map[Indicator]struct{}, len(items))
	for _, it := range items {
		if _, ok := b.items[it]; ok {
			continue
		}
		if _, ok := seen[it]; !ok {
			seen[it] = struct{}{}
			fresh = append(fresh, it)
		}
	}
	b.mu.Unlock()
	keys, problems := b.evaluate(fresh)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reserve(fresh, keys)
	for i, it := range fresh {
		ks := keys[i]
		if ks == nil {
			continue // refused
		}
		if _, ok := b.items[it]; ok {
			continue // added meanwhile
		}
		if len(ks) == 1 {
			b.items[it] = ks[0]
		} else {
			b.items[it] = 0
			b.netKeys[it] = slices.Clip(slices.Clone(ks)) // not the batch's array
		}
		for _, k := range ks {
			b.insert(keyed{k, it.Ref})
		}
	}
	return problems
}

// reserve sizes the builder's empty maps for the indicators about to be
// added (growing a map of a million entries rehashes it about twenty
// times), as when a set is first built.
func (b *Builder) reserve(fresh []Indicator, keys [][]uint64) {
	if len(b.items) == 0 && len(b.netKeys) == 0 {
		b.items = make(map[Indicator]uint64, len(fresh))
	}
	n := 0
	for _, ks := range keys {
		n += len(ks)
	}
	perShard := n / nShards * 9 / 8 // keys spread evenly over the shards
	if perShard < 64 {
		return
	}
	for i, m := range b.shards {
		if len(m) == 0 {
			b.shards[i] = make(map[uint64]uint32, perShard)
		}
	}
}

// Remove removes indicators (those it does not hold are ignored). It
// evaluates nothing: the builder knows each indicator's keys.
func (b *Builder) Remove(items []Indicator) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, it := range items {
		k, ok := b.items[it]
		if !ok {
			continue
		}
		ks := []uint64{k}
		if nk, ok := b.netKeys[it]; ok {
			ks = nk
			delete(b.netKeys, it)
		}
		delete(b.items, it)
		for _, k := range ks {
			b.delete(keyed{k, it.Ref})
		}
	}
}

// insert records one claim of an indicator on a key. Claims are counted:
// two networks of one indicator that cover the same prefix claim it twice,
// so that removing one of them leaves the other's claim.
func (b *Builder) insert(k keyed) {
	s := k.key >> (64 - shardBits)
	m := b.shards[s]
	v, ok := m[k.key]
	switch {
	case !ok:
		m[k.key] = k.ref
		b.dirty[s] = true
	case v&multiBit == 0:
		m[k.key] = multiBit | b.newMulti([]uint32{v, k.ref})
	default:
		b.multi[v&^multiBit] = append(b.multi[v&^multiBit], k.ref)
	}
}

// delete removes one claim of an indicator on a key.
func (b *Builder) delete(k keyed) {
	s := k.key >> (64 - shardBits)
	m := b.shards[s]
	v, ok := m[k.key]
	switch {
	case !ok:
	case v&multiBit == 0:
		if v == k.ref {
			delete(m, k.key)
			b.dirty[s] = true
		}
	default:
		i := v &^ multiBit
		l := b.multi[i]
		for j, r := range l {
			if r == k.ref {
				l = append(l[:j], l[j+1:]...)
				break
			}
		}
		if len(l) == 1 {
			m[k.key] = l[0]
			b.multi[i] = nil
			b.free = append(b.free, i)
		} else {
			b.multi[i] = l
		}
	}
}

func (b *Builder) newMulti(l []uint32) uint32 {
	if n := len(b.free); n > 0 {
		i := b.free[n-1]
		b.free = b.free[:n-1]
		b.multi[i] = l
		return i
	}
	b.multi = append(b.multi, l)
	return uint32(len(b.multi) - 1)
}

// Resolve returns the handles of the indicators whose inputs have key (a
// partner's blinded reference names it), or nil.
func (b *Builder) Resolve(key uint64) []uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.shards[key>>(64-shardBits)][key]
	if !ok {
		return nil
	}
	if v&multiBit == 0 {
		return []uint32{v}
	}
	refs := slices.Clone(b.multi[v&^multiBit])
	slices.Sort(refs)
	return slices.Compact(refs)
}

// Indicators returns the number of indicators held.
func (b *Builder) Indicators() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.items)
}

// Set returns the current set, rebuilding the filters of the shards that
// changed since the last call.
func (b *Builder) Set() (*Set, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &Set{Epoch: b.epoch, Params: b.params}
	if b.last != nil {
		s.shards = b.last.shards
	}
	var keys []uint64
	for i := range b.shards {
		if b.dirty[i] || b.last == nil {
			keys = keys[:0]
			for k := range b.shards[i] {
				keys = append(keys, k)
			}
			// In order: the filter then depends only on the keys, so that
			// every replica builds the same set, with the same digest.
			slices.Sort(keys)
			sh, err := newShard(keys)
			if err != nil {
				return nil, fmt.Errorf("blind set shard %d: %w", i, err)
			}
			s.shards[i] = sh
			b.dirty[i] = false
		}
		s.count += len(b.shards[i])
	}
	b.last = s
	return s, nil
}

// Rekey returns a builder of the same indicators under another epoch's
// key: every input is evaluated again.
func (b *Builder) Rekey(key *oprf.PrivateKey, epoch uint64) (*Builder, []Problem, error) {
	nb, err := NewBuilder(key, epoch, b.params)
	if err != nil {
		return nil, nil, err
	}
	nb.Workers = b.Workers
	b.mu.Lock()
	items := make([]Indicator, 0, len(b.items))
	for it := range b.items {
		items = append(items, it)
	}
	b.mu.Unlock()
	return nb, nb.Add(items), nil
}
