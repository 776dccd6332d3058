package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/safety"
)

func cmdExport(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "export", "export --format F [--data DIR | --server URL --token KEY] [filters] [--country CC,...] [--out FILE|DIR] | --explain VALUE",
		"Render the indicators a node holds (that the key may read) as a blocklist or rule set:\n"+
			strings.Join(export.Formats, ", ")+".\n"+
			"Revoked and expired indicators are never exported; warninglisted ones only with\n"+
			"--include-warninglisted. Single-file formats go to stdout or --out FILE; misp-feed\n"+
			"and suricata-dataset need --out DIR.\n"+
			"The safety net ([safety] in the configuration) keeps out of every format what must\n"+
			"never be blocked: special-purpose addresses, the constituency, warninglisted and\n"+
			"allowlisted values; networks around them are cut. --explain VALUE says which rule\n"+
			"keeps VALUE out of which output (of the node at --server, or of --config).")
	var remote remoteFlags
	remote.register(fs, env)
	cfg := config.Default()
	fs.StringVar(&cfg.Data, "data", "", "data directory of a node, to export offline")
	fs.StringVar(&cfg.Store, "store", "", "PostgreSQL URL of a node's store, to export offline")
	format := fs.String("format", "", "export format (required)")
	types := fs.String("type", "", "observable types to export, comma-separated (ipv4, ipv6, cidr4, cidr6, domain, url, email, md5, sha1, sha256, sha512)")
	colls := fs.String("collection", "", "collections to export, comma-separated (default: every readable one)")
	tlp := fs.String("tlp", "", "export only indicators at this TLP or less restrictive")
	minConf := fs.Int("min-confidence", 0, "export only indicators of at least this confidence")
	sources := fs.String("source", "", "export only indicators from these sources, comma-separated")
	maxAge := fs.String("max-age", "", "export only indicators valid from within this age (36h, 7d)")
	inCountry := fs.String("in-country", "", "export only IP indicators located in these countries, comma-separated")
	countries := fs.String("country", "", "add these countries' address ranges (country blocklist), comma-separated")
	inclWL := fs.Bool("include-warninglisted", false, "also export indicators that hit a warninglist")
	noAgg := fs.Bool("no-aggregate", false, "keep addresses and networks as they are (no CIDR aggregation)")
	name := fs.String("name", "", "name of the table, set, zone or feed (default \"entente\")")
	zone := fs.String("zone", "", "RPZ zone origin (default NAME.rpz)")
	var geoFiles multiFlag
	fs.Var(&geoFiles, "geo", "geolocation data for --country and --in-country offline: range CSV, CIDR directory or .mmdb (repeatable)")
	out := fs.String("out", "", "output file, or directory for multi-file formats (default: stdout)")
	var ce classExport
	fs.StringVar(&ce.class, "class", "", "render a device class's country policy instead (nftables, plain or rpz): from a running node (--server), or offline from --devices-config and --geo")
	fs.BoolVar(&ce.explain, "explain", false, "say why the values named as arguments are kept out of exports or not, and by which rule of the safety net\n"+
		"(address, network, domain, URL, hash); with --class, why addresses, networks or countries are in or out of the class's policy\n"+
		"(none named: the whole policy)")
	fs.StringVar(&ce.config, "devices-config", "", "device-watch configuration for --class (default DIR/devices.toml with --data)")
	fs.StringVar(&ce.profiles, "profiles", "", "device profiles for --class: members classed by DHCP or software (default DIR/devices.profiles with --data)")
	fs.StringVar(&ce.keyFile, "key-file", "", "pseudonym key of the profiles (default DIR/devices.key with --data)")
	cfgFile := fs.String("config", "", "node configuration file whose [safety] table applies offline (default: the defaults)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if ce.class != "" && remote.server != "" && cfg.Data == "" && ce.config == "" {
		return remoteClassExport(ctx, env, remote, &ce, *format, *zone, *out, fs.Args())
	}
	if ce.class != "" {
		return runClassExport(env, &ce, *format, cfg.Data, geoFiles, *zone, *out, fs.Args())
	}
	if !ce.explain && fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *cfgFile != "" {
		data, st := cfg.Data, cfg.Store
		var err error
		if cfg, err = config.Load(*cfgFile, env.Getenv); err != nil {
			return err
		}
		if data != "" || st != "" {
			cfg.Data, cfg.Store = data, st
		}
	}
	if ce.explain {
		if fs.NArg() == 0 {
			return usagef("--explain needs the values to explain (addresses, networks, domains, URLs, hashes)")
		}
		for _, v := range fs.Args() {
			if err := explainValue(ctx, env, remote, cfg, *cfgFile, v); err != nil {
				return err
			}
		}
		return nil
	}
	if *format == "" {
		return usagef("--format is required (one of %s)", strings.Join(export.Formats, ", "))
	}
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("type", *types)
	set("collection", *colls)
	set("tlp", *tlp)
	if *minConf != 0 {
		q.Set("min-confidence", strconv.Itoa(*minConf))
	}
	set("source", *sources)
	set("max-age", *maxAge)
	set("country", *inCountry)
	set("country-list", *countries)
	if *inclWL {
		q.Set("include-warninglisted", "true")
	}
	if *noAgg {
		q.Set("no-aggregate", "true")
	}
	set("name", *name)
	set("zone", *zone)

	var files []export.File
	switch {
	case cfg.Data != "" || cfg.Store != "":
		req, err := httpapi.ParseExportQuery(*format, q)
		if err != nil {
			return usagef("%v", err)
		}
		svc, st, err := openNodeConfig(ctx, cfg, *cfgFile, quietLogger(env))
		if err != nil {
			return err
		}
		defer st.Close()
		if len(geoFiles) > 0 {
			loc, err := loadGeo(geoFiles)
			if err != nil {
				return err
			}
			svc.SetGeo(loc)
		}
		id, err := svc.Identity(ctx)
		if err != nil {
			return err
		}
		res, err := svc.Export(ctx, node.LocalAdmin(id.ID), req)
		if err != nil {
			return err
		}
		files = res.Files
	case remote.server != "":
		c, err := newAPIClient(remote)
		if err != nil {
			return err
		}
		if files, err = c.export(ctx, *format, q); err != nil {
			return err
		}
	default:
		return usagef("give --server URL (or ENTENTE_SERVER) to export from a running node, or --data DIR to export offline")
	}
	return writeExport(env, *format, files, *out)
}

// writeExport writes an export's files: a single-file one to out (or
// stdout), a multi-file one into the directory out.
func writeExport(env *Env, format string, files []export.File, out string) error {
	if !export.MultiFile(format) {
		if len(files) != 1 {
			return fmt.Errorf("export %s gave %d files, want 1", format, len(files))
		}
		if out == "" || out == "-" {
			_, err := env.Stdout.Write(files[0].Data)
			return err
		}
		return os.WriteFile(out, files[0].Data, 0o644)
	}
	if out == "" {
		return usagef("the %s format writes several files: give --out DIR", format)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(out, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.Stderr, "wrote %d files to %s\n", len(files), out)
	return nil
}

// export downloads an export from the node's /export/ endpoint, every
// file of a multi-file one.
func (c *apiClient) export(ctx context.Context, format string, q url.Values) ([]export.File, error) {
	get := func(path string) ([]byte, error) {
		u := c.base + "/export/" + url.PathEscape(format) + path + "?" + q.Encode()
		req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+c.key)
		hc := *c.http
		hc.Timeout = 10 * time.Minute
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", u, err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", u, err)
		}
		if resp.StatusCode != 200 {
			var e struct {
				Description string `json:"description"`
			}
			if json.Unmarshal(data, &e) == nil && e.Description != "" {
				return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, e.Description)
			}
			return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return data, nil
	}
	body, err := get("")
	if err != nil {
		return nil, err
	}
	if !export.MultiFile(format) {
		return []export.File{{Name: format, Data: body}}, nil
	}
	var idx struct {
		Files []string `json:"files"`
	}
	if err := json.Unmarshal(body, &idx); err != nil {
		return nil, fmt.Errorf("export %s: the node's file list is not JSON: %w", format, err)
	}
	files := make([]export.File, 0, len(idx.Files))
	for _, n := range idx.Files {
		data, err := get("/" + url.PathEscape(n))
		if err != nil {
			return nil, err
		}
		files = append(files, export.File{Name: n, Data: data})
	}
	return files, nil
}

// explainValue prints what the safety net does with value: the node's at
// remote.server, else the one of cfg.
func explainValue(ctx context.Context, env *Env, remote remoteFlags, cfg config.Config, cfgFile, value string) error {
	var ex safety.Explanation
	if remote.server != "" && cfg.Data == "" && cfg.Store == "" {
		c, err := newAPIClient(remote)
		if err != nil {
			return err
		}
		if err := c.do(ctx, "GET", httpapi.ExplainPath+"?value="+url.QueryEscape(value), nil, &ex); err != nil {
			return err
		}
	} else {
		n, err := safetyNet(cfg, cfgFile)
		if err != nil {
			return err
		}
		if ex, err = n.Explain(value); err != nil {
			return usagef("%v", err)
		}
	}
	writeExplanation(env.Stdout, ex)
	return nil
}

// writeExplanation writes an explanation for people.
func writeExplanation(w io.Writer, ex safety.Explanation) {
	fmt.Fprintf(w, "%s (%s): %s\n", ex.Value, ex.Kind, ex.Action)
	fmt.Fprintf(w, "%s.\n", ex.Summary)
	if len(ex.Rules) > 0 {
		fmt.Fprintln(w, "rules:")
		for _, m := range ex.Rules {
			line := "  " + m.Text
			if m.Prefix != "" && m.Prefix != m.Entry {
				line += " [" + m.Prefix + "]"
			}
			if len(m.Suppressed) > 0 {
				var cs []string
				for _, o := range []string{"export", "snapshot", "match", "correlation"} {
					if n := m.Suppressed[o]; n > 0 {
						cs = append(cs, fmt.Sprintf("%s %d", o, n))
					}
				}
				line += " — kept out so far: " + strings.Join(cs, ", ")
			}
			fmt.Fprintln(w, line)
		}
	}
	if len(ex.Remaining) > 0 {
		fmt.Fprintf(w, "remaining once cut (%d):\n", len(ex.Remaining))
		for i, r := range ex.Remaining {
			if i == 32 {
				fmt.Fprintf(w, "  … %d more\n", len(ex.Remaining)-i)
				break
			}
			fmt.Fprintln(w, "  "+r)
		}
	}
}
