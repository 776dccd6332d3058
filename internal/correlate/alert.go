package correlate

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/stix"
)

// AlertType is the STIX type of an alert object, a new SDO defined by the
// extension definition [ExtensionID].
const AlertType = "x-entente-alert"

// ExtensionID is the identifier of the extension definition of alerts.
// It is fixed, so that every node and every partner's tool refers to the
// same definition.
const ExtensionID = "extension-definition--0c2b6f4e-7d5a-4c8e-9a1b-3e6f2d8c5a71"

// AuthorID is the identity that authors the extension definition: the
// Entente project.
const AuthorID = "identity--8a3f5c1e-2b7d-4e9a-b6c0-5d1e3f7a9b24"

// Change says what happened to an alert.
type Change string

// The changes [Engine.Add] reports.
const (
	ChangeNone      Change = ""          // a snapshot, as returned by [Engine.Alerts]
	ChangeCreated   Change = "created"   // the alert was raised
	ChangeEscalated Change = "escalated" // its tier rose
	ChangeUpdated   Change = "updated"   // its counts, countries or times grew
	// ChangeSuperseded: a late sighting showed that the alert's run of
	// windows began in an earlier epoch, whose alert (SupersededBy) now
	// covers it; the node revokes this one.
	ChangeSuperseded Change = "superseded"
	// ChangeLowered: evidence was retracted or its source quarantined,
	// and what remains meets a lower tier.
	ChangeLowered Change = "lowered"
	// ChangeWithdrawn: nothing that remains supports the alert; the node
	// revokes it.
	ChangeWithdrawn Change = "withdrawn"
)

// SourceEvidence is what one independent source vouched for within an
// alert's span.
type SourceEvidence struct {
	// Source is the origin node (its identity id) that vouched.
	Source string `json:"source"`
	// Weight is the source's trust weight when the alert was computed.
	Weight float64 `json:"weight"`
	// Organisations and Countries are those it vouched for.
	Organisations int      `json:"organisations"`
	Countries     []string `json:"countries"`
}

// Alert is a coordinated alert: a threat sighted by enough organisations in
// enough countries within a window. Every field derives from the sightings
// alone, so nodes holding the same sightings hold the same Alert.
type Alert struct {
	// ID is the alert's STIX id (see [AlertID]).
	ID string
	// Threat is the threat alerted on.
	Threat ThreatKey
	// Tier is the name of the highest tier met, TierRank its 1-based rank
	// in the configuration.
	Tier     string
	TierRank int
	// Change is what the sighting that returned this alert changed.
	Change Change
	// Epoch is the start of the alert's epoch; it is the alert's STIX
	// created timestamp.
	Epoch time.Time
	// Window is the correlation window.
	Window time.Duration
	// Organisations is the number of distinct organisations that sighted
	// the threat within the alert's span; Countries are their countries,
	// sorted.
	Organisations int
	Countries     []string
	// FirstSeen and LastSeen bound the sightings within the span.
	FirstSeen, LastSeen time.Time
	// SupersededBy is set, with Change ChangeSuperseded, on an alert that
	// another now covers.
	SupersededBy string
	// Withdrawn is set on an alert that nothing supports any more.
	Withdrawn bool
	// SourceCount is the number of independent sources that vouched for
	// the sightings within the span, SourceWeight their weighted count
	// (what each vouched for: [Engine.Evidence]).
	SourceCount  int
	SourceWeight float64
	// Version is the alert's STIX modified timestamp as the engine
	// reported it (later for every change); zero outside the engine, and
	// then [Alert.Modified] gives it.
	Version time.Time
}

// Modified returns the alert's STIX modified timestamp, derived from its
// content: the later of its epoch start and last seen, plus one
// millisecond per tier rank, organisation, country and source, and one
// more when it is superseded. Each of those only grows as sightings arrive, so every
// change of content that adds an organisation, a country, a tier or a
// later sighting yields a later version, and nodes with the same sightings
// produce the same version.
func (a Alert) Modified() time.Time {
	m := a.LastSeen.Truncate(time.Millisecond)
	if a.Epoch.After(m) {
		m = a.Epoch
	}
	n := a.TierRank + a.Organisations + len(a.Countries) + a.SourceCount
	if a.SupersededBy != "" {
		n++
	}
	return m.Add(time.Duration(n) * time.Millisecond)
}

// version is the alert's STIX modified timestamp: Version when the
// engine set it, else Modified.
func (a Alert) version() time.Time {
	if !a.Version.IsZero() {
		return a.Version
	}
	return a.Modified()
}

// alertJSON is the STIX shape of an alert; field order is the output order.
type alertJSON struct {
	Type              string                     `json:"type"`
	SpecVersion       string                     `json:"spec_version"`
	ID                string                     `json:"id"`
	Created           string                     `json:"created"`
	Modified          string                     `json:"modified"`
	Name              string                     `json:"name"`
	Tier              string                     `json:"tier"`
	ThreatRef         string                     `json:"threat_ref"`
	OrganisationCount int                        `json:"organisation_count"`
	CountryCount      int                        `json:"country_count"`
	Countries         []string                   `json:"countries"`
	FirstSeen         string                     `json:"first_seen"`
	LastSeen          string                     `json:"last_seen"`
	WindowSeconds     int64                      `json:"window_seconds"`
	SourceCount       int                        `json:"source_count,omitempty"`
	Revoked           bool                       `json:"revoked,omitempty"`
	Withdrawn         bool                       `json:"withdrawn,omitempty"`
	SupersededByRef   string                     `json:"superseded_by_ref,omitempty"`
	Extensions        map[string]extensionMarker `json:"extensions"`
}

type extensionMarker struct {
	ExtensionType string `json:"extension_type"`
}

// AlertObject returns the alert as a STIX 2.1 object of type
// x-entente-alert. Identical alerts give byte-identical objects; a
// superseded alert is revoked and names its successor. The
// object carries no created_by_ref and no lifecycle status: both differ
// from node to node, and the object must not.
func AlertObject(a Alert) json.RawMessage {
	countries := a.Countries
	if countries == nil {
		countries = []string{}
	}
	o := alertJSON{
		Type:              AlertType,
		SpecVersion:       "2.1",
		ID:                a.ID,
		Created:           stix.FormatTimestamp(a.Epoch),
		Modified:          stix.FormatTimestamp(a.version()),
		Name:              a.Tier + " alert: " + string(a.Threat),
		Tier:              a.Tier,
		ThreatRef:         string(a.Threat),
		OrganisationCount: a.Organisations,
		CountryCount:      len(a.Countries),
		Countries:         countries,
		FirstSeen:         stix.FormatTimestamp(a.FirstSeen),
		LastSeen:          stix.FormatTimestamp(a.LastSeen),
		WindowSeconds:     int64(a.Window / time.Second),
		SourceCount:       a.SourceCount,
		Revoked:           a.SupersededBy != "" || a.Withdrawn,
		Withdrawn:         a.Withdrawn,
		SupersededByRef:   a.SupersededBy,
		Extensions:        map[string]extensionMarker{ExtensionID: {ExtensionType: "new-sdo"}},
	}
	b, err := json.Marshal(o)
	if err != nil { // cannot happen: only strings, ints and slices of strings
		panic("correlate: marshal alert: " + err.Error())
	}
	return b
}

// alertSchema is the JSON schema of the alert SDO, carried as the
// extension definition's schema text.
const alertSchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema",` +
	`"title":"x-entente-alert","description":"A coordinated alert: one threat sighted by many organisations in many countries within a window.",` +
	`"type":"object","required":["type","spec_version","id","created","modified","tier","threat_ref","organisation_count","country_count","countries","first_seen","last_seen","window_seconds","extensions"],` +
	`"properties":{"type":{"const":"x-entente-alert"},` +
	`"id":{"type":"string","pattern":"^x-entente-alert--[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$","description":"UUIDv5 of the threat and the epoch start; identical on every node."},` +
	`"tier":{"type":"string","description":"Highest tier met, e.g. national, regional, global."},` +
	`"threat_ref":{"type":"string","description":"The malware, campaign or indicator the alert is about."},` +
	`"organisation_count":{"type":"integer","minimum":1},` +
	`"country_count":{"type":"integer","minimum":1},` +
	`"countries":{"type":"array","items":{"type":"string","pattern":"^[A-Z]{2}$"},"description":"ISO 3166-1 alpha-2 codes, sorted."},` +
	`"first_seen":{"type":"string","format":"date-time"},"last_seen":{"type":"string","format":"date-time"},` +
	`"window_seconds":{"type":"integer","minimum":1},` +
	`"source_count":{"type":"integer","minimum":1,"description":"Independent sources (origin nodes) that vouched for the sightings."},` +
	`"revoked":{"type":"boolean","description":"Set when the alert is superseded or withdrawn."},` +
	`"withdrawn":{"type":"boolean","description":"Set when nothing supports the alert any more (evidence retracted, its source quarantined)."},` +
	`"superseded_by_ref":{"type":"string","pattern":"^x-entente-alert--","description":"The alert that now covers this one."}}}`

// ExtensionDefinition returns the STIX extension-definition object that
// defines the x-entente-alert SDO, with its JSON schema as the schema
// text. Share it with alerts so partners' tools can read them.
func ExtensionDefinition() json.RawMessage {
	o := struct {
		Type           string   `json:"type"`
		SpecVersion    string   `json:"spec_version"`
		ID             string   `json:"id"`
		CreatedByRef   string   `json:"created_by_ref"`
		Created        string   `json:"created"`
		Modified       string   `json:"modified"`
		Name           string   `json:"name"`
		Description    string   `json:"description"`
		Schema         string   `json:"schema"`
		Version        string   `json:"version"`
		ExtensionTypes []string `json:"extension_types"`
	}{
		Type: "extension-definition", SpecVersion: "2.1", ID: ExtensionID, CreatedByRef: AuthorID,
		Created: "2026-11-01T00:00:00.000Z", Modified: "2026-11-01T00:00:00.000Z",
		Name:           "Entente coordinated alert",
		Description:    "Defines x-entente-alert, a coordinated alert raised when one threat is sighted by many organisations in many countries within a sliding window.",
		Schema:         alertSchema,
		Version:        "1.0.0",
		ExtensionTypes: []string{"new-sdo"},
	}
	b, err := json.Marshal(o)
	if err != nil {
		panic("correlate: marshal extension definition: " + err.Error())
	}
	return b
}

// AuthorIdentity returns the identity object named by the extension
// definition's created_by_ref.
func AuthorIdentity() json.RawMessage {
	return json.RawMessage(`{"type":"identity","spec_version":"2.1","id":"` + AuthorID +
		`","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","name":"Entente project","identity_class":"organization"}`)
}

// ParseAlertObject reads an x-entente-alert object (as [AlertObject]
// writes it, from this node or a partner's) back into an Alert. The
// tier's rank is not in the object: rankOf gives it from the receiving
// node's configuration (0 for a tier it does not know). Change is
// ChangeSuperseded for a revoked alert, else ChangeNone.
func ParseAlertObject(raw []byte, rankOf func(tier string) int) (Alert, error) {
	var o alertJSON
	if err := json.Unmarshal(raw, &o); err != nil {
		return Alert{}, fmt.Errorf("alert object: %w", err)
	}
	if o.Type != AlertType {
		return Alert{}, fmt.Errorf("alert object: type %q is not %s", o.Type, AlertType)
	}
	if !strings.HasPrefix(o.ID, AlertType+"--") {
		return Alert{}, fmt.Errorf("alert object: id %q is not an %s id", o.ID, AlertType)
	}
	if o.Tier == "" || o.ThreatRef == "" {
		return Alert{}, fmt.Errorf("alert %s: tier and threat_ref are required", o.ID)
	}
	a := Alert{ID: o.ID, Threat: ThreatKey(o.ThreatRef), Tier: o.Tier, Organisations: o.OrganisationCount, SourceCount: o.SourceCount,
		Countries: o.Countries, Window: time.Duration(o.WindowSeconds) * time.Second, SupersededBy: o.SupersededByRef}
	if rankOf != nil {
		a.TierRank = rankOf(o.Tier)
	}
	var err error
	for _, f := range []struct {
		name string
		s    string
		t    *time.Time
	}{{"created", o.Created, &a.Epoch}, {"first_seen", o.FirstSeen, &a.FirstSeen}, {"last_seen", o.LastSeen, &a.LastSeen}} {
		if *f.t, err = stix.ParseTimestamp(f.s); err != nil {
			return Alert{}, fmt.Errorf("alert %s: %s: %w", o.ID, f.name, err)
		}
	}
	a.Withdrawn = o.Withdrawn
	switch {
	case o.Withdrawn:
		a.Change = ChangeWithdrawn
	case o.Revoked:
		a.Change = ChangeSuperseded
	}
	if t, err := stix.ParseTimestamp(o.Modified); err == nil {
		a.Version = t
	}
	return a, nil
}
