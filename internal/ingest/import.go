package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/stix"
)

// ImportBatch is how many objects ImportObjects looks up and stores at a
// time, in one transaction: large, because every transaction rewrites the
// pages of the id index its random ids fall on (about one page per 150
// objects), yet small enough that a transaction stays in the writer's
// page cache. 150,000 cost ~8% less CPU than 50,000 on the real feeds but
// ~200 MB more memory.
const ImportBatch = 100000

// firstImportBatch is the size of an import's first batch: the writer
// waits for it, idle, and it is the writer that bounds an import's time
// (a feeds import read its inputs for 1.5-3.4 s, loaded, before its first
// 100,000 objects were ready). Into an empty collection, the extra
// transaction costs little: the id index it rewrites is still small.
const firstImportBatch = ImportBatch / 4

// lookupBatch is how many ids one existence look-up asks for.
const lookupBatch = 500

// ImportStats says what storing imported feed objects did.
type ImportStats struct {
	// Objects is the number of objects offered.
	Objects int `json:"objects"`
	// Indicators is the number of indicators among them.
	Indicators int `json:"indicators"`
	// Stored is the number of object versions written.
	Stored int `json:"stored"`
	// Merged counts indicators the collection already held whose sources
	// (or other properties) the import extended: stored as a new version.
	Merged int `json:"merged"`
	// Unchanged counts objects the collection already held as imported:
	// nothing was written for them.
	Unchanged int `json:"unchanged"`
	// Warninglisted counts indicators flagged by a warninglist, and
	// WarninglistHits how many hit each list.
	Warninglisted   int            `json:"warninglisted"`
	WarninglistHits map[string]int `json:"warninglist_hits,omitempty"`
	// Failures are the objects the node refused, with the reason.
	Failures []entente.StatusDetail `json:"failures,omitempty"`
}

// Lookup returns the latest stored version of those of ids a collection
// holds, by id.
type Lookup func(ctx context.Context, ids []string) (map[string]json.RawMessage, error)

// head is what PrepareImport reads of each object.
type head struct {
	Type         string   `json:"type"`
	ID           string   `json:"id"`
	Modified     string   `json:"modified"`
	Warninglists []string `json:"x_entente_warninglists"`
}

// PrepareImport decides what of objs (as package feed produces them) must
// be written to a collection whose stored objects lookup finds, so that
// importing the same feed again writes nothing and the same observable
// from another feed adds its source to the stored indicator: an object the
// collection does not hold is kept as it is; a cyber-observable (whose id
// is derived from its value) or other object that is already stored is
// left out; an indicator already stored is merged with feed.Merge and kept
// as a new version (modified = now, or just after the stored version) only
// when the merge changed something. It also counts indicators and
// warninglist hits into st.
func PrepareImport(ctx context.Context, objs []json.RawMessage, now time.Time, lookup Lookup, st *ImportStats) ([]json.RawMessage, error) {
	heads, err := readHeads(objs)
	if err != nil {
		return nil, err
	}
	return prepareImport(ctx, objs, heads, now, lookup, st)
}

// readHeads reads the head of every object, on every core for many.
func readHeads(objs []json.RawMessage) ([]head, error) {
	heads := make([]head, len(objs))
	errs := make([]error, runtime.GOMAXPROCS(0))
	chunk := max((len(objs)+len(errs)-1)/len(errs), parallelValidation)
	var wg sync.WaitGroup
	for w, lo := 0, 0; lo < len(objs); w, lo = w+1, lo+chunk {
		hi := min(lo+chunk, len(objs))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				if err := json.Unmarshal(objs[i], &heads[i]); err != nil {
					errs[w] = fmt.Errorf("imported object %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return heads, nil
}

// prepareImport is PrepareImport with the heads of objs read.
func prepareImport(ctx context.Context, objs []json.RawMessage, heads []head, now time.Time, lookup Lookup, st *ImportStats) ([]json.RawMessage, error) {
	ids := make([]string, len(heads))
	for i := range heads {
		ids[i] = heads[i].ID
	}
	stored := map[string]json.RawMessage{}
	for off := 0; off < len(ids); off += lookupBatch {
		m, err := lookup(ctx, ids[off:min(off+lookupBatch, len(ids))])
		if err != nil {
			return nil, err
		}
		maps.Copy(stored, m)
	}
	st.Objects += len(objs)
	out := make([]json.RawMessage, 0, len(objs))
	for i, raw := range objs {
		h := heads[i]
		if h.Type == "indicator" {
			st.Indicators++
			if len(h.Warninglists) > 0 {
				st.Warninglisted++
				if st.WarninglistHits == nil {
					st.WarninglistHits = map[string]int{}
				}
				for _, l := range h.Warninglists {
					st.WarninglistHits[l]++
				}
			}
		}
		old, ok := stored[h.ID]
		if !ok {
			out = append(out, raw)
			continue
		}
		if h.Type != "indicator" {
			st.Unchanged++
			continue
		}
		merged, changed, err := mergeIndicator(old, raw, now)
		if err != nil {
			return nil, fmt.Errorf("merge indicator %s with the stored version: %w", h.ID, err)
		}
		if !changed {
			st.Unchanged++
			continue
		}
		st.Merged++
		out = append(out, merged)
	}
	return out, nil
}

// mergeIndicator merges an imported indicator into the stored one and
// reports whether the result differs from it in anything but modified.
func mergeIndicator(old, imported json.RawMessage, now time.Time) (json.RawMessage, bool, error) {
	merged, err := feed.Merge(old, imported)
	if err != nil {
		return nil, false, err
	}
	var a, b map[string]any
	if err := json.Unmarshal(old, &a); err != nil {
		return nil, false, err
	}
	if err := json.Unmarshal(merged, &b); err != nil {
		return nil, false, err
	}
	oldMod, _ := a["modified"].(string)
	delete(a, "modified")
	delete(b, "modified")
	// Seeing an indicator again extends its valid_until; a new version
	// for that alone is worth it only once the extension is material.
	if ua, ub := timestampOf(a["valid_until"]), timestampOf(b["valid_until"]); !ua.IsZero() && !ub.IsZero() && ub.Sub(ua) < RefreshValidity {
		b["valid_until"] = a["valid_until"]
	}
	if reflect.DeepEqual(a, b) {
		return nil, false, nil
	}
	mod := now.UTC().Truncate(time.Millisecond)
	if t, err := stix.ParseTimestamp(oldMod); err == nil && !mod.After(t) {
		mod = t.Add(time.Millisecond)
	}
	b["modified"] = stix.FormatTimestamp(mod)
	out, err := json.Marshal(b)
	return out, true, err
}

// RefreshValidity is how much later a feed must push an indicator's
// valid_until for a re-import to store a new version for that alone.
const RefreshValidity = 24 * time.Hour

func timestampOf(v any) time.Time {
	s, _ := v.(string)
	t, err := stix.ParseTimestamp(s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// ImportObjects stores feed objects in collection, as [Service.ImportStream]
// does.
func (s *Service) ImportObjects(ctx context.Context, p entente.Principal, collection string, objs []json.RawMessage) (ImportStats, error) {
	in := make([]feed.Object, len(objs))
	for i, raw := range objs {
		in[i].Raw = raw
	}
	return s.ImportStream(ctx, p, collection, func(yield func([]feed.Object) bool) { yield(in) })
}

// ImportStream stores the feed objects that batches yields in
// collection, as PrepareImport decides, while batches is still producing
// them: a [feed.Importer] can hand on the objects it settled after each
// input ([feed.Importer.TakeSettled]) and its merged indicators at the
// end. Each object must come once in all of batches. An object whose
// feed.Object.Checked is set is stored as it is, not decoded and
// validated again (see [feed.Object]). The stored versions
// to merge with are those the collection held when the import began
// (what the import itself stores is never looked up again), read in one
// walk through the read path (release), which an empty collection
// skips. Objects are decoded and
// validated once, on every core, in batches of ImportBatch, each while
// the store writes the previous one in one transaction, without a TAXII
// status resource: nobody polls for one, and the summary is the outcome.
// batches runs on another goroutine, and has stopped when ImportStream
// returns.
func (s *Service) ImportStream(ctx context.Context, p entente.Principal, collection string, batches iter.Seq[[]feed.Object]) (ImportStats, error) {
	var st ImportStats
	if p.Role == entente.RolePartner {
		// A partner's objects are a third party's: AddObjects records
		// their provenance.
		var objs []json.RawMessage
		for b := range batches {
			for _, o := range b {
				objs = append(objs, o.Raw)
			}
		}
		return s.importThrough(ctx, p, collection, objs, st)
	}
	c, err := s.cfg.Collection(ctx, collection)
	if err != nil {
		return st, err
	}
	if !c.CanWrite(p.Role) {
		return st, forbidden(p, "write to", c)
	}
	lookup, err := s.storedLookup(ctx, p, c.ID)
	if err != nil {
		return st, err
	}

	// One goroutine runs batches and prepares and validates what it
	// yields, the caller stores it: the two overlap. The store's writer
	// is the slower of the two (it writes a batch in about twice the CPU
	// that reading and decoding it takes), so the preparing goroutine
	// waits for it with one batch ready (unbuffered: a second one ready
	// would be a hundred thousand objects more in memory and no sooner
	// stored), and decodes on all cores but one while the writer writes
	// (every core while it waits for its first batch): on two cores,
	// decoding on both took CPU from the writer, whose time is the
	// import's.
	ctx, cancel := context.WithCancel(ctx)
	prepared := make(chan importBatch)
	defer func() {
		cancel()
		for range prepared { // wait for batches to stop
		}
	}()
	var counts ImportStats // owned by the preparing goroutine until prepared is closed
	go func() {
		defer close(prepared)
		var pending []feed.Object
		off := 0
		// flush prepares and hands on pending in batches of ImportBatch
		// (all of it when final); false means stop.
		// size is the next batch's: the first is smaller, so that the
		// writer starts while the inputs are still read.
		size := func() int {
			if off == 0 {
				return firstImportBatch
			}
			return ImportBatch
		}
		flush := func(final bool) bool {
			for len(pending) >= size() || (final && len(pending) > 0) {
				n := min(len(pending), size())
				workers := runtime.GOMAXPROCS(0)
				if off > 0 {
					workers = max(workers-1, 1)
				}
				b := s.prepareBatch(ctx, pending[:n], lookup, &counts, workers)
				b.off = off
				off += n
				pending = slices.Clone(pending[n:])
				select {
				case prepared <- b:
				case <-ctx.Done():
					return false
				}
				if b.err != nil {
					return false
				}
			}
			return true
		}
		for objs := range batches {
			pending = append(pending, objs...)
			if !flush(false) {
				return
			}
		}
		flush(true)
	}()
	// On an error, st says what was stored before it.
	for b := range prepared {
		if b.err != nil {
			return st, b.err
		}
		st.Failures = append(st.Failures, b.failures...)
		if len(b.valid) > 0 {
			outcomes, err := s.st.AddObjects(ctx, c.ID, b.valid)
			if err != nil {
				return st, fmt.Errorf("store objects %d-%d: %w", b.off, b.off+b.n-1, err)
			}
			st.Stored += len(outcomes)
			s.cfg.Imported(c.ID, b.valid)
		}
		if len(b.valid)+len(b.failures) > 0 {
			s.report(&entente.Status{Status: entente.StatusComplete, TotalCount: len(b.valid) + len(b.failures),
				SuccessCount: len(b.valid), FailureCount: len(b.failures)})
		}
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	nstored, failures := st.Stored, st.Failures
	st = counts
	st.Stored, st.Failures = nstored, failures
	s.log.DebugContext(ctx, "objects imported", "collection", c.ID, "stored", st.Stored, "failures", len(st.Failures), "key_id", p.KeyID)
	return st, nil
}

// importBatch is one batch of an import, prepared for the store.
type importBatch struct {
	off, n   int
	valid    []*stix.Object
	failures []entente.StatusDetail
	err      error
}

// prepareBatch decodes and validates objs on workers goroutines (but
// those the feed importer checked, feed.Object.Checked), counts them into
// st, and decides what to store as PrepareImport does, looking up stored
// versions with lookup (none when it is nil). A merged indicator is
// validated again.
func (s *Service) prepareBatch(ctx context.Context, objs []feed.Object, lookup Lookup, st *ImportStats, workers int) importBatch {
	b := importBatch{n: len(objs)}
	decoded, errs := decodeImported(objs, workers)
	st.Objects += len(objs)
	var ids []string
	for i, o := range decoded {
		if o == nil {
			continue
		}
		if o.Type == "indicator" {
			st.Indicators++
			countWarninglists(o.Raw, st)
		}
		if lookup != nil && errs[i] == nil {
			ids = append(ids, o.ID)
		}
	}
	stored := map[string]json.RawMessage{}
	for off := 0; off < len(ids); off += lookupBatch {
		m, err := lookup(ctx, ids[off:min(off+lookupBatch, len(ids))])
		if err != nil {
			b.err = err
			return b
		}
		maps.Copy(stored, m)
	}
	b.valid = make([]*stix.Object, 0, len(objs))
	for i, o := range decoded {
		if errs[i] != nil {
			b.failures = append(b.failures, failure(i, objs[i].Raw, o, errs[i]))
			continue
		}
		old, ok := stored[o.ID]
		if !ok {
			b.valid = append(b.valid, o)
			continue
		}
		if o.Type != "indicator" {
			st.Unchanged++
			continue
		}
		merged, changed, err := mergeIndicator(old, o.Raw, s.now())
		if err != nil {
			b.err = fmt.Errorf("merge indicator %s with the stored version: %w", o.ID, err)
			return b
		}
		if !changed {
			st.Unchanged++
			continue
		}
		st.Merged++
		m, err := stix.Decode(merged)
		if err == nil {
			err = stix.Validate(m)
		}
		if err != nil {
			b.failures = append(b.failures, failure(i, merged, m, err))
			continue
		}
		b.valid = append(b.valid, m)
	}
	return b
}

// warninglistsProp is the property feed flags warninglisted indicators
// with.
var warninglistsProp = []byte(`"x_entente_warninglists"`)

// countWarninglists counts the warninglists an imported indicator hit
// into st.
func countWarninglists(raw json.RawMessage, st *ImportStats) {
	if !bytes.Contains(raw, warninglistsProp) {
		return
	}
	var h struct {
		Warninglists []string `json:"x_entente_warninglists"`
	}
	if json.Unmarshal(raw, &h) != nil || len(h.Warninglists) == 0 {
		return
	}
	st.Warninglisted++
	if st.WarninglistHits == nil {
		st.WarninglistHits = map[string]int{}
	}
	for _, l := range h.Warninglists {
		st.WarninglistHits[l]++
	}
}

// storedLookup returns a Lookup of the latest stored versions in
// collection that p may read, or nil when the collection holds no object
// (then nothing an import stores needs one). It reads the collection
// once, through release: one walk costs less than a look-up by id per
// imported object. It keeps the JSON of indicators only, the objects an
// import merges with; of other objects, that they are stored.
func (s *Service) storedLookup(ctx context.Context, p entente.Principal, collection string) (Lookup, error) {
	page, err := s.cfg.Release(ctx, p, "", collection, entente.ObjectQuery{Limit: 1, MetadataOnly: true})
	if err != nil {
		return nil, err
	}
	if len(page.Entries) == 0 && !page.More {
		return nil, nil
	}
	stored := map[string]json.RawMessage{}
	for e, err := range s.all(ctx, p, collection, entente.ObjectQuery{Limit: 5000}) {
		if err != nil {
			return nil, err
		}
		if e.Type == "indicator" {
			stored[e.ID] = e.Raw
		} else {
			stored[e.ID] = json.RawMessage{}
		}
	}
	return func(_ context.Context, ids []string) (map[string]json.RawMessage, error) {
		out := make(map[string]json.RawMessage)
		for _, id := range ids {
			if raw, ok := stored[id]; ok {
				out[id] = raw
			}
		}
		return out, nil
	}, nil
}

// decodeImported decodes and validates objs as decodeObjectsOn does,
// on workers goroutines, but for the objects whose envelope the feed
// importer built (feed.Object.Checked), taken as they are.
func decodeImported(objs []feed.Object, workers int) (decoded []*stix.Object, errs []error) {
	return decodeOn(len(objs), workers, func(i int) (*stix.Object, error) {
		if objs[i].Checked != nil {
			return objs[i].Checked, nil
		}
		return decodeValid(objs[i].Raw)
	})
}

// importThrough is ImportStream through AddObjects, one call per batch,
// for a partner.
func (s *Service) importThrough(ctx context.Context, p entente.Principal, collection string, objs []json.RawMessage, st ImportStats) (ImportStats, error) {
	heads, err := readHeads(objs)
	if err != nil {
		return st, err
	}
	// One pass over the collection finds every stored version to merge
	// with.
	stored, err := s.storedOf(ctx, p, collection, heads)
	if err != nil {
		return st, err
	}
	lookup := func(_ context.Context, ids []string) (map[string]json.RawMessage, error) {
		out := make(map[string]json.RawMessage)
		for _, id := range ids {
			if raw, ok := stored[id]; ok {
				out[id] = raw
			}
		}
		return out, nil
	}
	for off := 0; off < len(objs); off += ImportBatch {
		end := min(off+ImportBatch, len(objs))
		batch := objs[off:end]
		todo, err := prepareImport(ctx, batch, heads[off:end], s.now(), lookup, &st)
		if err != nil {
			return st, err
		}
		if len(todo) == 0 {
			continue
		}
		status, err := s.AddObjects(ctx, p, collection, todo)
		if err != nil {
			return st, fmt.Errorf("store objects %d-%d: %w", off, off+len(batch)-1, err)
		}
		st.Stored += status.SuccessCount
		st.Failures = append(st.Failures, status.Failures...)
	}
	return st, nil
}

// storedOf returns the latest stored version of those of objs' objects
// that collection holds and p may read, by id, reading the collection's
// objects of the types objs hold once, through release.
func (s *Service) storedOf(ctx context.Context, p entente.Principal, collection string, heads []head) (map[string]json.RawMessage, error) {
	want := make(map[string]bool, len(heads))
	types := map[string]bool{}
	for _, h := range heads {
		want[h.ID] = true
		types[h.Type] = true
	}
	out := map[string]json.RawMessage{}
	for e, err := range s.all(ctx, p, collection, entente.ObjectQuery{Types: slices.Sorted(maps.Keys(types)), Limit: 5000}) {
		if err != nil {
			return nil, err
		}
		if want[e.ID] {
			out[e.ID] = e.Raw
		}
	}
	return out, nil
}

// SortedHits returns the lists of a warninglist hit count, most hits
// first, then by name.
func SortedHits(hits map[string]int) []string {
	names := make([]string, 0, len(hits))
	for n := range hits {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if hits[names[i]] != hits[names[j]] {
			return hits[names[i]] > hits[names[j]]
		}
		return names[i] < names[j]
	})
	return names
}
