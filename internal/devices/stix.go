package devices

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/entente-cti/entente/internal/stix"
)

// destinationNamespace is the UUIDv5 namespace of the infrastructure
// objects that stand for a destination: every node names the same
// destination with the same identifier, so that sightings of it from
// many organisations count towards one coordinated alert.
var destinationNamespace = uuid.MustParse("6f0d6b55-2b4e-5c5e-9a53-5e8f3f2f4d21")

// destinationEpoch is the created and modified time of those objects:
// fixed, so that they are the same object, byte for byte, on every node
// (as the TLP marking definitions are).
const destinationEpoch = "2020-01-01T00:00:00.000Z"

// DestinationID returns the identifier of the infrastructure object that
// stands for a destination address.
func DestinationID(addr string) string {
	return "infrastructure--" + uuid.NewSHA1(destinationNamespace, []byte("destination:"+addr)).String()
}

// destinationObject returns the infrastructure object of a destination.
func destinationObject(addr string) (json.RawMessage, error) {
	return json.Marshal(map[string]any{
		"type":                 "infrastructure",
		"spec_version":         "2.1",
		"id":                   DestinationID(addr),
		"created":              destinationEpoch,
		"modified":             destinationEpoch,
		"name":                 addr,
		"infrastructure_types": []string{"unknown"},
		"description":          "A network destination that devices were seen to contact. Sightings of it carry what was observed (beacon, first contact, class policy breach, long connection, large upload) and the device only as a keyed pseudonym and its class.",
	})
}

// scoObject returns an SCO with its deterministic identifier.
func scoObject(typ, value string) (string, json.RawMessage, error) {
	body, _ := json.Marshal(map[string]string{"value": value})
	id, err := stix.SCOID(typ, body)
	if err != nil {
		return "", nil, err
	}
	raw, err := json.Marshal(map[string]any{"type": typ, "spec_version": "2.1", "id": id, "value": value})
	return id, raw, err
}

// maxSightingCount is the largest count STIX allows.
const maxSightingCount = 999999999

// SightingsBundle returns a STIX 2.1 bundle in which each finding is a
// sighting of its destination, sighted by identity (the organisation
// running the watch, an identity--… id), created at now:
//
//   - the sighting's sighting_of_ref is the destination's infrastructure
//     object (one identifier per address on every node, see
//     [DestinationID]); observed_data_refs names an observed-data object
//     whose object_refs are the destination's ipv4-addr or ipv6-addr and,
//     when the device resolved it by name, its domain-name;
//   - the device appears only as x_entente_device: its pseudonym and its
//     class; the finding's kind, score and country are in
//     x_entente_finding, its evidence in description (both free of the
//     device's identity).
//
// The bundle holds the infrastructure, observed-data and cyber-observable
// objects the sightings refer to, so that the node's sightings API and
// `entente ingest` accept it whole.
func SightingsBundle(findings []Finding, identity string, now time.Time) ([]byte, error) {
	if t, _, ok := strings.Cut(identity, "--"); !ok || t != "identity" {
		return nil, fmt.Errorf("sightings: %q is not an identity id (identity--...)", identity)
	}
	if len(findings) == 0 {
		return nil, errors.New("sightings: no findings")
	}
	created := stix.FormatTimestamp(now.UTC().Truncate(time.Millisecond))
	var objs []json.RawMessage
	have := map[string]bool{}
	add := func(id string, raw json.RawMessage) {
		if !have[id] {
			have[id] = true
			objs = append(objs, raw)
		}
	}
	for i := range findings {
		f := &findings[i]
		if !f.Dest.IsValid() {
			return nil, fmt.Errorf("sightings: finding %d has no destination", i+1)
		}
		addr := f.Dest.String()
		infra, err := destinationObject(addr)
		if err != nil {
			return nil, err
		}
		add(DestinationID(addr), infra)
		typ := "ipv4-addr"
		if f.Dest.Is6() {
			typ = "ipv6-addr"
		}
		ipID, ipObj, err := scoObject(typ, addr)
		if err != nil {
			return nil, err
		}
		add(ipID, ipObj)
		refs := []string{ipID}
		if f.DestName != "" {
			dnID, dnObj, err := scoObject("domain-name", f.DestName)
			if err != nil {
				return nil, err
			}
			add(dnID, dnObj)
			refs = append(refs, dnID)
		}
		first, last := f.First.UTC(), f.Last.UTC()
		if last.Before(first) {
			first, last = last, first
		}
		count := min(max(f.Count, 1), maxSightingCount)
		odID := stix.NewID("observed-data")
		od, err := json.Marshal(map[string]any{
			"type": "observed-data", "spec_version": "2.1", "id": odID, "created": created, "modified": created,
			"created_by_ref": identity, "first_observed": stix.FormatTimestamp(first), "last_observed": stix.FormatTimestamp(last),
			"number_observed": count, "object_refs": refs,
		})
		if err != nil {
			return nil, err
		}
		objs = append(objs, od)
		finding := map[string]any{"kind": f.Kind.String(), "score": roundScore(f.Score)}
		if f.Country != "" {
			finding["country"] = f.Country
		}
		if f.Port != 0 {
			finding["port"] = f.Port
		}
		if f.Proto != 0 {
			finding["protocol"] = protoName(f.Proto)
		}
		device := map[string]any{"pseudonym": f.Pseudonym}
		if f.Class != "" {
			device["class"] = f.Class
		}
		sg, err := json.Marshal(map[string]any{
			"type": "sighting", "spec_version": "2.1", "id": stix.NewID("sighting"), "created": created, "modified": created,
			"created_by_ref": identity, "sighting_of_ref": DestinationID(addr), "observed_data_refs": []string{odID},
			"where_sighted_refs": []string{identity}, "count": count, "first_seen": stix.FormatTimestamp(first),
			"last_seen": stix.FormatTimestamp(last), "description": f.Evidence,
			"x_entente_device": device, "x_entente_finding": finding,
		})
		if err != nil {
			return nil, err
		}
		objs = append(objs, sg)
	}
	return json.Marshal(map[string]any{"type": "bundle", "id": stix.NewID("bundle"), "objects": objs})
}

func roundScore(s float64) float64 { return float64(int(s*1000+0.5)) / 1000 }
