package node

import (
	"cmp"
	"context"
	"fmt"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/egress"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/store"
)

// AuditRecord is one entry of the node's audit log (see [audit.Record]).
type AuditRecord = audit.Record

// AuditQuery selects audit records (see [audit.Query]).
type AuditQuery = audit.Query

// AuditPage is one page of audit records.
type AuditPage = audit.Page

// Audit actions.
const (
	AuditEgress = audit.Egress
	AuditAdmin  = audit.Admin
)

// auditAdmin appends the audit record of an administrative change by p
// (see [egress.Gate.AuditAdmin]).
func (s *Service) auditAdmin(ctx context.Context, p entente.Principal, rule, partner, detail string, refused error) error {
	return s.gate.AuditAdmin(ctx, p, rule, partner, detail, refused)
}

// joinAudit returns err, or the audit failure when recording it failed.
func joinAudit(err, auditErr error) error {
	if auditErr != nil {
		return fmt.Errorf("%w (and it could not be audited: %v)", err, auditErr)
	}
	return err
}

// PutPartner records (or updates) a partner organisation (see
// [egress.Gate.PutPartner]).
func (s *Service) PutPartner(ctx context.Context, p entente.Principal, party policy.Party) error {
	if err := safety.CheckPartner(partnerEntries(party)); err != nil {
		return entente.Errorf(entente.EINVALID, "partner: constituency: %v", err)
	}
	if err := s.gate.PutPartner(ctx, p, party); err != nil {
		return err
	}
	s.fed.TermsChanged()
	s.blindChanged("")
	return s.ProtectPartners(ctx)
}

// RemovePartner removes a partner organisation (see
// [egress.Gate.RemovePartner]).
func (s *Service) RemovePartner(ctx context.Context, p entente.Principal, id string) error {
	if err := s.gate.RemovePartner(ctx, p, id); err != nil {
		return err
	}
	s.fed.TermsChanged()
	s.blindChanged("")
	return s.ProtectPartners(ctx)
}

// ProtectPartners has the safety net protect the constituencies the
// node's partners declared (policy.Party.Constituency), as recorded now:
// no export, snapshot, match or alert of the node acts on a partner's
// networks, addresses or domains, whoever reports them. serve calls it
// at start; recording or removing a partner calls it again.
func (s *Service) ProtectPartners(ctx context.Context) error {
	ps, ok := s.st.(store.PolicyStore)
	if !ok || s.cfg.Safety == nil {
		return nil
	}
	s.protectMu.Lock()
	defer s.protectMu.Unlock()
	parties, err := ps.Parties(ctx)
	if err != nil {
		return fmt.Errorf("read partners' constituencies: %w", err)
	}
	var entries []safety.Entry
	for _, p := range parties {
		es := partnerEntries(p)
		if err := safety.CheckPartner(es); err != nil {
			// Recorded before the check existed: the others still count.
			s.log.WarnContext(ctx, "a partner's declared constituency is not protected", "partner", p.ID, "err", err)
			continue
		}
		entries = append(entries, es...)
	}
	if err := s.cfg.Safety.SetPartners(entries); err != nil {
		return fmt.Errorf("protect partners' constituencies: %w", err)
	}
	return nil
}

// Partners lists the partner organisations (admins and analysts).
func (s *Service) Partners(ctx context.Context, p entente.Principal) ([]policy.Party, error) {
	return s.gate.Partners(ctx, p)
}

// PutAgreement records the agreement with a partner (see
// [egress.Gate.PutAgreement]).
func (s *Service) PutAgreement(ctx context.Context, p entente.Principal, a policy.Agreement) (policy.Agreement, error) {
	a, err := s.gate.PutAgreement(ctx, p, a)
	if err == nil {
		s.fed.TermsChanged()
		s.blindChanged("")
	}
	return a, err
}

// Agreement returns the agreement with a partner (admins and analysts).
// ENOTFOUND if there is none.
func (s *Service) Agreement(ctx context.Context, p entente.Principal, partner string) (policy.Agreement, error) {
	return s.gate.Agreement(ctx, p, partner)
}

// Agreements lists every agreement (admins and analysts).
func (s *Service) Agreements(ctx context.Context, p entente.Principal) ([]policy.Agreement, error) {
	return s.gate.Agreements(ctx, p)
}

// DeleteAgreement ends the agreement with a partner (see
// [egress.Gate.DeleteAgreement]).
func (s *Service) DeleteAgreement(ctx context.Context, p entente.Principal, partner string) error {
	if err := s.gate.DeleteAgreement(ctx, p, partner); err != nil {
		return err
	}
	s.fed.TermsChanged()
	s.blindChanged("")
	return nil
}

// PreviewRequest asks what a partner would receive now (see
// [egress.Preview]).
type PreviewRequest = egress.Preview

// PreviewPage is one page of a preview, or its summary.
type PreviewPage = egress.PreviewPage

// PreviewChange is an object whose release a proposed agreement changes.
type PreviewChange = egress.PreviewChange

// PreviewAgreement answers what partner would receive from the node's
// collections now, with the rule that allows or withholds each object
// and the content granular markings would remove (admins and analysts):
// a page of explanations, or a summary. Nothing leaves the node and
// nothing is audited as egress.
func (s *Service) PreviewAgreement(ctx context.Context, p entente.Principal, partner string, req PreviewRequest) (*PreviewPage, error) {
	if p.Role != entente.RoleAdmin && p.Role != entente.RoleAnalyst {
		return nil, entente.Errorf(entente.EFORBIDDEN, "previewing agreements requires the admin or analyst role; this key's role is %q", p.Role)
	}
	r, err := s.gate.Release(ctx, entente.Principal{KeyID: "preview", Org: partner, Role: entente.RolePartner}, egress.Query{Preview: &req})
	if err != nil {
		return nil, err
	}
	return r.Preview, nil
}

// PreviewProposedAgreement answers what a proposed agreement, not yet
// saved, would release to its partner, and which objects it would
// release or withhold that the agreement on record does not (admin
// only: the one who may save it). The agreement is checked as
// PutAgreement checks it; EINVALID names the fields at fault.
func (s *Service) PreviewProposedAgreement(ctx context.Context, p entente.Principal, a policy.Agreement, req PreviewRequest) (*PreviewPage, error) {
	a, err := s.gate.CheckAgreement(ctx, p, a)
	if err != nil {
		return nil, err
	}
	req.Proposed = &a
	r, err := s.gate.Release(ctx, entente.Principal{KeyID: "preview", Org: a.Partner.ID, Role: entente.RolePartner}, egress.Query{Preview: &req})
	if err != nil {
		return nil, err
	}
	return r.Preview, nil
}

// Preview lists what partner would receive (see [Service.PreviewAgreement]):
// at most limit explanations (all when limit <= 0).
func (s *Service) Preview(ctx context.Context, p entente.Principal, partner string, limit int) ([]policy.Explanation, error) {
	var out []policy.Explanation
	req := PreviewRequest{}
	for {
		if limit > 0 {
			req.Limit = limit - len(out)
		}
		page, err := s.PreviewAgreement(ctx, p, partner, req)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Explanations...)
		if page.Next == "" || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		req.Next = page.Next
	}
}

// QueryAudit returns one page of the audit log (admin only).
func (s *Service) QueryAudit(ctx context.Context, p entente.Principal, q AuditQuery) (AuditPage, error) {
	if p.Role != entente.RoleAdmin {
		return AuditPage{}, entente.Errorf(entente.EFORBIDDEN, "reading the audit log requires the admin role; this key's role is %q", p.Role)
	}
	ps, err := s.policyStore()
	if err != nil {
		return AuditPage{}, err
	}
	return ps.QueryAudit(ctx, q)
}

// PreviewSummary counts what a partner would receive (see
// [egress.PreviewSummary]).
type PreviewSummary = egress.PreviewSummary

// PreviewCounts are objects released and withheld.
type PreviewCounts = egress.Counts

// partnerEntries are the entries of party's declared constituency.
func partnerEntries(party policy.Party) []safety.Entry {
	es := make([]safety.Entry, 0, len(party.Constituency))
	for _, e := range party.Constituency {
		es = append(es, safety.Entry{Value: e, Where: "partner " + cmp.Or(party.Name, party.ID)})
	}
	return es
}
