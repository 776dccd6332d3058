package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/entente-cti/entente/internal/devicewatch"
	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/sensorclient"
)

// maxPostPiece is the most log bytes `watch --node` posts at once (the
// node takes up to httpapi.MaxDeviceEventsBody).
const maxPostPiece = 4 << 20

// nodeWatch posts logs to a node's device watch: the sensor path, where
// the profiles, the pseudonym key and the findings stay in the node.
type nodeWatch struct {
	env    *Env
	client *sensorclient.Client
	follow bool
	poll   time.Duration
	quiet  bool

	mu                 sync.Mutex
	lines, events, bad int64
	findings, posts    int
	maxPiece           int
	reportedBad        int
}

// run posts every log (DHCP, DNS and other device logs first) and, with
// follow, keeps posting what is appended to them until ctx ends.
func (nw *nodeWatch) run(ctx context.Context, paths []string) error {
	if nw.maxPiece <= 0 {
		nw.maxPiece = maxPostPiece
	}
	var ins []sensor.Input
	for _, p := range paths {
		ins = append(ins, sensor.Input{Name: p, Open: func() (io.ReadCloser, error) { return os.Open(p) }})
	}
	ins, err := devicewatch.SortInputs(ins, nil)
	if err != nil {
		return err
	}
	if !nw.follow {
		for _, in := range ins {
			if err := nw.postFile(ctx, in.Name); err != nil {
				return err
			}
		}
		nw.summary()
		return nil
	}
	// Following: each log on its own goroutine, the device logs first
	// read to their end so that leases are known before connections.
	errc := make(chan error, len(ins))
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := nw.postFile(ctx, in.Name); err != nil && ctx.Err() == nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	nw.summary()
	return <-errc
}

func (nw *nodeWatch) summary() {
	if nw.quiet {
		return
	}
	nw.mu.Lock()
	defer nw.mu.Unlock()
	fmt.Fprintf(nw.env.Stderr, "watch: posted %d pieces to %s: %d lines, %d events, %d bad lines, %d findings (sightings in the node)\n",
		nw.posts, nw.client.Server, nw.lines, nw.events, nw.bad, nw.findings)
}

// post sends one piece and counts the answer.
func (nw *nodeWatch) post(ctx context.Context, name string, piece []byte) error {
	res, err := nw.client.PostDeviceEvents(ctx, name, piece)
	if err != nil {
		return err
	}
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.posts++
	nw.lines += res.Lines
	nw.events += res.Events
	nw.bad += res.Bad
	nw.findings += res.Findings
	if !nw.quiet {
		for _, b := range res.BadLines {
			if nw.reportedBad < 100 {
				fmt.Fprintf(nw.env.Stderr, "bad line: %s\n", b)
				nw.reportedBad++
			}
		}
	}
	return nil
}

// postFile posts a log in pieces of whole lines, each after the log's
// header (the "#" lines of a Zeek log) so that the node reads it alone;
// following, it then polls the file for what is appended and starts
// again from the top when the file is truncated or replaced (rotation).
func (nw *nodeWatch) postFile(ctx context.Context, path string) error {
	name := filepath.Base(path)
	for {
		f, err := os.Open(path)
		if err != nil {
			if nw.follow && errors.Is(err, os.ErrNotExist) {
				if !sleepCtx(ctx, nw.poll) {
					return nil
				}
				continue
			}
			return fmt.Errorf("watch: %w", err)
		}
		rotated, err := nw.postStream(ctx, name, path, f)
		f.Close()
		if err != nil || !rotated {
			return err
		}
	}
}

// postStream posts what f holds; following, it waits for more until ctx
// ends (rotated false) or the file at path is no longer f or shrank
// (rotated true).
func (nw *nodeWatch) postStream(ctx context.Context, name, path string, f *os.File) (rotated bool, err error) {
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	gz := false
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return false, fmt.Errorf("watch: %s: %w", path, err)
		}
		defer zr.Close()
		r, gz = zr, true
	}
	var header, piece, partial []byte
	inHeader := true
	var offset int64
	flush := func() error {
		if len(piece) == 0 {
			return nil
		}
		body := append(append(make([]byte, 0, len(header)+len(piece)), header...), piece...)
		piece = piece[:0]
		return nw.post(ctx, name, body)
	}
	buf := make([]byte, 1<<20)
	for {
		n, rerr := r.Read(buf)
		offset += int64(n)
		data := buf[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				partial = append(partial, data...)
				break
			}
			line := data[:i+1]
			data = data[i+1:]
			if len(partial) > 0 {
				line = append(partial, line...)
				partial = nil
			}
			// A header line; some real logs indent the first one.
			if meta := bytes.TrimLeft(line, " \t"); len(meta) > 0 && meta[0] == '#' {
				if bytes.HasPrefix(meta, []byte("#close")) {
					continue
				}
				if !inHeader {
					// A new header within the file: what came before
					// goes with the old one.
					if err := flush(); err != nil {
						return false, err
					}
					header, inHeader = nil, true
				}
				header = append(header, line...)
				continue
			}
			inHeader = false
			piece = append(piece, line...)
			if len(piece) >= nw.maxPiece {
				if err := flush(); err != nil {
					return false, err
				}
			}
		}
		if rerr == nil {
			continue
		}
		if !errors.Is(rerr, io.EOF) {
			return false, fmt.Errorf("watch: read %s: %w", path, rerr)
		}
		if !nw.follow || gz {
			if len(partial) > 0 {
				piece = append(append(piece, partial...), '\n')
			}
			return false, flush()
		}
		// Following: what was read goes now; then wait for more.
		if err := flush(); err != nil {
			return false, err
		}
		if !sleepCtx(ctx, nw.poll) {
			return false, nil
		}
		fi, err := os.Stat(path)
		if err != nil {
			continue // rotated away: the new file appears soon
		}
		cur, err := f.Stat()
		if err != nil {
			return false, fmt.Errorf("watch: %w", err)
		}
		if !os.SameFile(fi, cur) || fi.Size() < offset {
			return true, nil
		}
	}
}

// sleepCtx waits d, or until ctx ends (then it returns false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
