package safety

import (
	"fmt"
	"net/netip"
)

// RuleKind is the kind of a protection rule.
type RuleKind string

// The kinds of rules.
const (
	// RuleIANA is an entry of the IANA special-purpose address
	// registries that is not globally reachable.
	RuleIANA RuleKind = "iana-special-purpose"
	// RuleMulticast is a multicast block of the IANA address-space
	// registries.
	RuleMulticast RuleKind = "iana-multicast"
	// RuleConstituency is an entry of the node's constituency.
	RuleConstituency RuleKind = "constituency"
	// RulePartner is an entry of the constituency a partner declared
	// (its networks, addresses and domains: a member of the federation
	// never blocks another).
	RulePartner RuleKind = "partner-constituency"
	// RuleWarninglist is a MISP warninglist.
	RuleWarninglist RuleKind = "warninglist"
	// RuleAllowlist is an entry of the operator's allowlist.
	RuleAllowlist RuleKind = "allowlist"
	// RuleTooBroad refuses networks wider than the configured widest
	// prefix.
	RuleTooBroad RuleKind = "too-broad"
)

// Rule is one protection rule and where it comes from.
type Rule struct {
	// Kind is the rule's kind.
	Kind RuleKind `json:"rule"`
	// Entry is what it protects: a registry block, a network, a domain,
	// a value, a warninglist's name, the widest prefix.
	Entry string `json:"entry"`
	// Detail says where it comes from: the registry's reference and name
	// ("RFC 1918, Private-Use"), the file and line ("allow.txt line 3"),
	// the setting ("safety.widest_ipv4").
	Detail string `json:"detail,omitempty"`
	// Source groups rules for counting: the registry, the list's name,
	// "constituency", "allowlist", "too-broad".
	Source string `json:"source"`
}

// String writes the rule as explanations and logs show it:
// "iana-special-purpose: 10.0.0.0/8 (RFC 1918, Private-Use)",
// "warninglist: List of RFC 5735 CIDR blocks",
// "constituency: 192.0.2.0/24 (config line 12)".
func (r Rule) String() string {
	if r.Detail == "" {
		return fmt.Sprintf("%s: %s", r.Kind, r.Entry)
	}
	return fmt.Sprintf("%s: %s (%s)", r.Kind, r.Entry, r.Detail)
}

// Action is what the net does with a value.
type Action uint8

// The actions.
const (
	// Keep: the value is not protected; it is acted on as given.
	Keep Action = iota
	// Suppress: the value is protected (or a network inside protected
	// space): it is left out.
	Suppress
	// Cut: a network that contains protected space is replaced by what
	// remains of it once the protected ranges are cut out.
	Cut
	// Refuse: a network that contains protected space (in refuse mode)
	// or is wider than the widest prefix allowed is left out whole.
	Refuse
)

var actionNames = [...]string{"keep", "suppress", "cut", "refuse"}

// String names the action.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", a)
}

// MarshalText writes the action's name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads an action's name.
func (a *Action) UnmarshalText(b []byte) error {
	for i, n := range actionNames {
		if n == string(b) {
			*a = Action(i)
			return nil
		}
	}
	return fmt.Errorf("unknown action %q", b)
}

// Output is a place where intelligence becomes action; suppressions are
// counted per output.
type Output uint8

// The outputs.
const (
	// OutputExport is every export format (blocklists, rule sets, feeds).
	OutputExport Output = iota
	// OutputSnapshot is the indicator snapshot served to sensors.
	OutputSnapshot
	// OutputMatch is offline matching (entente match --indicators).
	OutputMatch
	// OutputCorrelation is correlation of sightings into alerts.
	OutputCorrelation
	numOutputs
)

var outputNames = [numOutputs]string{"export", "snapshot", "match", "correlation"}

// Outputs lists every output.
var Outputs = []Output{OutputExport, OutputSnapshot, OutputMatch, OutputCorrelation}

// String names the output.
func (o Output) String() string {
	if o < numOutputs {
		return outputNames[o]
	}
	return fmt.Sprintf("output(%d)", o)
}

// MarshalText writes the output's name.
func (o Output) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Mode is what the net does with a network that contains protected
// space.
type Mode string

// The modes.
const (
	// ModeCut replaces the network by what remains of it once the
	// protected ranges are cut out (the default).
	ModeCut Mode = "cut"
	// ModeRefuse leaves the network out whole.
	ModeRefuse Mode = "refuse"
)

// ParseMode reads a mode ("" is cut).
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", ModeCut:
		return ModeCut, nil
	case ModeRefuse:
		return ModeRefuse, nil
	}
	return "", fmt.Errorf("network mode %q is not cut or refuse", s)
}

// Match is one rule that bears on a value, in an explanation.
type Match struct {
	Rule
	// Text is the rule as [Rule.String] writes it.
	Text string `json:"text"`
	// Prefix is the protected range that matched, for addresses and
	// networks.
	Prefix string `json:"prefix,omitempty"`
	// Suppressed counts, per output, the values this rule kept out since
	// the node started (outputs with none are left out).
	Suppressed map[string]int64 `json:"suppressed,omitempty"`
}

func prefixString(p netip.Prefix) string {
	if p.IsValid() {
		return p.String()
	}
	return ""
}
