package sensor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-cti/entente/internal/gunzip"
)

// Parser extracts observables from the lines of one log format. A Parser
// is used by one goroutine at a time; [Format.NewParser] makes one per
// worker.
type Parser interface {
	// Parse appends the observables of line (without its newline) to obs
	// and returns the result. An error makes the line a bad line. Lines
	// that carry no record (headers, blank lines) return obs unchanged.
	Parse(line []byte, obs []Obs) ([]Obs, error)
	// Time returns the time at which the record of line was logged, when
	// the line carries one. It is called only for lines that hit, so it
	// need not be fast.
	Time(line []byte) (time.Time, bool)
}

// Format is a log format.
type Format interface {
	// Name is the format's name on the command line ("zeek", "eve", ...).
	Name() string
	// NewParser returns a parser in its initial state.
	NewParser() Parser
	// Stateful reports whether lines starting with '#' change how later
	// lines are parsed (Zeek TSV headers); the reader then gives each
	// chunk the header lines in effect at its start.
	Stateful() bool
}

// Input is one log source.
type Input struct {
	// Name names the input in reports: a file name, or "-" for stdin.
	Name string
	// Open opens the input. Gzip input is recognised by its magic number
	// and decompressed (on one goroutine: decompression does not scale
	// with the workers).
	Open func() (io.ReadCloser, error)
}

// Chunk is a run of whole lines of one input.
type Chunk struct {
	// Seq numbers the chunks of a scan in input order, from 0.
	Seq int
	// Input is the index of the chunk's input.
	Input int
	// File is the input's name.
	File string
	// FirstLine is the line number (from 1) of the chunk's first line.
	FirstLine int64
	// Data holds the lines, each but perhaps the last ending in '\n'.
	Data []byte
	// Lines is the number of lines in Data (for handlers that size
	// their buffers before the first).
	Lines int
	// Format is the format of the chunk's lines.
	Format Format

	header    [][]byte // header lines in effect at the chunk's start
	headerGen uint64   // identifies header; 0 for stateless formats
	buf       *[]byte
	m         *mapping // the file mapping Data lies in, if any (then buf is nil)
}

// Handler receives the lines of the chunks that one worker parses.
type Handler interface {
	// Line is called for every line that has at least one observable,
	// with the line's raw bytes and the parser that parsed it (for
	// [Parser.Time]). Nothing passed may be kept after Line returns.
	Line(c *Chunk, line int64, raw []byte, obs []Obs, p Parser)
	// ChunkDone is called after the last line of a chunk.
	ChunkDone(c *Chunk)
}

// Flusher is implemented by a [Handler] that defers its work on lines
// (to batch memory accesses across lines). Flush is called before a line
// that may change the parser's state (a Zeek TSV header line), so that
// the deferred lines are finished while the parser still describes them;
// ChunkDone must finish them too.
type Flusher interface {
	Flush()
}

// Dropper is implemented by a [Flusher] that can forget its deferred
// lines without reading them. When the rest of a chunk cannot be read
// (its file was truncated while read through a mapping), the worker calls
// Drop and then ChunkDone; the scan returns [ErrTruncated].
type Dropper interface {
	Drop()
}

// BadLine is a line that could not be parsed.
type BadLine struct {
	File string
	Line int64
	Err  error
}

// Error returns "file:line: error".
func (b BadLine) Error() string { return fmt.Sprintf("%s:%d: %v", b.File, b.Line, b.Err) }

// Options control a [Scan].
type Options struct {
	// Format is the format of every input; nil detects each input's
	// format from its first line (see [Detect]).
	Format Format
	// Workers is the number of parsing goroutines; 0 means GOMAXPROCS.
	Workers int
	// ChunkSize is the size of the blocks read (default 4 MiB). A line
	// longer than a chunk is a bad line and is skipped.
	ChunkSize int
	// MaxLineSize is the longest line parsed (default 1 MiB); longer lines
	// are bad lines.
	MaxLineSize int
	// MaxBadReports is how many bad lines are kept in [Stats.BadLines]
	// (default 100); all are counted.
	MaxBadReports int
	// OnBadLine, when set, is called (from any goroutine, serialised) for
	// each bad line kept.
	OnBadLine func(BadLine)
	// SkipPackets lets the event readers leave out the packet counts of
	// connections (Event.SrcPkts and DstPkts stay 0) and, in a Zeek
	// conn.log, the columns after the last one still needed, for readers
	// of events that do not use them (the device watch): a line still
	// needs every column its header names, but a bad value in one not read
	// no longer makes it a bad line.
	SkipPackets bool
}

// Stats summarises a scan.
type Stats struct {
	Inputs   int
	Bytes    int64 // bytes of log text (after decompression)
	Lines    int64
	Records  int64 // lines that yielded at least one observable
	Bad      int64
	BadLines []BadLine // the first Options.MaxBadReports bad lines
}

// ErrTooLong is the error of a line longer than the options allow.
var ErrTooLong = errors.New("line too long")

type scanner struct {
	opts    Options
	mu      sync.Mutex
	faults  []error      // ErrTruncated met by the workers
	faulted map[int]bool // the inputs in faults
	bad     atomic.Int64
	records atomic.Int64
	badList []BadLine
	pool    sync.Pool
}

func (s *scanner) reportBad(b BadLine) {
	s.bad.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.badList) < s.opts.MaxBadReports {
		s.badList = append(s.badList, b)
		if s.opts.OnBadLine != nil {
			s.opts.OnBadLine(b)
		}
	}
}

// Scan reads every input, splits it into chunks and parses the chunks on
// Options.Workers goroutines, calling newHandler once per worker. It
// returns when all inputs are read and parsed. Errors reading an input
// (missing file, truncated gzip) name the input; the other inputs are
// still read, and all such errors are returned joined.
func Scan(ctx context.Context, inputs []Input, opts Options, newHandler func(worker int) Handler) (Stats, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 4 << 20
	}
	if opts.MaxLineSize <= 0 {
		opts.MaxLineSize = 1 << 20
	}
	if opts.MaxLineSize > opts.ChunkSize {
		opts.MaxLineSize = opts.ChunkSize
	}
	if opts.MaxBadReports <= 0 {
		opts.MaxBadReports = 100
	}
	s := &scanner{opts: opts}
	s.pool.New = func() any { b := make([]byte, opts.ChunkSize); return &b }

	chunks := make(chan *Chunk, opts.Workers*2)
	var wg sync.WaitGroup
	for w := 0; w < opts.Workers; w++ {
		h := newHandler(w)
		wg.Go(func() { s.work(chunks, h) })
	}
	stats := Stats{Inputs: len(inputs)}
	var errs []error
	seq := 0
	var gen uint64
	for i, in := range inputs {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		n, lines, err := s.read(ctx, i, in, chunks, &seq, &gen)
		stats.Bytes += n
		stats.Lines += lines
		if err != nil {
			errs = append(errs, err)
		}
	}
	close(chunks)
	wg.Wait()
	errs = append(errs, s.faults...)
	stats.Bad = s.bad.Load()
	stats.Records = s.records.Load()
	stats.BadLines = s.badList
	return stats, errors.Join(errs...)
}

// read splits one input into chunks and sends them; it returns the bytes
// and lines read.
func (s *scanner) read(ctx context.Context, idx int, in Input, out chan<- *Chunk, seq *int, gen *uint64) (int64, int64, error) {
	rc, err := in.Open()
	if err != nil {
		return 0, 0, fmt.Errorf("open %s: %w", in.Name, err)
	}
	defer rc.Close()
	if f, ok := rc.(*os.File); ok {
		if m := mapFile(f); m != nil {
			defer m.release()
			return s.readMapped(ctx, idx, in, m, out, seq, gen)
		}
	}
	// Logs are streamed, so their size is not bounded; a compressed one
	// that inflates like a bomb is refused (see package gunzip).
	zr, err := gunzip.Open(rc, in.Name, gunzip.Limits{})
	if err != nil {
		return 0, 0, fmt.Errorf("read %w", err)
	}
	defer zr.Close()
	var r io.Reader = zr
	k := s.newChunking(idx, in.Name, seq, gen)
	var (
		total    int64
		line     int64 = 1 // number of the next line to start
		carry    []byte
		skipping bool // discarding the rest of a line longer than a chunk
	)
	for {
		bp := s.pool.Get().(*[]byte)
		buf := (*bp)[:cap(*bp)]
		n := copy(buf, carry)
		m, rerr := fill(r, buf[n:])
		total += int64(m)
		n += m
		// On a read error the lines read so far are still parsed; the
		// error is returned after them.
		eof := rerr != nil
		data := buf[:n]
		if skipping {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				s.pool.Put(bp)
				carry = nil
				if eof {
					// The skipped line was the last one.
					if rerr != io.EOF {
						return total, line, fmt.Errorf("read %s (after line %d): %w", in.Name, line, rerr)
					}
					return total, line, nil
				}
				continue
			}
			data = data[i+1:]
			line++
			skipping = false
		}
		var rest []byte
		if !eof {
			i := bytes.LastIndexByte(data, '\n')
			if i < 0 && len(data) < len(buf) {
				// What follows the end of a skipped line is the start
				// of a line: carry it to the next block.
				carry = append(carry[:0:0], data...)
				s.pool.Put(bp)
				continue
			}
			if i < 0 {
				// One line fills the whole chunk: report and skip it.
				s.reportBad(BadLine{File: in.Name, Line: line, Err: fmt.Errorf("%w: over %d bytes", ErrTooLong, s.opts.ChunkSize)})
				skipping = true
				carry = nil
				s.pool.Put(bp)
				continue
			}
			data, rest = data[:i+1], data[i+1:]
		}
		if len(data) > 0 {
			c, err := k.next(data, line)
			if err != nil {
				s.pool.Put(bp)
				return total, line - 1, err
			}
			c.buf = bp
			line += int64(c.Lines)
			select {
			case out <- c:
			case <-ctx.Done():
				return total, line - 1, ctx.Err()
			}
		} else {
			s.pool.Put(bp)
		}
		if eof {
			if rerr != io.EOF {
				return total, line - 1, fmt.Errorf("read %s (after line %d): %w", in.Name, line-1, rerr)
			}
			return total, line - 1, nil
		}
		carry = append(carry[:0:0], rest...)
	}
}

// trackHeader follows the '#' lines of data: a run of '#' lines after
// chunking is what read and readMapped keep while they cut one input
// into chunks: the format (detected from its first data unless the scan
// names one) and, for a stateful format, the header in force.
type chunking struct {
	idx      int
	name     string
	format   Format
	seq      *int
	gen      *uint64
	header   [][]byte
	inHeader bool
	hgen     uint64
}

func (s *scanner) newChunking(idx int, name string, seq *int, gen *uint64) *chunking {
	*gen++
	return &chunking{idx: idx, name: name, format: s.opts.Format, seq: seq, gen: gen, hgen: *gen}
}

// next returns data, not empty and ending at a line end unless it ends
// the input, as the next chunk, numbered, starting at line, with its
// lines counted and the header in force before it; the header lines it
// holds are in force for the chunks after it.
func (k *chunking) next(data []byte, line int64) (*Chunk, error) {
	if k.format == nil {
		f, err := Detect(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.name, err)
		}
		k.format = f
	}
	c := &Chunk{Seq: *k.seq, Input: k.idx, File: k.name, FirstLine: line, Data: data, Format: k.format}
	*k.seq++
	if k.format.Stateful() {
		c.header, c.headerGen = k.header, k.hgen
		// A search for '#' first: most chunks have none, and a search
		// for one byte costs half that for two (this runs on the one
		// goroutine that reads).
		if bytes.IndexByte(data, '#') >= 0 && (data[0] == '#' || bytes.Contains(data, []byte("\n#"))) {
			k.header, k.inHeader = trackHeader(data, k.header, k.inHeader)
			*k.gen++
			k.hgen = *k.gen
		}
	}
	nl := bytes.Count(data, []byte{'\n'})
	if data[len(data)-1] != '\n' {
		nl++
	}
	c.Lines = nl
	return c, nil
}

// data lines starts a new header.
func trackHeader(data []byte, header [][]byte, inHeader bool) ([][]byte, bool) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var l []byte
		if i < 0 {
			l, data = data, nil
		} else {
			l, data = data[:i], data[i+1:]
		}
		if len(l) > 0 && l[0] == '#' {
			if !inHeader {
				header = nil
				inHeader = true
			}
			header = append(header[:len(header):len(header)], bytes.Clone(l))
		} else if len(bytes.TrimSpace(l)) > 0 {
			inHeader = false
		}
	}
	return header, inHeader
}

func (s *scanner) work(chunks <-chan *Chunk, h Handler) {
	parsers := map[Format]Parser{}
	gens := map[Format]uint64{}
	var obs []Obs
	flusher, _ := h.(Flusher)
	// A fault reading a mapped file (truncated while read) panics
	// instead of killing the process; chunk recovers it.
	debug.SetPanicOnFault(true)
	for c := range chunks {
		p := parsers[c.Format]
		if p == nil || (c.Format.Stateful() && gens[c.Format] != c.headerGen) {
			p = c.Format.NewParser()
			for _, l := range c.header {
				_, _ = p.Parse(l, nil)
			}
			parsers[c.Format] = p
			gens[c.Format] = c.headerGen
		}
		obs = s.chunk(c, p, h, flusher, obs)
		if c.Format.Stateful() {
			// Lines of this chunk may have changed the parser's header;
			// the next chunk carries its own.
			gens[c.Format] = 0
		}
		h.ChunkDone(c)
		s.done(c)
	}
}

// done releases the data of a chunk whose handler is done with it.
func (s *scanner) done(c *Chunk) {
	data := c.Data
	c.Data = nil
	if c.m != nil {
		dropPages(data)
		c.m.release()
	} else {
		s.pool.Put(c.buf)
	}
}

// recoverFault, deferred while a mapped chunk is read, turns a fault (the
// file truncated while read) into ErrTruncated for the scan: the handler,
// if it defers lines, drops them. Any other panic goes on.
func (s *scanner) recoverFault(c *Chunk, line *int64, h ...any) {
	r := recover()
	if r == nil {
		return
	}
	if !isFault(r) {
		panic(r)
	}
	if len(h) > 0 {
		if d, ok := h[0].(Dropper); ok {
			d.Drop()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faulted == nil {
		s.faulted = map[int]bool{}
	}
	if !s.faulted[c.Input] {
		// One error an input: the chunks after this one fault too.
		s.faulted[c.Input] = true
		s.faults = append(s.faults, fmt.Errorf("read %s (line %d): %w", c.File, *line, ErrTruncated))
	}
}

// chunk parses the lines of c and hands them to h. A chunk of a mapped
// file that faults (the file shrank) is cut where it faulted: the
// handler drops what it deferred and the scan returns ErrTruncated.
func (s *scanner) chunk(c *Chunk, p Parser, h Handler, flusher Flusher, obs []Obs) (out []Obs) {
	line := c.FirstLine
	out = obs
	if c.m != nil {
		defer s.recoverFault(c, &line, h)
	}
	data := c.Data
	stateful := c.Format.Stateful()
	var records int64
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var l []byte
		if i < 0 {
			l, data = data, nil
		} else {
			l, data = data[:i], data[i+1:]
		}
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if len(l) > s.opts.MaxLineSize {
			s.reportBad(BadLine{File: c.File, Line: line, Err: fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLong, len(l), s.opts.MaxLineSize)})
			line++
			continue
		}
		if flusher != nil && stateful && len(l) > 0 && (l[0] == '#' || l[0] == ' ' || l[0] == '\t') {
			flusher.Flush()
		}
		var err error
		obs, err = p.Parse(l, obs[:0])
		if err != nil {
			s.reportBad(BadLine{File: c.File, Line: line, Err: err})
		} else if len(obs) > 0 {
			records++
			h.Line(c, line, l, obs, p)
		}
		out = obs
		line++
	}
	if c.m != nil && flusher != nil {
		// The deferred lines are matched here, where a fault is
		// recovered, not in ChunkDone.
		flusher.Flush()
	}
	s.records.Add(records)
	return obs
}

// fill reads into buf until it is full or the reader fails; it returns
// io.EOF at the clean end of input and any other error as it is.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			// A reader that returns nothing without error: try again,
			// as io.ReadFull does.
			continue
		}
	}
	return n, nil
}

// readMapped splits a mapped file into chunks, slices of the mapping cut
// at line ends, as read does with copies; it returns the bytes and lines
// read. A fault (the file truncated meanwhile) ends the input with
// ErrTruncated.
func (s *scanner) readMapped(ctx context.Context, idx int, in Input, m *mapping, out chan<- *Chunk, seq *int, gen *uint64) (total int64, lines int64, err error) {
	data := m.data
	var (
		line int64 = 1 // number of the next line to start
		off  int
	)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if !isFault(r) {
				panic(r)
			}
			total, lines, err = int64(off), line-1, fmt.Errorf("read %s (after line %d): %w", in.Name, line-1, ErrTruncated)
		}
	}()
	k := s.newChunking(idx, in.Name, seq, gen)
	for off < len(data) {
		end := min(off+s.opts.ChunkSize, len(data))
		block := data[off:end]
		if off == 0 {
			willNeed(block)
		}
		willNeed(data[end:min(end+s.opts.ChunkSize, len(data))])
		if end < len(data) {
			i := bytes.LastIndexByte(block, '\n')
			if i < 0 {
				// One line fills the whole chunk: report and skip it.
				s.reportBad(BadLine{File: in.Name, Line: line, Err: fmt.Errorf("%w: over %d bytes", ErrTooLong, s.opts.ChunkSize)})
				j := bytes.IndexByte(data[end:], '\n')
				if j < 0 {
					// The skipped line was the last one.
					return int64(len(data)), line, nil
				}
				off = end + j + 1
				line++
				continue
			}
			block = block[:i+1]
		}
		c, err := k.next(block, line)
		if err != nil {
			return int64(end), line - 1, err
		}
		c.m = m
		line += int64(c.Lines)
		off += len(block)
		m.acquire()
		select {
		case out <- c:
		case <-ctx.Done():
			m.release()
			return int64(off), line - 1, ctx.Err()
		}
	}
	return int64(len(data)), line - 1, nil
}
