package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/federation"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// AddObjects validates objects (each the JSON of one STIX object, as a
// client sent it) and stores the valid ones in collection, all in one
// store transaction: either every valid object is stored or none is.
// Invalid objects are listed in the status's failures with the reason;
// they do not prevent the valid ones from being stored. A version the
// collection already holds counts as a success (adding is idempotent).
//
// The status is complete when AddObjects returns (the node adds
// synchronously) and is kept for [Service.Status]. If the status cannot
// be kept after the objects were stored, the error is returned and the
// client may retry: adding the same versions again is harmless.
//
// ENOTFOUND if the collection does not exist; EFORBIDDEN if p may not
// write to it. This is the one path by which objects enter a node, for
// TAXII clients and the offline CLI alike.
func (s *Service) AddObjects(ctx context.Context, p entente.Principal, collection string, objects []json.RawMessage) (*entente.Status, error) {
	return s.AddObjectsWith(ctx, p, collection, objects, nil)
}

// AddObjectsWith is AddObjects with alert lifecycles (correlation's, for
// the alert objects among objects) made durable with the objects. An
// addition by the node itself is one commit of the store when the store
// can (objects, status and states: [store.OwnAdder]); otherwise the
// states are written after the objects, then the status.
func (s *Service) AddObjectsWith(ctx context.Context, p entente.Principal, collection string, objects []json.RawMessage, states []store.AlertState) (*entente.Status, error) {
	requested := s.now()
	c, err := s.cfg.Collection(ctx, collection)
	if err != nil {
		return nil, err
	}
	if !c.CanWrite(p.Role) {
		return nil, forbidden(p, "write to", c)
	}
	st := &entente.Status{
		ID:               uuid.NewString(),
		Status:           entente.StatusComplete,
		RequestTimestamp: stix.FormatTimestamp(requested),
		TotalCount:       len(objects),
	}
	valid, failures := validateObjects(objects)
	if s.cfg.Admit != nil && len(valid) > 0 {
		if errs := s.cfg.Admit(ctx, p, valid); errs != nil {
			kept := valid[:0:0]
			for i, o := range valid {
				if i < len(errs) && errs[i] != nil {
					d := entente.StatusDetail{ID: o.ID, Message: errs[i].Error()}
					if v := o.Version(); !v.IsZero() {
						d.Version = stix.FormatTimestamp(v)
					}
					failures = append(failures, d)
					continue
				}
				kept = append(kept, o)
			}
			valid = kept
		}
	}
	st.Failures = failures
	statusOf := func(out []entente.AddOutcome) []byte {
		st.Successes = make([]entente.StatusDetail, len(out))
		for i, o := range out {
			st.Successes[i] = entente.StatusDetail{ID: o.ID, Version: stix.FormatTimestamp(o.Version)}
		}
		st.SuccessCount, st.FailureCount = len(st.Successes), len(st.Failures)
		return statusRecord{Owner: p.KeyID, Status: st}.appendRecord(make([]byte, 0, statusRecordSize(st)))
	}
	ra, oneCommit := s.st.(store.ReceivedAdder)
	oneCommit = oneCommit && p.Role == entente.RolePartner && len(valid) > 0
	oa, own := s.st.(store.OwnAdder)
	own = own && !oneCommit && p.Role != entente.RolePartner && len(valid) > 0
	if own {
		// The node's own addition: objects, status and the alert
		// lifecycles that go with them in one durable commit, not three.
		if _, err := oa.AddOwn(ctx, store.Own{Collection: c.ID, Objects: valid, StatusID: st.ID, Status: statusOf, AlertStates: states}); err != nil {
			return nil, fmt.Errorf("add %d objects to collection %s: %w", len(valid), c.ID, err)
		}
		s.cfg.Added(c)
		s.cfg.Stored(c.ID, valid, false)
	} else if oneCommit {
		// A partner's push: objects, provenance and status in one durable
		// commit, so no crash leaves objects whose origin is unknown.
		_, err := ra.AddReceived(ctx, store.Received{Collection: c.ID, Objects: valid, Origin: pushedFrom(p), Peer: "key:" + p.KeyID,
			ReceivedAt: requested, StatusID: st.ID, Status: statusOf})
		if err != nil {
			return nil, fmt.Errorf("add %d objects to collection %s: %w", len(valid), c.ID, err)
		}
		s.cfg.Added(c)
		s.cfg.Stored(c.ID, valid, true)
	} else if len(valid) > 0 {
		outcomes, err := s.st.AddObjects(ctx, c.ID, valid)
		if err != nil {
			return nil, fmt.Errorf("add %d objects to collection %s: %w", len(valid), c.ID, err)
		}
		s.cfg.Added(c)
		st.Successes = make([]entente.StatusDetail, len(outcomes))
		for i, out := range outcomes {
			st.Successes[i] = entente.StatusDetail{ID: out.ID, Version: stix.FormatTimestamp(out.Version)}
		}
		if p.Role == entente.RolePartner {
			// Pushed by another organisation: keep where it came from.
			if err := s.recordPushed(ctx, p, c.ID, outcomes, requested); err != nil {
				return nil, err
			}
		}
		// Pushed on at once; a partner's sightings are correlated at once.
		s.cfg.Stored(c.ID, valid, p.Role == entente.RolePartner)
	}
	if !own && len(states) > 0 {
		as, ok := s.st.(store.AlertStore)
		if !ok {
			return nil, fmt.Errorf("the store %T keeps no alert lifecycles", s.st)
		}
		for _, a := range states {
			if err := as.PutAlertState(ctx, a); err != nil {
				return nil, fmt.Errorf("record lifecycle of alert %s (its objects were stored): %w", a.ID, err)
			}
		}
	}
	st.SuccessCount, st.FailureCount = len(st.Successes), len(st.Failures)
	if !oneCommit && !own {
		rec := statusRecord{Owner: p.KeyID, Status: st}.appendRecord(make([]byte, 0, statusRecordSize(st)))
		if err := s.st.PutStatus(ctx, st.ID, rec); err != nil {
			return nil, fmt.Errorf("keep status %s (its %d objects were stored): %w", st.ID, st.SuccessCount, err)
		}
	}
	s.report(st)
	s.log.DebugContext(ctx, "objects added", "collection", c.ID, "status", st.ID,
		"successes", st.SuccessCount, "failures", st.FailureCount, "key_id", p.KeyID)
	return st, nil
}

// statusRecord is how a status is kept: with the key that made the
// request, which alone (with admins) may read it.
type statusRecord struct {
	Owner  string          `json:"owner"`
	Status *entente.Status `json:"status"`
}

// failure describes why object i of a request was refused, naming it by
// id (and version) when it has one.
func failure(i int, raw json.RawMessage, o *stix.Object, err error) entente.StatusDetail {
	var d entente.StatusDetail
	if o != nil {
		d.ID = o.ID
		if v := o.Version(); !v.IsZero() {
			d.Version = stix.FormatTimestamp(v)
		}
	} else {
		// The object did not decode; name it as far as it can be read.
		var peek struct {
			ID       any `json:"id"`
			Modified any `json:"modified"`
			Created  any `json:"created"`
		}
		_ = json.Unmarshal(raw, &peek)
		d.ID, _ = peek.ID.(string)
		if d.Version, _ = peek.Modified.(string); d.Version == "" {
			d.Version, _ = peek.Created.(string)
		}
	}
	msg := fmt.Sprintf("object %d: %v", i, err)
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	d.Message = msg
	return d
}

// Status returns the status of an Add Objects request. Only the key that
// made the request, and admins, may see it; to others it does not exist
// (ENOTFOUND).
//
// A status still pending is answered once it is complete, or after
// statusWait if it is not by then (or when ctx ends): a client polling it
// learns of its completion when it happens (once its objects are durable),
// rather than one polling interval after. A client posting envelopes one
// after another, then polling their statuses (taxii-load: every 50 ms),
// otherwise found the last ones pending when the node's writer was a few
// milliseconds behind, and waited its whole interval to ask again.
func (s *Service) Status(ctx context.Context, p entente.Principal, id string) (*entente.Status, error) {
	notFound := entente.Errorf(entente.ENOTFOUND, "there is no status %q", id)
	if rec, done, ok := s.pendingStatus(id); ok {
		if rec.Owner != p.KeyID && p.Role != entente.RoleAdmin {
			return nil, notFound
		}
		if done == nil {
			return rec.Status, nil
		}
		t := time.NewTimer(statusWait)
		select {
		case <-done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		// Complete now, or still pending: as it is now (a complete
		// status no longer among the recent ones is read from the
		// store below).
		if rec, _, ok := s.pendingStatus(id); ok {
			return rec.Status, nil
		}
	}
	body, err := s.st.Status(ctx, id)
	if err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			return nil, notFound
		}
		return nil, fmt.Errorf("read status %s: %w", id, err)
	}
	rec, err := decodeRecord(body)
	if err != nil || rec.Status == nil {
		return nil, fmt.Errorf("read status %s: stored record is corrupt: %v", id, err)
	}
	if rec.Owner != p.KeyID && p.Role != entente.RoleAdmin {
		return nil, notFound
	}
	return rec.Status, nil
}

// DeleteObject deletes the versions of object id that versions and
// specVersions select; when versions is zero, every version.
// EFORBIDDEN if p may not write to the collection; ENOTFOUND if nothing
// matched.
func (s *Service) DeleteObject(ctx context.Context, p entente.Principal, collection, id string, versions entente.VersionFilter, specVersions []string) error {
	c, err := s.cfg.Collection(ctx, collection)
	if err != nil {
		return err
	}
	if !c.CanWrite(p.Role) {
		return forbidden(p, "delete from", c)
	}
	if versions.IsZero() {
		versions = entente.VersionFilter{All: true}
	}
	n, err := s.st.DeleteObjects(ctx, c.ID, id, versions, specVersions)
	if err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			return entente.Errorf(entente.ENOTFOUND, "collection %s holds no object %q matching the request", c.ID, id)
		}
		return fmt.Errorf("delete %s from collection %s: %w", id, c.ID, err)
	}
	s.log.InfoContext(ctx, "object deleted", "collection", c.ID, "object", id, "versions", n, "key_id", p.KeyID)
	// What was released from it may not be served again from a cache.
	return s.cfg.Deleted(ctx, c, id)
}

// Receive stores objects received from a peer (federation.Receiver): the objects are stored in the
// local collection, each new version with where it came from, and passed
// on (correlation, pushes).
func (s *Service) Receive(ctx context.Context, collection string, objs []*stix.Object, from federation.Origin) (int, error) {
	ps, err := s.policyStore()
	if err != nil {
		return 0, err
	}
	c, err := s.cfg.Collection(ctx, collection)
	if err != nil {
		return 0, err
	}
	collection = c.ID
	if ra, ok := s.st.(store.ReceivedAdder); ok {
		// Objects and provenance in one durable commit.
		r := store.Received{Collection: collection, Objects: objs, Origin: from.Org, Peer: from.Peer, ReceivedAt: from.At}
		outcomes, err := ra.AddReceived(ctx, r)
		if err != nil {
			return 0, fmt.Errorf("store %d objects from peer %s: %w", len(objs), from.Peer, err)
		}
		s.cfg.Added(c)
		s.cfg.Stored(collection, objs, true)
		return len(r.Provenance(outcomes)), nil
	}
	outcomes, err := s.st.AddObjects(ctx, collection, objs)
	if err != nil {
		return 0, err
	}
	prov := make([]store.Provenance, 0, len(outcomes))
	for _, o := range outcomes {
		if o.Duplicate {
			continue // an existing version keeps its provenance
		}
		prov = append(prov, store.Provenance{Collection: collection, ObjectID: o.ID, Version: o.Version,
			Origin: from.Org, Peer: from.Peer, ReceivedAt: from.At})
	}
	if err := ps.SetProvenance(ctx, prov); err != nil {
		return 0, fmt.Errorf("record provenance of %d objects from peer %s: %w", len(prov), from.Peer, err)
	}
	s.cfg.Added(c)
	// Correlated and passed on at once (sightings, push peers).
	s.cfg.Stored(collection, objs, true)
	return len(prov), nil
}

// recordPushed records the provenance of the new object versions a
// partner pushed: its organisation, through its key.
func (s *Service) recordPushed(ctx context.Context, p entente.Principal, collection string, outcomes []entente.AddOutcome, at time.Time) error {
	ps, err := s.policyStore()
	if err != nil {
		return err
	}
	from := pushedFrom(p)
	prov := make([]store.Provenance, 0, len(outcomes))
	for _, o := range outcomes {
		if !o.Duplicate {
			prov = append(prov, store.Provenance{Collection: collection, ObjectID: o.ID, Version: o.Version, Origin: from, Peer: "key:" + p.KeyID, ReceivedAt: at})
		}
	}
	if err := ps.SetProvenance(ctx, prov); err != nil {
		return fmt.Errorf("record provenance of %d objects pushed by %s: %w", len(prov), from, err)
	}
	return nil
}

// pushedFrom is the origin recorded for what a partner's key pushes: its
// organisation, else the key.
func pushedFrom(p entente.Principal) string {
	if p.Org == "" {
		return "key:" + p.KeyID
	}
	return p.Org
}
