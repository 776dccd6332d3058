// Package egress is the node's one policy gate: the only code that turns
// stored objects into something that leaves the node.
//
// Every path out — TAXII reads (objects, one object, versions, manifest),
// every export format, sensor snapshots, pushes to peers, partners'
// webhooks, previews — calls one entry point, [Gate.Release]: release
// this query to this audience. For a partner (another organisation) the
// gate decides every object under the agreement in force (TLP, residency,
// collections, types, validity, re-sharing, redaction) and every field
// under its granular markings, and appends the audit record of what it
// releases before anything is returned. The node's own roles (admin,
// analyst, sensor) read without the policy and without an egress record.
//
// The gate owns every cache of released content: rendered exports and
// snapshots ([Renderer], [Artifact]). Each is keyed by its audience and
// rendering and valid only under the version of the terms it was
// rendered under, the collections' content it read and its own expiry.
// The terms — partners and agreements — are changed only through this
// package ([Gate.PutAgreement] and the like), and every other change that
// bears on what may leave (a key revoked, a collection's default marking,
// an object deleted) is reported with [Gate.TermsChanged]: the change
// takes effect on the very next request, on every path and every replica
// sharing the store. A cached artifact is audited each time it is served
// to a partner, like a fresh one; only a 304 (the audience already holds
// it) sends nothing and records nothing.
package egress
