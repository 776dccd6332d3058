package node

import (
	"context"
	"fmt"
	"iter"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/egress"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/store"
)

// selfParty returns the node's own organisation as a policy party (the
// gate's Config.Self).
func (s *Service) selfParty(ctx context.Context) (policy.Party, error) {
	id, err := s.Identity(ctx)
	if err != nil {
		if entente.ErrorCode(err) != entente.ENOTFOUND || s.cfg.Org == "" {
			return policy.Party{}, err
		}
		// A node run without init (tests): its organisation has no country.
		id = Identity{ID: s.cfg.Org}
	}
	return policy.Party{ID: id.ID, Name: id.Name, Country: id.Country, Sector: id.Sector}, nil
}

// release is one page of one collection for p, through the gate (see
// [egress.Gate.Release]), on the channel named ("" for a TAXII read).
func (s *Service) release(ctx context.Context, p entente.Principal, collection string, q entente.ObjectQuery) (entente.Page, error) {
	return s.releaseOn(ctx, p, "", collection, q)
}

// releaseOn is release on a named channel (push, webhook…).
func (s *Service) releaseOn(ctx context.Context, p entente.Principal, channel, collection string, q entente.ObjectQuery) (entente.Page, error) {
	r, err := s.gate.Release(ctx, p, egress.Query{Channel: channel, Collection: collection, Objects: q})
	if err != nil {
		return entente.Page{}, err
	}
	return r.Page, nil
}

// released yields every entry of collection that q selects, through the
// gate; an error ends the sequence.
func (s *Service) released(ctx context.Context, p entente.Principal, collection string, q entente.ObjectQuery) iter.Seq2[entente.ObjectEntry, error] {
	return s.gate.All(ctx, p, egress.Query{Collection: collection, Objects: q})
}

// termsChanged tells the gate that something that bears on what may
// leave changed (a key, a collection, a deletion).
func (s *Service) termsChanged(ctx context.Context, why string) error {
	err := s.gate.TermsChanged(ctx, why)
	s.blindChanged("")
	return err
}

// policyStore returns the store's policy storage. Every backend has it.
func (s *Service) policyStore() (store.PolicyStore, error) {
	ps, ok := s.st.(store.PolicyStore)
	if !ok {
		return nil, fmt.Errorf("the store %T keeps no sharing policy", s.st)
	}
	return ps, nil
}
