package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/stix/pattern"
	"github.com/entente-cti/entente/internal/taxonomy"
)

// NewIndicator is an indicator an analyst writes (or the next version of
// one the node owns, when ID is set).
type NewIndicator struct {
	ID          string   `json:"id,omitempty"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Pattern     string   `json:"pattern"`
	ValidFrom   string   `json:"valid_from,omitempty"`
	Labels      []string `json:"labels,omitempty"`
	TLP         string   `json:"tlp,omitempty"`
	Collection  string   `json:"collection,omitempty"`
}

// PatternError is a pattern that does not parse: the message and the
// 0-based column of the fault (in runes, within its line).
type PatternError struct {
	Msg    string
	Column int
}

func (e *PatternError) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

// ValidatePattern parses a STIX pattern with the node's own parser. A
// nil error means it is valid; otherwise the error is EINVALID and wraps
// a *PatternError.
func ValidatePattern(p string) error {
	if strings.TrimSpace(p) == "" {
		return &entente.Error{Code: entente.EINVALID, Message: "pattern: empty", Err: &PatternError{Msg: "empty pattern"}}
	}
	if _, err := pattern.Parse(p); err != nil {
		pe := &PatternError{Msg: err.Error()}
		if se, ok := errors.AsType[*pattern.SyntaxError](err); ok {
			pe.Column, pe.Msg = se.Column, se.Msg
		}
		return &entente.Error{Code: entente.EINVALID, Message: "pattern: " + pe.Error(), Err: pe}
	}
	return nil
}

// Created is an object the workbench stored.
type Created struct {
	ID     string          `json:"id"`
	Object json.RawMessage `json:"object"`
}

// visible returns the latest version of id as p may read it through the
// gate, and the collection that holds it. ENOTFOUND when p may read none.
func (s *Service) visible(ctx context.Context, p entente.Principal, id string) (entente.Collection, entente.ObjectEntry, error) {
	if !stix.ValidID(id) {
		return entente.Collection{}, entente.ObjectEntry{}, entente.Errorf(entente.EINVALID, "object: %q is not a STIX id (type--uuid)", id)
	}
	colls, err := s.Collections(ctx, p)
	if err != nil {
		return entente.Collection{}, entente.ObjectEntry{}, err
	}
	for _, c := range colls {
		if !c.CanRead(p.Role) {
			continue
		}
		page, err := s.release(ctx, p, c.ID, entente.ObjectQuery{IDs: []string{id}, Limit: 1})
		if err != nil {
			return entente.Collection{}, entente.ObjectEntry{}, err
		}
		if len(page.Entries) > 0 {
			return c, page.Entries[0], nil
		}
	}
	return entente.Collection{}, entente.ObjectEntry{}, entente.Errorf(entente.ENOTFOUND, "no collection you may read holds %q", id)
}

// storeAnnotation validates and stores objects the workbench made in collection as
// p, audits it, and returns the first.
func (s *Service) storeAnnotation(ctx context.Context, p entente.Principal, collection, what string, objs ...map[string]any) (Created, error) {
	raws := make([]json.RawMessage, len(objs))
	for i, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			return Created{}, fmt.Errorf("encode %s: %w", what, err)
		}
		raws[i] = b
	}
	st, err := s.AddObjects(ctx, p, collection, raws)
	if err != nil {
		return Created{}, err
	}
	if st.FailureCount > 0 {
		return Created{}, entente.Errorf(entente.EINVALID, "%s: %s", what, st.Failures[0].Message)
	}
	id, _ := objs[0]["id"].(string)
	if err := s.gate.AuditAdmin(ctx, p, "workbench", "", fmt.Sprintf("%s %s stored in collection %s", what, id, collection), nil); err != nil {
		return Created{}, err
	}
	return Created{ID: id, Object: raws[0]}, nil
}

// newObject returns the common properties of an object the node's
// organisation creates now.
func (s *Service) newObject(ctx context.Context, typ string) (map[string]any, error) {
	self, err := s.selfParty(ctx)
	if err != nil {
		return nil, err
	}
	now := stix.FormatTimestamp(s.now())
	o := map[string]any{"type": typ, "spec_version": "2.1", "id": stix.NewID(typ), "created": now, "modified": now}
	if self.ID != "" {
		o["created_by_ref"] = self.ID
	}
	return o, nil
}

// writableCollection returns the collection named (which p must be able
// to write), or the first p may write.
func (s *Service) writableCollection(ctx context.Context, p entente.Principal, name string) (entente.Collection, error) {
	if name != "" {
		c, err := s.Collection(ctx, p, name)
		if err != nil {
			return entente.Collection{}, err
		}
		if !c.CanWrite(p.Role) {
			return entente.Collection{}, entente.Errorf(entente.EFORBIDDEN, "collection: your role %q may not write to %s", p.Role, name)
		}
		return c, nil
	}
	colls, err := s.Collections(ctx, p)
	if err != nil {
		return entente.Collection{}, err
	}
	for _, c := range colls {
		if c.CanWrite(p.Role) {
			return c, nil
		}
	}
	return entente.Collection{}, entente.Errorf(entente.EFORBIDDEN, "no collection may be written by your role %q", p.Role)
}

// CreateIndicator stores an indicator written by an analyst, as the
// node's organisation (analyst or admin). With ni.ID set it stores the
// next version of an indicator the node owns. The pattern is checked
// with the node's parser: a bad one is EINVALID wrapping a
// *PatternError.
func (s *Service) CreateIndicator(ctx context.Context, p entente.Principal, ni NewIndicator) (Created, error) {
	if err := requireAnalyst(p, "writing indicators"); err != nil {
		return Created{}, err
	}
	if strings.TrimSpace(ni.Name) == "" {
		return Created{}, entente.Errorf(entente.EINVALID, "name: required")
	}
	if err := ValidatePattern(ni.Pattern); err != nil {
		return Created{}, err
	}
	o, err := s.newObject(ctx, "indicator")
	if err != nil {
		return Created{}, err
	}
	collection := ni.Collection
	if ni.ID != "" {
		c, e, err := s.visible(ctx, p, ni.ID)
		if err != nil {
			return Created{}, err
		}
		obj, err := stix.Decode(e.Raw)
		if err != nil {
			return Created{}, fmt.Errorf("read %s: %w", ni.ID, err)
		}
		self, _ := o["created_by_ref"].(string)
		if obj.Type != "indicator" {
			return Created{}, entente.Errorf(entente.EINVALID, "id: %s is not an indicator", ni.ID)
		}
		if owned, err := s.owns(ctx, c.ID, e, obj, self); err != nil {
			return Created{}, err
		} else if !owned {
			return Created{}, entente.Errorf(entente.EFORBIDDEN, "id: %s belongs to another organisation; add a note or an opinion instead", ni.ID)
		}
		o["id"], o["created"] = ni.ID, stix.FormatTimestamp(obj.Created)
		mod := s.now()
		if !mod.After(obj.Version()) {
			mod = obj.Version().Add(time.Millisecond)
		}
		o["modified"] = stix.FormatTimestamp(mod)
		if collection == "" {
			collection = c.ID
		}
	}
	c, err := s.writableCollection(ctx, p, collection)
	if err != nil {
		return Created{}, err
	}
	o["name"], o["pattern"], o["pattern_type"] = ni.Name, ni.Pattern, "stix"
	o["valid_from"] = o["modified"]
	if ni.ValidFrom != "" {
		t, err := stix.ParseTimestamp(ni.ValidFrom)
		if err != nil {
			return Created{}, entente.Errorf(entente.EINVALID, "valid_from: %v", err)
		}
		o["valid_from"] = stix.FormatTimestamp(t)
	}
	if ni.Description != "" {
		o["description"] = ni.Description
	}
	if len(ni.Labels) > 0 {
		ls := cleanLabels(ni.Labels)
		if err := checkTags("labels", ls); err != nil {
			return Created{}, err
		}
		o["labels"] = ls
	}
	if ni.TLP != "" {
		t, err := stix.ParseTLP(ni.TLP)
		if err != nil {
			return Created{}, entente.Errorf(entente.EINVALID, "tlp: %v", err)
		}
		o["object_marking_refs"] = []string{t.MarkingID()}
	}
	return s.storeAnnotation(ctx, p, c.ID, "indicator", o)
}

// checkTags refuses a label that is a MISP machine tag of a taxonomy the
// node knows (see [Taxonomies]) but names no predicate or value of it:
// EINVALID naming the label, the field, and what the taxonomy allows.
// Free labels pass.
func checkTags(field string, labels []string) error {
	set, err := taxonomy.Builtin()
	if err != nil {
		return fmt.Errorf("load taxonomies: %w", err)
	}
	for i, l := range labels {
		if err := set.Check(l); err != nil {
			return entente.Errorf(entente.EINVALID, "%s[%d]: %v", field, i, err)
		}
	}
	return nil
}

// Taxonomies returns the MISP taxonomies whose machine tags the node
// checks labels against (any role: they are public reference data).
func (s *Service) Taxonomies(ctx context.Context, p entente.Principal) ([]taxonomy.Taxonomy, error) {
	set, err := taxonomy.Builtin()
	if err != nil {
		return nil, fmt.Errorf("load taxonomies: %w", err)
	}
	return set.Taxonomies(), nil
}

func cleanLabels(ls []string) []string {
	out := []string{}
	for _, l := range ls {
		if l = strings.TrimSpace(l); l != "" && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// AddNote stores a STIX note about an object p may read, as the node's
// organisation, beside it (analyst or admin).
func (s *Service) AddNote(ctx context.Context, p entente.Principal, id, content, abstract string) (Created, error) {
	if err := requireAnalyst(p, "writing notes"); err != nil {
		return Created{}, err
	}
	if strings.TrimSpace(content) == "" {
		return Created{}, entente.Errorf(entente.EINVALID, "content: required")
	}
	c, e, err := s.visible(ctx, p, id)
	if err != nil {
		return Created{}, err
	}
	o, err := s.newObject(ctx, "note")
	if err != nil {
		return Created{}, err
	}
	o["content"], o["object_refs"] = content, []string{id}
	if abstract != "" {
		o["abstract"] = abstract
	}
	copyMarkings(o, e.Raw)
	return s.storeAnnotation(ctx, p, c.ID, "note", o)
}

// Opinions are the values of a STIX opinion.
var Opinions = []string{"strongly-disagree", "disagree", "neutral", "agree", "strongly-agree"}

// AddOpinion stores a STIX opinion about an object p may read, as the
// node's organisation (analyst or admin).
func (s *Service) AddOpinion(ctx context.Context, p entente.Principal, id, opinion, explanation string) (Created, error) {
	if err := requireAnalyst(p, "writing opinions"); err != nil {
		return Created{}, err
	}
	if !slices.Contains(Opinions, opinion) {
		return Created{}, entente.Errorf(entente.EINVALID, "opinion: %q is not one of %s", opinion, strings.Join(Opinions, ", "))
	}
	c, e, err := s.visible(ctx, p, id)
	if err != nil {
		return Created{}, err
	}
	o, err := s.newObject(ctx, "opinion")
	if err != nil {
		return Created{}, err
	}
	o["opinion"], o["object_refs"] = opinion, []string{id}
	if explanation != "" {
		o["explanation"] = explanation
	}
	copyMarkings(o, e.Raw)
	return s.storeAnnotation(ctx, p, c.ID, "opinion", o)
}

// copyMarkings gives an annotation its object's markings: it says no more
// than the object, so it may go where the object goes.
func copyMarkings(o map[string]any, raw json.RawMessage) {
	var m struct {
		Markings []string `json:"object_marking_refs"`
	}
	if json.Unmarshal(raw, &m) == nil && len(m.Markings) > 0 {
		o["object_marking_refs"] = m.Markings
	}
}

// SetLabels adds and removes labels (tags) of an object p may read
// (analyst or admin): the node's own object gets a new version with its
// labels changed; another organisation's gets a note carrying the labels
// to add.
func (s *Service) SetLabels(ctx context.Context, p entente.Principal, id string, add, remove []string) (Created, error) {
	if err := requireAnalyst(p, "labelling objects"); err != nil {
		return Created{}, err
	}
	add, remove = cleanLabels(add), cleanLabels(remove)
	if len(add) == 0 && len(remove) == 0 {
		return Created{}, entente.Errorf(entente.EINVALID, "add, remove: nothing to change")
	}
	// Only what is added is checked: a label the taxonomy does not know
	// may always be removed.
	if err := checkTags("add", add); err != nil {
		return Created{}, err
	}
	c, e, err := s.visible(ctx, p, id)
	if err != nil {
		return Created{}, err
	}
	obj, err := stix.Decode(e.Raw)
	if err != nil {
		return Created{}, fmt.Errorf("read %s: %w", id, err)
	}
	self, err := s.selfParty(ctx)
	if err != nil {
		return Created{}, err
	}
	owned, err := s.owns(ctx, c.ID, e, obj, self.ID)
	if err != nil {
		return Created{}, err
	}
	if !owned || obj.Modified.IsZero() {
		// Another organisation's object (or an observable): a note says
		// which labels this node gives it.
		if len(add) == 0 {
			return Created{}, entente.Errorf(entente.EINVALID, "remove: %s belongs to another organisation; its labels can only be added to, by a note", id)
		}
		o, err := s.newObject(ctx, "note")
		if err != nil {
			return Created{}, err
		}
		o["content"], o["abstract"], o["labels"], o["object_refs"] = "Labels: "+strings.Join(add, ", "), "labels", add, []string{id}
		copyMarkings(o, e.Raw)
		return s.storeAnnotation(ctx, p, c.ID, "labels note", o)
	}
	// The full stored version (the gate may have redacted what p read).
	_, stored, err := s.findObject(ctx, id)
	if err != nil {
		return Created{}, err
	}
	var m map[string]any
	if err := json.Unmarshal(stored.Raw, &m); err != nil {
		return Created{}, fmt.Errorf("read %s: %w", id, err)
	}
	var labels []string
	if ls, ok := m["labels"].([]any); ok {
		for _, l := range ls {
			if s, ok := l.(string); ok {
				labels = append(labels, s)
			}
		}
	}
	labels = cleanLabels(append(labels, add...))
	labels = slices.DeleteFunc(labels, func(l string) bool { return slices.Contains(remove, l) })
	if len(labels) == 0 {
		delete(m, "labels")
	} else {
		m["labels"] = labels
	}
	mod := s.now()
	if !mod.After(obj.Version()) {
		mod = obj.Version().Add(time.Millisecond)
	}
	m["modified"] = stix.FormatTimestamp(mod)
	return s.storeAnnotation(ctx, p, c.ID, "labels of "+obj.Type, m)
}

// NewGrouping is a report or an incident that groups objects.
type NewGrouping struct {
	Type        string   `json:"type"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	ObjectRefs  []string `json:"object_refs"`
}

// CreateGrouping opens a report or an incident that groups objects p may
// read, as the node's organisation, in the collection of the first (or
// the first p may write) (analyst or admin).
func (s *Service) CreateGrouping(ctx context.Context, p entente.Principal, g NewGrouping) (Created, error) {
	if err := requireAnalyst(p, "writing reports"); err != nil {
		return Created{}, err
	}
	if g.Type != "report" && g.Type != "incident" {
		return Created{}, entente.Errorf(entente.EINVALID, "type: %q; \"report\" or \"incident\"", g.Type)
	}
	if strings.TrimSpace(g.Name) == "" {
		return Created{}, entente.Errorf(entente.EINVALID, "name: required")
	}
	if g.Type == "report" && len(g.ObjectRefs) == 0 {
		return Created{}, entente.Errorf(entente.EINVALID, "object_refs: a report refers to at least one object")
	}
	collection := ""
	for _, ref := range g.ObjectRefs {
		c, _, err := s.visible(ctx, p, ref)
		if err != nil {
			return Created{}, fmt.Errorf("object_refs: %w", err)
		}
		if collection == "" {
			collection = c.ID
		}
	}
	c, err := s.writableCollection(ctx, p, collection)
	if err != nil {
		return Created{}, err
	}
	o, err := s.newObject(ctx, g.Type)
	if err != nil {
		return Created{}, err
	}
	o["name"] = g.Name
	if g.Description != "" {
		o["description"] = g.Description
	}
	if g.Type == "report" {
		o["published"], o["object_refs"] = o["created"], g.ObjectRefs
		return s.storeAnnotation(ctx, p, c.ID, g.Type, o)
	}
	// An incident groups objects through relationships "related-to".
	objs := []map[string]any{o}
	for _, ref := range g.ObjectRefs {
		r, err := s.newObject(ctx, "relationship")
		if err != nil {
			return Created{}, err
		}
		r["relationship_type"], r["source_ref"], r["target_ref"] = "related-to", o["id"], ref
		objs = append(objs, r)
	}
	return s.storeAnnotation(ctx, p, c.ID, g.Type, objs...)
}
