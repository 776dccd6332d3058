package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/devicenode"
	"github.com/entente-cti/entente/internal/devices"
)

func cmdDevices(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "devices", "devices [flags] [DEVICE...]",
		"List the devices the device watch knows (from --profiles or the --data directory, or a running\n"+
			"node's watch with --server and an analyst key): their class,\n"+
			"addresses, countries, top destinations and latest findings. DEVICE is a MAC or an address; with\n"+
			"none, every device is listed. This view is local: it shows the devices' real identities, which\n"+
			"never leave the node (sightings carry pseudonyms).")
	var files deviceFiles
	files.register(fs)
	var rf remoteFlags
	rf.register(fs, env)
	class := fs.String("class", "", "list only the devices of this class")
	top := fs.Int("top", 5, "destinations shown per device")
	asJSON := fs.Bool("json", false, "write one JSON object per device")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if rf.server != "" && files.data == "" && files.profiles == "" {
		return remoteDevices(ctx, env, rf, *class, *top, *asJSON, fs.Args())
	}
	files.resolve()
	if files.profiles == "" {
		return usagef("give --profiles FILE or --data DIR")
	}
	if !fileExists(files.profiles) {
		return fmt.Errorf("no profiles at %s: run `entente watch` first", files.profiles)
	}
	cfg, err := files.loadConfig()
	if err != nil {
		return err
	}
	if *class != "" {
		if _, ok := cfg.Class(*class); !ok {
			return usagef("no class %q in the configuration", *class)
		}
	}
	if files.keyFile == "" || !fileExists(files.keyFile) {
		return usagef("give --key-file (the key the profiles' pseudonyms were made with) or --data DIR")
	}
	w, err := files.openWatcher(env, cfg, nil)
	if err != nil {
		return err
	}
	var list []devices.DeviceSummary
	if fs.NArg() == 0 {
		list = w.Devices()
	}
	for _, a := range fs.Args() {
		id, err := devices.ParseDeviceID(a)
		if err != nil {
			return usagef("%v", err)
		}
		d, ok := w.Device(id)
		if !ok {
			return fmt.Errorf("no device %s in %s", a, files.profiles)
		}
		list = append(list, d)
	}
	bw := bufio.NewWriter(env.Stdout)
	for i := range list {
		d := &list[i]
		if *class != "" && d.Class != *class {
			continue
		}
		if *asJSON {
			writeDeviceJSON(bw, d, *top)
			continue
		}
		writeDevice(bw, d, *top, w.Clock())
	}
	return bw.Flush()
}

func share(n, total uint64) string {
	if total == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(total))
}

func writeDevice(w io.Writer, d *devices.DeviceSummary, top int, clock time.Time) {
	fmt.Fprintf(w, "%s  %s", d.ID, d.Pseudonym)
	if d.Hostname != "" {
		fmt.Fprintf(w, "  %q", d.Hostname)
	}
	if d.Class != "" {
		fmt.Fprintf(w, "  class %s (%s)", d.Class, d.ClassReason)
	} else {
		fmt.Fprint(w, "  no class")
	}
	fmt.Fprintln(w)
	var addrs []string
	for _, a := range d.Addrs {
		addrs = append(addrs, a.String())
	}
	if len(addrs) > 0 {
		fmt.Fprintf(w, "  addresses %s\n", strings.Join(addrs, ", "))
	}
	if d.Fingerprint != "" {
		fmt.Fprintf(w, "  DHCP fingerprint %s\n", d.Fingerprint)
	}
	for _, s := range d.Software {
		fmt.Fprintf(w, "  software %s\n", s)
	}
	state := ""
	if d.Learning {
		state = ", learning"
	}
	sat := ""
	if d.NetworksSaturated {
		sat = "+ (too many to remember: no new-network findings)"
	}
	fmt.Fprintf(w, "  seen %s to %s%s: %d connections out, %s sent, %s received, about %d destinations, %d%s networks\n",
		d.First.Format(time.RFC3339), d.Last.Format(time.RFC3339), state, d.Connections, bytesHuman(d.BytesOut), bytesHuman(d.BytesIn),
		d.DistinctDestinations, d.Networks, sat)
	var cs []string
	for _, c := range d.Countries {
		cc := c.Country
		if cc == "" {
			cc = "??"
		}
		cs = append(cs, fmt.Sprintf("%s %d (%s)", cc, c.Connections, share(c.Connections, d.Connections)))
	}
	if len(cs) > 0 {
		fmt.Fprintf(w, "  countries: %s\n", strings.Join(cs, ", "))
	}
	if n := min(top, len(d.Destinations)); n > 0 {
		fmt.Fprintf(w, "  top destinations (%d of %d kept):\n", n, len(d.Destinations))
		for _, x := range d.Destinations[:n] {
			cc := x.Country
			if cc == "" {
				cc = "??"
			}
			name := ""
			if x.Name != "" {
				name = " " + x.Name
			}
			over := ""
			if x.Overestimate > 0 {
				over = fmt.Sprintf(" (≤%d over)", x.Overestimate)
			}
			beacon := ""
			if x.BeaconScore > 0 {
				beacon = fmt.Sprintf(", beacon score %.2f", x.BeaconScore)
			}
			fmt.Fprintf(w, "    %s %s%s %d/%s: %d connections%s, %s sent, %s received, last %s%s\n", hostPort(x.Addr), cc, name, x.Port, x.Proto,
				x.Connections, over, bytesHuman(x.BytesOut), bytesHuman(x.BytesIn), x.Last.Format(time.RFC3339), beacon)
		}
	}
	if len(d.Findings) > 0 {
		fmt.Fprintf(w, "  findings (latest %d):\n", len(d.Findings))
		for _, f := range d.Findings {
			fmt.Fprintf(w, "    %s %s: %s\n", f.Time.Format(time.RFC3339), f.Kind, f.Evidence)
		}
	}
	if d.SuppressedFindings > 0 {
		fmt.Fprintf(w, "  %d findings suppressed (daily limit)\n", d.SuppressedFindings)
	}
	fmt.Fprintln(w)
}

func hostPort(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

func bytesHuman(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

func writeDeviceJSON(w io.Writer, d *devices.DeviceSummary, top int) {
	v := devicenode.View(d, top)
	b, _ := json.Marshal(&v)
	w.Write(append(b, '\n'))
}

// remoteDevices lists the devices of a running node's device watch.
func remoteDevices(ctx context.Context, env *Env, rf remoteFlags, class string, top int, asJSON bool, names []string) error {
	c, err := newAPIClient(rf)
	if err != nil {
		return err
	}
	var list []devicenode.Device
	if len(names) == 0 {
		// Every device: the node lists DefaultDeviceLimit without a limit.
		q := url.Values{"top": {strconv.Itoa(max(top, 1))}, "limit": {"10000000"}}
		if class != "" {
			q.Set("class", class)
		}
		var out struct {
			Devices []devicenode.Device `json:"devices"`
		}
		if err := c.do(ctx, "GET", "/api/v1/devices?"+q.Encode(), nil, &out); err != nil {
			return err
		}
		list = out.Devices
	}
	for _, n := range names {
		var d devicenode.Device
		if err := c.do(ctx, "GET", "/api/v1/devices/"+url.PathEscape(n), nil, &d); err != nil {
			return err
		}
		list = append(list, d)
	}
	bw := bufio.NewWriter(env.Stdout)
	for i := range list {
		if class != "" && list[i].Class != class {
			continue
		}
		d, err := list[i].Summary()
		if err != nil {
			return fmt.Errorf("the node's answer: %w", err)
		}
		if asJSON {
			writeDeviceJSON(bw, &d, top)
			continue
		}
		writeDevice(bw, &d, top, time.Time{})
	}
	return bw.Flush()
}
