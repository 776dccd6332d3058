package node

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// Identity describes the organisation that runs a node.
type Identity struct {
	// ID is the STIX identity id of the organisation.
	ID string `json:"id"`
	// Name is the organisation's name.
	Name string `json:"name"`
	// Country is the ISO 3166-1 alpha-2 code of its jurisdiction.
	Country string `json:"country"`
	// Sector is its STIX industry sector (open vocabulary), if given.
	Sector string `json:"sector,omitempty"`
}

// settingIdentity is the setting that holds the node's Identity.
const settingIdentity = "node.identity"

// Default collection aliases created by Init.
const (
	CollectionNode      = "node"
	CollectionIntel     = "intel"
	CollectionSightings = "sightings"
	CollectionAlerts    = "alerts"
)

// Identity returns the node's identity. ENOTFOUND if the node has not been
// initialised.
func (s *Service) Identity(ctx context.Context) (Identity, error) {
	b, err := s.st.Setting(ctx, settingIdentity)
	if err != nil {
		if entente.ErrorCode(err) == entente.ENOTFOUND {
			return Identity{}, entente.Errorf(entente.ENOTFOUND, "the node has not been initialised (run entente init)")
		}
		return Identity{}, fmt.Errorf("read node identity: %w", err)
	}
	var id Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return Identity{}, fmt.Errorf("decode node identity: %w", err)
	}
	return id, nil
}

// Init initialises an empty node: it records the organisation as a STIX
// identity located in its country, creates the default collections and
// the first admin key, and returns that key's secret (shown once).
// ECONFLICT if the node is already initialised; EINVALID names a bad
// name or country.
func (s *Service) Init(ctx context.Context, name, country, sector string) (Identity, string, error) {
	if name == "" {
		return Identity{}, "", entente.Errorf(entente.EINVALID, "org: a name is required")
	}
	if !policy.IsCountry(country) {
		return Identity{}, "", entente.Errorf(entente.EINVALID, "country: %q is not an ISO 3166-1 alpha-2 code", country)
	}
	if _, err := s.st.Setting(ctx, settingIdentity); err == nil {
		return Identity{}, "", entente.Errorf(entente.ECONFLICT, "the node is already initialised")
	} else if entente.ErrorCode(err) != entente.ENOTFOUND {
		return Identity{}, "", fmt.Errorf("read node identity: %w", err)
	}
	id := Identity{ID: stix.NewID("identity"), Name: name, Country: country, Sector: sector}
	admin := LocalAdmin(id.ID)
	now := stix.FormatTimestamp(s.now().Truncate(time.Millisecond))

	identity := map[string]any{
		"type": "identity", "spec_version": "2.1", "id": id.ID, "created": now, "modified": now,
		"name": name, "identity_class": "organization",
		"object_marking_refs": []string{stix.TLPClear.MarkingID()},
	}
	if sector != "" {
		identity["sectors"] = []string{sector}
	}
	locID, location := policy.CountryLocation(country)
	located := map[string]any{
		"type": "relationship", "spec_version": "2.1", "id": stix.NewID("relationship"),
		"created": now, "modified": now, "relationship_type": "located-at",
		"source_ref": id.ID, "target_ref": locID,
		"object_marking_refs": []string{stix.TLPClear.MarkingID()},
	}
	// Intelligence first: clients that take the first collection they
	// may write to (as many TAXII tools do) should land there.
	collections := []entente.Collection{
		{Alias: CollectionIntel, Title: "Threat intelligence", Description: "Indicators, observables and the threats they indicate.",
			DefaultMarking: stix.TLPAmber.MarkingID(),
			ReadRoles:      []entente.Role{entente.RoleAnalyst, entente.RolePartner, entente.RoleSensor}, WriteRoles: []entente.Role{entente.RoleAnalyst}},
		{Alias: CollectionSightings, Title: "Sightings", Description: "Sightings reported by this node's sensors and by partners.",
			DefaultMarking: stix.TLPAmber.MarkingID(),
			ReadRoles:      []entente.Role{entente.RoleAnalyst, entente.RolePartner}, WriteRoles: []entente.Role{entente.RoleAnalyst, entente.RoleSensor, entente.RolePartner}},
		{Alias: CollectionAlerts, Title: "Coordinated alerts", Description: "Alerts computed from sightings across organisations and countries.",
			DefaultMarking: stix.TLPGreen.MarkingID(),
			ReadRoles:      []entente.Role{entente.RoleAnalyst, entente.RolePartner, entente.RoleSensor}, WriteRoles: []entente.Role{}},
		{Alias: CollectionNode, Title: "This node", Description: "The identity and location of the organisation that runs this node.",
			DefaultMarking: stix.TLPClear.MarkingID(),
			ReadRoles:      []entente.Role{entente.RoleAnalyst, entente.RolePartner, entente.RoleSensor}, WriteRoles: []entente.Role{}},
	}
	for _, c := range collections {
		if _, err := s.CreateCollection(ctx, admin, c); err != nil {
			return Identity{}, "", fmt.Errorf("create collection %s: %w", c.Alias, err)
		}
	}
	var raws []json.RawMessage
	for _, o := range []any{identity, located} {
		b, err := json.Marshal(o)
		if err != nil {
			return Identity{}, "", err
		}
		raws = append(raws, b)
	}
	raws = append(raws, location, stix.TLPMarkingObject(stix.TLPClear))
	st, err := s.AddObjects(ctx, admin, CollectionNode, raws)
	if err != nil {
		return Identity{}, "", fmt.Errorf("store node identity: %w", err)
	}
	if st.FailureCount > 0 {
		return Identity{}, "", fmt.Errorf("store node identity: %s", st.Failures[0].Message)
	}
	secret, _, err := s.CreateKey(ctx, admin, NewKey{Name: "first admin", Org: id.ID, Role: entente.RoleAdmin})
	if err != nil {
		return Identity{}, "", fmt.Errorf("create admin key: %w", err)
	}
	b, _ := json.Marshal(id)
	if err := s.st.PutSetting(ctx, settingIdentity, b); err != nil {
		return Identity{}, "", fmt.Errorf("record node identity: %w", err)
	}
	s.cfg.Org = id.ID
	s.log.InfoContext(ctx, "node initialised", "org", id.ID, "name", name, "country", country)
	return id, secret, nil
}
