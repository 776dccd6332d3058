// Package blind provides sovereign matching: a partner checks values from
// its own logs against intelligence that it may not receive, and neither
// side learns what the other holds beyond what the protocol gives it.
//
// The building block is an oblivious pseudo-random function, OPRF(k, x),
// as RFC 9497 specifies it, with the suite ristretto255-SHA512 from
// github.com/cloudflare/circl/oprf in its base mode. The node holds the key
// k; the partner holds x. The partner blinds x, the node evaluates the
// blinded element without seeing x, and the partner finalises the result
// into OPRF(k, x).
//
// The node publishes, per partner and epoch, a blinded [Set]: the OPRF
// outputs of the indicator values that the partner's agreement grants
// blind access to, as 32-bit fingerprints in sharded binary fuse filters.
// Nothing in the set can be tested without the key: to learn whether a
// value is in it, the partner needs one evaluation from the node, and
// evaluations are counted against a [Budget] per partner and period. Keys
// are derived per partner and epoch from the node's secret, so a set is
// useless with another epoch's or another partner's evaluations.
//
// Values are OPRF inputs in one canonical form (see [Input]): atomic
// values (addresses, domains, URLs, e-mail addresses, hashes) as
// internal/observable writes them, and networks as their covering
// prefixes at a fixed set of prefix lengths ([Params]), so that a partner
// finds an address inside a network by asking for the address's prefixes
// at those lengths. A domain matches its subdomains the same way: the
// partner asks for every parent of a name it saw.
//
// The package is the domain part only: [Server] evaluates batches with
// strict checks and typed errors ([Error]), keeps the sets up to date
// incrementally ([Builder]) and derives the epoch keys; [Translator] is the
// partner's side, which translates each distinct value once per epoch
// through a [Peer] (the wire types are plain Go types with JSON encoding)
// and caches the answers; [Match] matches logs with internal/match once
// their values are translated. The HTTP adapter is package blindhttp.
package blind
