package drill

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/entente-cti/entente/internal/drill/wan"
)

// wanProxy is the WAN of processes mode: the proxy's links, in the
// drill's process (one wan.Proxy) or split among proxy processes of
// their own (wan.Split) when one process's open-file limit cannot hold
// them.
type wanProxy interface {
	// listen opens the link name to node j, with the conditions cond,
	// and returns its listening address.
	listen(name string, cond wan.Link, j int) (string, error)
	// setUpstream says node j now listens at addr (it started, or
	// restarted on a new port).
	setUpstream(j int, addr string) error
	// setDown cuts (down) or restores the links names.
	setDown(names []string, down bool) error
	// active reports whether the client side of one of the links names
	// sent bytes within d.
	active(names []string, d time.Duration) (bool, error)
	// stats returns every link's counters, and each proxy process's
	// peak open descriptors (none in-process).
	stats() (map[string]wan.Stats, []int, error)
	close() error
}

// localProxy is the proxy in the drill's process: each link dials its
// node's address as it is when a connection arrives.
type localProxy struct {
	p     *wan.Proxy
	nodes func(j int) *fedNode
}

func (l *localProxy) listen(name string, cond wan.Link, j int) (string, error) {
	return l.p.Listen(name, cond, l.nodes(j).address)
}

func (l *localProxy) setUpstream(int, string) error { return nil }

func (l *localProxy) setDown(names []string, down bool) error {
	for _, n := range names {
		l.p.SetDown(n, down)
	}
	return nil
}

func (l *localProxy) active(names []string, d time.Duration) (bool, error) {
	for _, n := range names {
		if l.p.Active(n, d) {
			return true, nil
		}
	}
	return false, nil
}

func (l *localProxy) stats() (map[string]wan.Stats, []int, error) { return l.p.Stats(), nil, nil }

func (l *localProxy) close() error { return l.p.Close() }

// splitProxy is the proxy as processes of its own ('entente drill-proxy'),
// driven over their standard input and output.
type splitProxy struct {
	s    *wan.Split
	logs []*os.File
}

func (s *splitProxy) listen(name string, cond wan.Link, j int) (string, error) {
	return s.s.Listen(name, cond, strconv.Itoa(j))
}

func (s *splitProxy) setUpstream(j int, addr string) error {
	return s.s.SetUpstream(strconv.Itoa(j), addr)
}

func (s *splitProxy) setDown(names []string, down bool) error { return s.s.SetDown(names, down) }

func (s *splitProxy) active(names []string, d time.Duration) (bool, error) {
	return s.s.Active(names, d)
}

func (s *splitProxy) stats() (map[string]wan.Stats, []int, error) { return s.s.Stats() }

func (s *splitProxy) close() error {
	err := s.s.Close()
	for _, f := range s.logs {
		f.Close()
	}
	return err
}

// ProxyCommand is the (hidden) subcommand of the entente binary that runs
// one process of a split WAN proxy: 'entente drill-proxy --seed N' serves
// wan's control protocol on its standard input and output.
const ProxyCommand = "drill-proxy"

// startSplitProxy starts n proxy processes of bin, their standard error
// in the log directory, each link's random choices derived from seed.
func startSplitProxy(bin, logDir string, n int, seed uint64) (*splitProxy, error) {
	sp := &splitProxy{}
	s, err := wan.StartSplit(n, func(i int) *exec.Cmd {
		cmd := exec.Command(bin, ProxyCommand, "--seed", strconv.FormatUint(seed, 10))
		cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
		if f, err := os.OpenFile(filepath.Join(logDir, fmt.Sprintf("proxy-%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			cmd.Stderr = f
			sp.logs = append(sp.logs, f)
		}
		return cmd
	})
	if err != nil {
		for _, f := range sp.logs {
			f.Close()
		}
		return nil, fmt.Errorf("processes mode: the WAN proxy's processes: %w", err)
	}
	sp.s = s
	return sp, nil
}

// Descriptors, for the open-file limits of processes mode.
const (
	// filesPerLink is what the proxy holds per directed link: its
	// listener and two descriptors per connection it carries. A node's
	// client keeps one or two connections per peer when the federation
	// is light (2.5 to 3.5 measured at 12 and 40 nodes, the result's
	// ProxyOpenFiles), but opens one per request in flight when its
	// peers answer slowly: at 259 nodes on two cores, two proxy
	// processes of about 3,200 links each reached the 20,000 limit
	// (6.2 a link, capped), refusing connections. Hence a wide margin.
	filesPerLink = 12
	// filesPerNode is what the drill's process holds per node: while
	// the nodes run, the pipe of a node's standard error, its log file,
	// its pidfd and the observer's connections to it; at the set-up and
	// the checks, every node's store (the database and its write-ahead
	// log, the audit database, on several connections), the peak: 16
	// measured at 12 and at 40 nodes (the result's DrillOpenFiles).
	filesPerNode = 20
	// filesBase is what a process holds besides (the runtime, standard
	// streams, the drill's own files).
	filesBase = 1024
)

// linksOf is the number of directed links of a world: a constituent to
// and from its CERT, every CERT to every other.
func linksOf(w *world) int {
	certs := len(w.certs)
	return 2*(len(w.orgs)-certs) + certs*(certs-1)
}

// openFilesFor is how many descriptors the drill's process needs for a
// world when it holds the proxy too: every link's (filesPerLink) and
// every node's (filesPerNode).
func openFilesFor(w *world) uint64 {
	return uint64(filesPerLink*linksOf(w)) + drillFilesFor(w)
}

// drillFilesFor is how many descriptors the drill's process needs for a
// world when the proxy runs in processes of its own.
func drillFilesFor(w *world) uint64 {
	return uint64(filesPerNode*len(w.orgs) + filesBase)
}

// proxyFilesFor is how many descriptors each of n proxy processes needs
// for a world (links are spread evenly by their names' hash; a tenth
// more for the unevenness).
func proxyFilesFor(w *world, n int) uint64 {
	per := (filesPerLink*linksOf(w) + n - 1) / n
	return uint64(per+per/10) + filesBase
}

// hardOpenFiles is the hard limit of open files (0 if unknown): what the
// drill's process, and each process it starts, may raise its own to.
func hardOpenFiles() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return lim.Max
}

// proxySplit is how many proxy processes keep each under limit (at
// least two: it is asked when the drill's process cannot hold the proxy).
func proxySplit(w *world, limit uint64) (int, error) {
	for n := 2; n <= 64; n++ {
		if proxyFilesFor(w, n) <= limit {
			return n, nil
		}
	}
	return 0, fmt.Errorf("processes mode: even 64 proxy processes would each need %d open files, over the limit of %d; raise ulimit -n or use fewer --nodes", proxyFilesFor(w, 64), limit)
}

// startProxy starts the WAN proxy of processes mode: in the drill's
// process when cfg.ProxyProcesses is 1, or when it is 0 and the open-file
// limit holds the drill and the proxy together; else as
// cfg.ProxyProcesses processes, or as few as keep each under the limit.
func (f *federation) startProxy(cfg Config) (wanProxy, int, error) {
	n := cfg.ProxyProcesses
	if n <= 1 {
		err := ensureOpenFiles(openFilesFor(f.w))
		if err == nil || n == 1 {
			if err != nil {
				return nil, 0, err
			}
			return &localProxy{p: wan.New(cfg.Seed), nodes: func(j int) *fedNode { return f.nodes[j] }}, 1, nil
		}
		if n, err = proxySplit(f.w, hardOpenFiles()); err != nil {
			return nil, 0, err
		}
	}
	if err := ensureOpenFiles(drillFilesFor(f.w)); err != nil {
		return nil, 0, err
	}
	sp, err := startSplitProxy(f.bin, f.logDir, n, cfg.Seed)
	if err != nil {
		return nil, 0, err
	}
	return sp, n, nil
}
