package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
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
		s.exportIndexAdded(c.ID)
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
	s.dropExportIndex(c.ID)
	s.log.InfoContext(ctx, "object deleted", "collection", c.ID, "object", id, "versions", n, "key_id", p.KeyID)
	return nil
}

// release is the one path by which stored objects leave the node: every
// read method calls it. It resolves the collection, checks that p may
// read it, runs the query and returns what p may receive. For partner
// principals (other organisations) every page passes the sharing policy
// gate (agreements, TLP, residency, redaction) and each object version
// released is recorded in the audit log; the node's own roles (admin,
// analyst, sensor) read without it.
func (s *Service) release(ctx context.Context, p entente.Principal, collection string, q entente.ObjectQuery) (entente.Page, error) {
	return s.releaseTo(ctx, p, collection, q, nil)
}

// releaseTo is release for a caller that gathers many pages before
// anything leaves (an export): with sink not nil, the versions the gate
// releases to a partner are added to sink instead of being audited page
// by page, and the caller must append sink (store.PolicyStore's
// AppendRelease) before it sends anything.
func (s *Service) releaseTo(ctx context.Context, p entente.Principal, collection string, q entente.ObjectQuery, sink *audit.Release) (entente.Page, error) {
	c, err := s.collection(ctx, collection)
	if err != nil {
		return entente.Page{}, err
	}
	if !c.CanRead(p.Role) {
		return entente.Page{}, forbidden(p, "read", c)
	}
	q.Collection = c.ID
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	// A partner is another organisation: what it reads is egress, decided
	// by the policy gate (which needs the objects' JSON) and audited.
	partner := p.Role == entente.RolePartner
	metadataOnly := q.MetadataOnly
	if partner {
		q.MetadataOnly = false
	}
	var terms *gateTerms
	if partner {
		if terms, err = s.gateTerms(ctx, p); err != nil {
			return entente.Page{}, err
		}
	}
	if partner && sink == nil && q.Limit >= pipelineMin {
		page, err := s.releaseInParts(ctx, terms, c, q, metadataOnly)
		if err != nil || len(page.Entries) > 0 || !page.More {
			return page, err
		}
		q.Next = page.Next // the gate withheld all of it: scan on as below
	}
	for scanned := 0; ; scanned++ {
		page, err := s.st.QueryObjects(ctx, q)
		if err != nil {
			return entente.Page{}, queryError(c, err)
		}
		if !partner {
			return page, nil
		}
		if page, err = s.gate(ctx, terms, c, page, metadataOnly, sink); err != nil {
			return entente.Page{}, err
		}
		// Skip pages the gate emptied, within bounds.
		if len(page.Entries) > 0 || !page.More || scanned >= maxGateScan {
			return page, nil
		}
		q.Next = page.Next
	}
}

// queryError returns a store query's error as the client should see it:
// its own when it is the client's (a bad cursor, an unknown object),
// else wrapped with the collection.
func queryError(c entente.Collection, err error) error {
	if code := entente.ErrorCode(err); code == entente.EINVALID || code == entente.ENOTFOUND {
		return err
	}
	return fmt.Errorf("query collection %s: %w", c.ID, err)
}

// pipelineMin is the page size from which a partner's read is read,
// gated and audited in parts (releaseInParts).
const pipelineMin = 2000

// pipelinePart is the size of the parts releaseInParts reads a page in,
// and pipelineLast the size of the last part, smaller because its gating
// and audit follow the reading.
const (
	pipelinePart = 1250
	pipelineLast = 500
)

// pipelineCuts are where releaseInParts ends one audit record and begins
// the next: when no more than this many entries remain to be read. Each
// record is appended while the entries after it are read.
var pipelineCuts = []int{3000, pipelineLast}

// releaseInParts is a partner's read of a large page (q.Limit ≥
// pipelineMin) in parts: each part read from the store is passed through
// the gate, and the versions it releases packed into an audit record, in
// the background while the next part is read. The page's versions are
// recorded in a few releases (see pipelineCuts), each appended in the
// background, after the one before, while the parts after it are read;
// only the last part's gating and record follow the reading. Nothing
// leaves before every record is durable: if any part or append fails, it
// returns nothing. The page returned is the parts' gated entries, with
// the last part's More and Next.
func (s *Service) releaseInParts(ctx context.Context, t *gateTerms, c entente.Collection, q entente.ObjectQuery, metadataOnly bool) (entente.Page, error) {
	channel := "objects"
	if metadataOnly {
		channel = "manifest"
	}
	header := audit.Release{Time: s.now(), Actor: t.p.KeyID, Partner: t.p.Org, Detail: channel + " " + c.ID}
	type part struct {
		gated entente.Page
		err   error
		done  chan struct{} // closed when the part is gated and packed
	}
	// A record packs consecutive parts; it is appended once they are
	// packed and the record before it is appended.
	type record struct {
		packer audit.Packer
		parts  []*part
		err    error
		done   chan struct{} // closed when appended, or given up
	}
	appendRecord := func(r, prev *record) {
		defer close(r.done)
		for _, pt := range r.parts {
			if <-pt.done; pt.err != nil {
				return // the part's own error ends the request
			}
		}
		if prev != nil {
			<-prev.done
		}
		if r.packer.Len() > 0 {
			r.err = t.ps.AppendRelease(ctx, r.packer.Seal(header))
		}
	}
	var (
		parts    []*part
		records  []*record // appended or being appended, in order
		last     *record   // the latest of records
		cur      = &record{done: make(chan struct{})}
		out      entente.Page
		queryErr error
	)
	cuts := pipelineCuts
	remaining := q.Limit
	pq := q
	for remaining > 0 {
		cut := false
		for len(cuts) > 0 && remaining <= cuts[0] {
			cuts, cut = cuts[1:], true
		}
		if cut && len(cur.parts) > 0 {
			// What was read so far is recorded while the rest is.
			go appendRecord(cur, last)
			records, last = append(records, cur), cur
			cur = &record{done: make(chan struct{})}
		}
		pq.Limit = min(pipelinePart, remaining-pipelineLast)
		if remaining <= pipelineLast {
			pq.Limit = remaining
		}
		page, err := s.st.QueryObjects(ctx, pq)
		if err != nil {
			queryErr = queryError(c, err)
			break
		}
		pt := &part{done: make(chan struct{})}
		var prev chan struct{}
		if len(parts) > 0 {
			prev = parts[len(parts)-1].done
		}
		parts = append(parts, pt)
		rec := cur
		rec.parts = append(rec.parts, pt)
		go func() {
			defer close(pt.done)
			sink := header
			if pt.gated, pt.err = s.gate(ctx, t, c, page, metadataOnly, &sink); pt.err != nil {
				return
			}
			// The parts are packed in order, so the records list the
			// versions in the order they are sent.
			if prev != nil {
				<-prev
			}
			pt.err = rec.packer.Add(header, sink.Versions)
		}()
		out.More, out.Next = page.More, page.Next
		remaining -= len(page.Entries)
		if !page.More || len(page.Entries) == 0 {
			break
		}
		pq.Next = page.Next
	}
	// The last record is appended now; every part and record ends
	// before anything returns.
	appendRecord(cur, last)
	records = append(records, cur)
	var errs []error
	n := 0
	for _, pt := range parts {
		<-pt.done
		if pt.err != nil {
			errs = append(errs, pt.err)
		}
		n += len(pt.gated.Entries)
	}
	for _, r := range records {
		<-r.done
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if len(errs) > 0 {
		// Nothing leaves without its audit record.
		return entente.Page{}, fmt.Errorf("policy gate: %w", errors.Join(errs...))
	}
	if queryErr != nil {
		return entente.Page{}, queryErr
	}
	out.Entries = make([]entente.ObjectEntry, 0, n)
	for _, pt := range parts {
		out.Entries = append(out.Entries, pt.gated.Entries...)
	}
	return out, nil
}

// released yields every entry of collection that q selects, following
// the pages of release (so through the policy gate); an error ends the
// sequence.
func (s *Service) released(ctx context.Context, p entente.Principal, collection string, q entente.ObjectQuery) iter.Seq2[entente.ObjectEntry, error] {
	return s.releasedTo(ctx, p, collection, q, nil)
}

// releasedTo is released with the audit of every page gathered in sink
// (see releaseTo).
func (s *Service) releasedTo(ctx context.Context, p entente.Principal, collection string, q entente.ObjectQuery, sink *audit.Release) iter.Seq2[entente.ObjectEntry, error] {
	return func(yield func(entente.ObjectEntry, error) bool) {
		for {
			page, err := s.releaseTo(ctx, p, collection, q, sink)
			if err != nil {
				yield(entente.ObjectEntry{}, err)
				return
			}
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if !page.More {
				return
			}
			q.Next = page.Next
		}
	}
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
