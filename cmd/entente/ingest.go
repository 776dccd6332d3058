package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/gunzip"
	"github.com/entente-cti/entente/internal/hugepage"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/taxii"
	"github.com/entente-cti/entente/internal/taxiiclient"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// ingestBatch is how many objects one write carries: large enough to
// amortise a transaction, small enough to bound memory per write.
const ingestBatch = 5000

// ingestInFlight is how many batches a file has handed over and not yet
// seen stored: two keep the node's validation and its writer busy while
// the next is decoded.
const ingestInFlight = 2

// ingestGCPercent is the collector's target (GOGC) while an offline
// ingest runs: see cmdIngest.
const ingestGCPercent = 25

func cmdIngest(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "ingest", "ingest [--server URL --token KEY | --data DIR] [--collection C] [FILE...]",
		"Load STIX 2.1 bundles (.json or .json.gz; '-' or no file reads stdin) into a node:\n"+
			"a running one over TAXII 2.1 (--server, --token, or ENTENTE_SERVER and ENTENTE_TOKEN),\n"+
			"or offline into the data directory of a stopped one (--data).\n"+
			"Invalid objects are rejected with their reasons; valid ones are stored.\n"+
			"Exits 1 if any object or file was rejected.")
	var remote remoteFlags
	remote.register(fs, env)
	cfg := config.Default()
	fs.StringVar(&cfg.Data, "data", "", "data directory of a node, to ingest offline")
	fs.StringVar(&cfg.Store, "store", "", "PostgreSQL URL of a node's store, to ingest offline")
	coll := fs.String("collection", node.CollectionIntel, "collection id or alias to add the objects to")
	quiet := fs.Bool("quiet", false, "print no progress bar")
	lim := inputLimits(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}

	// sink hands a batch to the node and returns a function that waits
	// for its outcome, so that batches can be validated and stored while
	// the next ones are read.
	var sink func(ctx context.Context, objs []json.RawMessage) (func() (ingestResult, error), error)
	switch {
	case cfg.Data != "" || cfg.Store != "":
		svc, st, err := openNode(ctx, cfg, quietLogger(env))
		if err != nil {
			return err
		}
		defer st.Close()
		id, err := svc.Identity(ctx)
		if err != nil {
			return err
		}
		admin := node.LocalAdmin(id.ID)
		// The whole file stays in memory while the node decodes it (50 MB
		// for ATT&CK Enterprise), and the collector lets the heap grow by
		// as much again as is alive before it runs: with the default, the
		// batches' short-lived trees took some 100 MB of fresh pages, each
		// 4 KiB a page fault. A quarter bounds that growth to what the
		// trees of the batches in flight need; the collector runs more
		// often, over a heap that is mostly that file (no pointers). A
		// GOGC set in the environment is left alone.
		if os.Getenv("GOGC") == "" {
			defer debug.SetGCPercent(debug.SetGCPercent(ingestGCPercent))
		}
		// The node tells of each status it completes: waiting for that
		// costs nothing, where polling read back each batch's stored
		// status (5,000 successes) as JSON.
		done := newCompletions()
		svc.OnComplete(done.complete)
		sink = func(ctx context.Context, objs []json.RawMessage) (func() (ingestResult, error), error) {
			status, err := svc.SubmitObjects(ctx, admin, *coll, objs)
			if err != nil {
				return nil, err
			}
			return func() (ingestResult, error) {
				if status.Status != taxii.StatusComplete {
					final, err := done.wait(ctx, status.ID)
					if err != nil {
						return ingestResult{}, fmt.Errorf("interrupted before the node confirmed %d objects: %w", status.PendingCount, err)
					}
					status = final
				}
				return resultOf(status.SuccessCount, status.Failures), nil
			}, nil
		}
	case remote.server != "":
		if remote.key() == "" {
			return usagef("--token KEY (or ENTENTE_TOKEN) is required with --server")
		}
		c := &taxiiclient.Client{
			DiscoveryURL: strings.TrimRight(remote.server, "/") + "/taxii2/",
			Auth:         taxiiclient.Auth{Token: remote.key()},
			UserAgent:    "entente-ingest",
		}
		d, err := c.Discover(ctx)
		if err != nil {
			return fmt.Errorf("discover %s: %w", c.DiscoveryURL, err)
		}
		c.APIRoot = d.Default
		if c.APIRoot == "" && len(d.APIRoots) > 0 {
			c.APIRoot = d.APIRoots[0]
		}
		if c.APIRoot == "" {
			return fmt.Errorf("%s names no API root", c.DiscoveryURL)
		}
		sink = func(ctx context.Context, objs []json.RawMessage) (func() (ingestResult, error), error) {
			res, err := c.Push(ctx, *coll, objs)
			if err != nil {
				return nil, err
			}
			r := resultOf(res.Success, res.Failures)
			return func() (ingestResult, error) { return r, nil }, nil
		}
	default:
		return usagef("give --server URL (or ENTENTE_SERVER) to ingest into a running node, or --data DIR to ingest offline")
	}

	var sum ingestSummary
	start := time.Now()
	for _, name := range files {
		if err := ingestFile(ctx, env, name, !*quiet, *lim, sink, &sum); err != nil {
			sum.fileErrors = append(sum.fileErrors, err.Error())
		}
	}
	sum.print(env.Stderr, time.Since(start))
	if len(sum.fileErrors) > 0 || len(sum.rejected) > 0 {
		return fmt.Errorf("%d objects rejected, %d files failed", len(sum.rejected), len(sum.fileErrors))
	}
	return nil
}

type rejection struct {
	where  string // file and object index
	id     string
	reason string
}

type ingestResult struct {
	stored   int
	rejected []rejection
}

type ingestSummary struct {
	stored     int
	rejected   []rejection
	fileErrors []string
}

func (s *ingestSummary) print(w io.Writer, d time.Duration) {
	fmt.Fprintf(w, "stored %d objects, rejected %d, in %.2fs\n", s.stored, len(s.rejected), d.Seconds())
	const show = 50
	for i, r := range s.rejected {
		if i == show {
			fmt.Fprintf(w, "  … and %d more rejected objects\n", len(s.rejected)-show)
			break
		}
		id := r.id
		if id == "" {
			id = "(no id)"
		}
		fmt.Fprintf(w, "  rejected %s %s: %s\n", r.where, id, r.reason)
	}
	for _, e := range s.fileErrors {
		fmt.Fprintf(w, "  failed %s\n", e)
	}
}

// ingestFile reads one bundle and hands its objects to sink in batches.
// A file that cannot be read whole (truncated gzip, malformed JSON) stores
// nothing: its error names the file and where it broke.
func ingestFile(ctx context.Context, env *Env, name string, progress bool, lim gunzip.Limits, sink func(context.Context, []json.RawMessage) (func() (ingestResult, error), error), sum *ingestSummary) error {
	data, err := readInput(env, name, progress, lim)
	if err != nil {
		return err
	}
	var objs []json.RawMessage
	if err := stix.ScanBundle(data, func(i int, raw json.RawMessage) error {
		objs = append(objs, raw)
		return nil
	}); err != nil {
		if what := feed.Identify(data); what != "" {
			return fmt.Errorf("%s: this is %s, not a STIX bundle: use 'entente import'", name, what)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	// A STIX object names its type; a MISP event or feed manifest read as
	// a single object does not.
	if len(objs) > 0 && !hasType(objs[0]) {
		if what := feed.Identify(data); what != "" {
			return fmt.Errorf("%s: this is %s, not a STIX bundle: use 'entente import'", name, what)
		}
	}
	type pending struct {
		first, last int
		wait        func() (ingestResult, error)
	}
	var batches []pending
	var firstErr error
	settle := func(b pending) {
		res, err := b.wait()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: objects %d-%d: %w", name, b.first, b.last, err)
			}
			return
		}
		sum.stored += res.stored
		for _, r := range res.rejected {
			r.where = name
			sum.rejected = append(sum.rejected, r)
		}
	}
	for off := 0; off < len(objs); off += ingestBatch {
		if len(batches) == ingestInFlight {
			// A batch holds its decoded objects, its validation and
			// its pending status in the node until stored, and the
			// writer commits the batches waiting together: handing
			// all over at once grew the heap (fresh pages, each a
			// page fault) and the transactions.
			settle(batches[0])
			batches = batches[1:]
		}
		batch := objs[off:min(off+ingestBatch, len(objs))]
		wait, err := sink(ctx, batch)
		if err != nil {
			firstErr = fmt.Errorf("%s: objects %d-%d: %w", name, off, off+len(batch)-1, err)
			break
		}
		batches = append(batches, pending{off, off + len(batch) - 1, wait})
	}
	// Every batch handed over is waited for, even after an error, so
	// that the summary accounts for all that was stored.
	for _, b := range batches {
		settle(b)
	}
	return firstErr
}

// completions hands the statuses the node completes to those waiting for
// them, whichever comes first.
type completions struct {
	mu sync.Mutex
	ch map[string]chan *taxii.Status
}

func newCompletions() *completions {
	return &completions{ch: map[string]chan *taxii.Status{}}
}

// slot returns the channel of status id, made by the first to ask.
func (c *completions) slot(id string) chan *taxii.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.ch[id]
	if !ok {
		ch = make(chan *taxii.Status, 1)
		c.ch[id] = ch
	}
	return ch
}

// complete is the node's OnComplete hook. It runs on the store's writer,
// so it never blocks: a status is completed once.
func (c *completions) complete(st *taxii.Status) {
	select {
	case c.slot(st.ID) <- st:
	default:
	}
}

// wait returns status id once complete, or ctx's error.
func (c *completions) wait(ctx context.Context, id string) (*taxii.Status, error) {
	select {
	case st := <-c.slot(id):
		c.mu.Lock()
		delete(c.ch, id)
		c.mu.Unlock()
		return st, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// resultOf summarises a status: objects stored and those rejected.
func resultOf(stored int, failures []taxii.StatusDetail) ingestResult {
	r := ingestResult{stored: stored}
	for _, f := range failures {
		r.rejected = append(r.rejected, rejection{id: f.ID, reason: f.Message})
	}
	return r
}

// readInput reads a file (or stdin for "-") whole, decompressing gzip as
// a stream within lim, with a progress bar on a terminal. Nothing the file
// declares is trusted: a plain file's buffer is sized from its size on
// disk, a gzip file's grows with what it really inflates to, and a
// truncated, corrupt or bomb-like stream is an error naming the file.
func readInput(env *Env, name string, progress bool, lim gunzip.Limits) ([]byte, error) {
	var r io.Reader
	var size int64 = -1
	if name == "-" {
		r = env.Stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("%s is a directory: ingest reads STIX bundle files (a MISP feed directory goes to 'entente import')", name)
		}
		size = fi.Size()
		r = f
	}
	if progress && isTerminal(env.Stderr) {
		bar := progressbar.DefaultBytes(size, "reading "+name)
		defer bar.Finish()
		r = io.TeeReader(r, bar)
	}
	zr, err := gunzip.Open(r, name, lim)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	// The file's real size: the whole of a plain file, and a floor for
	// what a compressed one inflates to.
	hint := 0
	if size > 0 {
		hint = int(min(size, lim.MaxSize))
	}
	data, err := readAllHuge(zr, hint)
	if err != nil {
		if zr.Compressed {
			return nil, err // names the file and what broke
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

// readAllHuge reads r to its end into a buffer of at least hint bytes
// that doubles when full, each new buffer backed by transparent huge
// pages where the kernel grants them: ATT&CK inflates to 50 MB, and
// filling that (and the smaller buffers before it) 4 KiB at a time cost
// about 27,000 page faults, 40 % of an offline ingest's.
func readAllHuge(r io.Reader, hint int) ([]byte, error) {
	buf := make([]byte, max(hint+bytes.MinRead, 64<<10))
	hugepage.Advise(buf, 2<<20)
	n := 0
	for {
		if n == len(buf) {
			next := make([]byte, 2*len(buf))
			hugepage.Advise(next, 2<<20)
			copy(next, buf)
			buf = next
		}
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return buf[:n:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// hasType reports whether a JSON object has a "type" member, as every STIX
// object does.
func hasType(raw json.RawMessage) bool {
	var o struct {
		Type *json.RawMessage `json:"type"`
	}
	return json.Unmarshal(raw, &o) == nil && o.Type != nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
