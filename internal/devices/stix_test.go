package devices

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/stix/schema"
)

const orgA, orgB = "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff", "identity--0c9f2ac5-7a33-4b9c-9d06-8d4f9e2c3a10"

func findingsForBundle(t *testing.T) []Finding {
	t.Helper()
	w := mustWatcher(t, Config{Learn: -1, Classes: []Class{{Name: "cameras", Hostnames: []string{"cam-*"}, Countries: []string{"DE"}}}})
	w.Lease(&Lease{Time: t0, MAC: MAC{0xbc, 0xad, 0x28, 0, 0, 1}, Addr: netip.MustParseAddr("192.168.1.20"), Hostname: "cam-door"})
	w.Resolved(t0, "ddns.vendor.example", []netip.Addr{netip.MustParseAddr("122.248.252.67")})
	for i := range 40 {
		f := flow("192.168.1.20", "122.248.252.67", time.Duration(i)*20*time.Minute, 8760)
		f.Proto, f.SrcBytes = 17, 256
		w.Flow(f)
	}
	f := flow("192.168.1.20", "2a00:1450::5", 0, 443)
	f.Duration = int64(3 * time.Hour)
	w.Flow(f)
	w.Sweep()
	return w.Findings()
}

func TestSightingsBundle(t *testing.T) {
	fs := findingsForBundle(t)
	var kinds []string
	for _, f := range fs {
		kinds = append(kinds, f.Kind.String())
	}
	if got := strings.Join(kinds, " "); got != "new-country class-policy new-country long-connection beacon" {
		t.Fatalf("findings %s", got)
	}
	now := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	raw, err := SightingsBundle(fs, orgA, now)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing of the device's identity leaves: not its MAC, address or
	// host name.
	for _, secret := range []string{"bc:ad:28", "192.168.1.20", "cam-door", "bcad28"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the bundle contains %q", secret)
		}
	}
	var bundle struct {
		Type    string            `json:"type"`
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(raw, &bundle); err != nil || bundle.Type != "bundle" {
		t.Fatalf("bundle: %v", err)
	}
	ids := map[string]string{}
	var sightings []correlate.STIXSighting
	for _, o := range bundle.Objects {
		obj, err := stix.Decode(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := stix.Validate(obj); err != nil {
			t.Errorf("%s: %v", obj.ID, err)
		}
		schema.Check(t, o)
		if _, dup := ids[obj.ID]; dup {
			t.Errorf("object %s twice", obj.ID)
		}
		ids[obj.ID] = obj.Type
		if obj.Type == "sighting" {
			s, err := correlate.ParseSighting(o)
			if err != nil {
				t.Fatal(err)
			}
			sightings = append(sightings, s)
			var x struct {
				Device  map[string]string `json:"x_entente_device"`
				Finding map[string]any    `json:"x_entente_finding"`
				ODRefs  []string          `json:"observed_data_refs"`
			}
			json.Unmarshal(o, &x)
			if !strings.HasPrefix(x.Device["pseudonym"], "dev-") || x.Device["class"] != "cameras" || x.Finding["kind"] == nil || len(x.ODRefs) != 1 {
				t.Errorf("sighting %s: %s", obj.ID, o)
			}
			if ids[x.ODRefs[0]] != "observed-data" {
				t.Errorf("sighting %s refers to %s before it (or to no observed-data)", obj.ID, x.ODRefs[0])
			}
		}
	}
	if len(sightings) != len(fs) {
		t.Fatalf("%d sightings for %d findings", len(sightings), len(fs))
	}
	// Every sighting is of its destination's infrastructure object, held
	// in the bundle, with the same identifier at every organisation.
	other, err := SightingsBundle(fs[len(fs)-1:], orgB, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	beacon := sightings[len(sightings)-1]
	if beacon.SightingOfRef != DestinationID("122.248.252.67") || ids[beacon.SightingOfRef] != "infrastructure" ||
		!strings.Contains(string(other), `"sighting_of_ref":"`+beacon.SightingOfRef+`"`) {
		t.Errorf("beacon sighting of %s", beacon.SightingOfRef)
	}
	if beacon.Count != 40 || beacon.WhereSightedRefs[0] != orgA || !beacon.FirstSeen.Before(beacon.LastSeen) {
		t.Errorf("beacon sighting %+v", beacon)
	}
	ip, _ := stix.SCOID("ipv4-addr", json.RawMessage(`{"value":"122.248.252.67"}`))
	dn, _ := stix.SCOID("domain-name", json.RawMessage(`{"value":"ddns.vendor.example"}`))
	if ids[ip] != "ipv4-addr" || ids[dn] != "domain-name" {
		t.Errorf("observables %s, %s missing: %v", ip, dn, ids)
	}
	if _, err := SightingsBundle(fs, "org-a", now); err == nil {
		t.Error("a non-identity id accepted")
	}
}
