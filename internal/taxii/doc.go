// Package taxii is the TAXII 2.1 protocol of an Entente node, as the OASIS
// TAXII Version 2.1 specification (OASIS Standard, 10 June 2021) defines
// it: the resources a server returns (discovery, API root, collections,
// envelope, manifest, versions, status, error), the media types and their
// negotiation, the URL filters of the object endpoints (added_after,
// limit, next and the match[] parameters), and a one-pass reader of the
// envelopes clients post that keeps each object's JSON verbatim.
//
// The package performs no I/O: internal/node uses its types, and
// internal/httpapi puts them on the wire.
package taxii
