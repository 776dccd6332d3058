package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/entente-cti/entente/internal/taxii"
)

// ImportBatch is how many objects ImportObjects looks up and stores at a
// time, in one transaction: large, because every transaction rewrites the
// pages of the id index its random ids fall on (about one page per 150
// objects), yet small enough that a transaction stays in the writer's
// page cache. 150,000 cost ~8% less CPU than 50,000 on the real feeds but
// ~200 MB more memory.
const ImportBatch = 100000

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
	Failures []taxii.StatusDetail `json:"failures,omitempty"`
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

// ImportObjects stores feed objects in collection, as PrepareImport
// decides, in batches of ImportBatch, looking up stored versions through
// the read path (release). Each batch is validated while the store writes
// the previous one, and is stored in one transaction, without a TAXII
// status resource: nobody polls for one, and the summary is the outcome.
func (s *Service) ImportObjects(ctx context.Context, p entente.Principal, collection string, objs []json.RawMessage) (ImportStats, error) {
	var st ImportStats
	heads, err := readHeads(objs)
	if err != nil {
		return st, err
	}
	// One pass over the collection finds every stored version to merge
	// with: the store answers a look-up by id by walking the collection,
	// so one walk is cheaper than one per batch.
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
	if p.Role == entente.RolePartner {
		// A partner's objects are a third party's: AddObjects records
		// their provenance.
		return s.importThrough(ctx, p, collection, objs, heads, lookup, st)
	}
	c, err := s.collection(ctx, collection)
	if err != nil {
		return st, err
	}
	if !c.CanWrite(p.Role) {
		return st, forbidden(p, "write to", c)
	}

	// One goroutine prepares and validates batches, the caller stores
	// them: the two overlap.
	type prepared struct {
		off, n   int
		valid    []*stix.Object
		failures []taxii.StatusDetail
		err      error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan prepared, 1)
	var counts ImportStats // owned by the preparing goroutine until batches is closed
	go func() {
		defer close(batches)
		for off := 0; off < len(objs); off += ImportBatch {
			end := min(off+ImportBatch, len(objs))
			batch := objs[off:end]
			todo, err := prepareImport(ctx, batch, heads[off:end], s.now(), lookup, &counts)
			b := prepared{off: off, n: len(batch), err: err}
			if err == nil {
				b.valid, b.failures = validateObjects(todo)
			}
			select {
			case batches <- b:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	// On an error, st says what was stored before it.
	for b := range batches {
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
		}
		if len(b.valid)+len(b.failures) > 0 {
			s.report(&taxii.Status{Status: taxii.StatusComplete, TotalCount: len(b.valid) + len(b.failures),
				SuccessCount: len(b.valid), FailureCount: len(b.failures)})
		}
	}
	nstored, failures := st.Stored, st.Failures
	st = counts
	st.Stored, st.Failures = nstored, failures
	s.log.DebugContext(ctx, "objects imported", "collection", c.ID, "stored", st.Stored, "failures", len(st.Failures), "key_id", p.KeyID)
	return st, nil
}

// importThrough is ImportObjects through AddObjects, one call per batch.
func (s *Service) importThrough(ctx context.Context, p entente.Principal, collection string, objs []json.RawMessage, heads []head, lookup Lookup, st ImportStats) (ImportStats, error) {
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
	for e, err := range s.released(ctx, p, collection, entente.ObjectQuery{Types: slices.Sorted(maps.Keys(types)), Limit: 5000}) {
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
