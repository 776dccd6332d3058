package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

var nan = math.NaN()

// attackObjects is the number of objects in the ATT&CK Enterprise 18.1
// bundle of the shared data.
const attackObjects = 24772

// ingestWorkload measures `entente ingest --data` of the ATT&CK Enterprise
// bundle into a fresh node, as a whole process: wall time against the
// goal, and the CPU, page faults, context switches and peak memory the
// kernel accounts to the process (load-independent counts beside the
// time). With Options.Strace, one more run under `strace -c -f` counts
// the write, read, madvise and fsync system calls.
func ingestWorkload(ctx context.Context, e *Env) error {
	bin, err := e.Tool(ctx, "entente")
	if err != nil {
		return err
	}
	bundle := e.Data("attack", "enterprise-attack-18.1.json.gz")
	if _, err := os.Stat(bundle); err != nil {
		return fmt.Errorf("ATT&CK bundle: %w", err)
	}
	fresh := func() (string, error) {
		dir, err := e.TempDir("ingest-")
		if err != nil {
			return "", err
		}
		data := filepath.Join(dir, "data")
		init := exec.CommandContext(ctx, bin, "init", "--data", data, "--org", "Bench", "--country", "FR")
		if _, err := init.Output(); err != nil {
			return "", fmt.Errorf("entente init: %w", exitDetail(err))
		}
		return data, nil
	}
	samples := Pick(e, 3, 5)
	for s := 0; s < samples; s++ {
		data, err := fresh()
		if err != nil {
			return err
		}
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "ingest", "--quiet", "--data", data, bundle)
		cmd.Stderr = &stderr
		u, err := e.Exec(cmd)
		if err != nil {
			return fmt.Errorf("%w\n%s", err, tail(stderr.Bytes(), 1000))
		}
		if !strings.Contains(stderr.String(), fmt.Sprintf("stored %d objects, rejected 0", attackObjects)) {
			return fmt.Errorf("entente ingest did not store the %d objects: %s", attackObjects, tail(stderr.Bytes(), 500))
		}
		e.Emit(Figure{Name: "ingest.attack.wall", Value: u.Wall.Seconds(), Unit: "s", Better: Lower, Goal: Below(1.5),
			Note: "whole process: gunzip, decode, validate, store, close"})
		e.Emit(Figure{Name: "ingest.attack.rate", Value: attackObjects / u.Wall.Seconds(), Unit: "objects/s", Better: Higher,
			Peers: []Peer{{Name: "MISP", Value: 83, Recorded: true, Source: "BASELINES.md, from MISP users' reports (not measured): 33–83 attributes/s on import"}}})
		e.Emit(Figure{Name: "ingest.attack.user", Value: u.User.Seconds(), Unit: "s", Better: Lower})
		e.Emit(Figure{Name: "ingest.attack.sys", Value: u.Sys.Seconds(), Unit: "s", Better: Lower})
		e.Emit(Figure{Name: "ingest.attack.page-faults", Value: float64(u.MinorFaults + u.MajorFaults), Unit: "faults", Better: Lower})
		e.Emit(Figure{Name: "ingest.attack.context-switches", Value: float64(u.Voluntary + u.Involuntary), Unit: "switches", Better: Lower})
		e.Emit(Figure{Name: "ingest.attack.max-rss", Value: float64(u.MaxRSS) / (1 << 20), Unit: "MiB", Better: Lower})
	}
	if !e.opts.Strace {
		return nil
	}
	strace, err := lookTool("strace")
	if err != nil {
		e.Logf("syscall counts skipped: %v", err)
		return nil
	}
	data, err := fresh()
	if err != nil {
		return err
	}
	out := filepath.Join(filepath.Dir(data), "strace.txt")
	cmd := exec.CommandContext(ctx, strace, "-c", "-f", "-o", out, bin, "ingest", "--quiet", "--data", data, bundle)
	if _, err := e.Exec(cmd); err != nil {
		return err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return fmt.Errorf("strace summary: %w", err)
	}
	counts, err := ParseStraceSummary(b)
	if err != nil {
		return fmt.Errorf("strace summary %s: %w", out, err)
	}
	for _, sc := range []string{"pwrite64", "pread64", "madvise", "fsync", "futex"} {
		e.Emit(Figure{Name: "ingest.attack.syscalls." + sc, Value: float64(counts[sc]), Unit: "calls", Better: Lower})
	}
	return nil
}

var straceRow = regexp.MustCompile(`^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$`)

// ParseStraceSummary reads the table `strace -c` writes and returns the
// number of calls of each system call. A file without the table's header
// is an error.
func ParseStraceSummary(b []byte) (map[string]int64, error) {
	if !bytes.Contains(b, []byte("syscall")) {
		return nil, fmt.Errorf("no strace -c table (header with \"syscall\" missing)")
	}
	out := map[string]int64{}
	for _, l := range strings.Split(string(b), "\n") {
		m := straceRow.FindStringSubmatch(l)
		if m == nil || m[2] == "total" {
			continue
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("strace row %q: %w", l, err)
		}
		out[m[2]] = n
	}
	return out, nil
}
