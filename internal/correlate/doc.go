// Package correlate turns sightings into coordinated alerts: sightings of
// one threat are grouped, the distinct organisations and countries that
// reported them are counted within a sliding window, and an alert is raised
// (or escalated) when the counts reach a tier's thresholds.
//
// The package is pure logic: it does no I/O, and every function that needs
// the current time takes it as an argument.
//
// # Convergent identifiers
//
// Every node that holds the same sightings must raise the same alert with
// the same identifier, with no coordinator. The engine therefore derives
// everything from the sightings' own timestamps, never from arrival order
// or from the node:
//
//   - Time is cut into slots of Window/Slots. A sighting marks its
//     (organisation, country) pair present in every slot its
//     [first_seen, last_seen] interval touches. Presence is a set (a bit
//     per slot), so repeating a sighting, or reporting the same
//     organisation again, never inflates a count.
//   - A window is Slots consecutive slots; it ends at some slot w.
//     Windows are grouped into epochs of Slots window ends each
//     (epoch e holds the windows ending in slots e·Slots … e·Slots+Slots−1),
//     so an epoch is as long as the window.
//   - Epoch e of threat T has an alert when some window ending in e meets
//     a tier. The alert's identifier is a UUIDv5 of T and the epoch's start
//     time; its tier is the highest tier met by a window ending in e; its
//     counts, countries, first and last seen summarise every sighting in
//     the epoch's span (the slots any of its windows cover).
//
// Each of these is a monotone function of the set of sightings: adding a
// sighting can only add presence bits, so it can only create alerts, raise
// tiers and grow counts, never retract them. Whatever order two nodes
// receive the same sightings in, they pass through different intermediate
// states but end with identical alerts (the property test checks this with
// independently shuffled engines). A sighting changes an alert's content
// only by adding to it, which is why the STIX "modified" timestamp of an
// alert can be derived from its content (see [AlertObject]).
//
// The sliding window has the resolution of one slot (Window/Slots, by
// default 3 hours for a 24 hour window); that is the price of exact,
// order-independent counting in constant memory per (threat,
// organisation).
//
// # Memory
//
// Per threat the engine keeps one 64-slot presence mask per (organisation,
// country) pair seen within the horizon and a small record per epoch; it
// keeps nothing per sighting. [Engine.Sweep] forgets threats and epochs that
// no acceptable sighting can touch any more, so memory follows the number
// of active threats and the organisations reporting them, not the number of
// sightings.
package correlate
