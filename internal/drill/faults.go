package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

// PartitionResult is a region cut off from the rest of the federation.
type PartitionResult struct {
	Region string  `json:"region"`
	Nodes  int     `json:"nodes"`
	From   float64 `json:"from_s"`
	To     float64 `json:"to_s"`
	// ConvergedMs is, over the region's nodes and every alert, the
	// longest time after the partition's end until the node held the
	// alert (0 when each held it before the end).
	ConvergedMs float64 `json:"converged_ms"`
}

// FlapResult is a CERT whose uplink flapped.
type FlapResult struct {
	CERT   string  `json:"cert"`
	Cycles int     `json:"cycles"`
	From   float64 `json:"from_s"`
	To     float64 `json:"to_s"`
}

// DiskFullResult is a node whose data directory filled up.
type DiskFullResult struct {
	Node    string  `json:"node"`
	FullAt  float64 `json:"full_at_s"`
	FreedAt float64 `json:"freed_at_s"`
	// WriteRefused is the node's answer to a write while full (status
	// and message); ReadsServed whether reads were answered meanwhile;
	// Recovered whether a write succeeded once space returned.
	WriteRefused string `json:"write_refused"`
	// AcceptedWhileFull are the sightings stored, and acknowledged,
	// after the disk filled and before a write was refused: space the
	// store had already allocated.
	AcceptedWhileFull int  `json:"accepted_while_full"`
	ReadsServed       bool `json:"reads_served"`
	Recovered         bool `json:"recovered"`
	// Skipped says why the fault was not injected.
	Skipped string `json:"skipped,omitempty"`
}

// fullDisk is the node whose data directory is a small tmpfs, and the
// directory its files were moved from.
type fullDisk struct {
	i    int
	orig string
	res  *DiskFullResult
}

// prepareFullDisk moves node i's data directory onto a tmpfs a little
// larger than what it holds (it needs root to mount one; the result says
// so otherwise).
func (f *federation) prepareFullDisk(i int) *fullDisk {
	n := f.nodes[i]
	fd := &fullDisk{i: i, orig: n.dir + ".orig", res: &DiskFullResult{Node: n.org.Name}}
	size := int64(0)
	entries, err := os.ReadDir(n.dir)
	if err == nil {
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
				size += info.Size()
			}
		}
	}
	if err == nil {
		err = os.Rename(n.dir, fd.orig)
	}
	if err == nil {
		err = os.Mkdir(n.dir, 0o700)
	}
	if err == nil {
		// Room for what the outbreak adds, and no more.
		err = syscall.Mount("tmpfs", n.dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size+64<<20))
		if err != nil {
			os.Remove(n.dir)
			os.Rename(fd.orig, n.dir)
			fd.res.Skipped = fmt.Sprintf("cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): %v", err)
			return fd
		}
		n.tmpfs = true
		for _, e := range entries {
			if err != nil {
				break
			}
			if e.Type().IsRegular() {
				err = copyFile(filepath.Join(fd.orig, e.Name()), filepath.Join(n.dir, e.Name()))
			}
		}
	}
	if err != nil {
		fd.res.Skipped = fmt.Sprintf("prepare the full disk: %v", err)
	}
	return fd
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	st, _ := src.Stat()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// unmountFullDisk moves the node's files back off the tmpfs.
func (f *federation) unmountFullDisk(fd *fullDisk) error {
	n := f.nodes[fd.i]
	if !n.tmpfs {
		return nil
	}
	os.Remove(filepath.Join(n.dir, "filler"))
	entries, err := os.ReadDir(n.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := copyFile(filepath.Join(n.dir, e.Name()), filepath.Join(fd.orig, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := syscall.Unmount(n.dir, syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount %s: %w", n.dir, err)
	}
	n.tmpfs = false
	if err := os.Remove(n.dir); err != nil {
		return err
	}
	return os.Rename(fd.orig, n.dir)
}

// The full disk is probed with up to probesWhileFull writes of
// probeSightings sightings each, until one is refused.
const (
	probesWhileFull = 40
	probeSightings  = 200
)

// fill writes a filler file until the tmpfs is full.
func fill(dir string) error {
	fh, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		return err
	}
	defer fh.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := fh.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
}

// probeWrite reports count sightings, as node n's sensor, of an indicator
// no node knows (they raise no alert, wherever they go), and returns the
// answer's status and body. The sightings endpoint stores synchronously:
// its answer says whether the node could store them.
func (f *federation) probeWrite(ctx context.Context, n *fedNode, k, count int) (int, string) {
	seen := "2026-01-01T00:00:00.000Z"
	var objs []string
	for j := range count {
		objs = append(objs, fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":"%s","created":"%s","modified":"%s","created_by_ref":"%s","first_seen":"%s","last_seen":"%s","count":1,"sighting_of_ref":"%s","where_sighted_refs":["%s"]}`,
			detID("sighting", fmt.Sprintf("disk probe %d/%d", k, j)), seen, seen, n.org.ID, seen, seen, detID("indicator", "no such indicator"), n.org.ID))
	}
	obj := `{"objects":[` + strings.Join(objs, ",") + `]}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, n.url+match.SightingsPath, bytes.NewReader([]byte(obj)))
	req.Header.Set("Authorization", "Bearer "+n.sensorKey)
	req.Header.Set("Content-Type", taxiiclient.MediaTAXII)
	resp, err := n.hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}

// probeRead lists node n's collections as its admin.
func (f *federation) probeRead(ctx context.Context, n *fedNode) bool {
	var out map[string]any
	return (&observer{f: f}).get(ctx, n, n.url+"/taxii2/api1/collections/", &out) == nil
}

// faultPlan is what processes mode injects, chosen before the replay.
type faultPlan struct {
	kill     []int // killed -9 at 40% and restarted at 70%; kill[0] is a CERT, killed mid-push
	flap     int   // the CERT whose uplink flaps (-1: none)
	region   string
	regionOf []int // nodes of the partitioned region
	disk     *fullDisk
}

// planFaults chooses the nodes of each fault.
func (f *federation) planFaults(cfg Config) *faultPlan {
	w := f.w
	rng := rand.New(rand.NewPCG(cfg.Seed+3, 11))
	p := &faultPlan{flap: -1}
	// CERTs by number of constituents, most first.
	certs := slices.Clone(w.certs)
	size := func(c int) int { return len(w.byCountry[w.orgs[c].Country]) }
	slices.SortStableFunc(certs, func(a, b int) int { return size(b) - size(a) })
	if cfg.Faults > 0 {
		p.kill = append(p.kill, certs[0])
		for _, i := range rng.Perm(len(w.orgs)) {
			if len(p.kill) >= cfg.Faults {
				break
			}
			if i != certs[0] {
				p.kill = append(p.kill, i)
			}
		}
	}
	if len(certs) > 1 {
		p.flap = certs[1]
	}
	// The partitioned region: the smallest that is not the largest
	// country's (the outbreak goes on elsewhere) and holds no node that
	// is killed or flaps.
	counts := map[string][]int{}
	for i, o := range w.orgs {
		counts[regionOf[o.Country]] = append(counts[regionOf[o.Country]], i)
	}
	first := regionOf[w.countries[0]]
	best := ""
	for r, nodes := range counts {
		if r == first || slices.ContainsFunc(nodes, func(i int) bool { return len(p.kill) > 0 && i == p.kill[0] || i == p.flap }) {
			continue
		}
		if best == "" || len(nodes) < len(counts[best]) || len(nodes) == len(counts[best]) && r < best {
			best = r
		}
	}
	if best != "" && cfg.Partition > 0 {
		p.region, p.regionOf = best, counts[best]
	}
	// The full disk: a constituent that is neither killed nor cut off.
	for _, i := range rng.Perm(len(w.orgs)) {
		if !w.orgs[i].CERT && !slices.Contains(p.kill, i) && !slices.Contains(p.regionOf, i) && i != p.flap {
			p.disk = &fullDisk{i: i}
			break
		}
	}
	return p
}

// setLinks cuts (or restores) every link between a node of nodes and a
// node outside them, both ways.
func (f *federation) setLinks(nodes []int, down bool) error {
	in := map[int]bool{}
	for _, i := range nodes {
		in[i] = true
	}
	f.linkMu.Lock()
	var names []string
	for k := range f.links {
		if in[k[0]] != in[k[1]] {
			names = append(names, linkName(k[0], k[1]))
		}
	}
	f.linkMu.Unlock()
	if err := f.proxy.setDown(names, down); err != nil {
		return fmt.Errorf("set %d links down=%v: %w", len(names), down, err)
	}
	return nil
}

// midPush waits (at most wait) until node i is sending on one of its
// links: it is in the middle of a push (a national CERT has only push
// peers: whatever it sends is a push). A proxy that cannot answer is an
// error.
func (f *federation) midPush(i int, wait time.Duration) (bool, error) {
	f.linkMu.Lock()
	var out []string
	for k := range f.links {
		if k[0] == i {
			out = append(out, linkName(k[0], k[1]))
		}
	}
	f.linkMu.Unlock()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if ok, err := f.proxy.active(out, 20*time.Millisecond); ok || err != nil {
			return ok, err
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false, nil
}

// runFaults injects the plan's faults on schedule, from start, over the
// replay's duration; it returns when the last fault is healed.
func (f *federation) runFaults(ctx context.Context, cfg Config, p *faultPlan, start time.Time, mu *sync.Mutex, res *Result) error {
	at := func(frac float64) time.Time { return start.Add(time.Duration(frac * float64(cfg.Duration))) }
	since := func() float64 { return time.Since(start).Seconds() }
	sleepUntil := func(t time.Time) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(t)):
			return nil
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	if p.flap >= 0 {
		wg.Go(func() {
			fr := &FlapResult{CERT: f.w.orgs[p.flap].Name}
			if sleepUntil(at(0.15)) != nil {
				return
			}
			fr.From = since()
			for time.Now().Before(at(0.45)) && ctx.Err() == nil {
				if err := f.setLinks([]int{p.flap}, true); err != nil {
					errs <- fmt.Errorf("flap: %w", err)
					return
				}
				time.Sleep(2 * time.Second)
				if err := f.setLinks([]int{p.flap}, false); err != nil {
					errs <- fmt.Errorf("flap: %w", err)
					return
				}
				fr.Cycles++
				time.Sleep(3 * time.Second)
			}
			fr.To = since()
			mu.Lock()
			res.Flap = fr
			mu.Unlock()
		})
	}
	if p.region != "" {
		wg.Go(func() {
			pr := &PartitionResult{Region: p.region, Nodes: len(p.regionOf)}
			if sleepUntil(at(0.30)) != nil {
				return
			}
			pr.From = since()
			if err := f.setLinks(p.regionOf, true); err != nil {
				errs <- fmt.Errorf("partition: %w", err)
				return
			}
			time.Sleep(cfg.Partition)
			if err := f.setLinks(p.regionOf, false); err != nil {
				errs <- fmt.Errorf("partition: %w", err)
				return
			}
			pr.To = since()
			mu.Lock()
			res.Partition = pr
			mu.Unlock()
		})
	}
	if p.disk != nil && p.disk.res != nil && p.disk.res.Skipped == "" {
		wg.Go(func() {
			d := p.disk
			n := f.nodes[d.i]
			if sleepUntil(at(0.25)) != nil {
				return
			}
			if err := fill(n.dir); err != nil {
				errs <- fmt.Errorf("fill the disk of node %d: %w", d.i, err)
				return
			}
			d.res.FullAt = since()
			// What SQLite had already allocated (a write-ahead log
			// kept at its size, free pages) takes some writes: they
			// are stored, and acknowledged. Write until one needs
			// new space.
			code, body := 0, ""
			for k := 1; k <= probesWhileFull; k++ {
				if code, body = f.probeWrite(ctx, n, k, probeSightings); code >= 500 || code == 0 {
					break
				}
				d.res.AcceptedWhileFull += probeSightings
			}
			d.res.WriteRefused = fmt.Sprintf("%d %s", code, body)
			d.res.ReadsServed = f.probeRead(ctx, n)
			if code < 500 {
				d.res.WriteRefused = "not refused: " + d.res.WriteRefused
			}
			if sleepUntil(at(0.55)) != nil {
				return
			}
			if err := os.Remove(filepath.Join(n.dir, "filler")); err != nil {
				errs <- err
				return
			}
			d.res.FreedAt = since()
			for k := probesWhileFull + 1; k < probesWhileFull+50 && !d.res.Recovered; k++ {
				if code, _ := f.probeWrite(ctx, n, k, 1); code == http.StatusAccepted || code == http.StatusOK {
					d.res.Recovered = true
				} else {
					time.Sleep(200 * time.Millisecond)
				}
			}
		})
	}
	if len(p.kill) > 0 {
		wg.Go(func() {
			if sleepUntil(at(0.40)) != nil {
				return
			}
			for k, i := range p.kill {
				fl := Fault{Node: i, Name: f.w.orgs[i].Name, Kind: "kill -9"}
				if k == 0 {
					// Waiting for a push may take a while in a quiet
					// federation; the restart stays at 70%.
					var err error
					if fl.MidPush, err = f.midPush(i, min(cfg.Duration/5, time.Minute)); err != nil {
						errs <- fmt.Errorf("kill mid-push: %w", err)
						return
					}
					if fl.MidPush {
						fl.Kind = "kill -9 mid-push"
					}
				}
				mu.Lock()
				err := f.stopProc(i, true)
				mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
				fl.ClosedAt = since()
				mu.Lock()
				res.Faults = append(res.Faults, fl)
				mu.Unlock()
			}
			if sleepUntil(at(0.70)) != nil {
				return
			}
			for k, i := range p.kill {
				mu.Lock()
				err := f.startProc(ctx, i)
				if err == nil {
					res.Faults[k].ReopenAt = since()
				}
				mu.Unlock()
				if err != nil {
					errs <- fmt.Errorf("restart node %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
