// Package stix is the STIX 2.1 object model of Entente: decoding objects
// while keeping every property (custom properties and extensions
// included), validating them against the rules the specification makes
// MUST, reading bundles fast, deterministic identifiers for
// cyber-observable objects, and the TLP 2.0 marking definitions.
//
// Objects are kept as their verbatim JSON plus the common properties the
// node reasons about ([Object], [Decode]); re-encoding an Object yields
// the JSON it was decoded from, so nothing a producer wrote is lost.
// Typed views of the few types the node reasons about (identity,
// indicator, sighting, relationship, marking-definition) are decoded on
// demand from that JSON.
//
// [Validate] checks one object: the type name and identifier forms,
// spec_version "2.1", timestamps (RFC 3339 in UTC, created and modified
// precise to the millisecond, modified not before created), marking
// references and granular markings, external references, kill-chain
// phases, that every *_ref and *_refs value is an identifier (of the
// types the specification fixes, where it does), the required properties
// and value rules of every SDO, SRO, SCO and meta object, and the closed
// enumerations, and that an indicator's pattern, when its pattern_type is
// "stix", parses and passes the semantic checks of
// internal/stix/pattern (the problem gives the parser's column and
// reason). Open vocabularies and SHOULD rules (such as deterministic
// SCO identifiers, see [SCOIDMatches]) are not enforced. Objects of
// custom types get the generic rules; custom property names must have
// the specification's form. Every problem found is reported in one
// [*ValidationError] that names the object and each property at fault.
//
// [ReadBundle] splits a bundle, a JSON list of objects or a single
// object into objects with a hand-written scanner over the whole input,
// checking the JSON syntax once; decoding and validating the objects is
// left to the caller, which may do it in parallel.
//
// Validation uses a small JSON parser of its own (strict RFC 8259, keeps
// member order, reports duplicate names, strings share the input's
// memory), which is several times faster than encoding/json into maps.
// Its trees live in pooled scratch memory, so validating an object of
// ordinary size allocates nothing: a large envelope leaves no garbage
// behind its validation.
package stix
