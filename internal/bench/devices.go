package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// DevicegenReport is what `devicegen -bench` says: the matcher's run and
// the device watch's run on the same conn.log.
type DevicegenReport struct {
	// MatchLines and MatchRate are the matcher's (0 when it did not run).
	MatchLines int64
	MatchRate  float64
	// Lines, Seconds, Rate and RatePerCPU are the watch's: parsing,
	// profiling and detection with sweeps.
	Lines               int64
	Seconds             float64
	Rate, RatePerCPU    float64
	Procs               int
	Devices, Pairs      int64
	HeapMiB             float64
	HeapPerPair         float64
	EstimatePerPair     float64
	BeaconsFound        int64
	BeaconsPlanted      int64
	DecoysReported      int64
	Decoys              int64
	ProfileFileMiB      float64
	ProfileBytesPerPair float64
}

var (
	dgMatch   = regexp.MustCompile(`^match: (\d+) lines in [\d.]+ s = (\d+) lines/s`)
	dgWatch   = regexp.MustCompile(`^watch: (\d+) lines in ([\d.]+) s = (\d+) lines/s \([\d.]+ CPU s, (\d+) lines per CPU s\), GOMAXPROCS (\d+)`)
	dgMemory  = regexp.MustCompile(`^watch: (\d+) devices, (\d+) device–destination pairs, heap (-?[\d.]+) MiB = (-?[\d.]+) bytes per pair \(estimate ([\d.]+)\)`)
	dgFile    = regexp.MustCompile(`^watch: profile file ([\d.]+) MiB \(([\d.]+) bytes per pair\)`)
	dgBeacons = regexp.MustCompile(`^watch: planted beacons found (\d+) of (\d+) \([\d.]+\); decoys reported (\d+) of (\d+)`)
)

// ParseDevicegen reads the output of `devicegen -bench`; it needs the
// watch's rate and memory lines.
func ParseDevicegen(r io.Reader) (*DevicegenReport, error) {
	rep := &DevicegenReport{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var rate, mem bool
	for sc.Scan() {
		t := sc.Text()
		if m := dgMatch.FindStringSubmatch(t); m != nil {
			rep.MatchLines, _ = strconv.ParseInt(m[1], 10, 64)
			rep.MatchRate, _ = strconv.ParseFloat(m[2], 64)
		} else if m := dgWatch.FindStringSubmatch(t); m != nil {
			rep.Lines, _ = strconv.ParseInt(m[1], 10, 64)
			rep.Seconds, _ = strconv.ParseFloat(m[2], 64)
			rep.Rate, _ = strconv.ParseFloat(m[3], 64)
			rep.RatePerCPU, _ = strconv.ParseFloat(m[4], 64)
			rep.Procs, _ = strconv.Atoi(m[5])
			rate = true
		} else if m := dgMemory.FindStringSubmatch(t); m != nil {
			rep.Devices, _ = strconv.ParseInt(m[1], 10, 64)
			rep.Pairs, _ = strconv.ParseInt(m[2], 10, 64)
			rep.HeapMiB, _ = strconv.ParseFloat(m[3], 64)
			rep.HeapPerPair, _ = strconv.ParseFloat(m[4], 64)
			rep.EstimatePerPair, _ = strconv.ParseFloat(m[5], 64)
			mem = true
		} else if m := dgFile.FindStringSubmatch(t); m != nil {
			rep.ProfileFileMiB, _ = strconv.ParseFloat(m[1], 64)
			rep.ProfileBytesPerPair, _ = strconv.ParseFloat(m[2], 64)
		} else if m := dgBeacons.FindStringSubmatch(t); m != nil {
			rep.BeaconsFound, _ = strconv.ParseInt(m[1], 10, 64)
			rep.BeaconsPlanted, _ = strconv.ParseInt(m[2], 10, 64)
			rep.DecoysReported, _ = strconv.ParseInt(m[3], 10, 64)
			rep.Decoys, _ = strconv.ParseInt(m[4], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read devicegen output: %w", err)
	}
	if !rate || !mem {
		return nil, errors.New("devicegen output has no watch rate or memory line")
	}
	return rep, nil
}

// deviceSizes are the device workload's population and lines: a day of a
// 10,000-device network (about 50,000,000 conn lines) in full mode.
func deviceSizes(e *Env) (devs, lines int) {
	return Pick(e, 1_000, 10_000), Pick(e, 2_000_000, 50_000_000)
}

// devicesBudget bounds the devices workload: generation of the day's log
// (several GB in full mode), the matcher and the watch on it.
func devicesBudget(o *Options) time.Duration {
	if o.Mode == Full {
		return 30 * time.Minute
	}
	return 5 * time.Minute
}

// devicesWorkload generates (once, then reuses) a day of a network with
// tools/devicegen — connections replaying the real Slips captures as
// templates, planted beacons and decoys — and runs `devicegen -bench` on
// it, on two cores (GOMAXPROCS=2, as the goals are stated): the log
// matcher (internal/match, what `entente match` runs) on the conn.log,
// then the device watch (parsing, profiling, detection, sweeps) on the
// same file. Figures: the watch's lines per second beside the matcher's,
// memory per device–destination pair, the recall of the planted beacons
// and, in full mode, the time of the whole day.
func devicesWorkload(ctx context.Context, e *Env) error {
	dg, err := e.Tool(ctx, "devicegen")
	if err != nil {
		return err
	}
	devs, lines := deviceSizes(e)
	data := filepath.Join(e.Shared, "data")
	dir := filepath.Join(e.Work, fmt.Sprintf("devices-d%d-l%d-s1", devs, lines))
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		os.RemoveAll(dir)
		e.Logf("generating a day of %d devices, about %d conn lines, into %s (kept for later runs)", devs, lines, dir)
		beacons, decoys := devs/10, devs/10
		cmd := exec.CommandContext(ctx, dg, "-out", dir, "-devices", fmt.Sprint(devs), "-lines", fmt.Sprint(lines),
			"-beacons", fmt.Sprint(beacons), "-decoys", fmt.Sprint(decoys), "-seed", "1", "-data", data)
		if _, err := e.Exec(cmd); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
			return err
		}
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, dg, "-bench", dir, "-data", data)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	cmd.Stdout = &out
	bu, err := e.Exec(cmd)
	if err != nil {
		return err
	}
	rep, err := ParseDevicegen(bytes.NewReader(out.Bytes()))
	if err != nil {
		return fmt.Errorf("%w:\n%s", err, tail(out.Bytes(), 2000))
	}
	var peers []Peer
	if rep.MatchRate > 0 {
		peers = append(peers, Peer{Name: "log matcher", Value: rep.MatchRate, Note: "(internal/match, as `entente match` runs it, on the same conn.log)"})
	}
	e.Emit(Figure{Name: "devices.watch.rate", Value: rep.Rate, Unit: "lines/s", Better: Higher, Goal: AtLeast(2_000_000), Peers: peers,
		Note: fmt.Sprintf("Zeek conn lines parsed, profiled and checked (sweeps every 6 h of log time), %d devices, GOMAXPROCS %d", rep.Devices, rep.Procs)})
	e.Emit(Figure{Name: "devices.watch.rate-per-cpu", Value: rep.RatePerCPU, Unit: "lines/CPU-s", Better: Higher})
	e.Emit(Figure{Name: "devices.memory.per-pair", Value: rep.HeapPerPair, Unit: "bytes", Better: Lower, Goal: Below(1024),
		Note: fmt.Sprintf("heap of the profiles after collection over %d device–destination pairs (the structures' own estimate: %.0f)", rep.Pairs, rep.EstimatePerPair)})
	e.Emit(Figure{Name: "devices.profile-file.per-pair", Value: rep.ProfileBytesPerPair, Unit: "bytes", Better: Lower})
	if rep.BeaconsPlanted > 0 {
		e.Emit(Figure{Name: "devices.beacons.recall", Value: float64(rep.BeaconsFound) / float64(rep.BeaconsPlanted), Unit: "ratio", Better: Higher,
			Note: fmt.Sprintf("%d of %d planted beacons found; %d of %d decoys reported", rep.BeaconsFound, rep.BeaconsPlanted, rep.DecoysReported, rep.Decoys)})
	}
	e.Emit(Figure{Name: "devices.bench.max-rss", Value: float64(bu.MaxRSS) / (1 << 20), Unit: "MiB", Better: Lower})
	if !e.Quick() {
		e.Emit(Figure{Name: "devices.day10k", Value: rep.Seconds, Unit: "s", Better: Lower, Goal: Below(60),
			Note: fmt.Sprintf("a day of a %d-device network, %d conn lines generated from the real logs", rep.Devices, rep.Lines)})
	}
	return nil
}
