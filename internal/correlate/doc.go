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
//     [first_seen, last_seen] interval touches. Presence is a set (one bit
//     per slot), so repeating a sighting, or the same organisation
//     reporting again, never inflates a count.
//   - The window ending at slot w covers the Slots slots up to w. Its tier
//     is the highest tier whose thresholds its distinct organisations and
//     countries meet.
//   - A run is a maximal sequence of consecutive windows that meet some
//     tier; it starts at its edge. An outbreak, however long it lasts, is
//     one run, so it raises one alert rather than one per window or day.
//   - Epochs are window-long spans of slots aligned on the Unix epoch. The
//     alert of threat T for epoch e covers the runs whose edge lies in e;
//     its identifier is a UUIDv5 of T and the epoch's start (so a late
//     sighting that moves an edge within its epoch keeps the identifier).
//     Its tier is the highest tier in those runs; its counts, countries,
//     first and last seen summarise the slots their windows cover.
//
// Adding a sighting only adds presence, so window tiers only rise: alerts
// are created, escalated and grow, and every node ends with the same
// alerts whatever order it received the sightings in (the property test
// checks this with independently shuffled engines). The one change that is
// not an addition: a late sighting can show that a run began in an
// earlier epoch, or join two runs; the later run's alert is then reported
// as superseded (the node revokes it, naming the alert that now covers
// it). A node that received that sighting in time never raised the
// superseded alert; both end with the same live alerts.
//
// The sliding window has the resolution of one slot (Window/Slots, by
// default 3 hours for a 24 hour window); that is the price of exact,
// order-independent counting in constant memory per (threat,
// organisation).
//
// # Memory
//
// Per threat the engine keeps one 64-slot presence mask per (organisation,
// country) pair seen within the horizon, per-slot first and last seen
// times and window tiers (about 1 KiB), and one small record per alert; it
// keeps nothing per sighting. [Engine.Sweep] forgets threats and epochs that
// no acceptable sighting can touch any more, so memory follows the number
// of active threats and the organisations reporting them, not the number of
// sightings.
package correlate
