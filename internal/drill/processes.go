package drill

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/drill/wan"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

// peerRoot returns the API root node i reaches node j at: in processes
// mode the proxy's listener of the link i→j (made on first use), over
// https; else node j's own address.
func (f *federation) peerRoot(i, j int) (string, error) {
	if !f.procs {
		return f.nodes[j].url + "/taxii2/api1/", nil
	}
	name, err := f.link(i, j)
	if err != nil {
		return "", err
	}
	return "https://" + name + "/taxii2/api1/", nil
}

// link returns the listening address of the proxy's link from node i to
// node j (its name), opening it on first use.
func (f *federation) link(i, j int) (string, error) {
	f.linkMu.Lock()
	defer f.linkMu.Unlock()
	if f.links == nil {
		f.links = map[[2]int]string{}
	}
	if a, ok := f.links[[2]int{i, j}]; ok {
		return a, nil
	}
	a, b := f.w.orgs[i], f.w.orgs[j]
	cond, err := linkOf(a.Country, b.Country, a.CERT && b.CERT, f.loss)
	if err != nil {
		return "", err
	}
	// The link is named by the address it listens on, which is what the
	// peer's API root holds.
	addr, err := f.proxy.listen(linkName(i, j), cond, j)
	if err != nil {
		return "", err
	}
	f.links[[2]int{i, j}] = addr
	return addr, nil
}

// linkName is the proxy's name of the link from i to j.
func linkName(i, j int) string { return fmt.Sprintf("%d->%d", i, j) }

// floor is the round-trip floor of the path an alert takes from the
// organisation whose sighting crossed the threshold (org) to node i: its
// sighting pushed to its national CERT, that CERT's push to node i's
// CERT, and that CERT's push of the alert to node i, each one round trip
// over a warm connection. Zero in-process (loopback).
func (f *federation) floor(org, i int) time.Duration {
	if !f.procs {
		return 0
	}
	hop := func(a, b int) time.Duration {
		if a == b {
			return 0
		}
		r, _ := RTT(f.w.orgs[a].Country, f.w.orgs[b].Country)
		return r
	}
	cs, ci := f.w.orgs[org].Parent, f.w.orgs[i].Parent
	return hop(org, cs) + hop(cs, ci) + hop(ci, i)
}

// nodeGOMAXPROCS is the GOMAXPROCS the drill gives each node process, a
// drill setting: up to 259 of them share the machine's two cores, each a
// fraction of one on average, as an operator running many nodes on one
// host gives each a CPU quota (Go then sizes GOMAXPROCS to it). With one
// P a node never wakes a second thread to look for work: at 130 nodes
// over the 2-minute replay the drill and its children used 97 s of CPU
// instead of 113 s, and 2.4 million voluntary context switches instead
// of 3.6 (GOMAXPROCS=2, before).
const nodeGOMAXPROCS = 1

// nodeGOMEMLIMIT is the soft memory limit of the Go runtime the drill
// gives each node process, a drill setting (serve's memory_limit): a
// node's peak RSS counts 23 MiB of the binary's text (shared between the
// processes) and SQLite's page caches (outside Go's heap) besides the
// heap, which gc_percent 400 lets grow to five times the live data; the
// largest of 259 nodes peaked at 86 MiB against the drill's budget of 80
// (processBound). The limit only makes the collector run sooner when the
// heap nears it.
const nodeGOMEMLIMIT = "48MiB"

// nodeProc is a running 'entente serve'.
type nodeProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

var listening = regexp.MustCompile(`listening on https://(127\.0\.0\.1:\d+)`)

// startProc starts node i's process on its data directory and waits
// until it listens. Its stderr goes to the drill's log directory.
func (f *federation) startProc(ctx context.Context, i int) error {
	n := f.nodes[i]
	args := []string{"serve", "--data", n.dir, "--listen", "127.0.0.1:0", "--tls", "--log-level", "warn", "--log-format", "json",
		"--sync-interval", f.syncInt.String(), "--federation-countries", strconv.Itoa(len(f.w.countries))}
	if n.skew != 0 {
		args = append(args, "--test-clock-skew", n.skew.String())
	}
	logf, err := os.OpenFile(filepath.Join(f.logDir, fmt.Sprintf("node-%03d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(f.bin, args...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", nodeGOMAXPROCS), "GOMEMLIMIT="+nodeGOMEMLIMIT)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("node %d: start %s: %w", i, f.bin, err)
	}
	p := &nodeProc{cmd: cmd, done: make(chan struct{}), log: logf}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent {
				if m := listening.FindStringSubmatch(line); m != nil {
					addr <- m[1]
					sent = true
				}
			}
			fmt.Fprintln(logf, line)
		}
		io.Copy(io.Discard, stderr)
		p.err = cmd.Wait()
		close(p.done)
	}()
	select {
	case a := <-addr:
		n.addr.Store(a)
		if err := f.proxy.setUpstream(i, a); err != nil {
			cmd.Process.Kill()
			return fmt.Errorf("node %d: tell the proxy where it listens: %w", i, err)
		}
	case <-p.done:
		logf.Close()
		return fmt.Errorf("node %d: serve exited before listening (%v); see %s", i, p.err, logf.Name())
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		return fmt.Errorf("node %d: serve did not listen within 2 minutes; see %s", i, logf.Name())
	case <-ctx.Done():
		cmd.Process.Kill()
		return ctx.Err()
	}
	n.proc = p
	n.url = "https://" + n.address()
	n.up = true
	return nil
}

// stopProc stops node i's process: SIGTERM (a graceful shutdown), or
// SIGKILL when kill is set (a crash: nothing is flushed or closed).
func (f *federation) stopProc(i int, kill bool) error {
	n := f.nodes[i]
	if n.proc == nil {
		return nil
	}
	p := n.proc
	n.proc, n.up = nil, false
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("node %d: signal: %w", i, err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
	if !kill && p.err != nil {
		return fmt.Errorf("node %d: serve ended with %v; see its log", i, p.err)
	}
	return nil
}

// peakRSSOf reads a process's peak resident set size (VmHWM) in MiB.
func peakRSSOf(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

// nodeClient returns an HTTP client that reaches node n directly (not
// through the WAN: the drill's sensors and observers sit beside their
// node) and accepts its pinned key alone.
func (f *federation) nodeClient(n *fedNode) (*http.Client, error) {
	return taxiiclient.HTTPFor(f.http, n.pin, nil)
}

// alertCollection is where node n holds the alerts it should have: a
// CERT its own (it raises them), a constituent its advisories.
func alertCollection(n *fedNode) string {
	if n.org.CERT {
		return n.colls[node.CollectionAlerts]
	}
	return n.colls[collAdvisories]
}

// observer follows the alerts arriving at a running node: it reads the
// manifest of the node's alert collection (each version's date_added:
// when the node stored it) and the alert objects added since the last
// read, and records each alert's tier at its date_added.
type observer struct {
	f     *federation
	i     int
	after string // added_after of the next read (the last date_added seen)
}

// poll reads what was added since the last poll.
func (o *observer) poll(ctx context.Context) error {
	n := o.f.nodes[o.i]
	if !n.up || n.hc == nil {
		return nil
	}
	base := n.url + "/taxii2/api1/collections/" + url.PathEscape(alertCollection(n)) + "/"
	q := url.Values{"limit": {"1000"}}
	if o.after != "" {
		q.Set("added_after", o.after)
	}
	var manifest struct {
		Objects []struct {
			ID        string `json:"id"`
			Version   string `json:"version"`
			DateAdded string `json:"date_added"`
		} `json:"objects"`
	}
	if err := o.get(ctx, n, base+"manifest/?"+q.Encode(), &manifest); err != nil || len(manifest.Objects) == 0 {
		return err
	}
	added := map[string]time.Time{}
	last := o.after
	for _, m := range manifest.Objects {
		at, err := time.Parse(time.RFC3339Nano, m.DateAdded)
		if err != nil {
			return fmt.Errorf("manifest of node %d: date_added %q: %w", o.i, m.DateAdded, err)
		}
		added[m.ID+"@"+m.Version] = at
		if m.DateAdded > last {
			last = m.DateAdded
		}
	}
	var env struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := o.get(ctx, n, base+"objects/?"+q.Encode(), &env); err != nil {
		return err
	}
	for _, raw := range env.Objects {
		obj, err := stix.Decode(raw)
		if err != nil || obj.Type != correlate.AlertType {
			continue
		}
		at, ok := added[obj.ID+"@"+stix.FormatTimestamp(obj.Version())]
		if !ok {
			continue // added after the manifest was read: the next poll has it
		}
		o.f.rec.storedAt(o.i, []*stix.Object{obj}, at)
	}
	o.after = last
	return nil
}

func (o *observer) get(ctx context.Context, n *fedNode, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", taxiiclient.MediaTAXII)
	req.Header.Set("Authorization", "Bearer "+n.adminKey)
	resp, err := n.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.Unmarshal(b, v)
}

// observe polls every node's alerts every interval until ctx ends.
func (f *federation) observe(ctx context.Context, interval time.Duration) {
	mu := &f.mu
	obs := make([]*observer, len(f.nodes))
	for i := range obs {
		obs[i] = &observer{f: f, i: i}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		f.sampleFiles()
		forEach(len(obs), 16, func(i int) error {
			mu.Lock()
			up := f.nodes[i].up
			mu.Unlock()
			if up {
				_ = obs[i].poll(ctx) // a node down or busy is read next time
			}
			return nil
		})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// firstSyncsProcs waits until every running node has synced every peer
// once, reading the peers over the admin API.
func (f *federation) firstSyncsProcs(ctx context.Context) error {
	f.progress.start(PhaseSyncs, len(f.nodes))
	for i, n := range f.nodes {
		f.progress.set(i)
		for {
			var out struct {
				Peers []node.Peer `json:"peers"`
			}
			err := (&observer{f: f, i: i}).get(ctx, n, n.url+"/api/v1/peers", &out)
			if err == nil && !slices.ContainsFunc(out.Peers, func(p node.Peer) bool { return p.LastSync.IsZero() }) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	f.progress.set(len(f.nodes))
	return nil
}

// checkStores reads every node's store after the drill (processes
// stopped, stores opened in the drill): every acknowledged sighting is
// there (none lost) and no collection holds one object version twice.
// It records when each node stored each watched sighting (its first
// date_added: the node's wall clock, which --test-clock-skew leaves
// alone), which the hops of the alerts' latency read.
func (f *federation) checkStores(ctx context.Context, res *Result, acked []ackedSighting) error {
	held := map[[2]string]bool{} // node index, sighting id
	for i, n := range f.nodes {
		colls, err := n.st.Collections(ctx)
		if err != nil {
			return err
		}
		for _, c := range colls {
			seen := map[string]bool{}
			q := entente.ObjectQuery{Collection: c.ID, Versions: entente.VersionFilter{All: true}, Limit: store.MaxPageSize}
			for {
				page, err := n.st.QueryObjects(ctx, q)
				if err != nil {
					return err
				}
				for _, e := range page.Entries {
					k := e.ID + "@" + strconv.FormatInt(e.Version.UnixNano(), 10)
					if seen[k] {
						res.Duplicates++
					}
					seen[k] = true
					if strings.HasPrefix(e.ID, "sighting--") {
						held[[2]string{strconv.Itoa(i), e.ID}] = true
						// When the node stored it: the alerts' latency
						// splits along their path (Hop), as in process.
						f.rec.seenFrom(i, e.ID, e.DateAdded)
					}
				}
				if !page.More {
					break
				}
				q.Next = page.Next
			}
		}
	}
	for _, a := range acked {
		res.AckedObjects++
		if !held[[2]string{strconv.Itoa(a.node), a.id}] {
			res.LostObjects++
			if len(res.Violations) < maxListed {
				res.Violations = append(res.Violations, fmt.Sprintf("node %d acknowledged sighting %s, which it does not hold", a.node, a.id))
			}
		}
	}
	return nil
}

// ackedSighting is a sighting a node acknowledged (stored durably).
type ackedSighting struct {
	node int
	id   string
}

// processReserveMiB is the memory kept, when bounding the number of node
// processes, for the drill itself (its recorder, its proxy's buffers),
// the page cache the nodes' SQLite files live in, and the system.
const processReserveMiB = 3 << 10

// processBound checks that cfg.Nodes processes of cfg.NodeBudgetMiB each
// fit in the machine's memory, and says so.
func processBound(cfg Config) (string, error) {
	total := memTotalMiB()
	if total == 0 {
		return fmt.Sprintf("%d processes of %d MiB each; the machine's memory is unknown", cfg.Nodes, cfg.NodeBudgetMiB), nil
	}
	most := (total - processReserveMiB) / cfg.NodeBudgetMiB
	why := fmt.Sprintf("%d processes × %d MiB = %.1f GiB of the %.1f GiB that %.1f GiB of memory leaves after %d GiB for the drill, its proxy and the page cache (at most %d processes)",
		cfg.Nodes, cfg.NodeBudgetMiB, float64(cfg.Nodes*cfg.NodeBudgetMiB)/1024, float64(total-processReserveMiB)/1024, float64(total)/1024, processReserveMiB>>10, most)
	if cfg.Nodes > most {
		return "", fmt.Errorf("processes mode: %s: too many; use --nodes %d or fewer", why, most)
	}
	return why, nil
}

// memTotalMiB reads MemTotal from /proc/meminfo (0 if unknown).
func memTotalMiB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			var kb int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb / 1024
		}
	}
	return 0
}

// skewOf is node i's clock skew: +5 minutes on one node in ten, -5 on
// another in ten (the most correlation tolerates, MaxSkew).
func skewOf(i int) time.Duration {
	switch i % 10 {
	case 4:
		return 5 * time.Minute
	case 9:
		return -5 * time.Minute
	}
	return 0
}

// startAll closes the stores the set-up opened, chooses the faults,
// moves the full-disk node onto its tmpfs, and starts every node's
// process.
func (f *federation) startAll(ctx context.Context, cfg Config, res *Result) error {
	for i := range f.nodes {
		if err := f.closeStore(i); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
	}
	f.plan = &faultPlan{flap: -1}
	if !cfg.Calm {
		f.plan = f.planFaults(cfg)
		for i, n := range f.nodes {
			if n.skew = skewOf(i); n.skew != 0 {
				res.Skewed = append(res.Skewed, fmt.Sprintf("%s %+v", n.org.Name, n.skew))
			}
		}
		if f.plan.disk != nil {
			f.plan.disk = f.prepareFullDisk(f.plan.disk.i)
			res.DiskFull = f.plan.disk.res
		}
	}
	for _, n := range f.nodes {
		hc, err := f.nodeClient(n)
		if err != nil {
			return err
		}
		n.hc = hc
	}
	f.progress.start(PhaseStart, len(f.nodes))
	return forEach(len(f.nodes), cfg.Parallel, func(i int) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if err := f.startProc(ctx, i); err != nil {
			return err
		}
		f.progress.add(1)
		return nil
	})
}

// stopAll records the processes' peak memory, stops them (SIGTERM),
// moves the full-disk node's files back, and opens every store in the
// drill for the checks.
func (f *federation) stopAll(ctx context.Context, res *Result) error {
	for i, n := range f.nodes {
		if n.proc != nil {
			res.NodePeakRSSMiB = max(res.NodePeakRSSMiB, peakRSSOf(n.proc.cmd.Process.Pid))
		}
		if err := f.stopProc(i, false); err != nil {
			return err
		}
	}
	if f.plan != nil && f.plan.disk != nil {
		if err := f.unmountFullDisk(f.plan.disk); err != nil {
			return err
		}
	}
	stats, files, err := f.proxy.stats()
	if err != nil {
		return err
	}
	for _, st := range stats {
		res.LostSegments += st.Lost
	}
	res.ProxyOpenFiles = files
	for i := range f.nodes {
		if err := f.openStore(ctx, i); err != nil {
			return err
		}
		f.nodes[i].up = true
	}
	f.sampleFiles() // every store open
	return nil
}

// sampleFiles records the drill process's open descriptors, keeping the
// peak (processes mode samples at the set-up, at every observer poll and
// at the checks).
func (f *federation) sampleFiles() {
	n := int64(wan.OpenFiles())
	for {
		cur := f.peakFiles.Load()
		if n <= cur || f.peakFiles.CompareAndSwap(cur, n) {
			return
		}
	}
}

// ensureOpenFiles raises the process's open-file limit to at least need
// (see openFilesFor and drillFilesFor), as far as the hard limit allows,
// raising the hard limit too when the drill may (root).
func ensureOpenFiles(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // unknown here: let the run tell
	}
	if lim.Cur >= need {
		return nil
	}
	want := lim
	want.Cur = need
	if want.Max < need {
		want.Max = need
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		want.Cur, want.Max = lim.Max, lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
		return fmt.Errorf("processes mode: the drill needs about %d open files and the limit is %d (raising it: %v); raise ulimit -n, use fewer --nodes, or split the proxy (--proxy-processes)", need, lim.Max, err)
	}
	return nil
}
