// Package match compiles indicators into a [Snapshot] built for lookup
// and matches network logs against it at memory speed, aggregating the
// hits into STIX sightings.
//
// Indicators whose pattern is one comparison, or an OR of comparisons, on
// IPv4 or IPv6 addresses and networks, domain names, URLs, file hashes or
// e-mail addresses are compiled; other STIX patterns go to a
// [PatternSet], evaluated against each log record as an observation (see
// [PatternSet] for how records are picked and how patterns over several
// records are decided). Revoked and expired indicators are left out. Values from
// plain lists have no indicator object: their indicator ids are derived
// from the values ([DerivedID]).
//
// Matching semantics: an address matches an equal address and every
// network containing it; a domain matches itself and every parent domain
// (www.evil.com matches evil.com, notevil.com does not); a URL matches
// the canonical URL regardless of http or https; hashes match by
// algorithm; nothing matches by substring.
//
// Speed: a run parses each address of a line into a number when the
// line is read, computes its table hash and notes the slots it will
// read, and defers the line; after a batch of lines it touches those
// slots in tight loops whose cache misses overlap, and only then matches
// each line in order with what was parsed. An address keeps no bytes;
// other values are copied only when they lie outside the line. Addresses
// skip the prefix table unless a bitmap (by /24 for IPv4, by a hash of
// the first 32 bits for IPv6) says a network may contain them, and large
// tables ask for transparent huge pages to spare page walks. None of this
// changes a result.
package match
