package egress

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/policy"
)

// The terms the gate applies — partners and agreements — are changed
// only here, so that no change can forget to invalidate the caches of
// released content: each method records the change, audits it and calls
// [Gate.TermsChanged] before it returns.

// requireAdmin refuses principals that are not admins.
func (g *Gate) requireAdmin(p entente.Principal, action string) error {
	if g.ps == nil {
		return fmt.Errorf("%s: the store %T keeps no sharing policy", action, g.st)
	}
	if p.Role != entente.RoleAdmin {
		return entente.Errorf(entente.EFORBIDDEN, "%s requires the admin role; this key's role is %q", action, p.Role)
	}
	return nil
}

// requireReader refuses principals that are neither admins nor analysts:
// the node's people may read the terms; sensors and partners may not.
func (g *Gate) requireReader(p entente.Principal, action string) error {
	if g.ps == nil {
		return fmt.Errorf("%s: the store %T keeps no sharing policy", action, g.st)
	}
	if p.Role != entente.RoleAdmin && p.Role != entente.RoleAnalyst {
		return entente.Errorf(entente.EFORBIDDEN, "%s requires the admin or analyst role; this key's role is %q", action, p.Role)
	}
	return nil
}

// AuditAdmin appends the audit record of an administrative change by p
// (see [audit.AdminRecord]). A change that cannot be audited must not be
// reported as done: the error is returned.
func (g *Gate) AuditAdmin(ctx context.Context, p entente.Principal, rule, partner, detail string, refused error) error {
	if g.ps == nil {
		return fmt.Errorf("audit %s: the store %T keeps no audit log", rule, g.st)
	}
	rec := audit.AdminRecord(g.now(), audit.Actor(p.KeyID, p.Org), rule, partner, detail, refused)
	if err := g.ps.AppendAudit(context.WithoutCancel(ctx), []audit.Record{rec}); err != nil {
		return fmt.Errorf("audit %s: %w", rec.Rule, err)
	}
	return nil
}

// joinAudit returns err, or err with the audit failure when recording it
// failed.
func joinAudit(err, auditErr error) error {
	if auditErr != nil {
		return fmt.Errorf("%w (and it could not be audited: %v)", err, auditErr)
	}
	return err
}

// changed ends a change of terms: the caches are invalidated, then the
// change is audited.
func (g *Gate) changed(ctx context.Context, p entente.Principal, rule, partner, detail string) error {
	if err := g.TermsChanged(ctx, rule+" "+partner); err != nil {
		return err
	}
	return g.AuditAdmin(ctx, p, rule, partner, detail, nil)
}

// PutPartner records (or updates) an organisation the node shares with:
// its identity id, name, country and sector (admin only). EINVALID names
// the field at fault.
func (g *Gate) PutPartner(ctx context.Context, p entente.Principal, party policy.Party) error {
	if err := g.requireAdmin(p, "managing partners"); err != nil {
		return err
	}
	if err := party.Validate(); err != nil {
		err = entente.Errorf(entente.EINVALID, "partner: %v", err)
		return joinAudit(err, g.AuditAdmin(ctx, p, "partner.put", party.ID, "name "+party.Name, err))
	}
	// Trust is changed by SetTrust and SetQuarantine only: recording a
	// partner again keeps it (a quarantine is never lifted by accident).
	if old, err := g.ps.Party(ctx, party.ID); err == nil {
		party.Trust = old.Trust
	} else if entente.ErrorCode(err) != entente.ENOTFOUND {
		return fmt.Errorf("read partner %s: %w", party.ID, err)
	} else {
		party.Trust = policy.Trust{}
	}
	if err := g.policyWrite(func() error { return g.ps.PutParty(ctx, party) }); err != nil {
		return fmt.Errorf("put partner %s: %w", party.ID, err)
	}
	g.log.InfoContext(ctx, "partner recorded", "partner", party.ID, "country", party.Country, "by", p.KeyID)
	return g.changed(ctx, p, "partner.put", party.ID, fmt.Sprintf("name %q country %s sector %q", party.Name, party.Country, party.Sector))
}

// RemovePartner removes an organisation the node shares with (admin
// only). ECONFLICT while an agreement with it exists (end the agreement
// first); ENOTFOUND if there is no such partner.
func (g *Gate) RemovePartner(ctx context.Context, p entente.Principal, id string) error {
	if err := g.requireAdmin(p, "managing partners"); err != nil {
		return err
	}
	if _, err := g.ps.Agreement(ctx, id); err == nil {
		err := entente.Errorf(entente.ECONFLICT, "partner %s has an agreement: delete it first (entente agreement delete --partner %s)", id, id)
		return joinAudit(err, g.AuditAdmin(ctx, p, "partner.remove", id, "", err))
	} else if entente.ErrorCode(err) != entente.ENOTFOUND {
		return fmt.Errorf("read agreement with %s: %w", id, err)
	}
	if err := g.policyWrite(func() error { return g.ps.DeleteParty(ctx, id) }); err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			return entente.Errorf(entente.ENOTFOUND, "there is no partner %q", id)
		}
		return fmt.Errorf("remove partner %s: %w", id, err)
	}
	g.log.InfoContext(ctx, "partner removed", "partner", id, "by", p.KeyID)
	return g.changed(ctx, p, "partner.remove", id, "")
}

// Partners lists the organisations the node shares with (admins and
// analysts).
func (g *Gate) Partners(ctx context.Context, p entente.Principal) ([]policy.Party, error) {
	if err := g.requireReader(p, "listing partners"); err != nil {
		return nil, err
	}
	return g.ps.Parties(ctx)
}

// PutAgreement records the agreement with a partner (admin only),
// replacing any previous one. The partner must have been recorded with
// [Gate.PutPartner]; collections may be named by id or alias and are
// stored by id. The agreement is checked with [policy.Agreement.Validate]
// against the node's collections: EINVALID names each field at fault.
// Refused agreements are recorded in the audit log too.
func (g *Gate) PutAgreement(ctx context.Context, p entente.Principal, a policy.Agreement) (policy.Agreement, error) {
	if err := g.requireAdmin(p, "managing agreements"); err != nil {
		return a, err
	}
	refuse := func(err error) (policy.Agreement, error) {
		return a, joinAudit(err, g.AuditAdmin(ctx, p, "agreement.put", a.Partner.ID, "agreement "+a.ID, err))
	}
	a, err := g.checkAgreement(ctx, a)
	if err != nil {
		if entente.ErrorCode(err) == entente.EINVALID {
			return refuse(err)
		}
		return a, err
	}
	if err := g.policyWrite(func() error { return g.ps.PutAgreement(ctx, a) }); err != nil {
		return a, fmt.Errorf("put agreement %s: %w", a.ID, err)
	}
	g.log.InfoContext(ctx, "agreement recorded", "agreement", a.ID, "partner", a.Partner.ID, "max_tlp", a.MaxTLP, "by", p.KeyID)
	detail := fmt.Sprintf("agreement %s collections %v types %v max_tlp %s reshare %t redact %+v valid %s..%s",
		a.ID, a.Collections, a.ObjectTypes, a.MaxTLP, a.AllowReshare, a.Redact, fmtWhen(a.ValidFrom), fmtWhen(a.ValidUntil))
	if b := a.Blind; b != nil {
		detail += fmt.Sprintf(" blind %v budget %s", b.Collections, b.Budget)
	}
	return a, g.changed(ctx, p, "agreement.put", a.Partner.ID, detail)
}

// CheckAgreement checks an agreement as PutAgreement does, without
// saving it (admin only): the agreement as it would be recorded (its
// partner as on record, collection aliases resolved to ids), or
// EINVALID naming each field at fault. The dashboard previews what it
// would release before the admin saves it.
func (g *Gate) CheckAgreement(ctx context.Context, p entente.Principal, a policy.Agreement) (policy.Agreement, error) {
	if err := g.requireAdmin(p, "managing agreements"); err != nil {
		return a, err
	}
	return g.checkAgreement(ctx, a)
}

// checkAgreement resolves and validates a (see CheckAgreement).
func (g *Gate) checkAgreement(ctx context.Context, a policy.Agreement) (policy.Agreement, error) {
	party, err := g.ps.Party(ctx, a.Partner.ID)
	if err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			return a, entente.Errorf(entente.EINVALID, "partner: %q is not a known partner (add it first: entente partner add)", a.Partner.ID)
		}
		return a, fmt.Errorf("read partner %s: %w", a.Partner.ID, err)
	}
	a.Partner = party
	if a.ID == "" {
		a.ID = "agreement-with-" + party.ID
	}
	colls, err := g.st.Collections(ctx)
	if err != nil {
		return a, fmt.Errorf("list collections: %w", err)
	}
	var known policy.Catalog
	for _, c := range colls {
		known.Collections = append(known.Collections, c.ID)
	}
	var blindNames []string
	if a.Blind != nil {
		// A copy: the caller's agreement is not changed.
		b := *a.Blind
		b.Collections = slices.Clone(b.Collections)
		a.Blind, blindNames = &b, b.Collections
	}
	for _, names := range [][]string{a.Collections, blindNames} {
		for i, name := range names {
			for _, c := range colls {
				if name != "" && (c.Alias == name || c.ID == name) {
					names[i] = c.ID
				}
			}
		}
	}
	if err := a.Validate(known); err != nil {
		return a, entente.Errorf(entente.EINVALID, "%v", err)
	}
	return a, nil
}

func fmtWhen(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// Agreement returns the agreement with a partner (admins and analysts).
// ENOTFOUND if there is none.
func (g *Gate) Agreement(ctx context.Context, p entente.Principal, partner string) (policy.Agreement, error) {
	if err := g.requireReader(p, "reading agreements"); err != nil {
		return policy.Agreement{}, err
	}
	return g.ps.Agreement(ctx, partner)
}

// Agreements lists every agreement (admins and analysts).
func (g *Gate) Agreements(ctx context.Context, p entente.Principal) ([]policy.Agreement, error) {
	if err := g.requireReader(p, "listing agreements"); err != nil {
		return nil, err
	}
	return g.ps.Agreements(ctx)
}

// DeleteAgreement ends the agreement with a partner (admin only): from
// then on the partner receives only the node's own CLEAR objects, on
// every path, from the next request on. ENOTFOUND if there is none.
func (g *Gate) DeleteAgreement(ctx context.Context, p entente.Principal, partner string) error {
	if err := g.requireAdmin(p, "managing agreements"); err != nil {
		return err
	}
	if err := g.policyWrite(func() error { return g.ps.DeleteAgreement(ctx, partner) }); err != nil {
		return err
	}
	g.log.InfoContext(ctx, "agreement deleted", "partner", partner, "by", p.KeyID)
	return g.changed(ctx, p, "agreement.delete", partner, "")
}

// SetQuarantine quarantines a partner, or releases it (admin only): its
// trust records it, and the terms change at once, so that nothing it
// contributed leaves in any artifact or release from then on. Audited.
// ENOTFOUND if there is no such partner.
func (g *Gate) SetQuarantine(ctx context.Context, p entente.Principal, id string, quarantined bool, reason string) (policy.Party, error) {
	rule := "partner.quarantine"
	if !quarantined {
		rule = "partner.release"
	}
	if err := g.requireAdmin(p, "quarantining partners"); err != nil {
		return policy.Party{}, err
	}
	if len(reason) > 2000 {
		err := entente.Errorf(entente.EINVALID, "reason: %d characters; at most 2000", len(reason))
		return policy.Party{}, joinAudit(err, g.AuditAdmin(ctx, p, rule, id, "", err))
	}
	party, err := g.ps.Party(ctx, id)
	if err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			err = entente.Errorf(entente.ENOTFOUND, "there is no partner %q", id)
			return policy.Party{}, joinAudit(err, g.AuditAdmin(ctx, p, rule, id, "", err))
		}
		return policy.Party{}, fmt.Errorf("read partner %s: %w", id, err)
	}
	party.Trust.Quarantined = quarantined
	party.Trust.Reason = reason
	party.Trust.QuarantinedAt = time.Time{}
	if quarantined {
		party.Trust.QuarantinedAt = g.now()
	}
	if err := g.policyWrite(func() error { return g.ps.PutParty(ctx, party) }); err != nil {
		return policy.Party{}, fmt.Errorf("put partner %s: %w", id, err)
	}
	g.log.InfoContext(ctx, rule, "partner", id, "reason", reason, "by", p.KeyID)
	return party, g.changed(ctx, p, rule, id, reason)
}

// SetTrust sets a partner's trust weight and quota (admin only): nil
// leaves one as it is, a negative one returns it to the node's default.
// Audited. EINVALID names the field at fault; ENOTFOUND if there is no
// such partner.
func (g *Gate) SetTrust(ctx context.Context, p entente.Principal, id string, weight *float64, quota *int) (policy.Party, error) {
	if err := g.requireAdmin(p, "setting partners' trust"); err != nil {
		return policy.Party{}, err
	}
	party, err := g.ps.Party(ctx, id)
	if err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			err = entente.Errorf(entente.ENOTFOUND, "there is no partner %q", id)
			return policy.Party{}, joinAudit(err, g.AuditAdmin(ctx, p, "partner.trust", id, "", err))
		}
		return policy.Party{}, fmt.Errorf("read partner %s: %w", id, err)
	}
	switch {
	case weight == nil:
	case *weight < 0:
		party.Trust.Weight = nil
	default:
		party.Trust.Weight = weight
	}
	switch {
	case quota == nil:
	case *quota < 0:
		party.Trust.Quota = nil
	default:
		party.Trust.Quota = quota
	}
	if err := party.Validate(); err != nil {
		err = entente.Errorf(entente.EINVALID, "partner %s: %v", id, err)
		return policy.Party{}, joinAudit(err, g.AuditAdmin(ctx, p, "partner.trust", id, "", err))
	}
	if err := g.policyWrite(func() error { return g.ps.PutParty(ctx, party) }); err != nil {
		return policy.Party{}, fmt.Errorf("put partner %s: %w", id, err)
	}
	detail := "weight default"
	if w := party.Trust.Weight; w != nil {
		detail = fmt.Sprintf("weight %g", *w)
	}
	if q := party.Trust.Quota; q != nil {
		detail += fmt.Sprintf(" quota %d", *q)
	} else {
		detail += " quota default"
	}
	return party, g.changed(ctx, p, "partner.trust", id, detail)
}
