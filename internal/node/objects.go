package node

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/taxii"
	"github.com/google/uuid"
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
func (s *Service) AddObjects(ctx context.Context, p entente.Principal, collection string, objects []json.RawMessage) (*taxii.Status, error) {
	requested := s.now()
	c, err := s.collection(ctx, collection)
	if err != nil {
		return nil, err
	}
	if !c.CanWrite(p.Role) {
		return nil, forbidden(p, "write to", c)
	}
	st := &taxii.Status{
		ID:               uuid.NewString(),
		Status:           taxii.StatusComplete,
		RequestTimestamp: taxii.Timestamp(requested),
		TotalCount:       len(objects),
	}
	valid, failures := validateObjects(objects)
	st.Failures = failures
	if len(valid) > 0 {
		outcomes, err := s.st.AddObjects(ctx, c.ID, valid)
		if err != nil {
			return nil, fmt.Errorf("add %d objects to collection %s: %w", len(valid), c.ID, err)
		}
		s.exports.Added(c)
		st.Successes = make([]taxii.StatusDetail, len(outcomes))
		for i, out := range outcomes {
			st.Successes[i] = taxii.StatusDetail{ID: out.ID, Version: taxii.Timestamp(out.Version)}
		}
		if p.Role == entente.RolePartner {
			// Pushed by another organisation: keep where it came from.
			if err := s.recordPushed(ctx, p, c.ID, outcomes, requested); err != nil {
				return nil, err
			}
		}
		// Pushed on at once; a partner's sightings are correlated at once.
		s.stored(c.ID, valid, p.Role == entente.RolePartner)
	}
	st.SuccessCount, st.FailureCount = len(st.Successes), len(st.Failures)
	rec, err := json.Marshal(statusRecord{Owner: p.KeyID, Status: st})
	if err != nil {
		return nil, fmt.Errorf("encode status %s: %w", st.ID, err)
	}
	if err := s.st.PutStatus(ctx, st.ID, rec); err != nil {
		return nil, fmt.Errorf("keep status %s (its %d objects were stored): %w", st.ID, st.SuccessCount, err)
	}
	s.report(st)
	s.log.DebugContext(ctx, "objects added", "collection", c.ID, "status", st.ID,
		"successes", st.SuccessCount, "failures", st.FailureCount, "key_id", p.KeyID)
	return st, nil
}

// statusRecord is how a status is kept: with the key that made the
// request, which alone (with admins) may read it.
type statusRecord struct {
	Owner  string        `json:"owner"`
	Status *taxii.Status `json:"status"`
}

// failure describes why object i of a request was refused, naming it by
// id (and version) when it has one.
func failure(i int, raw json.RawMessage, o *stix.Object, err error) taxii.StatusDetail {
	var d taxii.StatusDetail
	if o != nil {
		d.ID = o.ID
		if v := o.Version(); !v.IsZero() {
			d.Version = taxii.Timestamp(v)
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
func (s *Service) Status(ctx context.Context, p entente.Principal, id string) (*taxii.Status, error) {
	notFound := entente.Errorf(entente.ENOTFOUND, "there is no status %q", id)
	if rec, ok := s.pendingStatus(id); ok {
		if rec.Owner != p.KeyID && p.Role != entente.RoleAdmin {
			return nil, notFound
		}
		return rec.Status, nil
	}
	body, err := s.st.Status(ctx, id)
	if err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			return nil, notFound
		}
		return nil, fmt.Errorf("read status %s: %w", id, err)
	}
	var rec statusRecord
	if err := json.Unmarshal(body, &rec); err != nil || rec.Status == nil {
		return nil, fmt.Errorf("read status %s: stored record is corrupt: %v", id, err)
	}
	if rec.Owner != p.KeyID && p.Role != entente.RoleAdmin {
		return nil, notFound
	}
	return rec.Status, nil
}

// Objects returns one page of the objects of a collection that match f
// (Get Objects).
func (s *Service) Objects(ctx context.Context, p entente.Principal, collection string, f taxii.Filters) (entente.Page, error) {
	return s.release(ctx, p, collection, f.Query(collection))
}

// Manifest returns one page of the manifest entries (metadata only) of a
// collection that match f (Get Object Manifests).
func (s *Service) Manifest(ctx context.Context, p entente.Principal, collection string, f taxii.Filters) (entente.Page, error) {
	q := f.Query(collection)
	q.MetadataOnly = true
	return s.release(ctx, p, collection, q)
}

// Object returns one page of the versions of object id that match f (Get
// An Object). ENOTFOUND if the collection holds no such version.
func (s *Service) Object(ctx context.Context, p entente.Principal, collection, id string, f taxii.Filters) (entente.Page, error) {
	q := f.Query(collection)
	q.IDs, q.Types = []string{id}, nil
	page, err := s.release(ctx, p, collection, q)
	if err == nil && len(page.Entries) == 0 && f.Next == "" {
		return page, entente.Errorf(entente.ENOTFOUND, "collection %s holds no object %q matching the request", collection, id)
	}
	return page, err
}

// Versions returns one page of the versions of object id (Get Object
// Versions), metadata only. ENOTFOUND if the collection holds none.
func (s *Service) Versions(ctx context.Context, p entente.Principal, collection, id string, f taxii.Filters) (entente.Page, error) {
	q := f.Query(collection)
	q.IDs, q.Types = []string{id}, nil
	q.Versions = entente.VersionFilter{All: true}
	q.MetadataOnly = true
	page, err := s.release(ctx, p, collection, q)
	if err == nil && len(page.Entries) == 0 && f.Next == "" {
		return page, entente.Errorf(entente.ENOTFOUND, "collection %s holds no object %q matching the request", collection, id)
	}
	return page, err
}

// DeleteObject deletes the versions of object id that f's match[version]
// and match[spec_version] select; without match[version], every version.
// EFORBIDDEN if p may not write to the collection; ENOTFOUND if nothing
// matched.
func (s *Service) DeleteObject(ctx context.Context, p entente.Principal, collection, id string, f taxii.Filters) error {
	c, err := s.collection(ctx, collection)
	if err != nil {
		return err
	}
	if !c.CanWrite(p.Role) {
		return forbidden(p, "delete from", c)
	}
	versions := f.Versions
	if versions.IsZero() {
		versions = entente.VersionFilter{All: true}
	}
	n, err := s.st.DeleteObjects(ctx, c.ID, id, versions, f.SpecVersions)
	if err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			return entente.Errorf(entente.ENOTFOUND, "collection %s holds no object %q matching the request", c.ID, id)
		}
		return fmt.Errorf("delete %s from collection %s: %w", id, c.ID, err)
	}
	s.exports.Dropped(c.ID)
	s.log.InfoContext(ctx, "object deleted", "collection", c.ID, "object", id, "versions", n, "key_id", p.KeyID)
	// What was released from it may not be served again from a cache.
	return s.termsChanged(ctx, "object "+id+" deleted from collection "+c.ID)
}

// DateAddedRange returns the first and last date_added of a page's
// entries (for the X-TAXII-Date-Added-First and -Last headers); ok is
// false for an empty page.
func DateAddedRange(page entente.Page) (first, last time.Time, ok bool) {
	for i, e := range page.Entries {
		if i == 0 || e.DateAdded.Before(first) {
			first = e.DateAdded
		}
		if i == 0 || e.DateAdded.After(last) {
			last = e.DateAdded
		}
	}
	return first, last, len(page.Entries) > 0
}
