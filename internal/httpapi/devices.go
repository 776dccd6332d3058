package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/devicenode"
	"github.com/entente-cti/entente/internal/node"
)

// DeviceEventsPath is the route by which a sensor posts network logs to
// the node's device watch.
const DeviceEventsPath = "/api/v1/devices/events"

// MaxDeviceEventsBody bounds the body of one post of logs (the sensor
// posts a long log in pieces; `entente watch --server` posts at most
// 4 MiB at once).
const MaxDeviceEventsBody = 16 << 20

// DeviceList is the body of GET /api/v1/devices.
type DeviceList struct {
	Devices []devicenode.Device `json:"devices"`
	// Total is the number of devices (of the class); Devices holds the
	// first limit of them, in the order they were first seen.
	Total int `json:"total"`
}

// DefaultDeviceLimit is how many devices GET /api/v1/devices lists
// without ?limit=.
const DefaultDeviceLimit = 1000

// ClassExplanation is the body of GET /api/v1/explain?class=NAME.
type ClassExplanation struct {
	Class string   `json:"class"`
	Value string   `json:"value,omitempty"`
	Lines []string `json:"explanation"`
}

// deviceEvents serves POST /api/v1/devices/events: a log chunk (a Zeek
// log with its header, Suricata EVE lines; gzip or plain) applied to the
// node's device watch; its findings become sightings. Sensor and admin
// keys.
func (h *handler) deviceEvents(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if p.Role != entente.RoleSensor && p.Role != entente.RoleAdmin {
		// Refused before the body is read.
		h.refuse(w, r, MaxDeviceEventsBody, entente.Errorf(entente.EFORBIDDEN, "posting device events requires the sensor or admin role; this key's role is %q", p.Role))
		return
	}
	res, err := h.budget.reserve(p.KeyID, bodyCost(max(0, min(r.ContentLength, MaxDeviceEventsBody)), 0))
	if err != nil {
		refuseBody(w, r, MaxDeviceEventsBody)
		h.writeError(w, r, err)
		return
	}
	defer res.release()
	body, err := readBody(w, r, MaxDeviceEventsBody, func(n int64) error { return res.grow(bodyCostFactor * n) })
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "sensor " + p.KeyID
	}
	out, err := h.svc.DeviceEvents(r.Context(), p, name, body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, out)
}

// listDevices serves GET /api/v1/devices[?class=NAME&top=N&limit=N].
func (h *handler) listDevices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	top, limit := 5, DefaultDeviceLimit
	if v := q.Get("top"); v != "" {
		top, _ = strconv.Atoi(v) // checked by the route's query spec
	}
	if v := q.Get("limit"); v != "" {
		limit, _ = strconv.Atoi(v)
	}
	list, err := h.svc.Devices(r.Context(), principal(r), q.Get("class"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := DeviceList{Total: len(list), Devices: make([]devicenode.Device, 0, min(len(list), limit))}
	for i := range list[:min(len(list), limit)] {
		out.Devices = append(out.Devices, devicenode.View(&list[i], top))
	}
	h.writeAPI(w, r, http.StatusOK, out)
}

// getDevice serves GET /api/v1/devices/{device}: one device by MAC,
// address or pseudonym, with every destination its profile keeps.
func (h *handler) getDevice(w http.ResponseWriter, r *http.Request) {
	d, err := h.svc.Device(r.Context(), principal(r), r.PathValue("device"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, devicenode.View(&d, 0))
}

// exportClass serves GET /export/{format}?class=NAME: a device class's
// country policy, through the gate.
func (h *handler) exportClass(w http.ResponseWriter, r *http.Request, format, class string) {
	for name := range r.URL.Query() {
		if name != "class" && name != "zone" {
			h.writeError(w, r, entente.Errorf(entente.EINVALID, "query parameter %q does not apply to a class policy (it takes class and zone)", name))
			return
		}
	}
	res, err := h.svc.ExportClass(r.Context(), principal(r), node.ClassExportRequest{Class: class, Format: format,
		Zone: r.URL.Query().Get("zone"), IfNoneMatch: r.Header.Get("If-None-Match")})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("ETag", res.ETag)
	hd.Set("Cache-Control", "private, no-cache")
	hd.Set("Vary", "Authorization")
	if res.NotModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	f, _ := res.File("")
	ct := exportContentType[format]
	if ct == "" {
		ct = "text/plain; charset=utf-8"
	}
	hd.Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(f.Name, `"`, "")+`"`)
	writeBody(w, http.StatusOK, ct, f.Data)
}

// explainClass serves GET /api/v1/explain?class=NAME[&value=V]: why an
// address, network or country is in or out of a class policy.
func (h *handler) explainClass(w http.ResponseWriter, r *http.Request, class string) {
	v := r.URL.Query().Get("value")
	lines, err := h.svc.ExplainClass(r.Context(), principal(r), class, v)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeAPI(w, r, http.StatusOK, ClassExplanation{Class: class, Value: v, Lines: lines})
}
