// Package devices watches what the devices of a constituency talk to, from
// the network logs a node already reads, and reports the devices that
// phone home.
//
// A device is a MAC address where the logs give one (a flow's link-layer
// address, a DHCP lease), otherwise an address inside the constituency.
// For each device a [Watcher] keeps a profile of bounded size: its
// countries (an exact set and per-country counts), the networks it talked
// to (a capped set), an estimate of its distinct destinations
// (HyperLogLog), and its top destinations (a space-saving sketch), each
// with bytes, connections, first and last seen and a window of its latest
// connections for beacon scoring.
//
// From the profiles come findings, each explained with its evidence:
// beacons (regular intervals and consistent sizes to one destination),
// long connections and large uploads out of the constituency, first
// contact with a country or network after a learning period, and
// destinations a device's class does not permit (classes are assigned by
// configuration: MAC vendor prefix, DHCP host name or fingerprint,
// network, software). A finding becomes a STIX 2.1 sighting of the
// destination in which the device appears only as a keyed pseudonym and
// its class ([SightingsBundle]).
//
// Profiles persist in a compact versioned binary form ([Watcher.Save],
// [Watcher.Load]). The package does no I/O: the caller feeds events in
// log order and writes the bytes; see docs/devices.md for the score
// definitions and the file format.
package devices
