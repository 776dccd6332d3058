package wan

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// The control protocol drives a proxy in another process (see Split),
// one JSON object a line: the parent writes a Request to the child's
// standard input and reads its Response from the child's standard
// output, one request at a time. The child ends when its input ends (the
// parent closed it, or died) or on "shutdown".
//
// Why a process of its own: a proxy holds a listener per link and two
// descriptors per connection it carries, more than one process's
// open-file limit allows for a large federation; links are split among
// processes so that each stays under its own limit.

// The operations of a Request.
const (
	// OpListen opens Request.Links; the Response's Addrs are their
	// listening addresses, in order.
	OpListen = "listen"
	// OpUpstream sets where the links to Request.Target dial:
	// Request.Addr (a node restarted on a new port).
	OpUpstream = "upstream"
	// OpDown and OpUp cut and restore the links Request.Names.
	OpDown = "down"
	OpUp   = "up"
	// OpActive answers, in Response.Active, whether the client side of
	// one of Request.Names sent bytes within Request.Within.
	OpActive = "active"
	// OpStats answers every link's counters (Response.Stats) and the
	// process's peak number of open files (Response.OpenFiles).
	OpStats = "stats"
	// OpShutdown closes every listener and connection; the child answers
	// and exits.
	OpShutdown = "shutdown"
)

// Request is one command to a proxy process.
type Request struct {
	Op     string        `json:"op"`
	Links  []LinkSpec    `json:"links,omitempty"`
	Target string        `json:"target,omitempty"`
	Addr   string        `json:"addr,omitempty"`
	Names  []string      `json:"names,omitempty"`
	Within time.Duration `json:"within,omitempty"`
}

// LinkSpec is a link to open in a proxy process: its name, its
// conditions, and the target whose address (set by OpUpstream) it
// dials.
type LinkSpec struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Cond   Link   `json:"cond"`
}

// Response is a proxy process's answer to one Request. Error is set when
// the request failed.
type Response struct {
	Error     string           `json:"error,omitempty"`
	Addrs     []string         `json:"addrs,omitempty"`
	Active    bool             `json:"active,omitempty"`
	Stats     map[string]Stats `json:"stats,omitempty"`
	OpenFiles int              `json:"open_files,omitempty"`
}

// Serve runs a proxy process's side of the control protocol: it reads
// requests from in and writes responses to out, over a proxy whose random
// choices derive from seed (and each link's name, as New says). It
// returns, having closed the proxy, when in ends or on OpShutdown.
func Serve(in io.Reader, out io.Writer, seed uint64) error {
	p := New(seed)
	defer p.Close()
	var (
		mu      sync.Mutex
		targets = map[string]string{}
	)
	upstream := func(t string) func() string {
		return func() string {
			mu.Lock()
			defer mu.Unlock()
			return targets[t]
		}
	}
	peak := newPeakFiles(p.held.Load)
	defer peak.stop()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var req Request
		var resp Response
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = fmt.Sprintf("wan: bad request: %v", err)
		} else {
			switch req.Op {
			case OpListen:
				for _, l := range req.Links {
					addr, err := p.Listen(l.Name, l.Cond, upstream(l.Target))
					if err != nil {
						resp.Error = err.Error()
						break
					}
					resp.Addrs = append(resp.Addrs, addr)
				}
				peak.sample()
			case OpUpstream:
				mu.Lock()
				targets[req.Target] = req.Addr
				mu.Unlock()
			case OpDown, OpUp:
				for _, n := range req.Names {
					p.SetDown(n, req.Op == OpDown)
				}
			case OpActive:
				for _, n := range req.Names {
					if p.Active(n, req.Within) {
						resp.Active = true
						break
					}
				}
			case OpStats:
				resp.Stats = p.Stats()
				resp.OpenFiles = peak.sample()
			case OpShutdown:
				err := p.Close()
				if err != nil {
					resp.Error = err.Error()
				}
				if werr := enc.Encode(resp); werr != nil {
					return fmt.Errorf("wan: answer shutdown: %w", werr)
				}
				return err
			default:
				resp.Error = fmt.Sprintf("wan: unknown operation %q", req.Op)
			}
		}
		if err := enc.Encode(resp); err != nil {
			return fmt.Errorf("wan: answer %s: %w", req.Op, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("wan: read requests: %w", err)
	}
	return nil
}

// peakFiles keeps the most descriptors the process held, counted on
// demand and whenever the connections' descriptors (held) reach a new
// high, which it checks every 250 ms. Counting reads /proc/self/fd, one
// entry per descriptor: every 250 ms in each proxy process of the
// 259-node drill (some 2,800 descriptors each), it was 4 % of the whole
// machine's CPU in the outbreak's last 36 s (perf record -a), time the
// nodes being measured did not get. Between two highs of held the
// process holds fewer descriptors than at the last count but for a
// listener, and every listener is opened by a request that counts.
type peakFiles struct {
	mu      sync.Mutex
	max     int
	maxHeld int64
	done    chan struct{}
}

func newPeakFiles(held func() int64) *peakFiles {
	p := &peakFiles{done: make(chan struct{})}
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				if p.newHigh(held()) {
					p.sample()
				}
			}
		}
	}()
	return p
}

// newHigh reports whether h is more than any value it was given before.
func (p *peakFiles) newHigh(h int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h <= p.maxHeld {
		return false
	}
	p.maxHeld = h
	return true
}

// sample counts the open descriptors now and returns the peak so far.
func (p *peakFiles) sample() int {
	n := OpenFiles()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.max = max(p.max, n)
	return p.max
}

func (p *peakFiles) stop() { close(p.done) }

// OpenFiles is how many descriptors this process holds (Linux; 0 where
// /proc/self/fd cannot be read).
func OpenFiles() int {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0
	}
	return len(names) - 1 // less the directory being read
}

// remote is the parent's end of one proxy process's control channel.
type remote struct {
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Scanner
	enc *json.Encoder
}

func newRemote(in io.WriteCloser, out io.Reader) *remote {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	return &remote{in: in, out: sc, enc: json.NewEncoder(in)}
}

// do sends req and reads the answer.
func (r *remote) do(req Request) (Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var resp Response
	if err := r.enc.Encode(req); err != nil {
		return resp, fmt.Errorf("wan: send %s: %w", req.Op, err)
	}
	if !r.out.Scan() {
		err := r.out.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return resp, fmt.Errorf("wan: read the answer to %s: %w", req.Op, err)
	}
	if err := json.Unmarshal(r.out.Bytes(), &resp); err != nil {
		return resp, fmt.Errorf("wan: answer to %s: %w", req.Op, err)
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}
