package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/taxiiclient"
)

var (
	soakFor = flag.Duration("soak", 0, "run the soak test for this long (5m, 1h); 0 skips it")
	soakSVG = flag.String("soak-svg", "", "write the soak's plot (SVG) to this file")
)

// soakDuration is -soak, else $ENTENTE_SOAK.
func soakDuration(t *testing.T) time.Duration {
	if *soakFor > 0 {
		return *soakFor
	}
	if v := os.Getenv("ENTENTE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("ENTENTE_SOAK=%q is not a positive duration", v)
		}
		return d
	}
	return 0
}

// proc is an 'entente serve' of the soak.
type proc struct {
	cmd              *exec.Cmd
	url, dir, admin  string
	org              string
	pid              int
	bin              string
	stderr, listened chan string
}

var listenLine = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

func build(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "entente")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/entente").CombinedOutput(); err != nil {
		t.Fatalf("build entente: %v\n%s", err, out)
	}
	return bin
}

// start inits a node in a new directory and serves it.
func start(t *testing.T, bin, name, country string) *proc {
	t.Helper()
	p := &proc{dir: t.TempDir(), bin: bin}
	out, err := exec.Command(bin, "init", "--data", p.dir, "--org", name, "--country", country).Output()
	if err != nil {
		t.Fatalf("init %s: %v", name, err)
	}
	p.admin = strings.TrimSpace(string(out))
	p.cmd = exec.Command(bin, "serve", "--data", p.dir, "--listen", "127.0.0.1:0", "--sync-interval", "5s", "--log-level", "warn", "--log-format", "json")
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.pid = p.cmd.Process.Pid
	t.Cleanup(func() { p.cmd.Process.Signal(os.Interrupt); p.cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case p.url = <-found:
	case <-time.After(time.Minute):
		t.Fatalf("%s did not start", name)
	}
	var who struct {
		Org string `json:"org"`
	}
	if err := p.api("GET", "/api/v1/whoami", p.admin, nil, &who); err != nil {
		t.Fatal(err)
	}
	p.org = who.Org
	return p
}

// cli runs an entente command against p as its admin and returns stdout.
func (p *proc) cli(args ...string) (string, error) {
	cmd := exec.Command(p.bin, args...)
	cmd.Env = append(os.Environ(), "ENTENTE_SERVER="+p.url, "ENTENTE_TOKEN="+p.admin)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("entente %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(string(out)), nil
}

func (p *proc) api(method, path, key string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func indicators(from, n int, version time.Time) []json.RawMessage {
	out := make([]json.RawMessage, n)
	ts := version.UTC().Format("2006-01-02T15:04:05.000Z")
	for i := range out {
		k := from + i
		out[i] = json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"%s","pattern_type":"stix","pattern":"[ipv4-addr:value = '10.%d.%d.%d']","valid_from":"2026-01-01T00:00:00Z"}`,
			k, ts, k>>16&255, k>>8&255, k&255))
	}
	return out
}

// sample reads the node's resident memory, WAL size, goroutines and
// open files.
func (p *proc) sample(at time.Duration) (Sample, error) {
	s := Sample{At: at}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			s.RSSMiB = kb / 1024
		}
	}
	for _, f := range []string{"entente.db-wal", "audit.db-wal"} {
		if st, err := os.Stat(filepath.Join(p.dir, f)); err == nil {
			s.WALMiB += float64(st.Size()) / (1 << 20)
		}
	}
	for _, f := range []string{"entente.db", "audit.db"} {
		if st, err := os.Stat(filepath.Join(p.dir, f)); err == nil {
			s.DBMiB += float64(st.Size()) / (1 << 20)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid))
	if err != nil {
		return s, err
	}
	s.OpenFiles = float64(len(fds))
	req, _ := http.NewRequest("GET", p.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+p.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^go_goroutines (\d+)`).FindSubmatch(body)
	if m == nil {
		return s, fmt.Errorf("no go_goroutines in /metrics")
	}
	s.Goroutines, _ = strconv.ParseFloat(string(m[1]), 64)
	return s, nil
}

// TestSoak runs the soak (see the package documentation).
func TestSoak(t *testing.T) {
	d := soakDuration(t)
	if d == 0 {
		t.Skip("the soak runs only when asked: go test -run Soak -soak 5m ./internal/soak/ (or ENTENTE_SOAK=5m)")
	}
	if d < time.Minute {
		t.Fatalf("-soak %s: at least 1m, so that there is a warm-up and a steady state", d)
	}
	bin := build(t)
	n := start(t, bin, "Soak node", "FR")
	peers := []*proc{start(t, bin, "Peer one", "DE"), start(t, bin, "Peer two", "NL")}
	must := func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// Two peers the node pulls from, each with an agreement.
	for k, p := range peers {
		must(p.cli("partner", "add", "--id", n.org, "--name", "Soak node", "--country", "FR"))
		key := must(p.cli("key", "create", "--role", "partner", "--org", n.org, "--name", "soak"))
		must(p.cli("agreement", "set", "--partner", n.org, "--collections", "intel", "--max-tlp", "amber"))
		must(n.cli("partner", "add", "--id", p.org, "--name", fmt.Sprintf("peer %d", k), "--country", "DE"))
		must(n.cli("peer", "add", "--id", fmt.Sprintf("p%d", k), "--name", fmt.Sprintf("peer %d", k), "--api-root", p.url+"/taxii2/api1/",
			"--collection", "intel", "--into", "intel", "--peer-token", key, "--org", p.org))
	}
	// A partner that reads the node, and the node's own keys.
	const partner = "identity--50a50a50-0000-4000-8000-000000000001"
	must(n.cli("partner", "add", "--id", partner, "--name", "Reader", "--country", "BE"))
	must(n.cli("agreement", "set", "--partner", partner, "--collections", "intel", "--max-tlp", "green"))
	partnerKey := must(n.cli("key", "create", "--role", "partner", "--org", partner, "--name", "reader"))
	analyst := must(n.cli("key", "create", "--role", "analyst", "--name", "analyst"))
	sensor := must(n.cli("key", "create", "--role", "sensor", "--name", "sensor"))

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		wg        sync.WaitGroup
		ops       atomic.Int64
		errs      atomic.Int64
		mu        sync.Mutex
		firstErrs []string
	)
	fail := func(err error) {
		if err == nil || ctx.Err() != nil {
			return
		}
		errs.Add(1)
		mu.Lock()
		if len(firstErrs) < 10 {
			firstErrs = append(firstErrs, err.Error())
		}
		mu.Unlock()
	}
	every := func(period time.Duration, f func(i int) error) {
		wg.Go(func() {
			tk := time.NewTicker(period)
			defer tk.Stop()
			for i := 0; ; i++ {
				fail(f(i))
				ops.Add(1)
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
				}
			}
		})
	}
	// The ids posted cycle over 20,000 indicators; each round is a new
	// version.
	post := func(p *proc, key string, per, i int) error {
		c := &taxiiclient.Client{APIRoot: p.url + "/taxii2/api1/", Auth: taxiiclient.Auth{Token: key}}
		res, err := c.Push(ctx, "intel", indicators((i*per)%20000, per, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Millisecond)))
		if err == nil && res.Failure > 0 {
			err = fmt.Errorf("push: %d refused: %+v", res.Failure, res.Failures[0])
		}
		return err
	}
	every(250*time.Millisecond, func(i int) error { return post(n, analyst, 20, i) })
	for k, p := range peers {
		every(time.Second, func(i int) error { return post(p, p.admin, 10, 100000*(k+1)+i) })
	}
	var cp taxiiclient.Checkpoint
	every(time.Second, func(int) error {
		c := &taxiiclient.Client{APIRoot: n.url + "/taxii2/api1/", Auth: taxiiclient.Auth{Token: partnerKey}, Limits: taxiiclient.Limits{PageSize: 1000}}
		next, err := c.Pull(ctx, "intel", cp, func(*taxiiclient.Page) error { return nil })
		if err == nil {
			cp = next
		}
		return err
	})
	every(5*time.Second, func(int) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", n.url+"/export/plain", nil)
		req.Header.Set("Authorization", "Bearer "+analyst)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("export: %s", resp.Status)
		}
		return nil
	})
	every(time.Second, func(i int) error {
		ts := time.Now().UTC().Add(-time.Minute).Format("2006-01-02T15:04:05.000Z")
		body := fmt.Sprintf(`{"objects":[{"type":"sighting","spec_version":"2.1","id":"sighting--%08x-0000-4000-8000-000000000000","created":"%s","modified":"%s","created_by_ref":"%s","first_seen":"%s","last_seen":"%s","count":1,"sighting_of_ref":"indicator--00000000-0000-4000-8000-%012d","where_sighted_refs":["%s"]}]}`,
			i, ts, ts, n.org, ts, ts, i%20000, n.org)
		req, _ := http.NewRequestWithContext(ctx, "POST", n.url+"/api/v1/sightings", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+sensor)
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("sighting: %s: %s", resp.Status, b)
		}
		return nil
	})
	// Every 15 s a new partner key, the previous one revoked, and the
	// agreement changed.
	every(15*time.Second, func(i int) error {
		if _, err := n.cli("key", "create", "--role", "partner", "--org", partner, "--name", fmt.Sprintf("rotated %d", i)); err != nil {
			return err
		}
		var list struct {
			Keys []struct {
				ID      string     `json:"id"`
				Name    string     `json:"name"`
				Revoked *time.Time `json:"revoked"`
			} `json:"keys"`
		}
		if err := n.api("GET", "/api/v1/keys", n.admin, nil, &list); err != nil {
			return err
		}
		for _, k := range list.Keys {
			if k.Name == fmt.Sprintf("rotated %d", i-1) && k.Revoked == nil {
				if _, err := n.cli("key", "revoke", k.ID); err != nil {
					return err
				}
			}
		}
		tlp := []string{"green", "amber"}[i%2]
		_, err := n.cli("agreement", "set", "--partner", partner, "--collections", "intel", "--max-tlp", tlp)
		return err
	})

	// Samples: about 120 over the run, at least every 5 s.
	interval := max(5*time.Second, d/120)
	var samples []Sample
	begin := time.Now()
	tk := time.NewTicker(interval)
	for done := false; !done; {
		s, err := n.sample(time.Since(begin))
		if err != nil {
			t.Fatalf("sample: %v", err)
		}
		samples = append(samples, s)
		select {
		case <-ctx.Done():
			done = true
		case <-tk.C:
		}
	}
	tk.Stop()
	wg.Wait()
	warmup := d / 5
	title := fmt.Sprintf("Soak: %s of mixed load on one node (%d operations, %d errors)", d, ops.Load(), errs.Load())
	var svg bytes.Buffer
	if err := WriteSVG(&svg, title, samples, warmup); err != nil {
		t.Fatal(err)
	}
	if *soakSVG != "" {
		if err := os.WriteFile(*soakSVG, svg.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var csv strings.Builder
	csv.WriteString("seconds,rss_mib,wal_mib,db_mib,goroutines,open_files\n")
	for _, s := range samples {
		fmt.Fprintf(&csv, "%.0f,%.1f,%.2f,%.1f,%.0f,%.0f\n", s.At.Seconds(), s.RSSMiB, s.WALMiB, s.DBMiB, s.Goroutines, s.OpenFiles)
	}
	t.Logf("%s\n%s", title, csv.String())
	if errs.Load() > 0 {
		t.Errorf("%d of %d operations failed; first: %s", errs.Load(), ops.Load(), strings.Join(firstErrs, "\n"))
	}
	checkFlat(t, samples, warmup, d)
}

// checkFlat checks that after warm-up each reading stays within a bound
// of what it was just after warm-up: the last quarter of the run against
// the window from warm-up to 40%. The load stores what it posts (every
// version is kept, and every partner read appends to the audit log), so
// the database files grow; the page caches of the store's connections
// (up to 256 MiB for the writer, 64 MiB for each reader) and the node's
// in-memory indexes of what was added grow with them until the caches
// are full. Resident memory may therefore grow by three times what the
// database files grew, on top of its bound; memory that grows faster
// than the data is a leak.
func checkFlat(t *testing.T, samples []Sample, warmup, d time.Duration) {
	window := func(from, to time.Duration) []Sample {
		return slices.DeleteFunc(slices.Clone(samples), func(s Sample) bool { return s.At < from || s.At > to })
	}
	early, late := window(warmup, 2*d/5), window(3*d/4, d+time.Minute)
	if len(early) == 0 || len(late) == 0 {
		t.Fatalf("%d samples after warm-up and %d in the last quarter", len(early), len(late))
	}
	peak := func(ss []Sample, get func(Sample) float64) float64 {
		m := 0.0
		for _, s := range ss {
			m = max(m, get(s))
		}
		return m
	}
	median := func(ss []Sample, get func(Sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = get(s)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	// Memory and the WAL by their peaks; goroutines and open files, which
	// in-flight requests make jump from one sample to the next, by their
	// medians: a leak moves the median too.
	dataGrowth := max(0, peak(late, func(s Sample) float64 { return s.DBMiB })-peak(early, func(s Sample) float64 { return s.DBMiB }))
	t.Logf("database files: %.1f MiB more in the last quarter than after warm-up", dataGrowth)
	for _, c := range []struct {
		name       string
		get        func(Sample) float64
		stat       func([]Sample, func(Sample) float64) float64
		statName   string
		ratio, add float64
	}{
		{"resident memory (MiB)", func(s Sample) float64 { return s.RSSMiB }, peak, "peak", 1.25, 32 + 3*dataGrowth},
		{"WAL (MiB)", func(s Sample) float64 { return s.WALMiB }, peak, "peak", 2, 16},
		{"goroutines", func(s Sample) float64 { return s.Goroutines }, median, "median", 1.25, 20},
		{"open files", func(s Sample) float64 { return s.OpenFiles }, median, "median", 1, 8},
	} {
		e, l := c.stat(early, c.get), c.stat(late, c.get)
		t.Logf("%s: %s %.1f after warm-up, %.1f in the last quarter", c.name, c.statName, e, l)
		if l > e*c.ratio+c.add {
			t.Errorf("%s grew: %s %.1f after warm-up, %.1f in the last quarter (bound %.1f)", c.name, c.statName, e, l, e*c.ratio+c.add)
		}
	}
}
