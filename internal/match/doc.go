// Package match compiles indicators into a [Snapshot] built for lookup
// and matches network logs against it at memory speed, aggregating the
// hits into STIX sightings.
//
// Indicators whose pattern is one comparison, or an OR of comparisons, on
// IPv4 or IPv6 addresses and networks, domain names, URLs, file hashes or
// e-mail addresses are compiled; other patterns are left to the pattern
// evaluator. Revoked and expired indicators are left out. Values from
// plain lists have no indicator object: their indicator ids are derived
// from the values ([DerivedID]).
//
// Matching semantics: an address matches an equal address and every
// network containing it; a domain matches itself and every parent domain
// (www.evil.com matches evil.com, notevil.com does not); a URL matches
// the canonical URL regardless of http or https; hashes match by
// algorithm; nothing matches by substring.
package match
