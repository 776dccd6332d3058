package node

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/alerting"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/egress"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/retraction"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// FalsePositive is what marking an object a false positive did.
type FalsePositive struct {
	// Object is the object marked, Collection the collection it is in.
	Object     string `json:"object"`
	Collection string `json:"collection"`
	// Opinion is the id of the retraction (a STIX opinion of
	// strongly-disagree) stored with it, which follows it to every
	// partner that received it.
	Opinion string `json:"opinion"`
	// Revoked is true when the node owned the object and revoked it too.
	Revoked bool `json:"revoked"`
	// Withdrawn and Lowered are the alerts it supported that nothing
	// supports any more, and those that fell to a lower tier.
	Withdrawn []string `json:"withdrawn"`
	Lowered   []string `json:"lowered"`
}

// MarkFalsePositive marks an object the node holds (an indicator, a
// sighting…) a false positive (analyst or admin): a retraction is stored
// with it and pushed through the gate to every partner that received it;
// the node revokes it too when it owns it; it leaves every export,
// snapshot and blind set; and the alerts it supported are withdrawn or
// lowered at once. The retraction is audited. ENOTFOUND when the node
// holds no such object; EINVALID when id is not a STIX id.
func (s *Service) MarkFalsePositive(ctx context.Context, p entente.Principal, id, reason string) (FalsePositive, error) {
	if err := requireAnalyst(p, "marking a false positive"); err != nil {
		return FalsePositive{}, err
	}
	if !stix.ValidID(id) {
		return FalsePositive{}, entente.Errorf(entente.EINVALID, "object: %q is not a STIX id (type--uuid)", id)
	}
	if len(reason) > 2000 {
		return FalsePositive{}, entente.Errorf(entente.EINVALID, "reason: %d characters; at most 2000", len(reason))
	}
	if strings.HasPrefix(id, "opinion--") || strings.HasPrefix(id, correlate.AlertType+"--") {
		return FalsePositive{}, entente.Errorf(entente.EINVALID, "object: %s cannot be marked a false positive (mark what supports it)", id)
	}
	self, err := s.selfParty(ctx)
	if err != nil {
		return FalsePositive{}, err
	}
	c, entry, err := s.findObject(ctx, id)
	if err != nil {
		return FalsePositive{}, err
	}
	obj, err := stix.Decode(entry.Raw)
	if err != nil {
		return FalsePositive{}, fmt.Errorf("read %s: %w", id, err)
	}
	admin := LocalAdmin(self.ID)
	now := s.now()
	op, err := retraction.New(self.ID, []retraction.Ref{{ID: id, MarkingRefs: obj.MarkingRefs}}, reason, now)
	if err != nil {
		return FalsePositive{}, err
	}
	out := FalsePositive{Object: id, Collection: c.ID}
	r, _ := retraction.Parse(op)
	out.Opinion = r.ID
	objs := []json.RawMessage{op}
	// The node revokes what it owns: its own object (no provenance from
	// another organisation) that it created.
	if owned, err := s.owns(ctx, c.ID, entry, obj, self.ID); err != nil {
		return FalsePositive{}, err
	} else if owned && !obj.Revoked {
		rev, err := revoke(entry.Raw, obj, now)
		if err != nil {
			return FalsePositive{}, err
		}
		objs = append(objs, rev)
		out.Revoked = true
	}
	// Correlation first, so the answer names the alerts withdrawn (a
	// retraction of the node's own removes every source's sightings,
	// whatever the objects' origins: nothing is left for correlation to
	// do once it is stored).
	changes, err := s.alerting.Retract(ctx, []alerting.Retraction{{Refs: []string{id}, Effect: retraction.Decide(r, "", self.ID, nil)}})
	if err != nil {
		return FalsePositive{}, err
	}
	// Applied below, not by the background worker too.
	applied := false
	finish := s.ownRetractions([]json.RawMessage{op})
	defer func() {
		if !applied {
			finish(false)
		}
	}()
	st, err := s.AddObjects(ctx, admin, c.ID, objs)
	if err != nil {
		return FalsePositive{}, err
	}
	if st.FailureCount > 0 {
		return FalsePositive{}, fmt.Errorf("store the retraction of %s: %s", id, st.Failures[0].Message)
	}
	detail := fmt.Sprintf("%s in collection %s marked a false positive by opinion %s", id, c.ID, out.Opinion)
	if out.Revoked {
		detail += ", and revoked"
	}
	if reason != "" {
		detail += ": " + reason
	}
	if err := s.gate.AuditAdmin(ctx, p, "retraction", "", detail, nil); err != nil {
		return FalsePositive{}, err
	}
	// What it withdraws leaves every output before the answer, and
	// before the pushes that carry it start.
	if _, err := s.withholdRetracted(ctx, c.ID, []json.RawMessage{op}); err != nil {
		return FalsePositive{}, err
	}
	applied = true
	finish(true)
	out.Withdrawn, out.Lowered = []string{}, []string{}
	for _, al := range changes {
		switch {
		case al.Withdrawn:
			out.Withdrawn = append(out.Withdrawn, al.ID)
		case al.Change == correlate.ChangeLowered:
			out.Lowered = append(out.Lowered, al.ID)
		}
	}
	s.log.InfoContext(ctx, "false positive marked", "object", id, "collection", c.ID, "opinion", out.Opinion,
		"revoked", out.Revoked, "withdrawn", len(out.Withdrawn), "lowered", len(out.Lowered), "key_id", p.KeyID)
	return out, nil
}

// findObject returns the latest version of object id in the first
// collection that holds it. ENOTFOUND if none does.
func (s *Service) findObject(ctx context.Context, id string) (entente.Collection, entente.ObjectEntry, error) {
	colls, err := s.st.Collections(ctx)
	if err != nil {
		return entente.Collection{}, entente.ObjectEntry{}, fmt.Errorf("list collections: %w", err)
	}
	for _, c := range colls {
		page, err := s.st.QueryObjects(ctx, entente.ObjectQuery{Collection: c.ID, IDs: []string{id}, Limit: 1})
		if err != nil {
			return entente.Collection{}, entente.ObjectEntry{}, fmt.Errorf("look up %s in collection %s: %w", id, c.ID, err)
		}
		if len(page.Entries) > 0 {
			return c, page.Entries[0], nil
		}
	}
	return entente.Collection{}, entente.ObjectEntry{}, entente.Errorf(entente.ENOTFOUND, "the node holds no object %q", id)
}

// owns reports whether the node owns an object: it has no provenance
// from another organisation and the node created it (its created_by_ref
// is the node's identity, or it has none).
func (s *Service) owns(ctx context.Context, collection string, e entente.ObjectEntry, o *stix.Object, self string) (bool, error) {
	if o.CreatedByRef != "" && o.CreatedByRef != self {
		return false, nil
	}
	ps, ok := s.st.(store.PolicyStore)
	if !ok {
		return true, nil
	}
	prov, err := ps.Provenance(ctx, collection, []string{e.ID})
	if err != nil {
		return false, fmt.Errorf("read provenance of %s: %w", e.ID, err)
	}
	for _, p := range prov {
		if p.Origin != "" && p.Origin != self {
			return false, nil
		}
	}
	return true, nil
}

// revoke returns the next version of an object, revoked.
func revoke(raw json.RawMessage, o *stix.Object, now time.Time) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("revoke %s: %w", o.ID, err)
	}
	mod := now
	if v := o.Version(); !mod.After(v) {
		mod = v.Add(time.Millisecond)
	}
	m["modified"], _ = json.Marshal(stix.FormatTimestamp(mod))
	m["revoked"] = json.RawMessage("true")
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("revoke %s: %w", o.ID, err)
	}
	return b, nil
}

// applyRetractions honours the retractions among raws, just stored in
// collection (by the node's analysts, or received): what they withdraw
// leaves the node's outputs (the gate's terms change, so every cached
// artifact is rendered again without it) and stops counting in
// correlation. A received retraction is audited. It returns the alerts
// that changed.
func (s *Service) applyRetractions(ctx context.Context, collection string, raws []json.RawMessage) ([]correlate.Alert, error) {
	rs, err := s.withholdRetracted(ctx, collection, raws)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return s.alerting.Retract(ctx, rs)
}

// withholdRetracted is the first half of applyRetractions: what the
// retractions among raws withdraw leaves the node's outputs (the gate's
// terms change; a received retraction is audited). It returns what
// correlation is then to remove (alerting.Service.Retract), the second
// half, which nothing released waits for.
func (s *Service) withholdRetracted(ctx context.Context, collection string, raws []json.RawMessage) ([]alerting.Retraction, error) {
	ps, _ := s.st.(store.PolicyStore)
	entries := make([]entente.ObjectEntry, 0, len(raws))
	revoked := false
	for _, raw := range raws {
		if r, ok := retraction.Parse(raw); ok {
			entries = append(entries, entente.ObjectEntry{ID: r.ID, Type: "opinion", Raw: raw})
		}
		revoked = revoked || retraction.IsRevoked(raw)
	}
	if revoked {
		// A retraction revoked: what it withdrew is acted on again, and
		// correlation counts it again from the store.
		if err := s.gate.TermsChanged(ctx, "retraction revoked"); err != nil {
			return nil, err
		}
		if err := s.alerting.Restart(ctx); err != nil {
			return nil, err
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	var pr interface {
		Provenance(ctx context.Context, collection string, ids []string) (map[store.VersionKey]store.Provenance, error)
	}
	if ps != nil {
		pr = ps
	}
	held, err := egress.HeldIn(ctx, pr, collection, entries)
	if err != nil {
		return nil, err
	}
	self, err := s.selfParty(ctx)
	if err != nil {
		return nil, err
	}
	rs := make([]alerting.Retraction, 0, len(held))
	var recs []audit.Record
	for _, h := range held {
		rs = append(rs, alerting.Retraction{Refs: h.Refs, Effect: h.Effect(self.ID)})
		if h.Origin != "" && h.Origin != self.ID {
			recs = append(recs, audit.AdminRecord(s.now(), "peer:"+h.Origin, "retraction.received", h.Origin,
				fmt.Sprintf("opinion %s in collection %s retracts %d objects; %d withdrawn here", h.ID, collection, len(h.Refs), len(h.Effect(self.ID).Withhold)), nil))
		}
	}
	if len(recs) > 0 && ps != nil {
		if err := ps.AppendAudit(context.WithoutCancel(ctx), recs); err != nil {
			return nil, fmt.Errorf("audit received retractions: %w", err)
		}
	}
	if err := s.gate.TermsChanged(ctx, "retraction"); err != nil {
		return nil, err
	}
	return rs, nil
}

// retractionsForCorrelation lists the retractions the node honours, for
// correlation when it starts.
func (s *Service) retractionsForCorrelation(ctx context.Context) ([]alerting.Retraction, error) {
	ps, ok := s.st.(store.PolicyStore)
	if !ok {
		return nil, nil
	}
	colls, err := s.st.Collections(ctx)
	if err != nil {
		return nil, err
	}
	held, err := egress.Retractions(ctx, s.st, ps, colls)
	if err != nil {
		return nil, err
	}
	self, err := s.selfParty(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]alerting.Retraction, 0, len(held))
	for _, h := range held {
		out = append(out, alerting.Retraction{Refs: h.Refs, Effect: h.Effect(self.ID)})
	}
	return out, nil
}

// QuarantinePartner quarantines a partner (admin): nothing it
// contributed is acted on — its sightings stop counting and the alerts
// they raised are withdrawn or lowered, its objects leave every export,
// snapshot and release to others — until it is released. Audited.
// ENOTFOUND if there is no such partner.
//
// What the node passed on of it is retracted on the partners that
// received it: retractions (opinions, at most retraction.MaxRefs objects
// each) naming the objects received from it are stored with them and
// follow them through the gate, so that the quarantine reaches every
// node its contributions reached.
//
// The retractions are stored, and their pushes to every partner started,
// before correlation here withdraws the partner's alerts: the
// federation's withdrawal does not wait for this node's (its correlation
// lock, its alert writes).
func (s *Service) QuarantinePartner(ctx context.Context, p entente.Principal, id, reason string) (policy.Party, error) {
	party, err := s.gate.SetQuarantine(ctx, p, id, true, reason)
	if err != nil {
		return policy.Party{}, err
	}
	rs, err := s.retractFrom(ctx, id, reason)
	if err != nil {
		return party, err
	}
	if err := s.alerting.SourceChanged(ctx, id); err != nil {
		return party, err
	}
	// What the retractions name that the partner's sightings do not
	// cover (the objects it contributed).
	_, err = s.alerting.Retract(ctx, rs)
	return party, err
}

// maxQuarantineRefs bounds the objects a quarantine retracts on partners
// (the most recently received first).
const maxQuarantineRefs = 1_000_000

// retractFrom stores, in each collection, retractions of the objects
// received from partner id, and withholds what they name (pushes carry
// them from then on). It returns what correlation is to remove.
func (s *Service) retractFrom(ctx context.Context, id, reason string) ([]alerting.Retraction, error) {
	ps, ok := s.st.(store.PolicyStore)
	if !ok {
		return nil, nil
	}
	recs, err := ps.ProvenanceFrom(ctx, id, maxQuarantineRefs)
	if err != nil {
		return nil, err
	}
	self, err := s.selfParty(ctx)
	if err != nil {
		return nil, err
	}
	byColl := map[string][]string{}
	seen := map[[2]string]bool{}
	var order []string
	for _, r := range recs {
		k := [2]string{r.Collection, r.ObjectID}
		if seen[k] {
			continue
		}
		seen[k] = true
		if _, ok := byColl[r.Collection]; !ok {
			order = append(order, r.Collection)
		}
		byColl[r.Collection] = append(byColl[r.Collection], r.ObjectID)
	}
	why := "partner " + id + " quarantined"
	if reason != "" {
		why += ": " + reason
	}
	admin := LocalAdmin(self.ID)
	now := s.now()
	var out []alerting.Retraction
	for _, c := range order {
		ids := byColl[c]
		var ops []json.RawMessage
		for start := 0; start < len(ids); start += retraction.MaxRefs {
			refs := make([]retraction.Ref, 0, retraction.MaxRefs)
			for _, oid := range ids[start:min(start+retraction.MaxRefs, len(ids))] {
				refs = append(refs, retraction.Ref{ID: oid})
			}
			op, err := retraction.NewForQuarantine(self.ID, id, refs, why, now)
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
		}
		rs, err := s.storeAndWithhold(ctx, admin, c, ops)
		if err != nil {
			return nil, fmt.Errorf("retract what partner %s contributed to collection %s: %w", id, c, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// storeAndWithhold stores the node's retractions ops in collection and
// withholds what they name (withholdRetracted); the background worker,
// which pushes them once that is done, does not apply them again (see
// ownRetractions). It returns what correlation is to remove.
func (s *Service) storeAndWithhold(ctx context.Context, admin entente.Principal, collection string, ops []json.RawMessage) ([]alerting.Retraction, error) {
	done := false
	finish := s.ownRetractions(ops)
	defer func() {
		if !done {
			finish(false)
		}
	}()
	st, err := s.AddObjects(ctx, admin, collection, ops)
	if err != nil {
		return nil, err
	}
	if st.FailureCount > 0 {
		return nil, fmt.Errorf("%s", st.Failures[0].Message)
	}
	rs, err := s.withholdRetracted(ctx, collection, ops)
	if err != nil {
		return nil, err
	}
	done = true
	finish(true)
	return rs, nil
}

// ReleasePartner ends a partner's quarantine (admin): what it sent is
// acted on again, here and, as the retractions its quarantine made are
// revoked, on the partners that received them. Audited. ENOTFOUND if
// there is no such partner.
func (s *Service) ReleasePartner(ctx context.Context, p entente.Principal, id string) (policy.Party, error) {
	party, err := s.gate.SetQuarantine(ctx, p, id, false, "")
	if err != nil {
		return policy.Party{}, err
	}
	if err := s.unretract(ctx, id); err != nil {
		return party, err
	}
	return party, s.alerting.SourceChanged(ctx, id)
}

// unretract revokes the retractions made when partner id was
// quarantined.
func (s *Service) unretract(ctx context.Context, id string) error {
	ps, ok := s.st.(store.PolicyStore)
	if !ok {
		return nil
	}
	colls, err := s.st.Collections(ctx)
	if err != nil {
		return err
	}
	held, err := egress.Retractions(ctx, s.st, ps, colls)
	if err != nil {
		return err
	}
	self, err := s.selfParty(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	for _, h := range held {
		if h.Quarantine != id || (h.Origin != "" && h.Origin != self.ID) {
			continue
		}
		page, err := s.st.QueryObjects(ctx, entente.ObjectQuery{Collection: h.Collection, IDs: []string{h.ID}, Limit: 1})
		if err != nil || len(page.Entries) == 0 {
			return fmt.Errorf("read retraction %s: %v", h.ID, err)
		}
		o, err := stix.Decode(page.Entries[0].Raw)
		if err != nil {
			return fmt.Errorf("read retraction %s: %w", h.ID, err)
		}
		rev, err := revoke(page.Entries[0].Raw, o, now)
		if err != nil {
			return err
		}
		if st, err := s.AddObjects(ctx, LocalAdmin(self.ID), h.Collection, []json.RawMessage{rev}); err != nil || st.FailureCount > 0 {
			return fmt.Errorf("revoke retraction %s: %v %+v", h.ID, err, st)
		}
	}
	return s.gate.TermsChanged(ctx, "retractions revoked")
}

// SetPartnerTrust sets a partner's trust weight and quota (admin; nil
// leaves one as it is, a negative value returns it to the node's
// default). Alerts are reassessed at once. Audited.
func (s *Service) SetPartnerTrust(ctx context.Context, p entente.Principal, id string, weight *float64, quota *int) (policy.Party, error) {
	party, err := s.gate.SetTrust(ctx, p, id, weight, quota)
	if err != nil {
		return policy.Party{}, err
	}
	return party, s.alerting.SourceChanged(ctx, id)
}
