package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// maxListed bounds the violations described in a result.
const maxListed = 20

// egressKey names one object version released to one partner.
type egressKey struct {
	from, to int
	id       string
	version  int64
}

// checkAudits reads every node's egress audit and checks each record
// against the agreement the drill made between the two nodes (kept in
// f.terms, not read back from the nodes): the collection and the type
// are covered, the TLP is within the agreement and never RED, a
// residency marking includes the receiver's country, a third party's
// object is passed on only when re-sharing is agreed and it is at most
// GREEN, and a sighting the agreement redacts reaches the receiver
// without its victims' identities. It then checks the other way: every
// object version a node received from another node has an egress record
// at the sender. Each failure is a policy violation.
func (f *federation) checkAudits(ctx context.Context, res *Result) error {
	byOrg := map[string]int{}
	for i, o := range f.w.orgs {
		byOrg[o.ID] = i
	}
	violation := func(format string, args ...any) {
		res.PolicyViolations++
		if len(res.Violations) < maxListed {
			res.Violations = append(res.Violations, fmt.Sprintf(format, args...))
		}
	}
	// What each node received from another, read before the audits: the
	// gate appends its record before the object leaves, so anything held
	// now has its record by the time the audits are read.
	var held []egressKey
	for j, n := range f.nodes {
		if !n.up {
			continue
		}
		colls, err := n.st.Collections(ctx)
		if err != nil {
			return err
		}
		for _, c := range colls {
			q := entente.ObjectQuery{Collection: c.ID, Versions: entente.VersionFilter{All: true}, Limit: store.MaxPageSize}
			for {
				page, err := n.st.QueryObjects(ctx, q)
				if err != nil {
					return err
				}
				ids := make([]string, 0, len(page.Entries))
				for _, e := range page.Entries {
					ids = append(ids, e.ID)
				}
				prov, err := n.st.Provenance(ctx, c.ID, slices.Compact(slices.Sorted(slices.Values(ids))))
				if err != nil {
					return err
				}
				for k, p := range prov {
					i, ok := byOrg[p.Origin]
					if !ok || i == j {
						continue
					}
					held = append(held, egressKey{i, j, k.ID, k.Version})
				}
				if !page.More {
					break
				}
				q.Next = page.Next
			}
		}
	}
	audited := map[egressKey]bool{}
	for i, n := range f.nodes {
		if !n.up {
			continue
		}
		admin := node.LocalAdmin(n.org.ID)
		q := node.AuditQuery{Action: node.AuditEgress, Limit: store.MaxPageSize}
		for {
			page, err := n.svc.QueryAudit(ctx, admin, q)
			if err != nil {
				return fmt.Errorf("node %d: read audit: %w", i, err)
			}
			for _, r := range page.Records {
				res.EgressChecked++
				j, ok := byOrg[r.Partner]
				v, _ := store.UnixNano(r.Version)
				audited[egressKey{i, j, r.ObjectID, v}] = true
				if !ok {
					violation("node %d released %s to %s, which is not in the federation", i, r.ObjectID, r.Partner)
					continue
				}
				if err := f.checkEgress(ctx, i, j, r); err != nil {
					violation("node %d -> node %d: %s@%s: %v", i, j, r.ObjectID, stix.FormatTimestamp(r.Version), err)
				}
			}
			if page.Next == "" {
				break
			}
			q.Next = page.Next
		}
	}
	// Every object received from another node left it with a record.
	for _, k := range held {
		if !audited[k] {
			violation("node %d holds %s@%s from node %d, whose audit has no egress record of it", k.to, k.id,
				stix.FormatTimestamp(time.Unix(0, k.version).UTC()), k.from)
		}
	}
	return nil
}

// checkEgress checks one egress record of node i to node j.
func (f *federation) checkEgress(ctx context.Context, i, j int, r audit.Record) error {
	t, ok := f.terms[[2]int{i, j}]
	if !ok {
		return fmt.Errorf("there is no agreement from node %d to node %d", i, j)
	}
	n := f.nodes[i]
	// Detail: "<channel> <collection id>[ redaction of <id>]".
	fields := strings.Fields(r.Detail)
	if len(fields) < 2 {
		return fmt.Errorf("audit detail %q names no collection", r.Detail)
	}
	coll := fields[1]
	alias := ""
	for a, id := range n.colls {
		if id == coll {
			alias = a
		}
	}
	if !slices.Contains(t.collections, alias) {
		return fmt.Errorf("collection %q (%s) is not covered (agreement covers %v)", alias, coll, t.collections)
	}
	typ, _, _ := strings.Cut(r.ObjectID, "--")
	if len(t.types) > 0 && !slices.Contains(t.types, typ) {
		return fmt.Errorf("type %s is not covered (agreement covers %v)", typ, t.types)
	}
	if strings.Contains(r.Detail, "redaction of") {
		// A country location the redaction introduced: CLEAR, not stored.
		if typ != "location" {
			return fmt.Errorf("a redaction introduced a %s", typ)
		}
		return nil
	}
	obj, err := f.version(ctx, n, coll, r.ObjectID, r.Version)
	if err != nil {
		return err
	}
	c, err := n.st.Collection(ctx, coll)
	if err != nil {
		return err
	}
	tlp, ok := stix.TLPFromMarking(c.DefaultMarking)
	if !ok {
		tlp = stix.TLPAmber
	}
	partner := f.w.orgs[j]
	for _, m := range obj.MarkingRefs {
		if l, ok := stix.TLPFromMarking(m); ok {
			tlp = l
			continue
		}
		def, err := f.latest(ctx, n, m)
		if err != nil {
			return fmt.Errorf("marking %s: %w", m, err)
		}
		if _, js, isRes, err := policy.ParseResidencyMarking(def); err != nil || isRes && !slices.Contains(js, partner.Country) {
			return fmt.Errorf("residency marking %s does not allow %s (%v)", m, partner.Country, js)
		}
	}
	if tlp >= stix.TLPRed || tlp > t.maxTLP {
		return fmt.Errorf("TLP %s is above the agreement's %s", tlp, t.maxTLP)
	}
	v, _ := store.UnixNano(r.Version)
	prov, err := n.st.Provenance(ctx, coll, []string{r.ObjectID})
	if err != nil {
		return err
	}
	if p, ok := prov[store.VersionKey{ID: r.ObjectID, Version: v}]; ok && p.Origin != "" && p.Origin != n.org.ID && p.Origin != partner.ID {
		if !t.reshare {
			return fmt.Errorf("a third party's object (from %s) was passed on without a re-sharing agreement", p.Origin)
		}
		if tlp > stix.TLPGreen {
			return fmt.Errorf("a third party's %s object was passed on", tlp)
		}
	}
	if t.redact && typ == "sighting" {
		got, err := f.received(ctx, f.nodes[j], r.ObjectID)
		if err != nil {
			return err
		}
		var sg struct {
			Where []string `json:"where_sighted_refs"`
		}
		if got != nil && json.Unmarshal(got, &sg) == nil && slices.ContainsFunc(sg.Where, func(w string) bool { return strings.HasPrefix(w, "identity--") }) {
			return fmt.Errorf("the sighting reached node %d with its victims' identities %v", j, sg.Where)
		}
	}
	return nil
}

// version returns one stored version of an object in a collection.
func (f *federation) version(ctx context.Context, n *fedNode, coll, id string, version time.Time) (*stix.Object, error) {
	page, err := n.st.QueryObjects(ctx, entente.ObjectQuery{Collection: coll, IDs: []string{id}, Versions: entente.VersionFilter{All: true}, Limit: 1000})
	if err != nil {
		return nil, err
	}
	for _, e := range page.Entries {
		if e.Version.Equal(version) {
			return stix.Decode(e.Raw)
		}
	}
	return nil, fmt.Errorf("the sender holds no such version")
}

// latest returns the latest version of an object in any of n's
// collections.
func (f *federation) latest(ctx context.Context, n *fedNode, id string) (json.RawMessage, error) {
	raw, err := f.received(ctx, n, id)
	if err == nil && raw == nil {
		err = fmt.Errorf("not held")
	}
	return raw, err
}

// received returns the latest version of an object held by n, nil if
// none.
func (f *federation) received(ctx context.Context, n *fedNode, id string) (json.RawMessage, error) {
	if !n.up {
		return nil, nil
	}
	colls, err := n.st.Collections(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range colls {
		page, err := n.st.QueryObjects(ctx, entente.ObjectQuery{Collection: c.ID, IDs: []string{id}, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(page.Entries) > 0 {
			return page.Entries[0].Raw, nil
		}
	}
	return nil, nil
}
