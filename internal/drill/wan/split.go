package wan

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os/exec"
	"sync"
	"time"
)

// Split is a proxy whose links are spread over several processes, each
// running Serve (the drill re-executes its own binary: see cmd/entente's
// drill-proxy), so that no process holds more descriptors than its
// open-file limit allows. A link goes to the process its name hashes
// to; its random choices are those it would make in one proxy (New).
//
// The processes die with the parent: their input is the parent's end of
// a pipe (closed when the parent exits, however it exits) and, on Linux,
// the kernel kills them when the parent dies (Pdeathsig).
type Split struct {
	procs []*splitProc
}

type splitProc struct {
	cmd *exec.Cmd
	r   *remote
}

// StartSplit starts n proxy processes, command(i) being the i-th (its
// standard input and output become the control channel; its standard
// error is left as set), and returns them once each answers.
func StartSplit(n int, command func(i int) *exec.Cmd) (*Split, error) {
	if n < 1 {
		return nil, fmt.Errorf("wan: %d proxy processes", n)
	}
	s := &Split{}
	for i := range n {
		cmd := command(i)
		dieWithParent(cmd)
		in, err := cmd.StdinPipe()
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("wan: proxy process %d: %w", i, err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("wan: proxy process %d: %w", i, err)
		}
		if err := cmd.Start(); err != nil {
			s.Close()
			return nil, fmt.Errorf("wan: start proxy process %d (%s): %w", i, cmd.Path, err)
		}
		p := &splitProc{cmd: cmd, r: newRemote(in, out)}
		s.procs = append(s.procs, p)
		if _, err := p.r.do(Request{Op: OpStats}); err != nil {
			s.Close()
			return nil, fmt.Errorf("wan: proxy process %d does not answer: %w", i, err)
		}
	}
	return s, nil
}

// Processes is the number of proxy processes.
func (s *Split) Processes() int { return len(s.procs) }

// Pids are the proxy processes' ids.
func (s *Split) Pids() []int {
	out := make([]int, len(s.procs))
	for i, p := range s.procs {
		out[i] = p.cmd.Process.Pid
	}
	return out
}

// Process is the index of the process that holds (or would hold) link
// name.
func (s *Split) Process(name string) int { return s.shard(name) }

// shard is the process that holds link name.
func (s *Split) shard(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(len(s.procs)))
}

// byShard groups names by the process holding them.
func (s *Split) byShard(names []string) map[int][]string {
	out := map[int][]string{}
	for _, n := range names {
		k := s.shard(n)
		out[k] = append(out[k], n)
	}
	return out
}

// Listen opens link name, with the conditions cond, in its process: it
// dials the address last set for target (SetUpstream; none yet: the
// connection is refused). It returns the link's listening address.
func (s *Split) Listen(name string, cond Link, target string) (string, error) {
	resp, err := s.procs[s.shard(name)].r.do(Request{Op: OpListen, Links: []LinkSpec{{Name: name, Target: target, Cond: cond}}})
	if err != nil {
		return "", fmt.Errorf("wan: listen for link %s: %w", name, err)
	}
	if len(resp.Addrs) != 1 {
		return "", fmt.Errorf("wan: listen for link %s: %d addresses", name, len(resp.Addrs))
	}
	return resp.Addrs[0], nil
}

// SetUpstream tells every process that the links to target now dial
// addr.
func (s *Split) SetUpstream(target, addr string) error {
	return s.each(func(p *splitProc) error {
		_, err := p.r.do(Request{Op: OpUpstream, Target: target, Addr: addr})
		return err
	})
}

// SetDown cuts (down) or restores the links names, as Proxy.SetDown
// does, each in its process.
func (s *Split) SetDown(names []string, down bool) error {
	op := OpUp
	if down {
		op = OpDown
	}
	var errs []error
	for k, ns := range s.byShard(names) {
		if _, err := s.procs[k].r.do(Request{Op: op, Names: ns}); err != nil {
			errs = append(errs, fmt.Errorf("proxy process %d: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// Active reports whether the client side of one of the links names sent
// bytes within the last d.
func (s *Split) Active(names []string, d time.Duration) (bool, error) {
	for k, ns := range s.byShard(names) {
		resp, err := s.procs[k].r.do(Request{Op: OpActive, Names: ns, Within: d})
		if err != nil {
			return false, fmt.Errorf("proxy process %d: %w", k, err)
		}
		if resp.Active {
			return true, nil
		}
	}
	return false, nil
}

// Stats returns the counters of every link, by name, and each process's
// peak number of open descriptors.
func (s *Split) Stats() (map[string]Stats, []int, error) {
	out := map[string]Stats{}
	files := make([]int, len(s.procs))
	for k, p := range s.procs {
		resp, err := p.r.do(Request{Op: OpStats})
		if err != nil {
			return nil, nil, fmt.Errorf("proxy process %d: %w", k, err)
		}
		for n, st := range resp.Stats {
			out[n] = st
		}
		files[k] = resp.OpenFiles
	}
	return out, files, nil
}

// each runs f on every process at once and joins the errors.
func (s *Split) each(f func(p *splitProc) error) error {
	errs := make([]error, len(s.procs))
	var wg sync.WaitGroup
	for k, p := range s.procs {
		wg.Go(func() {
			if err := f(p); err != nil {
				errs[k] = fmt.Errorf("proxy process %d: %w", k, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close shuts every process down (it closes its listeners and
// connections and exits) and waits for it; one that does not exit
// within 10 s is killed.
func (s *Split) Close() error {
	var errs []error
	for k, p := range s.procs {
		if p.cmd.Process == nil {
			continue
		}
		_, err := p.r.do(Request{Op: OpShutdown})
		p.r.in.Close()
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case werr := <-done:
			if err == nil && werr != nil {
				err = werr
			}
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-done
			err = fmt.Errorf("did not exit within 10 s after shutdown")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("wan: proxy process %d: %w", k, err))
		}
	}
	s.procs = nil
	return errors.Join(errs...)
}
