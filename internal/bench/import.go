package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// importWorkload measures `entente import --data` of every blocklist and
// MISP event of the shared data (about 730,000 objects) into a fresh node,
// as a whole process, against the 10 s goal.
func importWorkload(ctx context.Context, e *Env) error {
	bin, err := e.Tool(ctx, "entente")
	if err != nil {
		return err
	}
	inputs := []string{e.Data("blocklists"), e.Data("misp")}
	for _, in := range inputs {
		if _, err := os.Stat(in); err != nil {
			return fmt.Errorf("feeds: %w", err)
		}
	}
	for range Pick(e, 1, 3) {
		dir, err := e.TempDir("import-")
		if err != nil {
			return err
		}
		data := filepath.Join(dir, "data")
		if _, err := exec.CommandContext(ctx, bin, "init", "--data", data, "--org", "Bench", "--country", "DE").Output(); err != nil {
			return fmt.Errorf("entente init: %w", exitDetail(err))
		}
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, append([]string{"import", "--data", data}, inputs...)...)
		cmd.Stderr = &stderr
		u, err := e.Exec(cmd)
		// The shared feeds hold records entente refuses (URLs without a
		// host, files that are not MISP events): the import exits 1
		// after its summary, having stored the rest.
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
			return fmt.Errorf("%w\n%s", err, tail(stderr.Bytes(), 1000))
		}
		if !strings.Contains(stderr.String(), "imported ") {
			return fmt.Errorf("entente import printed no summary: %s", tail(stderr.Bytes(), 500))
		}
		e.Emit(Figure{Name: "import.feeds.wall", Value: u.Wall.Seconds(), Unit: "s", Better: Lower, Goal: Below(10),
			Note: "every blocklist and MISP event of the shared data, whole process"})
		e.Emit(Figure{Name: "import.feeds.cpu", Value: (u.User + u.Sys).Seconds(), Unit: "CPU-s", Better: Lower})
		e.Emit(Figure{Name: "import.feeds.page-faults", Value: float64(u.MinorFaults + u.MajorFaults), Unit: "faults", Better: Lower})
		e.Emit(Figure{Name: "import.feeds.max-rss", Value: float64(u.MaxRSS) / (1 << 20), Unit: "MiB", Better: Lower})
	}
	return nil
}
