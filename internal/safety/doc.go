// Package safety is the node's safety net: it decides, for a value about
// to be acted on (blocked by an export, matched by a sensor, counted
// towards an alert), whether it is protected and why, so that Entente
// never acts on what must not be blocked.
//
// A value is protected by:
//
//   - the IANA IPv4 and IPv6 special-purpose address registries (RFC 6890,
//     RFC 8190) and the multicast blocks, embedded as data (data/README.md
//     gives their source, date, licence and the decision for each entry:
//     what the registry says is not globally reachable is protected);
//   - the node's constituency: its networks, domains (each with its
//     subdomains) and autonomous systems (through a prefix file);
//   - the MISP warninglists the node is configured with (a small set is
//     shipped and on by default);
//   - the operator's allowlist.
//
// Networks are never widened: a network inside protected space is
// suppressed; one that contains protected space is cut around it (the
// remaining prefixes) or refused, as configured; one wider than the
// configured widest prefix (0.0.0.0/0, 128.0.0.0/1…) is refused.
//
// Every decision names its rule and the rule's source, every suppression
// is counted per rule and per output (exports, sensor snapshots, offline
// matching, correlation), and [Net.Explain] answers which rule keeps a
// value out of which output. The package reads only its embedded data and
// what callers hand it: the configuration files are read by the caller
// ([ParseList], [ParseASNPrefixes] take readers).
package safety
