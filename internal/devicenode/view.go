package devicenode

import (
	"net/netip"
	"time"

	"github.com/entente-cti/entente/internal/devices"
)

// Device is a device as the node API, the dashboard and `entente devices
// --json` show it: the local view, with the device's identity, which
// never leaves the node (sightings carry the pseudonym).
type Device struct {
	Device             string                   `json:"device"`
	Pseudonym          string                   `json:"pseudonym"`
	Class              string                   `json:"class,omitempty"`
	ClassReason        string                   `json:"class_reason,omitempty"`
	Hostname           string                   `json:"hostname,omitempty"`
	Fingerprint        string                   `json:"dhcp_fingerprint,omitempty"`
	Software           []string                 `json:"software,omitempty"`
	Addresses          []netip.Addr             `json:"addresses,omitempty"`
	First              time.Time                `json:"first_seen"`
	Last               time.Time                `json:"last_seen"`
	Learning           bool                     `json:"learning"`
	Connections        uint64                   `json:"connections"`
	BytesOut           uint64                   `json:"bytes_out"`
	BytesIn            uint64                   `json:"bytes_in"`
	Distinct           uint64                   `json:"distinct_destinations"`
	Networks           int                      `json:"networks"`
	NetworksSaturated  bool                     `json:"networks_saturated,omitempty"`
	Countries          []devices.CountrySummary `json:"countries"`
	Destinations       []Destination            `json:"destinations"`
	Findings           []Finding                `json:"findings"`
	SuppressedFindings uint64                   `json:"suppressed_findings,omitempty"`
}

// Destination is one of a device's top destinations.
type Destination struct {
	Addr         netip.Addr `json:"address"`
	Name         string     `json:"name,omitempty"`
	Country      string     `json:"country,omitempty"`
	Port         uint16     `json:"port"`
	Proto        string     `json:"protocol"`
	Connections  uint32     `json:"connections"`
	Overestimate uint32     `json:"overestimate,omitempty"`
	BytesOut     uint64     `json:"bytes_out"`
	BytesIn      uint64     `json:"bytes_in"`
	First        time.Time  `json:"first_seen"`
	Last         time.Time  `json:"last_seen"`
	BeaconScore  float64    `json:"beacon_score,omitempty"`
}

// Finding is one of a device's latest findings.
type Finding struct {
	Kind     string     `json:"kind"`
	Time     time.Time  `json:"time"`
	Dest     netip.Addr `json:"destination"`
	DestName string     `json:"destination_name,omitempty"`
	Country  string     `json:"country,omitempty"`
	Score    float64    `json:"score"`
	Evidence string     `json:"evidence"`
}

// View returns the JSON view of a device's summary with at most top
// destinations (all when top <= 0).
func View(d *devices.DeviceSummary, top int) Device {
	out := Device{Device: d.ID.String(), Pseudonym: d.Pseudonym, Class: d.Class, ClassReason: d.ClassReason, Hostname: d.Hostname,
		Fingerprint: d.Fingerprint, Software: d.Software, Addresses: d.Addrs, First: d.First, Last: d.Last, Learning: d.Learning,
		Connections: d.Connections, BytesOut: d.BytesOut, BytesIn: d.BytesIn, Distinct: d.DistinctDestinations, Networks: d.Networks,
		NetworksSaturated: d.NetworksSaturated, Countries: d.Countries, SuppressedFindings: d.SuppressedFindings,
		Destinations: []Destination{}, Findings: []Finding{}}
	if out.Countries == nil {
		out.Countries = []devices.CountrySummary{}
	}
	dests := d.Destinations
	if top > 0 && len(dests) > top {
		dests = dests[:top]
	}
	for _, x := range dests {
		out.Destinations = append(out.Destinations, Destination{Addr: x.Addr, Name: x.Name, Country: x.Country, Port: x.Port, Proto: x.Proto,
			Connections: x.Connections, Overestimate: x.Overestimate, BytesOut: x.BytesOut, BytesIn: x.BytesIn, First: x.First, Last: x.Last,
			BeaconScore: x.BeaconScore})
	}
	for _, f := range d.Findings {
		out.Findings = append(out.Findings, Finding{Kind: f.Kind.String(), Time: f.Time, Dest: f.Dest, DestName: f.DestName, Country: f.Country,
			Score: f.Score, Evidence: f.Evidence})
	}
	return out
}

// Summary turns the view back into a summary (for the CLI's text form of
// a node's answer); what the view leaves out stays zero.
func (v *Device) Summary() (devices.DeviceSummary, error) {
	id, err := devices.ParseDeviceID(v.Device)
	if err != nil {
		return devices.DeviceSummary{}, err
	}
	d := devices.DeviceSummary{ID: id, Pseudonym: v.Pseudonym, Class: v.Class, ClassReason: v.ClassReason, Hostname: v.Hostname,
		Fingerprint: v.Fingerprint, Software: v.Software, Addrs: v.Addresses, First: v.First, Last: v.Last, Learning: v.Learning,
		Connections: v.Connections, BytesOut: v.BytesOut, BytesIn: v.BytesIn, DistinctDestinations: v.Distinct, Networks: v.Networks,
		NetworksSaturated: v.NetworksSaturated, Countries: v.Countries, SuppressedFindings: v.SuppressedFindings}
	for _, x := range v.Destinations {
		d.Destinations = append(d.Destinations, devices.DestSummary{Addr: x.Addr, Name: x.Name, Country: x.Country, Port: x.Port, Proto: x.Proto,
			Connections: x.Connections, Overestimate: x.Overestimate, BytesOut: x.BytesOut, BytesIn: x.BytesIn, First: x.First, Last: x.Last,
			BeaconScore: x.BeaconScore})
	}
	for _, f := range v.Findings {
		k, _ := devices.ParseKind(f.Kind)
		d.Findings = append(d.Findings, devices.Record{Kind: k, Time: f.Time, Dest: f.Dest, DestName: f.DestName, Country: f.Country,
			Score: f.Score, Evidence: f.Evidence})
	}
	return d, nil
}
