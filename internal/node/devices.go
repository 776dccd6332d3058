package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/devicenode"
	"github.com/entente-cti/entente/internal/devices"
	"github.com/entente-cti/entente/internal/egress"
	"github.com/entente-cti/entente/internal/export"
)

// SetDevices gives the node its device watch (internal/devicenode):
// sensors then post their logs to it (DeviceEvents), analysts list its
// devices, and class policies are exported. nil removes it.
func (s *Service) SetDevices(w *devicenode.Watch) {
	s.devMu.Lock()
	s.devices = w
	s.devMu.Unlock()
}

// DeviceWatch returns the node's device watch, nil when it has none.
func (s *Service) DeviceWatch() *devicenode.Watch {
	s.devMu.Lock()
	defer s.devMu.Unlock()
	return s.devices
}

func (s *Service) deviceWatch() (*devicenode.Watch, error) {
	if w := s.DeviceWatch(); w != nil {
		return w, nil
	}
	return nil, entente.Errorf(entente.ENOTFOUND, "this node has no device watch (configure it in DATA/devices.toml or with serve --devices-config; see docs/devices.md)")
}

// DeviceEventsResult is what a post of logs to the device watch did.
type DeviceEventsResult struct {
	Lines    int64    `json:"lines"`
	Events   int64    `json:"events"`
	Bad      int64    `json:"bad_lines"`
	BadLines []string `json:"bad_line_reports,omitempty"`
	// Findings counts the findings the logs gave; each is a sighting in
	// the sightings collection (Status).
	Findings int             `json:"findings"`
	Status   *entente.Status `json:"status,omitempty"`
}

// DeviceEvents applies the events of a log chunk a sensor posts (Zeek
// conn, dhcp, dns, known_devices or software logs, Suricata EVE; one
// format per post) to the node's device watch, and adds the findings,
// as sightings of their destinations with the devices reduced to
// pseudonyms, to the sightings collection, from where they are
// correlated and, when they leave, gated like any sighting. For sensor
// and admin keys.
func (s *Service) DeviceEvents(ctx context.Context, p entente.Principal, name string, body []byte) (*DeviceEventsResult, error) {
	if p.Role != entente.RoleSensor && p.Role != entente.RoleAdmin {
		return nil, entente.Errorf(entente.EFORBIDDEN, "posting device events requires the sensor or admin role; this key's role is %q", p.Role)
	}
	w, err := s.deviceWatch()
	if err != nil {
		return nil, err
	}
	res, err := w.Ingest(ctx, name, body)
	out := &DeviceEventsResult{}
	if res != nil {
		out.Lines, out.Events, out.Bad, out.BadLines, out.Findings = res.Lines, res.Events, res.Bad, res.BadLines, len(res.Findings)
	}
	if err != nil {
		return out, entente.Errorf(entente.EINVALID, "%v", err)
	}
	if res.Bundle == nil {
		return out, nil
	}
	var bundle struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(res.Bundle, &bundle); err != nil {
		return out, fmt.Errorf("device sightings: %w", err)
	}
	s.sightIndicators(ctx, res.Findings, bundle.Objects)
	st, err := s.AddSightings(ctx, p, bundle.Objects)
	out.Status = st
	if err != nil {
		return out, err
	}
	s.log.InfoContext(ctx, "device findings", "key_id", p.KeyID, "findings", len(res.Findings), "status", st.ID)
	return out, nil
}

// Devices lists the devices of the node's device watch (of one class
// when class is not empty): the local view, with their identities. For
// analyst and admin keys.
func (s *Service) Devices(ctx context.Context, p entente.Principal, class string) ([]devices.DeviceSummary, error) {
	if err := requireAnalyst(p, "listing devices"); err != nil {
		return nil, err
	}
	w, err := s.deviceWatch()
	if err != nil {
		return nil, err
	}
	if class != "" && !w.HasClass(class) {
		return nil, entente.Errorf(entente.ENOTFOUND, "no device class %q in the configuration", class)
	}
	return w.Devices(class), nil
}

// Device returns one device of the watch, named by MAC, address or
// pseudonym. For analyst and admin keys.
func (s *Service) Device(ctx context.Context, p entente.Principal, name string) (devices.DeviceSummary, error) {
	if err := requireAnalyst(p, "reading a device"); err != nil {
		return devices.DeviceSummary{}, err
	}
	w, err := s.deviceWatch()
	if err != nil {
		return devices.DeviceSummary{}, err
	}
	d, ok := w.Device(name)
	if !ok {
		return devices.DeviceSummary{}, entente.Errorf(entente.ENOTFOUND, "no device %q", name)
	}
	return d, nil
}

// ClassExportRequest asks for a device class's country policy.
type ClassExportRequest struct {
	Class  string
	Format string // nftables, plain or rpz
	Zone   string // the RPZ zone's name
	// IfNoneMatch is the entity tag the client holds.
	IfNoneMatch string
}

// ExportClass renders a device class's country policy through the policy
// gate, as every export is: the gate caches it, answers "not modified"
// to a client that holds it and records its serving. A class policy
// holds the class's members (local addresses and MACs), so it is for the
// node's own keys (admin, analyst, sensor: the node's firewalls); a
// partner is refused.
func (s *Service) ExportClass(ctx context.Context, p entente.Principal, req ClassExportRequest) (*ExportResult, error) {
	if p.Role != entente.RoleAdmin && p.Role != entente.RoleAnalyst && p.Role != entente.RoleSensor {
		return nil, entente.Errorf(entente.EFORBIDDEN, "a device class's policy is for the node's own keys (admin, analyst, sensor); this key's role is %q", p.Role)
	}
	if !slices.Contains(export.ClassPolicyFormats, req.Format) {
		return nil, entente.Errorf(entente.EINVALID, "a class policy renders as %s, not %q", strings.Join(export.ClassPolicyFormats, ", "), req.Format)
	}
	w, err := s.deviceWatch()
	if err != nil {
		return nil, err
	}
	if !w.HasClass(req.Class) {
		return nil, entente.Errorf(entente.ENOTFOUND, "no device class %q in the configuration", req.Class)
	}
	// Rendered first, so that the rendering's key is its content: the
	// gate's cache then follows the profiles' members and the geo data.
	data, err := w.ClassPolicy(req.Class, req.Format, export.Options{Zone: req.Zone, Now: s.now()})
	if err != nil {
		return nil, entente.Errorf(entente.EINVALID, "%v", err)
	}
	r := &classRenderer{data: data, name: "class-" + req.Class + "." + req.Format}
	rel, err := s.gate.Release(ctx, p, egress.Query{Channel: "export class " + req.Format, Render: r, IfNoneMatch: req.IfNoneMatch})
	if err != nil {
		return nil, err
	}
	if rel.NotModified {
		return &ExportResult{ETag: rel.ETag, NotModified: true}, nil
	}
	a := rel.Artifact
	res := &ExportResult{ETag: a.ETag, Items: a.Items, Files: make([]export.File, len(a.Files))}
	for i, f := range a.Files {
		res.Files[i] = export.File{Name: f.Name, Data: f.Data}
	}
	if err := s.gate.AuditAdmin(ctx, p, "export-class", "", fmt.Sprintf("class %s as %s (%d bytes, %s)", req.Class, req.Format, len(data), a.ETag), nil); err != nil {
		return nil, err
	}
	return res, nil
}

// classRenderer is a rendered class policy as the gate takes it.
type classRenderer struct {
	data []byte
	name string
}

// Key implements egress.Renderer: the rendering's own hash.
func (r *classRenderer) Key() string {
	sum := sha256.Sum256(r.data)
	return fmt.Sprintf("class|%s|%x", r.name, sum[:])
}

// Render implements egress.Renderer. It reads no stored object: a class
// policy is made of the configuration, the geo data and the profiles.
func (r *classRenderer) Render(ctx context.Context, src *egress.Source) (*egress.Artifact, error) {
	lines := strings.Count(string(r.data), "\n")
	return &egress.Artifact{ETag: export.ETag(r.data), Items: lines, Files: []egress.File{{Name: r.name, Data: r.data}}}, nil
}

// ExplainClass says why value (an address, a network, a country code;
// empty for the whole policy) is in or out of a device class's policy.
// For the node's own keys.
func (s *Service) ExplainClass(ctx context.Context, p entente.Principal, class, value string) ([]string, error) {
	if p.Role != entente.RoleAdmin && p.Role != entente.RoleAnalyst && p.Role != entente.RoleSensor {
		return nil, entente.Errorf(entente.EFORBIDDEN, "explaining a device class's policy is for the node's own keys (admin, analyst, sensor); this key's role is %q", p.Role)
	}
	w, err := s.deviceWatch()
	if err != nil {
		return nil, err
	}
	if !w.HasClass(class) {
		return nil, entente.Errorf(entente.ENOTFOUND, "no device class %q in the configuration", class)
	}
	lines, err := w.Explain(class, value)
	if err != nil {
		return nil, entente.Errorf(entente.EINVALID, "%v", err)
	}
	return lines, nil
}

// sightIndicators makes the sightings of destinations that indicators
// the node holds match sightings of those indicators (the first, by id)
// instead of the destinations' infrastructure objects, so that they join
// the threat's alert with what `entente match` reports. The node's own
// view decides (every collection an admin reads); a failure leaves the
// sightings as they are, logged.
func (s *Service) sightIndicators(ctx context.Context, findings []devices.Finding, objects []json.RawMessage) {
	byDest := map[string]string{} // infrastructure id -> indicator id
	for _, f := range findings {
		id := devices.DestinationID(f.Dest.String())
		if _, done := byDest[id]; done {
			continue
		}
		ids, err := s.search.IndicatorsFor(ctx, LocalAdmin(s.cfg.Org), f.Dest)
		if err != nil {
			s.log.WarnContext(ctx, "device findings: indicators not looked up", "err", err)
			return
		}
		byDest[id] = ""
		if len(ids) > 0 {
			slices.Sort(ids)
			byDest[id] = ids[0]
		}
	}
	for i, o := range objects {
		// Only sightings have a sighting_of_ref (compact JSON, as
		// devices.SightingsBundle writes it).
		for infra, ind := range byDest {
			if ind != "" && bytes.Contains(o, []byte(`"sighting_of_ref":"`+infra+`"`)) {
				objects[i] = bytes.Replace(o, []byte(`"sighting_of_ref":"`+infra+`"`), []byte(`"sighting_of_ref":"`+ind+`"`), 1)
			}
		}
	}
}
