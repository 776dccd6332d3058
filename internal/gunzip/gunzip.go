// Package gunzip opens input that may be gzip-compressed, as a stream and
// within bounds. It never trusts the sizes a gzip file declares (the
// ISIZE field of a member's trailer is the uncompressed size modulo 4
// GiB, and anyone can write anything there): it decompresses as the
// reader reads, counts what it produced, and stops with a [*LimitError]
// naming the input when the output passes a total size or grows faster
// than a ratio of the compressed bytes read (a gzip bomb: deflate reaches
// about 1032:1 per member, and concatenated members repeat it). A
// truncated or corrupt stream is an error naming the input and how far
// it got, never a silently short read.
package gunzip

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// Limits bound what a gzip input may decompress to.
type Limits struct {
	// MaxSize is the most bytes the input may decompress to; 0 means no
	// bound on the total (the ratio still applies).
	MaxSize int64
	// MaxRatio is the most output bytes per compressed byte read, checked
	// once the output passes RatioFloor; 0 means DefaultMaxRatio.
	MaxRatio int64
	// RatioFloor is the output size from which the ratio is checked (a
	// small input may compress very well); 0 means DefaultRatioFloor.
	RatioFloor int64
}

// Defaults. Real threat-intelligence data and network logs compress 5:1
// to 25:1 (the largest ratio in the project's shared data is 25:1, a Zeek
// syslog); a deflate bomb reaches 1032:1.
const (
	DefaultMaxRatio   = 200
	DefaultRatioFloor = 1 << 20
)

// Magic reports whether head starts with the gzip magic number.
func Magic(head []byte) bool {
	return len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b
}

// Reader is what [Open] returns: the input's bytes, decompressed when it
// was gzip.
type Reader struct {
	io.Reader
	// Compressed reports whether the input was gzip.
	Compressed bool
	zr         *gzip.Reader
	in         *countingReader
	name       string
	lim        Limits
	out        int64
	err        error
}

// Open returns a reader of r's content, decompressed when r starts with
// the gzip magic number (every member of a multi-member file is read),
// as it is. name names the input in errors. The reader is buffered: r is
// read ahead.
func Open(r io.Reader, name string, lim Limits) (*Reader, error) {
	if lim.MaxRatio == 0 {
		lim.MaxRatio = DefaultMaxRatio
	}
	if lim.RatioFloor == 0 {
		lim.RatioFloor = DefaultRatioFloor
	}
	in := &countingReader{r: r}
	br := bufio.NewReaderSize(in, 64<<10)
	head, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if !Magic(head) {
		return &Reader{Reader: br, name: name}, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, &StreamError{Name: name, Header: true, Err: corrupt(err)}
	}
	g := &Reader{Compressed: true, zr: zr, in: in, name: name, lim: lim}
	g.Reader = (*gzipReader)(g)
	return g, nil
}

// gzipReader is the decompressing side of a Reader.
type gzipReader Reader

func (g *gzipReader) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if g.lim.MaxSize > 0 {
		// Read at most one byte past the limit: enough to know it is
		// passed, without handing the caller more than the limit.
		if room := g.lim.MaxSize - g.out + 1; int64(len(p)) > room {
			p = p[:room]
		}
	}
	n, err := g.zr.Read(p)
	g.out += int64(n)
	switch {
	case g.lim.MaxSize > 0 && g.out > g.lim.MaxSize:
		g.err = &LimitError{Name: g.name, Size: g.lim.MaxSize}
		return n - int(g.out-g.lim.MaxSize), g.err
	case g.out >= g.lim.RatioFloor && g.out > g.lim.MaxRatio*max(g.in.n, 1):
		g.err = &LimitError{Name: g.name, Ratio: g.lim.MaxRatio, Out: g.out, In: g.in.n}
		return n, g.err
	case err == nil || errors.Is(err, io.EOF):
		return n, err
	}
	g.err = &StreamError{Name: g.name, Out: g.out, In: g.in.n, Err: corrupt(err)}
	return n, g.err
}

// Close releases the decompressor (the underlying reader is not closed).
func (g *Reader) Close() error {
	if g.zr != nil {
		return g.zr.Close()
	}
	return nil
}

// Out returns how many bytes the reader produced so far.
func (g *Reader) Out() int64 {
	if !g.Compressed {
		return 0
	}
	return g.out
}

// corrupt turns the bare io.EOF gzip returns for an input that ends
// inside a header into io.ErrUnexpectedEOF: the input is truncated.
func corrupt(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// LimitError is the error of a gzip input that passed its limits.
type LimitError struct {
	Name string
	// Size is the total limit passed, or 0.
	Size int64
	// Ratio is the ratio limit passed, or 0, after Out bytes of output
	// from In bytes of input.
	Ratio, Out, In int64
}

func (e *LimitError) Error() string {
	if e.Size > 0 {
		return fmt.Sprintf("%s: decompresses to more than %d bytes, the limit (a gzip bomb, or raise the limit)", e.Name, e.Size)
	}
	return fmt.Sprintf("%s: decompresses to more than %d times its size (%d bytes from %d): refused as a gzip bomb", e.Name, e.Ratio, e.Out, e.In)
}

// StreamError is the error of a gzip input that is truncated or corrupt.
type StreamError struct {
	Name string
	// Header is set when the first member's header could not be read;
	// otherwise Out bytes were produced from In bytes of input.
	Header  bool
	Out, In int64
	Err     error
}

func (e *StreamError) Error() string {
	if e.Header {
		return fmt.Sprintf("%s: gzip header: %v", e.Name, e.Err)
	}
	return fmt.Sprintf("%s: gzip stream broken after %d bytes of output, %d of input (truncated or corrupt): %v", e.Name, e.Out, e.In, e.Err)
}

func (e *StreamError) Unwrap() error { return e.Err }

// Named reports whether err is a [*LimitError] or a [*StreamError]: an
// error of this package, which names the input already.
func Named(err error) bool {
	var le *LimitError
	var se *StreamError
	return errors.As(err, &le) || errors.As(err, &se)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
