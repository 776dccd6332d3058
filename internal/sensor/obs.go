package sensor

// ObsKind says how the value of an [Obs] is to be looked up.
type ObsKind uint8

// The kinds of observed values.
const (
	// ObsIP is an IPv4 or IPv6 address in text form.
	ObsIP ObsKind = iota + 1
	// ObsDomain is a domain name, in any case, possibly with a trailing dot.
	ObsDomain
	// ObsHost is an HTTP host: a domain name or an IP address, possibly
	// with a port.
	ObsHost
	// ObsURL is a URL made of a host (Value) and a request target (Aux),
	// which is a path, or an absolute URL when a proxy was asked.
	ObsURL
	// ObsEmail is an e-mail address, possibly written "Name <addr>".
	ObsEmail
	// ObsHash is a file hash in hex; its algorithm follows from its length.
	ObsHash
	// ObsAny is a value that may be an IP address or a domain name (DNS
	// answers, for instance).
	ObsAny
)

var obsKindNames = [...]string{ObsIP: "ip", ObsDomain: "domain", ObsHost: "host", ObsURL: "url", ObsEmail: "email", ObsHash: "hash", ObsAny: "any"}

// String returns the kind's name as used in field mappings.
func (k ObsKind) String() string {
	if int(k) < len(obsKindNames) && obsKindNames[k] != "" {
		return obsKindNames[k]
	}
	return "invalid"
}

// ParseObsKind returns the kind named s ("ip", "domain", "host", "url",
// "email", "hash" or "any"). "url" here is a whole URL in one field.
func ParseObsKind(s string) (ObsKind, bool) {
	for k, n := range obsKindNames {
		if n != "" && n == s {
			return ObsKind(k), true
		}
	}
	return 0, false
}

// Obs is one observed value. Value (and Aux) point into the line being
// parsed or into the parser's scratch space: they are valid only until the
// parser parses its next line.
type Obs struct {
	Kind  ObsKind
	Value []byte
	Aux   []byte
}
