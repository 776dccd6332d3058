// Package devicenode keeps the device watch (internal/devices) inside a
// running node: one watcher, fed by the logs its sensors post, whose
// profiles the node persists and whose findings become the node's
// sightings. It is safe for concurrent use; the watcher itself is not,
// so every use holds one lock.
//
// The package does no I/O of its own: the caller loads and saves the
// profile bytes (Load, Save) and turns the sightings bundles that Ingest
// returns into stored sightings.
package devicenode

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/entente-cti/entente/internal/devices"
	"github.com/entente-cti/entente/internal/devicewatch"
	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/sensor"
)

// Options configure a [Watch].
type Options struct {
	// Config is the device-watch configuration (devices.ParseConfig).
	Config devices.Config
	// Geo locates destinations and builds class policies; nil: every
	// country is unknown and class policies cannot be rendered.
	Geo geo.Locator
	// Key is the pseudonym key (at least devices.MinKeySize bytes).
	Key []byte
	// Identity is the STIX identity id of the organisation that runs the
	// node: the sightings' where_sighted_refs and created_by_ref.
	Identity string
	// SweepEvery is the log time between beacon sweeps within one post;
	// a sweep also ends each post (devicewatch.Options.SweepEvery).
	SweepEvery time.Duration
	// IgnoreFlowMACs leaves out the connections' link-layer addresses
	// (sensors behind a router).
	IgnoreFlowMACs bool
	// Shards is the number of profiling goroutines (0: GOMAXPROCS).
	Shards int
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// Watch is a node's device watch.
type Watch struct {
	opts Options

	mu    sync.Mutex
	w     *devices.Watcher
	dirty bool // changed since the last Save
}

// New returns a watch with empty profiles.
func New(opts Options) (*Watch, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w, err := devices.New(opts.Config, opts.Geo, opts.Key)
	if err != nil {
		return nil, fmt.Errorf("device watch: %w", err)
	}
	return &Watch{opts: opts, w: w}, nil
}

// Load replaces the profiles with those of a profile file's bytes.
func (x *Watch) Load(data []byte) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.w.Load(data); err != nil {
		return fmt.Errorf("load device profiles: %w", err)
	}
	return nil
}

// Save returns the profiles as a profile file's bytes, and whether they
// changed since the last Save.
func (x *Watch) Save() ([]byte, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	changed := x.dirty
	x.dirty = false
	return x.w.Save(), changed
}

// Config returns the configuration in force (defaults filled in).
func (x *Watch) Config() devices.Config { return x.w.Config() }

// Result is what one post of logs did.
type Result struct {
	// Lines, Events and Bad count the lines read, the events they gave
	// and the bad lines.
	Lines, Events, Bad int64
	// BadLines are the first bad lines, each with its line number.
	BadLines []string
	// Findings are the findings the post made (the node's local view,
	// with the devices' identities).
	Findings []devices.Finding
	// Bundle is the findings as a STIX bundle of sightings, the devices
	// reduced to pseudonyms; nil when there are none.
	Bundle []byte
}

// MaxBadLines bounds Result.BadLines.
const MaxBadLines = 10

// Ingest applies the events of one log chunk (a whole Zeek log or a run
// of its lines after its header, Suricata EVE lines, gzip or plain; the
// format is detected) to the watch, in order, sweeps, and returns the
// findings and their sightings bundle. name names the input in reports.
func (x *Watch) Ingest(ctx context.Context, name string, body []byte) (*Result, error) {
	in := sensor.Input{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }}
	res := &Result{}
	var badMu sync.Mutex // the readers report from their goroutines
	scan := sensor.Options{OnBadLine: func(b sensor.BadLine) {
		badMu.Lock()
		defer badMu.Unlock()
		if len(res.BadLines) < MaxBadLines {
			res.BadLines = append(res.BadLines, b.Error())
		}
	}}
	x.mu.Lock()
	stats, err := devicewatch.Run(ctx, devicewatch.Options{Watcher: x.w, Logs: []sensor.Input{in}, Scan: scan,
		SweepEvery: x.opts.SweepEvery, Shards: x.opts.Shards, IgnoreFlowMACs: x.opts.IgnoreFlowMACs})
	res.Findings = x.w.Findings()
	x.dirty = true
	x.mu.Unlock()
	res.Lines, res.Events, res.Bad = stats.Lines, stats.Records, stats.Bad
	if err != nil {
		return res, fmt.Errorf("device events %s: %w", name, err)
	}
	if len(res.Findings) > 0 {
		b, err := devices.SightingsBundle(res.Findings, x.opts.Identity, x.opts.Now())
		if err != nil {
			return res, err
		}
		res.Bundle = b
	}
	return res, nil
}

// Devices returns the summaries of the devices of class (every device
// when class is empty).
func (x *Watch) Devices(class string) []devices.DeviceSummary {
	x.mu.Lock()
	all := x.w.Devices()
	x.mu.Unlock()
	if class == "" {
		return all
	}
	out := all[:0]
	for _, d := range all {
		if d.Class == class {
			out = append(out, d)
		}
	}
	return out
}

// Device returns the summary of one device, named by its MAC, its
// address or its pseudonym.
func (x *Watch) Device(name string) (devices.DeviceSummary, bool) {
	if strings.HasPrefix(name, "dev-") {
		for _, d := range x.Devices("") {
			if d.Pseudonym == name {
				return d, true
			}
		}
		return devices.DeviceSummary{}, false
	}
	id, err := devices.ParseDeviceID(name)
	if err != nil {
		return devices.DeviceSummary{}, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.w.Device(id)
}

// Clock is the watch's log time: the time of the latest event applied.
func (x *Watch) Clock() time.Time {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.w.Clock()
}

// HasClass reports whether the configuration names class.
func (x *Watch) HasClass(class string) bool {
	cfg := x.w.Config()
	_, ok := cfg.Class(class)
	return ok
}

// ClassPolicy renders class's country policy in format (nftables, plain
// or rpz) from the geo data, the configuration and the devices the
// profiles assign to the class.
func (x *Watch) ClassPolicy(class, format string, opts export.Options) ([]byte, error) {
	cfg := x.w.Config()
	if x.opts.Geo == nil {
		return nil, fmt.Errorf("a class policy needs geolocation data: start the node with --geo")
	}
	x.mu.Lock()
	p, err := devices.ClassPolicy(&cfg, class, x.opts.Geo, x.w)
	x.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := export.RenderClassPolicy(&b, format, p, opts); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Explain says why value (an address, a network, a country code; "" for
// the whole policy) is in or out of class's policy.
func (x *Watch) Explain(class, value string) ([]string, error) {
	cfg := x.w.Config()
	return devices.Explain(&cfg, class, x.opts.Geo, value)
}
