package httpapi

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/entente-cti/entente"
)

// Default bounds of the memory that request bodies hold while they are
// read, decoded, validated and stored (see Options.BodyMemoryPerKey and
// Options.BodyMemoryTotal).
const (
	DefaultBodyMemoryPerKey = 256 << 20
	DefaultBodyMemoryTotal  = 1 << 30
)

// The cost model of a body: what it is charged against the budget. A
// body costs twice its size (its bytes, which the objects point into
// until they are stored, and what decoding, validating and storing them
// allocate, in proportion to their bytes) and objectCost per object (the
// decoded common properties, the object's entry in the pending status,
// the store's plan). The figures come from BenchmarkPostEnvelope32MB: a
// 32 MiB envelope of ATT&CK objects (14,102) and one of small indicators
// (77,100) stay within this charge.
const (
	bodyCostFactor = 2
	objectCost     = 1 << 10
)

// bodyCost is what a body of size bytes holding objects objects is
// charged.
func bodyCost(size int64, objects int) int64 {
	return bodyCostFactor*size + int64(objects)*objectCost
}

// budget bounds the memory held by the bodies being read, decoded and
// stored: per API key and in total. A request that would go past a bound
// is refused at once (429 past the key's, 503 past the total), with a
// Retry-After, rather than queued: queued bodies would hold their memory
// while they wait. A request is always admitted when nothing else holds
// memory under its key (or at all), so that a body as large as the API
// root's max_content_length is never refused for its size alone.
//
// Add Objects answers before the objects are stored; their memory is held
// until the node reports the status complete (complete), matched to the
// request by the status id (holdUntilComplete).
type budget struct {
	perKey, total int64

	mu    sync.Mutex
	used  int64
	byKey map[string]int64
	// held maps the id of a pending status to the memory its objects
	// hold until it is complete.
	held map[string]*reservation
	// early are the statuses reported complete before their request
	// could hold its memory under their id; submitting counts the
	// requests between submission and holdUntilComplete. early is
	// emptied whenever submitting is 0, and pruned of entries older than
	// a minute when it grows, since it also sees statuses of other
	// origins (imports, peers).
	early      map[string]time.Time
	submitting int
	swept      time.Time // when held was last swept of stale holds

	// pressure, when set, is told when the memory charged first reaches
	// pressureAt (true) and when it falls back to zero (false); high is
	// the state it was last told, under pressureMu.
	pressure   func(high bool)
	pressureMu sync.Mutex
	told       bool
	high       bool // the state to tell, under mu
}

// pressureAt is the memory charged at once from which budget.pressure
// is told that large bodies are being decoded: the size of two of the
// largest envelopes the default max_content_length allows.
const pressureAt = 64 << 20

func newBudget(perKey, total int64) *budget {
	return &budget{perKey: perKey, total: total, byKey: map[string]int64{},
		held: map[string]*reservation{}, early: map[string]time.Time{}}
}

// reservation is the memory charged to one request.
type reservation struct {
	b    *budget
	key  string
	n    int64
	held time.Time // when it began to be held for a status
}

// holdTimeout bounds how long memory stays charged for a status the node
// never reports complete (it stopped, or another handler took its
// OnComplete hook): a safety net, as statuses complete in seconds.
const holdTimeout = 10 * time.Minute

// refusal is a request refused for want of memory: the error (ERATELIMIT
// or EUNAVAILABLE) and when to retry.
type refusal struct {
	err   error
	retry time.Duration
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// retryAfter estimates how long the memory held will take to be freed:
// a second per 64 MiB held (the pace at which a node validates and
// stores objects), between 1 and 60 seconds.
func retryAfter(held int64) time.Duration {
	s := math.Ceil(float64(held) / float64(64<<20))
	return time.Duration(min(60, max(1, s))) * time.Second
}

// reserve charges n bytes to key, or refuses.
func (b *budget) reserve(key string, n int64) (*reservation, error) {
	r := &reservation{b: b, key: key}
	if err := r.grow(n); err != nil {
		return nil, err
	}
	return r, nil
}

// grow charges n more bytes to r's key, or refuses (and charges
// nothing).
func (r *reservation) grow(n int64) error {
	if n <= 0 {
		return nil
	}
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.byKey[r.key]
	if k > r.n && k+n > b.perKey {
		// Others of this key hold memory too: this key's bound.
		return &refusal{entente.Errorf(entente.ERATELIMIT,
			"this API key's requests already hold %d MiB of the %d MiB their bodies may use at once; retry when they are stored",
			k>>20, b.perKey>>20), retryAfter(k)}
	}
	if b.used > r.n && b.used+n > b.total {
		return &refusal{entente.Errorf(entente.EUNAVAILABLE,
			"the node is decoding %d MiB of request bodies, its limit; retry later", b.used>>20), retryAfter(b.used)}
	}
	b.byKey[r.key] = k + n
	b.used += n
	r.n += n
	if b.used >= pressureAt && !b.high && b.pressure != nil {
		b.high = true
		go b.tell()
	}
	return nil
}

// tell gives pressure the current state, unless it was the last told:
// calls may run in any order, each tells what is true when it runs.
func (b *budget) tell() {
	b.pressureMu.Lock()
	defer b.pressureMu.Unlock()
	b.mu.Lock()
	high := b.high
	b.mu.Unlock()
	if high != b.told {
		b.told = high
		b.pressure(high)
	}
}

// resize sets r's charge to n bytes, growing (possibly refused) or
// shrinking it.
func (r *reservation) resize(n int64) error {
	if n >= r.n {
		return r.grow(n - r.n)
	}
	r.b.give(r.key, r.n-n)
	r.n = n
	return nil
}

// release gives r's memory back. It may be called more than once.
func (r *reservation) release() {
	if r == nil || r.n == 0 {
		return
	}
	r.b.give(r.key, r.n)
	r.n = 0
}

func (b *budget) give(key string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if k := b.byKey[key] - n; k > 0 {
		b.byKey[key] = k
	} else {
		delete(b.byKey, key)
	}
	if b.used == 0 && b.high {
		b.high = false
		go b.tell()
	}
}

// inUse returns the memory charged in total and to key.
func (b *budget) inUse(key string) (total, byKey int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.byKey[key]
}

// submit is called before a request submits objects whose status may
// complete after the request has answered; the request then calls
// holdUntilComplete (or, when it will not, done) with the status.
func (b *budget) submit() {
	b.mu.Lock()
	b.submitting++
	b.mu.Unlock()
}

// holdUntilComplete keeps r's memory charged until the status id is
// reported complete (now, if it already was), and ends a submit.
func (b *budget) holdUntilComplete(id string, r *reservation) {
	now := time.Now()
	b.mu.Lock()
	_, done := b.early[id]
	if done {
		delete(b.early, id)
	} else if r != nil && r.n > 0 {
		r.held = now
		b.held[id] = r
	}
	b.endSubmitLocked()
	var stale []*reservation
	if now.Sub(b.swept) > time.Minute {
		b.swept = now
		for k, h := range b.held {
			if now.Sub(h.held) > holdTimeout {
				stale = append(stale, h)
				delete(b.held, k)
			}
		}
	}
	b.mu.Unlock()
	if done {
		r.release()
	}
	for _, h := range stale {
		h.release()
	}
}

// done ends a submit whose memory is not held (the request failed, or
// its status was complete when it answered).
func (b *budget) done() {
	b.mu.Lock()
	b.endSubmitLocked()
	b.mu.Unlock()
}

func (b *budget) endSubmitLocked() {
	b.submitting--
	if b.submitting == 0 {
		clear(b.early)
	}
}

// complete is called when the node reports a status complete: the
// memory held for it is freed.
func (b *budget) complete(id string) {
	if id == "" {
		return
	}
	b.mu.Lock()
	r, ok := b.held[id]
	if ok {
		delete(b.held, id)
	} else if b.submitting > 0 {
		now := time.Now()
		if len(b.early) >= 1024 {
			for k, t := range b.early {
				if now.Sub(t) > time.Minute {
					delete(b.early, k)
				}
			}
		}
		b.early[id] = now
	}
	b.mu.Unlock()
	if ok {
		r.release()
	}
}

// strconvSeconds formats d as whole seconds, rounded up, at least 1.
func strconvSeconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}
