package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/google/uuid"
)

// parallelValidation is the batch size from which objects are validated on
// every core.
const parallelValidation = 512

// validateObjects decodes and validates objects, on every core for large
// batches, and returns the valid ones in input order with a failure for
// each invalid one.
func validateObjects(objects []json.RawMessage) ([]*stix.Object, []entente.StatusDetail) {
	decoded, errs := decodeObjects(objects)
	valid := make([]*stix.Object, 0, len(objects))
	var failures []entente.StatusDetail
	for i, err := range errs {
		if err != nil {
			failures = append(failures, failure(i, objects[i], decoded[i], err))
			continue
		}
		valid = append(valid, decoded[i])
	}
	return valid, failures
}

// decodeObjects decodes and validates objects, on every core for large
// batches: decoded[i] is nil when objects[i] did not decode, errs[i] says
// why objects[i] is not valid.
func decodeObjects(objects []json.RawMessage) (decoded []*stix.Object, errs []error) {
	return decodeObjectsOn(objects, runtime.GOMAXPROCS(0))
}

// decodeObjectsOn is decodeObjects on at most workers goroutines.
func decodeObjectsOn(objects []json.RawMessage, workers int) (decoded []*stix.Object, errs []error) {
	return decodeOn(len(objects), workers, func(i int) (*stix.Object, error) { return decodeValid(objects[i]) })
}

// decodeValid decodes raw and validates what it decoded.
func decodeValid(raw json.RawMessage) (*stix.Object, error) {
	o, err := stix.Decode(raw)
	if err == nil {
		err = stix.Validate(o)
	}
	return o, err
}

// decodeOn sets decoded[i], errs[i] = one(i) for every i < n, on at most
// workers goroutines when n is large enough to share.
func decodeOn(n, workers int, one func(i int) (*stix.Object, error)) (decoded []*stix.Object, errs []error) {
	decoded = make([]*stix.Object, n)
	errs = make([]error, n)
	check := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			decoded[i], errs[i] = one(i)
		}
	}
	if n >= parallelValidation && workers > 1 {
		var wg sync.WaitGroup
		chunk := (n + workers - 1) / workers
		for lo := 0; lo < n; lo += chunk {
			hi := min(lo+chunk, n)
			wg.Go(func() { check(lo, hi) })
		}
		wg.Wait()
	} else {
		check(0, n)
	}
	return decoded, errs
}

// OnComplete adds f to the functions called with every Add Objects status
// once it is complete (metrics, memory accounting). Call it before
// serving requests.
func (s *Service) OnComplete(f func(*entente.Status)) {
	s.completedMu.Lock()
	s.completed = append(s.completed, f)
	s.completedMu.Unlock()
}

func (s *Service) report(st *entente.Status) {
	s.completedMu.Lock()
	hooks := s.completed
	s.completedMu.Unlock()
	for _, f := range hooks {
		f(st)
	}
}

// mergeFailures merges two lists of failures, each in request order, into
// one in request order.
func mergeFailures(a []entente.StatusDetail, aAt []int, b []entente.StatusDetail, bAt []int) []entente.StatusDetail {
	out := make([]entente.StatusDetail, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if j == len(b) || (i < len(a) && aAt[i] < bAt[j]) {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	return out
}

// pendingStatuses holds the statuses of submissions not yet durable; the
// store holds them once they are. It keeps the latest complete ones too
// (recent, within recentStatuses and recentDetails), as they are in the
// store: a client polls a status until it is complete, and the last poll
// then needs no read of the store nor decoding of its record.
type pendingStatuses struct {
	mu sync.Mutex
	m  map[string]statusRecord
	// recent holds complete statuses by id, order their ids oldest
	// first, details the number of details (successes, failures) they
	// hold in all.
	recent  map[string]statusRecord
	order   []string
	details int
	// done holds, for each status of m still pending, a channel closed
	// once it is not (see Service.Status).
	done map[string]chan struct{}
}

// statusWait bounds how long a poll of a pending status waits for it to
// be complete before answering it pending (see Service.Status).
const statusWait = 250 * time.Millisecond

// recentStatuses and recentDetails bound the complete statuses
// pendingStatuses keeps: how many, and how many details in all.
const (
	recentStatuses = 512
	recentDetails  = 65536
)

// pendingStatus returns the status id if it is pending or among the
// recent complete ones, and, while it is pending, a channel closed once
// it is not.
func (s *Service) pendingStatus(id string) (statusRecord, <-chan struct{}, bool) {
	s.pending.mu.Lock()
	defer s.pending.mu.Unlock()
	if rec, ok := s.pending.m[id]; ok {
		return rec, s.pending.done[id], ok
	}
	rec, ok := s.pending.recent[id]
	return rec, nil, ok
}

// settle marks the status id as no longer pending: its pollers waiting
// are answered. The caller holds ps.mu.
func (ps *pendingStatuses) settle(id string) {
	if ch, ok := ps.done[id]; ok {
		close(ch)
		delete(ps.done, id)
	}
}

// keepComplete keeps rec, a status stored complete, among the recent
// ones, forgetting the oldest beyond the bounds. Its strings are copied,
// unless detached says they share no memory already: an object's id may
// point into the request's body, which must not be kept. The caller
// holds ps.mu.
func (ps *pendingStatuses) keepComplete(id string, rec statusRecord, detached bool) {
	n := len(rec.Status.Successes) + len(rec.Status.Failures) + len(rec.Status.Pendings)
	if n > recentDetails {
		return
	}
	if !detached {
		st := *rec.Status
		st.Successes = detachDetails(st.Successes)
		st.Failures = detachDetails(st.Failures)
		st.Pendings = detachDetails(st.Pendings)
		rec.Status = &st
	}
	if ps.recent == nil {
		ps.recent = map[string]statusRecord{}
	}
	ps.recent[id] = rec
	ps.order = append(ps.order, id)
	ps.details += n
	for len(ps.order) > recentStatuses || ps.details > recentDetails {
		old := ps.recent[ps.order[0]].Status
		ps.details -= len(old.Successes) + len(old.Failures) + len(old.Pendings)
		delete(ps.recent, ps.order[0])
		ps.order[0] = ""
		ps.order = ps.order[1:]
	}
	if cap(ps.order) > 4*recentStatuses {
		ps.order = slices.Clone(ps.order)
	}
}

// outcomesOf returns the outcome of storing objs when each is stored as
// it is: the outcome storedAsValid recognises.
func outcomesOf(objs []*stix.Object) []entente.AddOutcome {
	out := make([]entente.AddOutcome, len(objs))
	for i, o := range objs {
		out[i] = entente.AddOutcome{ID: o.ID, Version: o.Version()}
	}
	return out
}

// storedAsValid reports whether out, the outcome of storing objs, lists
// each of objs in order with its own version: the final status is then
// the one built from outcomesOf(objs). A duplicate is listed so too; its
// status says the same.
func storedAsValid(out []entente.AddOutcome, objs []*stix.Object) bool {
	if len(out) != len(objs) {
		return false
	}
	for i, o := range objs {
		if out[i].ID != o.ID || !out[i].Version.Equal(o.Version()) {
			return false
		}
	}
	return true
}

// statusRecordSize is about the size of st's stored record, to size its
// buffer once.
func statusRecordSize(st *entente.Status) int {
	return 128 + 32*len(st.Successes) + 160*len(st.Failures) + 32*len(st.Pendings)
}

// detachDetails returns a copy of ds whose strings share no memory with
// anything else.
func detachDetails(ds []entente.StatusDetail) []entente.StatusDetail {
	if ds == nil {
		return nil
	}
	out := make([]entente.StatusDetail, len(ds))
	for i, d := range ds {
		out[i] = entente.StatusDetail{ID: strings.Clone(d.ID), Version: strings.Clone(d.Version), Message: strings.Clone(d.Message)}
	}
	return out
}

// SubmitObjects is AddObjects for TAXII clients: when the store can take
// submissions, it decodes objects, fixes their place in the collection at
// once and answers with a pending status; the objects are then validated
// (in parallel with the store writing earlier requests) and the valid ones
// stored, with the final status, in a commit shared with other requests.
// The client polls the status until it is complete: an object is
// acknowledged (listed under successes of a complete status) only once it
// is durable, and an invalid one is listed under failures with the reason.
// With a store that cannot take submissions it is AddObjects.
func (s *Service) SubmitObjects(ctx context.Context, p entente.Principal, collection string, objects []json.RawMessage) (*entente.Status, error) {
	sub, ok := s.st.(store.Submitter)
	// A partner's objects are a third party's: AddObjects records their
	// provenance, which the policy gate's re-sharing rule depends on.
	if !ok || p.Role == entente.RolePartner {
		return s.AddObjects(ctx, p, collection, objects)
	}
	requested := s.now()
	c, err := s.cfg.Collection(ctx, collection)
	if err != nil {
		return nil, err
	}
	if !c.CanWrite(p.Role) {
		return nil, forbidden(p, "write to", c)
	}
	// Decoding is cheap and names the objects for the pending status;
	// validation, the costly part, runs off the request's path.
	decoded := make([]*stix.Object, 0, len(objects))
	index := make([]int, 0, len(objects)) // position of each decoded object in the request
	var failures []entente.StatusDetail
	var failedAt []int // request position of each of failures
	for i, raw := range objects {
		o, err := stix.Decode(raw)
		if err != nil {
			failures = append(failures, failure(i, raw, nil, err))
			failedAt = append(failedAt, i)
			continue
		}
		decoded = append(decoded, o)
		index = append(index, i)
	}
	if len(decoded) == 0 {
		return s.AddObjects(ctx, p, c.ID, objects)
	}
	st := &entente.Status{
		ID:               uuid.NewString(),
		Status:           entente.StatusPending,
		RequestTimestamp: stix.FormatTimestamp(requested),
		TotalCount:       len(objects),
		Failures:         failures,
		FailureCount:     len(failures),
		PendingCount:     len(decoded),
		Pendings:         make([]entente.StatusDetail, len(decoded)),
	}
	for i, o := range decoded {
		st.Pendings[i] = entente.StatusDetail{ID: o.ID}
		if v := o.Version(); !v.IsZero() {
			st.Pendings[i].Version = stix.FormatTimestamp(v)
		}
	}

	// Validation starts now and is waited for by the store's writer.
	var invalid []entente.StatusDetail
	var invalidAt []int
	var valid []*stix.Object
	// likely is the final status should every valid object be stored as
	// it is (the common case), and likelyRecord its stored record: both
	// are built beside validation, off the writer's path, which then
	// only checks that its outcome is the one they assume (see
	// storedAsValid). likely's strings are detached from the request's
	// body, as the recent statuses kept in memory must be.
	var (
		likely       *entente.Status
		likelyRecord []byte
	)
	validated := make(chan struct{})
	// finalOf is the final status for the outcome of storing; it reads
	// what validation found, so only once validation is over.
	finalOf := func(out []entente.AddOutcome, err error) *entente.Status {
		f := *st
		f.Status, f.Pendings, f.PendingCount = entente.StatusComplete, nil, 0
		f.Failures = mergeFailures(failures, failedAt, invalid, invalidAt)
		if err != nil {
			s.log.Error("storing submitted objects failed", "status", st.ID, "collection", c.ID, "err", err)
			for _, o := range valid {
				d := entente.StatusDetail{ID: o.ID, Message: "the node could not store this object; send it again"}
				if v := o.Version(); !v.IsZero() {
					d.Version = stix.FormatTimestamp(v)
				}
				f.Failures = append(f.Failures, d)
			}
		} else {
			f.Successes = make([]entente.StatusDetail, len(out))
			for i, o := range out {
				f.Successes[i] = entente.StatusDetail{ID: o.ID, Version: stix.FormatTimestamp(o.Version)}
			}
		}
		f.SuccessCount, f.FailureCount = len(f.Successes), len(f.Failures)
		return &f
	}
	go func() {
		defer close(validated)
		valid = make([]*stix.Object, 0, len(decoded))
		for k, o := range decoded {
			if err := stix.Validate(o); err != nil {
				invalid = append(invalid, failure(index[k], objects[index[k]], o, err))
				invalidAt = append(invalidAt, index[k])
				continue
			}
			valid = append(valid, o)
		}
		likely = finalOf(outcomesOf(valid), nil)
		likely.Successes = detachDetails(likely.Successes)
		likely.Failures = detachDetails(likely.Failures)
		likelyRecord = statusRecord{Owner: p.KeyID, Status: likely}.appendRecord(make([]byte, 0, statusRecordSize(likely)))
	}()

	final := func(out []entente.AddOutcome, err error) *entente.Status {
		<-validated
		return finalOf(out, err)
	}
	// stored is the final status, built once by Status in the writer's
	// transaction and reused by Done (both run on the store's writer).
	var stored *entente.Status
	s.pending.mu.Lock()
	if s.pending.m == nil {
		s.pending.m = map[string]statusRecord{}
	}
	s.pending.m[st.ID] = statusRecord{Owner: p.KeyID, Status: st}
	if s.pending.done == nil {
		s.pending.done = map[string]chan struct{}{}
	}
	s.pending.done[st.ID] = make(chan struct{})
	s.pending.mu.Unlock()
	err = sub.Submit(ctx, store.Submission{
		Collection: c.ID,
		Objects:    decoded,
		Prepare: func() []*stix.Object {
			<-validated
			return valid
		},
		StatusID: st.ID,
		Status: func(out []entente.AddOutcome, err error) []byte {
			<-validated
			if err == nil && storedAsValid(out, valid) {
				stored = likely
				return likelyRecord
			}
			stored = final(out, err)
			return statusRecord{Owner: p.KeyID, Status: stored}.appendRecord(make([]byte, 0, statusRecordSize(stored)))
		},
		Done: func(out []entente.AddOutcome, err error) {
			if stored == nil || err != nil {
				// The commit failed after the status was built, or none was.
				stored = final(out, err)
			}
			s.report(stored)
			if err == nil {
				// Only queued: this runs on the store's writer.
				s.cfg.Stored(c.ID, valid, true)
			}
			s.pending.mu.Lock()
			if err != nil {
				// The status could not be stored with the objects: keep
				// the final one here, so the client learns of the failure.
				s.pending.m[st.ID] = statusRecord{Owner: p.KeyID, Status: stored}
			} else {
				delete(s.pending.m, st.ID)
				s.pending.keepComplete(st.ID, statusRecord{Owner: p.KeyID, Status: stored}, stored == likely)
			}
			s.pending.settle(st.ID)
			s.pending.mu.Unlock()
		},
	})
	if err != nil {
		s.pending.mu.Lock()
		delete(s.pending.m, st.ID)
		s.pending.settle(st.ID)
		s.pending.mu.Unlock()
		return nil, fmt.Errorf("submit %d objects to collection %s: %w", len(decoded), c.ID, err)
	}
	return st, nil
}
