package egress

import (
	"context"
	"fmt"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/policy"
)

// Blind access (internal/blind) lets a partner test values from its own
// logs against indicators it may not receive. The gate is its policy
// point too:
//
//   - a blinded set is a rendering (Query.Render with Query.Blind): its
//     Source reads the indicators of the collections the agreement grants
//     blind access to, decided by policy.Gate.CheckBlind instead of the
//     release rules; the gate caches it like any artifact (by audience,
//     terms version, content and expiry) and records each serving as one
//     blind audit record (the set's indicators and digest);
//   - [Gate.BlindGrant] says what blind access a partner key has now;
//   - [Gate.AuditBlind] records each evaluation batch (partner, count,
//     time, outcome), before the answer leaves;
//   - an indicator a partner asks to resolve after a hit leaves only by an
//     ordinary release (Query.Collection), under the release rules.

// Rule ids of blind audit records and of the gate's own blind decisions.
const (
	// RuleBlindSet records a blinded set served to a partner.
	RuleBlindSet = "blind.set"
	// RuleBlindEvaluate records an evaluation batch.
	RuleBlindEvaluate = "blind.evaluate"
	// RuleBlindResolve records a request to resolve blinded references.
	RuleBlindResolve = "blind.resolve"
	// RuleNotReadable is the preview's decision on an object of a
	// collection that partner keys may not read (one only blind access
	// reaches): it is never released.
	RuleNotReadable = "collection.not-readable"
)

// BlindGrant returns the blind access that partner principal p has now:
// its agreement's, when the agreement is in force and grants one.
// EFORBIDDEN for another role, for a partner without an agreement, with
// one not in force or one that grants no blind access.
func (g *Gate) BlindGrant(ctx context.Context, p entente.Principal) (policy.BlindAccess, error) {
	if p.Role != entente.RolePartner {
		return policy.BlindAccess{}, entente.Errorf(entente.EFORBIDDEN, "blind access is for partner keys; this key's role is %q", p.Role)
	}
	t, err := g.partnerTerms(ctx, p)
	if err != nil {
		return policy.BlindAccess{}, err
	}
	a := t.agreement
	if a == nil || a.Blind == nil {
		return policy.BlindAccess{}, entente.Errorf(entente.EFORBIDDEN, "no blind access: the agreement with %s grants none", p.Org)
	}
	now := g.now()
	if !a.ValidFrom.IsZero() && now.Before(a.ValidFrom) || !a.ValidUntil.IsZero() && !now.Before(a.ValidUntil) {
		return policy.BlindAccess{}, entente.Errorf(entente.EFORBIDDEN, "no blind access: agreement %s is not in force", a.ID)
	}
	return *a.Blind, nil
}

// AuditBlind appends the blind audit record of partner principal p's
// request (see [audit.BlindRecord]): rule is RuleBlindEvaluate or
// RuleBlindResolve, detail what it was (counts, never values), refused
// its refusal if any. Call it before the answer leaves: a record that
// cannot be appended is an error, and nothing must be answered.
func (g *Gate) AuditBlind(ctx context.Context, p entente.Principal, rule, detail string, refused error) error {
	if g.ps == nil {
		return fmt.Errorf("audit %s: the store %T keeps no audit log", rule, g.st)
	}
	rec := audit.BlindRecord(g.now(), p.KeyID, p.Org, rule, detail, refused)
	if err := g.ps.AppendAudit(context.WithoutCancel(ctx), []audit.Record{rec}); err != nil {
		return fmt.Errorf("audit %s: %w", rec.Rule, err)
	}
	return nil
}

// blindCollections returns the collections partner principal p's
// agreement grants it blind access to. EINVALID for another role,
// EFORBIDDEN without a grant in force.
func (g *Gate) blindCollections(ctx context.Context, p entente.Principal) ([]entente.Collection, error) {
	if p.Role != entente.RolePartner {
		return nil, entente.Errorf(entente.EINVALID, "a blind rendering is for a partner audience; this key's role is %q", p.Role)
	}
	grant, err := g.BlindGrant(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]entente.Collection, 0, len(grant.Collections))
	for _, id := range grant.Collections {
		c, err := g.st.Collection(ctx, id)
		if err != nil {
			if entente.ErrorCode(err) == entente.ENOTFOUND {
				continue // removed since the agreement was recorded
			}
			return nil, fmt.Errorf("look up collection %s: %w", id, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// blindPage decides one page of a collection's entries for blind access
// by partner terms t (policy.Gate.CheckBlind): the entries it admits keep
// their JSON, for the renderer (none of it leaves); those it withholds
// are kept without it (Raw nil), so that an incremental renderer learns
// that their values must leave the set.
func (g *Gate) blindPage(ctx context.Context, t *terms, c entente.Collection, page entente.Page, now time.Time) (entente.Page, error) {
	if len(page.Entries) == 0 {
		return page, nil
	}
	metas, ok, err := g.metas(ctx, c, page)
	if err != nil {
		return entente.Page{}, fmt.Errorf("policy gate: %w", err)
	}
	pg := &policy.Gate{Self: t.self}
	out := page
	out.Entries = make([]entente.ObjectEntry, 0, len(page.Entries))
	for i, e := range page.Entries {
		if !ok[i] {
			g.log.ErrorContext(ctx, "stored object does not decode; left out of the blinded set", "collection", c.ID, "object", e.ID)
			e.Raw = nil
			out.Entries = append(out.Entries, e)
			continue
		}
		if !pg.CheckBlind(t.agreement, t.partner, metas[i], now).Allow {
			e.Raw = nil
		}
		out.Entries = append(out.Entries, e)
	}
	return out, nil
}
