package notify

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/entente-cti/entente/internal/correlate"
)

// Syslog severities (RFC 5424 §6.2.1).
const (
	SevEmergency = iota
	SevAlert
	SevCritical
	SevError
	SevWarning
	SevNotice
	SevInfo
	SevDebug
)

// FacilitySecurity is facility 4 (security/authorization messages); the
// node uses it by default. FacilityLocal0 … 7 are 16 … 23.
const (
	FacilitySecurity = 4
	FacilityLocal0   = 16
)

// SDElement is one RFC 5424 structured-data element: [ID name="value" …].
type SDElement struct {
	ID     string
	Params []SDParam
}

// SDParam is one structured-data parameter.
type SDParam struct {
	Name, Value string
}

// Message is one syslog message.
type Message struct {
	Facility, Severity int
	Time               time.Time
	Hostname           string
	AppName            string
	ProcID             string
	MsgID              string
	Data               []SDElement
	Msg                string
}

// Format returns m as one RFC 5424 line (without a trailing newline or
// transport framing). Header fields are reduced to printable US-ASCII and
// cut to their maximum lengths, an empty field becomes the nil value "-",
// structured-data names lose the characters RFC 5424 forbids in them,
// and parameter values escape '"', '\' and ']' with a backslash and are
// made valid UTF-8.
func (m Message) Format() string {
	var b strings.Builder
	pri := min(max(m.Facility, 0), 23)*8 + min(max(m.Severity, 0), 7)
	b.WriteByte('<')
	b.WriteString(strconv.Itoa(pri))
	b.WriteString(">1 ")
	if m.Time.IsZero() {
		b.WriteByte('-')
	} else {
		b.WriteString(m.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
	}
	for _, f := range []struct {
		v   string
		max int
	}{{m.Hostname, 255}, {m.AppName, 48}, {m.ProcID, 128}, {m.MsgID, 32}} {
		b.WriteByte(' ')
		b.WriteString(headerField(f.v, f.max))
	}
	b.WriteByte(' ')
	n := 0
	for _, e := range m.Data {
		id := sdName(e.ID)
		if id == "" {
			continue
		}
		n++
		b.WriteByte('[')
		b.WriteString(id)
		for _, p := range e.Params {
			name := sdName(p.Name)
			if name == "" {
				continue
			}
			b.WriteByte(' ')
			b.WriteString(name)
			b.WriteString(`="`)
			b.WriteString(EscapeParamValue(p.Value))
			b.WriteByte('"')
		}
		b.WriteByte(']')
	}
	if n == 0 {
		b.WriteByte('-')
	}
	if m.Msg != "" {
		b.WriteByte(' ')
		b.WriteString(strings.ToValidUTF8(m.Msg, "\uFFFD"))
	}
	return b.String()
}

// headerField keeps the printable US-ASCII characters of s (others become
// '_'), at most max of them; empty gives "-".
func headerField(s string, max int) string {
	if s == "" {
		return "-"
	}
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		c := s[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// sdName keeps the characters allowed in an SD-ID or PARAM-NAME
// (printable US-ASCII except '=', ' ', ']' and '"'), at most 32.
func sdName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 32; i++ {
		c := s[i]
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// EscapeParamValue escapes a structured-data parameter value as RFC 5424
// §6.3.3 requires: '"', '\' and ']' are preceded by a backslash. Invalid
// UTF-8 is replaced by U+FFFD.
func EscapeParamValue(v string) string {
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	if !strings.ContainsAny(v, "\"\\]") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"', '\\', ']':
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// AlertSDID is the structured-data id of alert messages. 32473 is the
// private enterprise number RFC 5612 reserves for documentation; an
// operator with its own number can rewrite the element id.
const AlertSDID = "alert@32473"

// AlertMessage renders an alert as a syslog message: severity warning for
// the lowest tier, error for the next and critical above, with the alert's
// properties as structured data.
func AlertMessage(a correlate.Alert, hostname string, now time.Time) Message {
	sev := SevWarning
	switch {
	case a.TierRank >= 3:
		sev = SevCritical
	case a.TierRank == 2:
		sev = SevError
	}
	change := string(a.Change)
	if change == "" {
		change = "snapshot"
	}
	return Message{
		Facility: FacilitySecurity,
		Severity: sev,
		Time:     now,
		Hostname: hostname,
		AppName:  "entente",
		MsgID:    "alert-" + change,
		Data: []SDElement{{ID: AlertSDID, Params: []SDParam{
			{"id", a.ID},
			{"tier", a.Tier},
			{"threat", string(a.Threat)},
			{"organisations", strconv.Itoa(a.Organisations)},
			{"countries", strings.Join(a.Countries, ",")},
			{"first_seen", a.FirstSeen.UTC().Format(time.RFC3339)},
			{"last_seen", a.LastSeen.UTC().Format(time.RFC3339)},
		}}},
		Msg: fmt.Sprintf("%s %s alert on %s: %d organisations in %d countries",
			change, a.Tier, a.Threat, a.Organisations, len(a.Countries)),
	}
}

// Syslog writes messages to a syslog receiver or any io.Writer. It is safe
// for concurrent use.
type Syslog struct {
	mu sync.Mutex
	w  io.Writer
	// octetCounting frames each message as "LEN SP MSG" (RFC 6587, for
	// stream transports); otherwise each message is one Write (one
	// datagram), and a newline is appended for plain writers.
	octetCounting bool
	newline       bool
	closer        io.Closer
}

// NewSyslogWriter returns a Syslog that writes one message per line to w
// (line breaks inside a message become spaces).
func NewSyslogWriter(w io.Writer) *Syslog { return &Syslog{w: w, newline: true} }

// DialSyslog connects to a syslog receiver: network "udp" (one message
// per datagram), "tcp" (octet-counting framing, RFC 6587) or "unixgram"
// and "unix".
func DialSyslog(network, addr string, timeout time.Duration) (*Syslog, error) {
	c, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("dial syslog %s %s: %w", network, addr, err)
	}
	s := &Syslog{w: c, closer: c}
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
		s.octetCounting = true
	}
	return s, nil
}

// Send writes one message.
func (s *Syslog) Send(m Message) error {
	line := m.Format()
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	switch {
	case s.octetCounting:
		_, err = io.WriteString(s.w, strconv.Itoa(len(line))+" "+line)
	case s.newline:
		// One message per line: line breaks inside it would split it.
		line = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(line)
		_, err = io.WriteString(s.w, line+"\n")
	default:
		_, err = io.WriteString(s.w, line)
	}
	if err != nil {
		return fmt.Errorf("send syslog message: %w", err)
	}
	return nil
}

// Close closes the connection, if DialSyslog opened one.
func (s *Syslog) Close() error {
	if s.closer == nil {
		return nil
	}
	return s.closer.Close()
}
