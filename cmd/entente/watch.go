package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/devices"
	"github.com/entente-cti/entente/internal/devicewatch"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/sensorclient"
)

// deviceFiles are the files of the device watch: its configuration, the
// persisted profiles and the pseudonym key. With --data they live in the
// node's data directory.
type deviceFiles struct {
	data     string
	config   string
	profiles string
	keyFile  string
	geo      multiFlag
}

func (f *deviceFiles) register(fs *flag.FlagSet) {
	fs.StringVar(&f.data, "data", "", "a node's data directory: devices.toml, devices.profiles and devices.key live there")
	fs.StringVar(&f.config, "config", "", "device-watch configuration (TOML: constituency, classes...; default DIR/devices.toml with --data)")
	fs.StringVar(&f.profiles, "profiles", "", "profile file, read and written back (default DIR/devices.profiles with --data)")
	fs.StringVar(&f.keyFile, "key-file", "", "pseudonym key file, created when missing (default DIR/devices.key with --data)")
	fs.Var(&f.geo, "geo", "geolocation data: range CSV, CIDR directory or .mmdb (repeatable); without it every country is unknown")
}

func (f *deviceFiles) resolve() {
	if f.data == "" {
		return
	}
	if f.config == "" {
		if p := filepath.Join(f.data, "devices.toml"); fileExists(p) {
			f.config = p
		}
	}
	if f.profiles == "" {
		f.profiles = filepath.Join(f.data, "devices.profiles")
	}
	if f.keyFile == "" {
		f.keyFile = filepath.Join(f.data, "devices.key")
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// loadConfig reads the device-watch configuration (the defaults when
// there is none).
func (f *deviceFiles) loadConfig() (*devices.Config, error) {
	if f.config == "" {
		return &devices.Config{}, nil
	}
	data, err := os.ReadFile(f.config)
	if err != nil {
		return nil, fmt.Errorf("device-watch configuration: %w", err)
	}
	return devices.ParseConfig(data, f.config)
}

// loadKey reads the pseudonym key, creating it (32 random bytes, in hex,
// readable by the owner only) when the file does not exist. Without a key
// file the key is random for this run: pseudonyms then change from run
// to run.
func (f *deviceFiles) loadKey(env *Env) ([]byte, error) {
	if f.keyFile == "" {
		key := make([]byte, 32)
		rand.Read(key)
		fmt.Fprintln(env.Stderr, "watch: no --key-file or --data: device pseudonyms are valid for this run only")
		return key, nil
	}
	data, err := os.ReadFile(f.keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		rand.Read(key)
		if err := os.WriteFile(f.keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("pseudonym key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("pseudonym key %s: not hex: %w", f.keyFile, err)
	}
	if len(key) < devices.MinKeySize {
		return nil, fmt.Errorf("pseudonym key %s: %d bytes, want at least %d", f.keyFile, len(key), devices.MinKeySize)
	}
	return key, nil
}

func (f *deviceFiles) loadGeo() (geo.Locator, error) {
	if len(f.geo) == 0 {
		return nil, nil
	}
	return loadGeo(f.geo)
}

// openWatcher builds a watcher from the files and loads the profiles.
func (f *deviceFiles) openWatcher(env *Env, cfg *devices.Config, loc geo.Locator) (*devices.Watcher, error) {
	key, err := f.loadKey(env)
	if err != nil {
		return nil, err
	}
	w, err := devices.New(*cfg, loc, key)
	if err != nil {
		return nil, err
	}
	if f.profiles != "" {
		data, err := os.ReadFile(f.profiles)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("profiles: %w", err)
		default:
			if err := w.Load(data); err != nil {
				return nil, fmt.Errorf("%s: %w", f.profiles, err)
			}
		}
	}
	return w, nil
}

// saveProfiles writes the profiles atomically (a temporary file renamed
// over the old one).
func saveProfiles(path string, w *devices.Watcher) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, w.Save(), 0o600); err != nil {
		return fmt.Errorf("save profiles: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save profiles: %w", err)
	}
	return nil
}

func cmdWatch(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "watch", "watch [flags] LOG...",
		"Watch what the devices of the constituency talk to, from network logs (Zeek conn, dhcp,\n"+
			"known_devices, dns and software logs in TSV or JSON, Suricata EVE flow, dhcp and dns events,\n"+
			"JSON lines of connections; gzip or plain; stdin when no LOG is given). Profiles persist in\n"+
			"--profiles (or the --data directory) across runs. Findings (beacons, long connections, large\n"+
			"uploads, first contacts with a country or network after the learning period, breaches of a\n"+
			"device class's policy) go to stdout, one per line, each with its evidence; --sightings writes\n"+
			"them as a STIX bundle of sightings that `entente ingest` and the node's sightings API accept,\n"+
			"and --report posts it to the node. With --node (and --follow, to keep tailing them) the logs\n"+
			"go to the node's device watch instead, which keeps the profiles and stores the findings as\n"+
			"sightings: the sensor path. See docs/devices.md.")
	var (
		files     deviceFiles
		rf        remoteFlags
		format    = fs.String("log-format", "auto", "log format: auto, zeek, zeek-json, eve or jsonl")
		fields    = fs.String("fields", "", "for --log-format jsonl: connection mapping path=field,... (fields: time, start, end, src, dst, src_port, dst_port, proto, duration, src_bytes, dst_bytes, src_pkts, dst_pkts, src_mac, dst_mac)")
		jsonOut   = fs.Bool("json", false, "write findings as JSON lines")
		sightings = fs.String("sightings", "", "write the findings as a STIX bundle of sightings to this file")
		report    = fs.Bool("report", false, "post the sightings bundle to the node (--server)")
		identity  = fs.String("identity", env.Getenv("ENTENTE_IDENTITY"), "identity id of this organisation, for the sightings (or $ENTENTE_IDENTITY)")
		workers   = fs.Int("workers", 0, "parsing goroutines (default: every core)")
		noSave    = fs.Bool("no-save", false, "do not write the profiles back")
		learn     = fs.String("learn", "", "learning period before first contacts are findings (7d, 36h, 0; overrides the configuration)")
		sweep     = fs.Duration("sweep-every", 6*time.Hour, "log time between beacon sweeps")
		noMACs    = fs.Bool("ignore-flow-macs", false, "ignore link-layer addresses of connections (a sensor behind a router)")
		quiet     = fs.Bool("quiet", false, "do not print the summary and bad lines on stderr")
		toNode    = fs.Bool("node", false, "the sensor path: post the logs to the device watch of the node (--server, a sensor key), which keeps the profiles and turns findings into sightings; nothing is profiled here")
		follow    = fs.Bool("follow", false, "with --node: keep following the logs (as tail -F does, rotation included) and post what is appended")
		poll      = fs.Duration("poll", time.Second, "with --follow: how often the logs are looked at for more")
	)
	files.register(fs)
	rf.register(fs, env)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *follow {
		*toNode = true
	}
	if *toNode {
		if rf.server == "" {
			return usagef("--node and --follow need --server (and a sensor key: --token)")
		}
		if fs.NArg() == 0 {
			return usagef("--node and --follow need the log files (not stdin)")
		}
		if *report || *sightings != "" || files.data != "" || files.profiles != "" || files.config != "" || len(files.geo) > 0 {
			return usagef("with --node the node profiles the logs, with its own configuration, geo data and profiles: --report, --sightings, --data, --config, --profiles and --geo are for a watch run here")
		}
		if *poll <= 0 {
			return usagef("--poll must be positive")
		}
		hc, err := rf.httpClient(5 * time.Minute)
		if err != nil {
			return err
		}
		nw := &nodeWatch{env: env, client: &sensorclient.Client{Server: rf.server, Token: rf.key(), HTTP: hc}, follow: *follow, poll: *poll, quiet: *quiet}
		return nw.run(ctx, fs.Args())
	}
	if *report && rf.server == "" {
		return usagef("--report needs --server")
	}
	if (*report || *sightings != "") && *identity == "" {
		return usagef("--sightings and --report need --identity (the identity id of this organisation)")
	}
	files.resolve()
	cfg, err := files.loadConfig()
	if err != nil {
		return err
	}
	if *learn != "" {
		d, err := devices.ParseDuration(*learn)
		if err != nil {
			return usagef("--learn: %v", err)
		}
		cfg.Learn = d
		if d == 0 {
			cfg.Learn = -1
		}
	}
	var scan sensor.Options
	scan.Workers = *workers
	switch *format {
	case "auto":
	case "jsonl":
		f, err := sensor.JSONLinesEvents(*fields)
		if err != nil {
			return usagef("--fields: %v", err)
		}
		scan.Format = f
	default:
		f, ok := sensor.Formats[*format]
		if !ok {
			return usagef("unknown --log-format %q (want auto, zeek, zeek-json, eve or jsonl)", *format)
		}
		scan.Format = f
	}
	if !*quiet {
		scan.OnBadLine = func(b sensor.BadLine) { fmt.Fprintf(env.Stderr, "bad line: %v\n", b) }
	}
	loc, err := files.loadGeo()
	if err != nil {
		return err
	}
	if loc == nil && !*quiet {
		fmt.Fprintln(env.Stderr, "watch: no --geo data: every destination's country is unknown")
	}
	w, err := files.openWatcher(env, cfg, loc)
	if err != nil {
		return err
	}
	var logs []sensor.Input
	for _, a := range fs.Args() {
		if a == "-" {
			logs = append(logs, sensor.Input{Name: "-", Open: func() (io.ReadCloser, error) { return io.NopCloser(env.Stdin), nil }})
			continue
		}
		logs = append(logs, sensor.Input{Name: a, Open: func() (io.ReadCloser, error) { return os.Open(a) }})
	}
	if len(logs) == 0 {
		logs = append(logs, sensor.Input{Name: "-", Open: func() (io.ReadCloser, error) { return io.NopCloser(env.Stdin), nil }})
	}
	if logs, err = devicewatch.SortInputs(logs, scan.Format); err != nil {
		return err
	}
	start := time.Now()
	stats, runErr := devicewatch.Run(ctx, devicewatch.Options{Watcher: w, Logs: logs, Scan: scan, SweepEvery: *sweep, IgnoreFlowMACs: *noMACs})
	findings := w.Findings()
	bw := bufio.NewWriter(env.Stdout)
	for i := range findings {
		writeFinding(bw, &findings[i], *jsonOut)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	if !*quiet {
		ws := w.Stats()
		fmt.Fprintf(env.Stderr, "watch: %d inputs, %d lines, %d events, %d bad lines; %d connections (%d out of the constituency), %d devices, %d device–destination pairs, %d findings (%d suppressed); %v\n",
			stats.Inputs, stats.Lines, stats.Records, stats.Bad, ws.Flows, ws.Egress, ws.Devices, ws.Destinations, len(findings), ws.Suppressed, time.Since(start).Round(time.Millisecond))
	}
	if files.profiles != "" && !*noSave && ctx.Err() == nil {
		if err := saveProfiles(files.profiles, w); err != nil {
			return err
		}
	}
	if (*sightings != "" || *report) && len(findings) > 0 {
		bundle, err := devices.SightingsBundle(findings, *identity, time.Now())
		if err != nil {
			return err
		}
		if *sightings != "" {
			if err := os.WriteFile(*sightings, bundle, 0o644); err != nil {
				return fmt.Errorf("--sightings: %w", err)
			}
		}
		if *report {
			c := &sensorclient.Client{Server: rf.server, Token: rf.key()}
			if err := c.PostSightings(ctx, bundle); err != nil {
				return err
			}
		}
	}
	return runErr
}

// findingJSON is a finding as a JSON line: the local view, with the
// device's real identity (it never leaves the node in this form).
type findingJSON struct {
	Kind      string               `json:"kind"`
	Device    string               `json:"device"`
	Pseudonym string               `json:"pseudonym"`
	Class     string               `json:"class,omitempty"`
	Hostname  string               `json:"hostname,omitempty"`
	Dest      string               `json:"destination"`
	DestName  string               `json:"destination_name,omitempty"`
	Country   string               `json:"country,omitempty"`
	Network   string               `json:"network,omitempty"`
	Port      uint16               `json:"port,omitempty"`
	First     time.Time            `json:"first_seen"`
	Last      time.Time            `json:"last_seen"`
	Count     uint64               `json:"count"`
	BytesOut  uint64               `json:"bytes_out"`
	BytesIn   uint64               `json:"bytes_in"`
	Score     float64              `json:"score"`
	Beacon    *devices.BeaconStats `json:"beacon,omitempty"`
	Evidence  string               `json:"evidence"`
}

func writeFinding(w io.Writer, f *devices.Finding, asJSON bool) {
	if asJSON {
		j := findingJSON{Kind: f.Kind.String(), Device: f.Device.String(), Pseudonym: f.Pseudonym, Class: f.Class, Hostname: f.Hostname,
			Dest: f.Dest.String(), DestName: f.DestName, Country: f.Country, Port: f.Port, First: f.First, Last: f.Last, Count: f.Count,
			BytesOut: f.BytesOut, BytesIn: f.BytesIn, Score: f.Score, Beacon: f.Beacon, Evidence: f.Evidence}
		if f.Network.IsValid() {
			j.Network = f.Network.String()
		}
		b, _ := json.Marshal(&j)
		w.Write(append(b, '\n'))
		return
	}
	who := f.Device.String()
	if f.Hostname != "" {
		who += " " + f.Hostname
	}
	class := ""
	if f.Class != "" {
		class = ", class " + f.Class
	}
	fmt.Fprintf(w, "%s %s %s (%s%s): %s\n", f.Last.Format(time.RFC3339), f.Kind, who, f.Pseudonym, class, f.Evidence)
}
