package egress

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// Preview asks what a partner would receive now, and why: the latest
// version of every object of the collections the partner role may read,
// each with the rule that releases or withholds it and the content its
// granular markings would remove. Nothing leaves and nothing is audited;
// the caller authorises the request (an admin).
type Preview struct {
	// Summary asks for counts only (per rule, type and TLP) over every
	// object, instead of a page of explanations.
	Summary bool
	// Limit is the page size (default 1000, at most store.MaxPageSize).
	Limit int
	// Next is the cursor of the page to read, from a previous page.
	Next string
	// Proposed, when set, is an agreement not yet saved (checked by
	// [Gate.CheckAgreement]): the preview decides by it instead of the
	// agreement on record, and lists the objects whose release it
	// would change (PreviewPage.Changes).
	Proposed *policy.Agreement
}

// MaxPreviewChanges bounds the changes a summary preview of a proposed
// agreement lists (it counts them all).
const MaxPreviewChanges = 200

// PreviewChange is an object whose release a proposed agreement
// changes: its decision under the agreement on record (Before) and under
// the proposed one (After).
type PreviewChange struct {
	Object policy.ObjectMeta `json:"object"`
	Before policy.Decision   `json:"before"`
	After  policy.Decision   `json:"after"`
}

// PreviewPage is one page of a preview, or its summary.
type PreviewPage struct {
	Explanations []policy.Explanation `json:"explanations,omitempty"`
	// Next is the cursor of the next page; "" on the last.
	Next string `json:"next,omitempty"`
	// Summary is the answer of a summary preview.
	Summary *PreviewSummary `json:"summary,omitempty"`
	// Changes are, for a proposed agreement, the objects of the page
	// (of a summary: the first MaxPreviewChanges) that it would release
	// where the agreement on record withholds them, or the reverse.
	Changes []PreviewChange `json:"changes,omitempty"`
	// Current is, for a summary of a proposed agreement, the summary of
	// the agreement on record over the same objects, counted in the same
	// pass.
	Current *PreviewSummary `json:"current,omitempty"`
}

// PreviewSummary counts what a partner would receive.
type PreviewSummary struct {
	Objects  int `json:"objects"`
	Released int `json:"released"`
	Withheld int `json:"withheld"`
	// ByRule counts objects by the rule that decided them.
	ByRule map[string]int `json:"by_rule"`
	// ByType and ByTLP count released and withheld objects by type and
	// by TLP.
	ByType map[string]*Counts `json:"by_type"`
	ByTLP  map[string]*Counts `json:"by_tlp"`
	// FieldsRemoved counts, by rule, the content granular markings keep
	// from the partner in objects that are released.
	FieldsRemoved map[string]int `json:"fields_removed,omitempty"`
	// Blind counts the indicators whose values are in the partner's
	// blinded set (policy.Gate.CheckBlind), when the agreement grants
	// blind access: none of their values is released.
	Blind int `json:"blind,omitempty"`
	// BlindByRule counts the indicators of the blind decisions, by rule.
	BlindByRule map[string]int `json:"blind_by_rule,omitempty"`
	// Changed counts, for a proposed agreement, the objects whose
	// release it changes.
	Changed int `json:"changed,omitempty"`
}

// Counts are objects released and withheld.
type Counts struct {
	Released int `json:"released"`
	Withheld int `json:"withheld"`
}

func (s *PreviewSummary) add(e policy.Explanation) {
	s.Objects++
	s.ByRule[e.Decision.Rule]++
	count := func(m map[string]*Counts, k string) {
		c := m[k]
		if c == nil {
			c = &Counts{}
			m[k] = c
		}
		if e.Decision.Allow {
			c.Released++
		} else {
			c.Withheld++
		}
	}
	count(s.ByType, e.Object.Type)
	count(s.ByTLP, e.Object.TLP.String())
	if e.Decision.Allow {
		s.Released++
	} else {
		s.Withheld++
	}
	if b := e.Blind; b != nil {
		if s.BlindByRule == nil {
			s.BlindByRule = map[string]int{}
		}
		s.BlindByRule[b.Rule]++
		if b.Allow {
			s.Blind++
		}
	}
	for _, r := range e.Decision.Removed {
		if s.FieldsRemoved == nil {
			s.FieldsRemoved = map[string]int{}
		}
		s.FieldsRemoved[r.Rule]++
	}
}

// preview answers a preview query for partner audience p.
func (g *Gate) preview(ctx context.Context, p entente.Principal, pv Preview) (*PreviewPage, error) {
	if p.Role != entente.RolePartner {
		return nil, entente.Errorf(entente.EINVALID, "preview: the audience must be a partner")
	}
	t, err := g.partnerTerms(ctx, p)
	if err != nil {
		return nil, err
	}
	// current is the agreement on record, when the preview is of a
	// proposed one.
	current, proposing := t.agreement, pv.Proposed != nil
	if proposing {
		a := *pv.Proposed
		if t.partner.Country != "" {
			a.Partner = t.partner
		}
		t.agreement = &a
	}
	all, err := g.st.Collections(ctx)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	// The collections partners may read, and those only blind access
	// reaches (of a proposed agreement, that of either agreement: both
	// are decided over the same objects).
	var blindColls []string
	for _, a := range []*policy.Agreement{t.agreement, current} {
		if a != nil && a.Blind != nil {
			for _, c := range a.Blind.Collections {
				if !slices.Contains(blindColls, c) {
					blindColls = append(blindColls, c)
				}
			}
		}
	}
	var colls []entente.Collection
	for _, c := range all {
		if c.CanRead(entente.RolePartner) || slices.Contains(blindColls, c.ID) {
			colls = append(colls, c)
		}
	}
	ci, next, err := parsePreviewCursor(pv.Next, len(colls))
	if err != nil {
		return nil, err
	}
	limit := pv.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, store.MaxPageSize)
	pg := policy.NewGate(t.self, nil)
	now := g.now()
	out := &PreviewPage{}
	if pv.Summary {
		out.Summary = &PreviewSummary{ByRule: map[string]int{}, ByType: map[string]*Counts{}, ByTLP: map[string]*Counts{}}
		if proposing {
			out.Current = &PreviewSummary{ByRule: map[string]int{}, ByType: map[string]*Counts{}, ByTLP: map[string]*Counts{}}
		}
		ci, next, limit = 0, "", store.MaxPageSize
	}
	for ; ci < len(colls); ci, next = ci+1, "" {
		c := colls[ci]
		q := entente.ObjectQuery{Collection: c.ID, Limit: limit, Next: next}
		for {
			if !pv.Summary {
				q.Limit = limit - len(out.Explanations)
			}
			page, err := g.st.QueryObjects(ctx, q)
			if err != nil {
				return nil, fmt.Errorf("preview collection %s: %w", c.ID, err)
			}
			metas, ok, err := g.metas(ctx, c, page)
			if err != nil {
				return nil, err
			}
			readable := c.CanRead(entente.RolePartner)
			for i, m := range metas {
				e := policy.Explanation{Object: m, Decision: pg.Decide(t.agreement, t.partner, m, now)}
				if !readable {
					e.Decision = policy.Decision{Rule: RuleNotReadable,
						Reason: fmt.Sprintf("collection %q is not readable by partner keys: only blind access reaches it", c.ID)}
				}
				if len(blindColls) > 0 && m.Type == "indicator" && ok[i] {
					bd := pg.DecideBlind(t.agreement, t.partner, m, now)
					e.Blind = &bd
				}
				if proposing {
					before := e.Decision
					if readable {
						before = pg.Decide(current, t.partner, m, now)
					}
					if out.Current != nil {
						out.Current.add(policy.Explanation{Object: m, Decision: before})
					}
					if before.Allow != e.Decision.Allow {
						if out.Summary != nil {
							out.Summary.Changed++
						}
						if out.Summary == nil || len(out.Changes) < MaxPreviewChanges {
							out.Changes = append(out.Changes, PreviewChange{Object: m, Before: before, After: e.Decision})
						}
					}
				}
				if out.Summary != nil {
					out.Summary.add(e)
				} else {
					out.Explanations = append(out.Explanations, e)
				}
			}
			if !page.More {
				break
			}
			q.Next = page.Next
			if out.Summary == nil && len(out.Explanations) >= limit {
				out.Next = strconv.Itoa(ci) + "|" + page.Next
				return out, nil
			}
		}
		if out.Summary == nil && len(out.Explanations) >= limit && ci+1 < len(colls) {
			out.Next = strconv.Itoa(ci+1) + "|"
			return out, nil
		}
	}
	return out, nil
}

// parsePreviewCursor reads a preview cursor: the index of the collection
// and the store's cursor within it.
func parsePreviewCursor(next string, n int) (int, string, error) {
	if next == "" {
		return 0, "", nil
	}
	i, rest, ok := strings.Cut(next, "|")
	ci, err := strconv.Atoi(i)
	if !ok || err != nil || ci < 0 || ci >= n {
		return 0, "", entente.Errorf(entente.EINVALID, "next: %q is not a preview cursor", next)
	}
	return ci, rest, nil
}

// metas resolves the policy metadata (TLP, residency, granular markings,
// provenance) of a page of a collection's entries.
// ok[i] is false for an entry whose JSON does not decode (its meta then
// says RED).
func (g *Gate) metas(ctx context.Context, c entente.Collection, page entente.Page) ([]policy.ObjectMeta, []bool, error) {
	out, ok, _, err := g.metasOf(ctx, c, page)
	return out, ok, err
}

// metasOf is metas that also reports whether every marking definition
// the entries refer to (other than TLP) is known to the gate: only then
// is what it returns certain not to change while the terms in force and
// the entries stay the same (a definition not found yet is looked up
// again next time, see markings).
func (g *Gate) metasOf(ctx context.Context, c entente.Collection, page entente.Page) ([]policy.ObjectMeta, []bool, bool, error) {
	metas := make([]gateMeta, len(page.Entries))
	ok := make([]bool, len(page.Entries))
	scanAll(page.Entries, metas, ok, func(*entente.ObjectEntry) bool { return false }, func(*stix.Object) {})
	refs := map[string]bool{}
	ids := make([]string, 0, len(page.Entries))
	granular := map[int][]stix.GranularMarking{}
	for i, e := range page.Entries {
		ids = append(ids, e.ID)
		for _, r := range metas[i].markingRefs {
			if _, tlp := stix.TLPFromMarking(r); !tlp {
				refs[r] = true
			}
		}
		if metas[i].granular {
			gms, err := stix.GranularMarkings(e.Raw)
			if err != nil {
				continue
			}
			granular[i] = gms
			for _, gm := range gms {
				if _, tlp := stix.TLPFromMarking(gm.MarkingRef); !tlp && gm.MarkingRef != "" {
					refs[gm.MarkingRef] = true
				}
			}
		}
	}
	marks, err := g.markings(ctx, refs)
	if err != nil {
		return nil, nil, false, err
	}
	known := g.marks.known(refs)
	prov, err := g.ps.Provenance(ctx, c.ID, ids)
	if err != nil {
		return nil, nil, false, err
	}
	def := defaultTLP(c)
	out := make([]policy.ObjectMeta, len(page.Entries))
	for i, e := range page.Entries {
		if !ok[i] {
			// An object that does not decode is withheld: shown as RED.
			out[i] = policy.ObjectMeta{ID: e.ID, Type: e.Type, Collection: c.ID, TLP: stix.TLPRed}
			continue
		}
		out[i] = objectMeta(c, e, &metas[i], marks, def, prov)
		if gms := granular[i]; len(gms) > 0 {
			out[i].Granular = marks.ClassifyGranular(gms)
		}
	}
	return out, ok, known, nil
}
