package node

import (
	"context"
	"fmt"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// AuditRecord is one entry of the node's audit log (see
// [audit.Record]).
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

// auditAdmin appends the audit record of an administrative change by p.
// rule names the change ("agreement.put"); a refused change is recorded
// too, with its error. A failure to record is returned: a change that
// cannot be audited must not be reported as done.
func (s *Service) auditAdmin(ctx context.Context, p entente.Principal, rule, partner, detail string, refused error) error {
	ps, err := s.policyStore()
	if err != nil {
		return err
	}
	if refused != nil {
		rule += ".refused"
		detail += ": " + refused.Error()
	}
	rec := audit.Record{Time: s.now(), Actor: actorOf(p), Action: audit.Admin, Partner: partner, Rule: rule, Detail: detail}
	if err := ps.AppendAudit(ctx, []audit.Record{rec}); err != nil {
		return fmt.Errorf("audit %s: %w", rule, err)
	}
	return nil
}

// actorOf names a principal in the audit log: key id and organisation.
func actorOf(p entente.Principal) string {
	if p.Org == "" {
		return p.KeyID
	}
	return p.KeyID + " (" + p.Org + ")"
}

// PutPartner records (or updates) an organisation the node shares with:
// its identity id, name, country and sector (admin only). EINVALID names
// the field at fault.
func (s *Service) PutPartner(ctx context.Context, p entente.Principal, party policy.Party) error {
	if err := requireAdmin(p, "managing partners"); err != nil {
		return err
	}
	ps, err := s.policyStore()
	if err != nil {
		return err
	}
	if err := party.Validate(); err != nil {
		err = entente.Errorf(entente.EINVALID, "partner: %v", err)
		return joinAudit(err, s.auditAdmin(ctx, p, "partner.put", party.ID, "name "+party.Name, err))
	}
	if err := ps.PutParty(ctx, party); err != nil {
		return fmt.Errorf("put partner %s: %w", party.ID, err)
	}
	s.log.InfoContext(ctx, "partner recorded", "partner", party.ID, "country", party.Country, "by", p.KeyID)
	return s.auditAdmin(ctx, p, "partner.put", party.ID, fmt.Sprintf("name %q country %s sector %q", party.Name, party.Country, party.Sector), nil)
}

// joinAudit returns err, or the audit failure when recording it failed.
func joinAudit(err, auditErr error) error {
	if auditErr != nil {
		return fmt.Errorf("%w (and it could not be audited: %v)", err, auditErr)
	}
	return err
}

// Partners lists the organisations the node shares with (admin only).
func (s *Service) Partners(ctx context.Context, p entente.Principal) ([]policy.Party, error) {
	if err := requireAdmin(p, "listing partners"); err != nil {
		return nil, err
	}
	ps, err := s.policyStore()
	if err != nil {
		return nil, err
	}
	return ps.Parties(ctx)
}

// PutAgreement records the agreement with a partner (admin only),
// replacing any previous one. The partner must have been recorded with
// [Service.PutPartner]; collections may be named by id or alias and are
// stored by id. The agreement is checked with [policy.Agreement.Validate]
// against the node's collections: EINVALID names each field at fault.
// Refused agreements are recorded in the audit log too.
func (s *Service) PutAgreement(ctx context.Context, p entente.Principal, a policy.Agreement) (policy.Agreement, error) {
	if err := requireAdmin(p, "managing agreements"); err != nil {
		return a, err
	}
	ps, err := s.policyStore()
	if err != nil {
		return a, err
	}
	refuse := func(err error) (policy.Agreement, error) {
		return a, joinAudit(err, s.auditAdmin(ctx, p, "agreement.put", a.Partner.ID, "agreement "+a.ID, err))
	}
	party, err := ps.Party(ctx, a.Partner.ID)
	if err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			return refuse(entente.Errorf(entente.EINVALID, "partner: %q is not a known partner (add it first: entente partner add)", a.Partner.ID))
		}
		return a, fmt.Errorf("read partner %s: %w", a.Partner.ID, err)
	}
	a.Partner = party
	if a.ID == "" {
		a.ID = "agreement-with-" + party.ID
	}
	colls, err := s.st.Collections(ctx)
	if err != nil {
		return a, fmt.Errorf("list collections: %w", err)
	}
	var known policy.Catalog
	for _, c := range colls {
		known.Collections = append(known.Collections, c.ID)
	}
	for i, name := range a.Collections {
		for _, c := range colls {
			if name != "" && (c.Alias == name || c.ID == name) {
				a.Collections[i] = c.ID
			}
		}
	}
	if err := a.Validate(known); err != nil {
		return refuse(entente.Errorf(entente.EINVALID, "%v", err))
	}
	if err := ps.PutAgreement(ctx, a); err != nil {
		return a, fmt.Errorf("put agreement %s: %w", a.ID, err)
	}
	s.invalidatePushTargets()
	s.log.InfoContext(ctx, "agreement recorded", "agreement", a.ID, "partner", party.ID, "max_tlp", a.MaxTLP, "by", p.KeyID)
	detail := fmt.Sprintf("agreement %s collections %v types %v max_tlp %s reshare %t redact %+v valid %s..%s",
		a.ID, a.Collections, a.ObjectTypes, a.MaxTLP, a.AllowReshare, a.Redact, fmtWhen(a.ValidFrom), fmtWhen(a.ValidUntil))
	return a, s.auditAdmin(ctx, p, "agreement.put", party.ID, detail, nil)
}

func fmtWhen(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// Agreement returns the agreement with a partner (admin only). ENOTFOUND
// if there is none.
func (s *Service) Agreement(ctx context.Context, p entente.Principal, partner string) (policy.Agreement, error) {
	if err := requireAdmin(p, "reading agreements"); err != nil {
		return policy.Agreement{}, err
	}
	ps, err := s.policyStore()
	if err != nil {
		return policy.Agreement{}, err
	}
	return ps.Agreement(ctx, partner)
}

// Agreements lists every agreement (admin only).
func (s *Service) Agreements(ctx context.Context, p entente.Principal) ([]policy.Agreement, error) {
	if err := requireAdmin(p, "listing agreements"); err != nil {
		return nil, err
	}
	ps, err := s.policyStore()
	if err != nil {
		return nil, err
	}
	return ps.Agreements(ctx)
}

// DeleteAgreement ends the agreement with a partner (admin only): from
// then on the partner receives only the node's own CLEAR objects.
// ENOTFOUND if there is none.
func (s *Service) DeleteAgreement(ctx context.Context, p entente.Principal, partner string) error {
	if err := requireAdmin(p, "managing agreements"); err != nil {
		return err
	}
	ps, err := s.policyStore()
	if err != nil {
		return err
	}
	if err := ps.DeleteAgreement(ctx, partner); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "agreement deleted", "partner", partner, "by", p.KeyID)
	s.invalidatePushTargets()
	return s.auditAdmin(ctx, p, "agreement.delete", partner, "", nil)
}

// Preview lists what partner would receive from the node's collections
// now, with the rule that allows or withholds each object (admin only).
// Nothing leaves the node and nothing is audited as egress. The latest
// version of each object is previewed; at most limit objects (all when
// limit <= 0).
func (s *Service) Preview(ctx context.Context, p entente.Principal, partner string, limit int) ([]policy.Explanation, error) {
	if err := requireAdmin(p, "previewing agreements"); err != nil {
		return nil, err
	}
	ps, err := s.policyStore()
	if err != nil {
		return nil, err
	}
	self, err := s.self(ctx)
	if err != nil {
		return nil, err
	}
	party, a, err := s.partnerTerms(ctx, ps, partner)
	if err != nil {
		return nil, err
	}
	colls, err := s.st.Collections(ctx)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	g := policy.NewGate(self, nil)
	now := s.now()
	var out []policy.Explanation
	for _, c := range colls {
		if !c.CanRead(entente.RolePartner) {
			// The partner role cannot read the collection at all.
			continue
		}
		q := entente.ObjectQuery{Collection: c.ID, Limit: 5000}
		for {
			page, err := s.st.QueryObjects(ctx, q)
			if err != nil {
				return nil, fmt.Errorf("preview collection %s: %w", c.ID, err)
			}
			metas, err := s.metas(ctx, ps, c, page)
			if err != nil {
				return nil, err
			}
			out = append(out, g.Preview(a, party, metas, now)...)
			if limit > 0 && len(out) >= limit {
				return out[:limit], nil
			}
			if !page.More {
				break
			}
			q.Next = page.Next
		}
	}
	return out, nil
}

// metas resolves the policy metadata (TLP, residency, provenance) of a
// page of a collection's entries.
func (s *Service) metas(ctx context.Context, ps store.PolicyStore, c entente.Collection, page entente.Page) ([]policy.ObjectMeta, error) {
	refs := map[string]bool{}
	objs := make([]*stix.Object, 0, len(page.Entries))
	ids := make([]string, 0, len(page.Entries))
	for _, e := range page.Entries {
		o, err := stix.Decode(e.Raw)
		if err != nil {
			o = &stix.Object{ID: e.ID, Type: e.Type}
		}
		objs = append(objs, o)
		ids = append(ids, e.ID)
		for _, r := range o.MarkingRefs {
			if _, tlp := stix.TLPFromMarking(r); !tlp {
				refs[r] = true
			}
		}
	}
	marks, err := s.markings(ctx, refs)
	if err != nil {
		return nil, err
	}
	prov, err := ps.Provenance(ctx, c.ID, ids)
	if err != nil {
		return nil, err
	}
	def := defaultTLP(c)
	out := make([]policy.ObjectMeta, len(objs))
	for i, o := range objs {
		e := page.Entries[i]
		tlp, res := marks.Classify(o.MarkingRefs, def)
		m := policy.ObjectMeta{ID: e.ID, Type: e.Type, Collection: c.ID, TLP: tlp, Residency: res, CreatedByRef: o.CreatedByRef}
		v, _ := store.UnixNano(e.Version)
		if pr, ok := prov[store.VersionKey{ID: e.ID, Version: v}]; ok {
			m.Origin, m.ReceivedFromPeer = pr.Origin, pr.Peer
		}
		out[i] = m
	}
	return out, nil
}

// QueryAudit returns one page of the audit log (admins and analysts).
func (s *Service) QueryAudit(ctx context.Context, p entente.Principal, q AuditQuery) (AuditPage, error) {
	if p.Role != entente.RoleAdmin && p.Role != entente.RoleAnalyst {
		return AuditPage{}, entente.Errorf(entente.EFORBIDDEN, "reading the audit log requires the admin or analyst role; this key's role is %q", p.Role)
	}
	ps, err := s.policyStore()
	if err != nil {
		return AuditPage{}, err
	}
	return ps.QueryAudit(ctx, q)
}
