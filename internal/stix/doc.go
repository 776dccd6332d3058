// Package stix is the STIX 2.1 object model of Entente: decoding objects
// while keeping every property (custom properties and extensions included),
// validating them against the rules the specification makes MUST,
// deterministic identifiers for cyber-observable objects, and the TLP 2.0
// marking definitions.
//
// Objects are kept as their verbatim JSON plus the common properties the
// node reasons about; re-encoding an Object yields the JSON it was decoded
// from, so nothing a producer wrote is lost.
package stix
