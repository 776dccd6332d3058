package devices

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Kind is the kind of a finding.
type Kind uint8

// The kinds of findings.
const (
	// KindBeacon: regular connections of consistent size to one
	// destination.
	KindBeacon Kind = iota + 1
	// KindLongConnection: one connection out of the constituency that
	// lasted at least Config.LongConnection.
	KindLongConnection
	// KindLargeUpload: one connection in which the device sent at least
	// Config.LargeBytes.
	KindLargeUpload
	// KindNewCountry: first contact with a country after the learning
	// period.
	KindNewCountry
	// KindNewNetwork: first contact with a network after the learning
	// period (in a country the device already talked to).
	KindNewNetwork
	// KindPolicy: a destination the device's class does not permit.
	KindPolicy
)

var kindNames = [...]string{KindBeacon: "beacon", KindLongConnection: "long-connection", KindLargeUpload: "large-upload",
	KindNewCountry: "new-country", KindNewNetwork: "new-network", KindPolicy: "class-policy"}

// String returns the kind's name.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "invalid"
}

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n != "" && n == s {
			return Kind(k), true
		}
	}
	return 0, false
}

// Finding is one detection, with its evidence. Device and Hostname are
// the local identity of the device: they never leave the node (a
// sighting carries the pseudonym and the class only); Evidence speaks of
// the destination and the behaviour, never of the device.
type Finding struct {
	Kind      Kind
	Device    DeviceID
	Pseudonym string
	Class     string // "" when the device has none
	Hostname  string
	Dest      netip.Addr
	DestName  string // the name the device resolved, when known
	Country   string // "" when the geo data cannot place Dest
	Network   netip.Prefix
	Port      uint16
	Proto     uint8
	// First and Last bound the evidence; Count is the number of
	// connections it covers.
	First, Last       time.Time
	Count             uint64
	BytesOut, BytesIn uint64
	Duration          time.Duration // of the connection (long connections, large uploads)
	Beacon            *BeaconStats  // beacons
	Score             float64       // beacons: the beacon score; others 1
	Evidence          string
}

// Record is a finding as a device's profile keeps it.
type Record struct {
	Kind     Kind
	Time     time.Time
	Dest     netip.Addr
	DestName string
	Country  string
	Score    float64
	Evidence string
}

// protoName names an IANA protocol number.
func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 1:
		return "icmp"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	case 0:
		return "?"
	}
	return strconv.Itoa(int(p))
}

// where describes the destination: address, port and protocol, name and
// country.
func (f *Finding) where() string {
	var b strings.Builder
	if f.Dest.Is6() {
		fmt.Fprintf(&b, "[%s]", f.Dest)
	} else {
		b.WriteString(f.Dest.String())
	}
	if f.Port != 0 || f.Proto != 0 {
		fmt.Fprintf(&b, ":%d/%s", f.Port, protoName(f.Proto))
	}
	var extra []string
	if f.DestName != "" {
		extra = append(extra, f.DestName)
	}
	if f.Country != "" {
		extra = append(extra, f.Country)
	} else {
		extra = append(extra, "country unknown")
	}
	fmt.Fprintf(&b, " (%s)", strings.Join(extra, ", "))
	return b.String()
}

// bytesText writes a byte count for people.
func bytesText(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

// durText writes a duration rounded for people.
func durText(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// beaconEvidence explains a beacon score.
func beaconEvidence(f *Finding) string {
	s := f.Beacon
	return fmt.Sprintf("beacon to %s: %d connections (%d events) from %s to %s, every %s (median interval), jitter %.1f%% of the period, %.0f%% of intervals missing beats, %s sent per connection (median; MAD %d); score %.2f = confidence %.2f × (0.7 × interval %.2f + 0.3 × size %.2f)",
		f.where(), s.Connections, s.Events, s.First.Format(time.RFC3339), s.Last.Format(time.RFC3339), durText(s.Period),
		100*s.Jitter, 100*s.Missed, bytesText(s.SizeMedian), s.SizeMAD, s.Score, s.Confidence, s.IntervalScore, s.SizeScore)
}
