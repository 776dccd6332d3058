package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Node is an `entente serve` process on loopback, on a fresh data
// directory, with rate limits raised for load.
type Node struct {
	// URL is the node's base URL (http://127.0.0.1:PORT); Key its admin
	// API key; Dir its data directory.
	URL, Key, Dir string
	cmd           *exec.Cmd
	done          chan error
	logPath       string
}

// StartNode creates a node (entente init) in a new directory and serves
// it (entente serve) on a free loopback port, with a configuration that
// raises the per-key rate limit (the default would answer part of a load
// test with 429, as it should). It returns once /healthz answers; the node
// is stopped when the workload ends.
func (e *Env) StartNode(ctx context.Context, extraConfig string) (*Node, error) {
	bin, err := e.Tool(ctx, "entente")
	if err != nil {
		return nil, err
	}
	dir, err := e.TempDir("node-")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	init := exec.CommandContext(ctx, bin, "init", "--data", data, "--org", "Bench", "--country", "DE")
	out, err := init.Output()
	if err != nil {
		return nil, fmt.Errorf("entente init: %w", exitDetail(err))
	}
	key := strings.TrimSpace(string(out))
	if key == "" {
		return nil, errors.New("entente init printed no admin key")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf("rate_per_second = 1000000\nburst = 1000000\nlisten = %q\ndata = %q\n%s", addr, data, extraConfig)
	cfgPath := filepath.Join(dir, "entente.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("write node configuration: %w", err)
	}
	n := &Node{URL: "http://" + addr, Key: key, Dir: data, logPath: filepath.Join(dir, "serve.log"), done: make(chan error, 1)}
	logf, err := os.Create(n.logPath)
	if err != nil {
		return nil, fmt.Errorf("node log: %w", err)
	}
	// Not CommandContext: the node is stopped with SIGINT, and waited for.
	n.cmd = exec.Command(bin, "serve", "--config", cfgPath, "--sync-interval", "0", "--log-level", "warn")
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start entente serve: %w", err)
	}
	go func() { n.done <- n.cmd.Wait(); logf.Close() }()
	e.Defer(func() { n.Stop() })
	deadline := time.Now().Add(60 * time.Second)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := hc.Get(n.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n, nil
			}
		}
		select {
		case err := <-n.done:
			n.done <- err
			return nil, fmt.Errorf("entente serve exited: %v; log %s:\n%s", err, n.logPath, readTail(n.logPath))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("entente serve did not answer /healthz within 60 s; log %s:\n%s", n.logPath, readTail(n.logPath))
		}
	}
}

// PID returns the node process's id.
func (n *Node) PID() int { return n.cmd.Process.Pid }

// CPU returns the CPU time the node process has used so far (Linux).
func (n *Node) CPU() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.PID()))
	if err != nil {
		return 0, fmt.Errorf("node CPU: %w", err)
	}
	return statCPU(b)
}

// statCPU returns utime+stime of a /proc/PID/stat line (in clock ticks of
// 10 ms, the value Linux uses on every platform Go supports here).
func statCPU(stat []byte) (time.Duration, error) {
	s := string(stat)
	// The command name, in parentheses, may hold spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("node CPU: malformed /proc stat line")
	}
	f := strings.Fields(s[i+1:])
	// Fields after the name: state is f[0]; utime and stime are fields
	// 14 and 15 of the whole line, so f[11] and f[12].
	if len(f) < 13 {
		return 0, errors.New("node CPU: short /proc stat line")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s2, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("node CPU: malformed /proc stat times")
	}
	return time.Duration(u+s2) * 10 * time.Millisecond, nil
}

// Stop stops the node (SIGINT, then SIGKILL after 30 s) and waits for it.
func (n *Node) Stop() error {
	if n.cmd == nil || n.cmd.Process == nil {
		return nil
	}
	select {
	case err := <-n.done:
		n.done <- err
		return nil
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-n.done:
		n.done <- err
		return nil
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		err := <-n.done
		n.done <- err
		return errors.New("entente serve did not stop within 30 s of SIGINT; killed")
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func readTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return tail(b, 2000)
}

// exitDetail adds a failed command's stderr to its error.
func exitDetail(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, tail(ee.Stderr, 1000))
	}
	return err
}
