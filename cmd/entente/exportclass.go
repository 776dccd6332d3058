package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/entente-cti/entente/internal/devices"
	"github.com/entente-cti/entente/internal/export"
)

// classExport holds the flags of `entente export --class` and
// `--explain`: a device class's country policy, rendered offline from the
// device-watch configuration, the geo data and (for classes assigned by
// DHCP or software) the profiles.
type classExport struct {
	class    string
	explain  bool
	config   string
	profiles string
	keyFile  string
}

// runClassExport renders or explains a class policy.
func runClassExport(env *Env, ce *classExport, format, data string, geoFiles []string, zone, out string, args []string) error {
	files := deviceFiles{data: data, config: ce.config, profiles: ce.profiles, keyFile: ce.keyFile, geo: geoFiles}
	files.resolve()
	if files.config == "" {
		return usagef("--class and --explain need the device-watch configuration: --devices-config FILE, or --data DIR holding devices.toml")
	}
	cfg, err := files.loadConfig()
	if err != nil {
		return err
	}
	if ce.class == "" {
		return usagef("--explain needs --class NAME")
	}
	loc, err := files.loadGeo()
	if err != nil {
		return err
	}
	if ce.explain {
		queries := args
		if len(queries) == 0 {
			queries = []string{""}
		}
		var lines []string
		for _, q := range queries {
			l, err := devices.Explain(cfg, ce.class, loc, q)
			if err != nil {
				return err
			}
			lines = append(lines, l...)
		}
		_, err := fmt.Fprintln(env.Stdout, strings.Join(lines, "\n"))
		return err
	}
	if len(args) > 0 {
		return usagef("unexpected argument %q (addresses, networks and countries are for --explain)", args[0])
	}
	if format == "" {
		return usagef("--format is required (one of %s)", strings.Join(export.ClassPolicyFormats, ", "))
	}
	// Profiles know the devices classed by DHCP host name, fingerprint or
	// software; without them only networks and MAC prefixes are members.
	var w *devices.Watcher
	if files.profiles != "" {
		if _, err := os.Stat(files.profiles); err == nil {
			if files.keyFile == "" || !fileExists(files.keyFile) {
				return usagef("the profiles %s need their pseudonym key (--key-file)", files.profiles)
			}
			if w, err = files.openWatcher(env, cfg, nil); err != nil {
				return err
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("profiles: %w", err)
		}
	}
	p, err := devices.ClassPolicy(cfg, ce.class, loc, w)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := export.RenderClassPolicy(&b, format, p, export.Options{Zone: zone}); err != nil {
		return err
	}
	if out == "" || out == "-" {
		_, err := env.Stdout.Write([]byte(b.String()))
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

// remoteClassExport renders or explains a class policy on a running
// node: GET /export/FORMAT?class=NAME, GET /api/v1/explain?class=NAME.
func remoteClassExport(ctx context.Context, env *Env, remote remoteFlags, ce *classExport, format, zone, out string, args []string) error {
	c, err := newAPIClient(remote)
	if err != nil {
		return err
	}
	if ce.explain {
		queries := args
		if len(queries) == 0 {
			queries = []string{""}
		}
		for _, v := range queries {
			q := url.Values{"class": {ce.class}}
			if v != "" {
				q.Set("value", v)
			}
			var ex struct {
				Lines []string `json:"explanation"`
			}
			if err := c.do(ctx, "GET", "/api/v1/explain?"+q.Encode(), nil, &ex); err != nil {
				return err
			}
			if _, err := fmt.Fprintln(env.Stdout, strings.Join(ex.Lines, "\n")); err != nil {
				return err
			}
		}
		return nil
	}
	if len(args) > 0 {
		return usagef("unexpected argument %q (addresses, networks and countries are for --explain)", args[0])
	}
	if format == "" {
		return usagef("--format is required (one of %s)", strings.Join(export.ClassPolicyFormats, ", "))
	}
	q := url.Values{"class": {ce.class}}
	if zone != "" {
		q.Set("zone", zone)
	}
	files, err := c.export(ctx, format, q)
	if err != nil {
		return err
	}
	return writeExport(env, format, files, out)
}
