package node

import (
	"context"
	"time"

	"github.com/entente-cti/entente"
)

// Objects returns one page of the objects of a collection that match f
// (Get Objects).
func (s *Service) Objects(ctx context.Context, p entente.Principal, collection string, q entente.ObjectQuery) (entente.Page, error) {
	return s.release(ctx, p, collection, q)
}

// Manifest returns one page of the manifest entries (metadata only) of a
// collection that match f (Get Object Manifests).
func (s *Service) Manifest(ctx context.Context, p entente.Principal, collection string, q entente.ObjectQuery) (entente.Page, error) {
	q.MetadataOnly = true
	return s.release(ctx, p, collection, q)
}

// Object returns one page of the versions of object id that match f (Get
// An Object). ENOTFOUND if the collection holds no such version.
func (s *Service) Object(ctx context.Context, p entente.Principal, collection, id string, q entente.ObjectQuery) (entente.Page, error) {
	q.IDs, q.Types = []string{id}, nil
	page, err := s.release(ctx, p, collection, q)
	if err == nil && len(page.Entries) == 0 && q.Next == "" {
		return page, entente.Errorf(entente.ENOTFOUND, "collection %s holds no object %q matching the request", collection, id)
	}
	return page, err
}

// Versions returns one page of the versions of object id (Get Object
// Versions), metadata only. ENOTFOUND if the collection holds none.
func (s *Service) Versions(ctx context.Context, p entente.Principal, collection, id string, q entente.ObjectQuery) (entente.Page, error) {
	q.IDs, q.Types = []string{id}, nil
	q.Versions = entente.VersionFilter{All: true}
	q.MetadataOnly = true
	page, err := s.release(ctx, p, collection, q)
	if err == nil && len(page.Entries) == 0 && q.Next == "" {
		return page, entente.Errorf(entente.ENOTFOUND, "collection %s holds no object %q matching the request", collection, id)
	}
	return page, err
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
