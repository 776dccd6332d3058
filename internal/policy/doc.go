// Package policy is Entente's one sharing gate: it decides, for every
// object that would leave the node, whether a partner may have it under
// the sharing agreement the node has with that partner, and what is
// redacted from it. Every egress (TAXII reads by a partner's key, pushes
// to peers, alert notifications, exports, the node API) calls
// [Gate.Release] (or [Gate.Check] when it only needs the verdict) and
// records the decision's rule id in the audit log; [Gate.Preview] and
// [Gate.Decide] list what a partner would receive and explain, for each
// object, the rule that allows or withholds it. Check costs well under a
// microsecond and does not allocate, so gating a TAXII read adds little to
// it. The package is pure: no I/O, no clock (the caller passes now), safe
// for concurrent use.
//
// # Use
//
//	gate := policy.NewGate(self, directory.CountryOf)
//	tlp, residency := markings.Classify(obj.MarkingRefs, collection.DefaultTLP)
//	meta := policy.ObjectMeta{ID: obj.ID, Type: obj.Type, Collection: coll,
//		TLP: tlp, Residency: residency, Origin: provenance.Org, ReceivedFromPeer: provenance.Peer}
//	rel, d, err := gate.Release(agreement, partner, meta, obj.Raw, time.Now())
//	// audit(partner, obj.ID, d.Rule); if d.Allow, send rel.Object and rel.Related
//
// # Parties, agreements and markings
//
// The node's organisation and each partner are a [Party]: a STIX identity
// id, a country (ISO 3166-1 alpha-2, checked against the full table by
// [IsCountry]) and a sector. An [Agreement] with a partner names the
// collections and object types it covers, the highest TLP level the
// partner may receive, whether objects received from third parties may be
// passed on, the redactions applied, and the period it is in force.
// [Agreement.Validate] rejects an unknown collection or country, naming
// the field.
//
// An object's TLP level is its own TLP 2.0 (or 1.0) marking, the most
// restrictive if it has several, else its collection's default; its
// residency is given by residency markings, marking definitions carrying
// the extension [ResidencyExtensionID] (see [ResidencyMarking] for the
// JSON): the partner's country must be one of the jurisdictions named.
// [Markings.Classify] resolves both from object_marking_refs.
//
// TLP 2.0 meaning, as applied: CLEAR: anyone (any partner with a key, even
// without an agreement). GREEN: the community, partners with an agreement
// in force. AMBER and AMBER+STRICT: partners whose agreement's MaxTLP
// reaches the level (what the partner may do with it afterwards is the
// partner's obligation). RED: never leaves the node.
//
// # Rules
//
// [Gate.Decide] applies these rules in order; the first that decides
// gives the decision's Rule id. "Own" means the object's Origin is "" or
// the node's identity; otherwise it came from a third party.
//
//	| # | rule id                      | decision | when |
//	|---|------------------------------|----------|------|
//	| 1 | tlp.red                      | withhold | the object is TLP:RED |
//	| 2 | agreement.partner            | withhold | the agreement passed is not with this partner (a caller error) |
//	| 3 | residency                    | withhold | the object has residency markings and the partner's country is not among their jurisdictions |
//	| 4 | tlp.clear.public             | allow    | no agreement in force (none, not yet valid, expired) and the object is own and CLEAR |
//	| 5 | reshare.no-agreement         | withhold | a third party's CLEAR object with no agreement in force, or outside the agreement's collections or types |
//	| 6 | agreement.none               | withhold | no agreement, object above CLEAR |
//	|   | agreement.not-yet-valid      | withhold | agreement not yet in force (now < valid_from), object above CLEAR |
//	|   | agreement.expired            | withhold | agreement expired (now >= valid_until), object above CLEAR |
//	| 7 | redact.third-party-identity  | withhold | the agreement removes third-party identities and the object is an identity other than the node's or the partner's |
//	| 8 | redact.free-text-note        | withhold | the agreement strips free text and the object is a note |
//	| 9 | agreement.collection         | withhold | the collection is not covered (own CLEAR objects still go by rule 4, with the agreement's redactions) |
//	|10 | agreement.object-type        | withhold | the type is not covered (same exception as rule 9), unless the object is a retraction of objects the partner received ([ObjectMeta.Retraction]) |
//	|11 | tlp.above-agreement          | withhold | the object's TLP is above the agreement's MaxTLP |
//	|12 | reshare.originator           | allow    | a third party's object sent back to that same party (its originator) |
//	|13 | reshare.not-allowed          | withhold | a third party's object and the agreement does not allow passing such objects on |
//	|14 | reshare.third-party-amber    | withhold | a third party's AMBER or AMBER+STRICT object: an AMBER object from A is never sent on to C |
//	|15 | retraction                   | allow    | everything above passed for a retraction whose type the agreement does not cover: it follows what it retracts |
//	|16 | agreement                    | allow    | everything above passed: the agreement covers the object |
//
// Origin, not created_by_ref, decides whether an object is a third
// party's: it is the provenance the node recorded when it received the
// object (which peer, from which organisation), and cannot be forged by
// the object's content.
//
// # Blind access
//
// An agreement may also grant blind access ([BlindAccess]): the partner
// tests values from its own logs against indicators it may not receive
// (internal/blind). [Gate.CheckBlind] decides which indicators' values
// are in its blinded set, by its own table of rules (blind.none,
// blind.type, blind.collection, blind.residency, blind.reshare,
// blind.member): TLP does not withhold, since only OPRF outputs leave,
// but residency and the rules of re-sharing do. Releasing an indicator
// after a hit is an ordinary release, decided by [Gate.Check].
//
// # Redactions
//
// While an agreement is in force its redactions apply to every object
// released to its partner, listed in [Decision.Redactions] and applied by
// [Gate.Release]:
//
//   - sighting.victims-to-country: a sighting's where_sighted_refs are
//     replaced by country locations ([CountryLocation], deterministic ids)
//     of the victims, found with [Gate.CountryOf]; victims whose country is
//     unknown are dropped; the location objects are returned in
//     [Released.Related] to be sent with the sighting.
//   - identity.third-party-refs: references (any *_ref or *_refs property)
//     to identities other than the node's and the partner's are removed.
//     When the reference is required (source_ref, target_ref,
//     sighting_of_ref, or a whole object_refs list) the object is
//     withheld with rule redact.third-party-identity.
//   - free-text: the properties in [FreeTextProperties], every custom
//     property (x_…), and the description of each external reference are
//     removed.
//
// An object released without redaction keeps its exact bytes.
package policy
