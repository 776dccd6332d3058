// Package pattern parses, checks and evaluates STIX patterns (the
// indicator pattern language of STIX 2.1, also accepting STIX 2.0 syntax).
//
// Parse turns a pattern into an AST, reporting the position of the first
// syntax error and checking what the grammar cannot (qualifier values,
// duplicate qualifiers, timestamps, hashes, regular expressions, binary
// literals). Disjunction recognises the simple "OR of equalities" form that
// network-log matching can index. Match evaluates a pattern against
// observed-data objects the way the OASIS reference matcher does:
// comparison expressions select the cyber-observable objects each
// observation holds, observation expressions bind observations to one
// another under AND, OR and FOLLOWEDBY, and the WITHIN, REPEATS and
// START/STOP qualifiers constrain those bindings in time and count.
//
// Regular expressions (MATCHES) use Go's RE2 syntax; PCRE constructs RE2
// lacks (backreferences, lookaround) are reported as errors when parsing.
package pattern
