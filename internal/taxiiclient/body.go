package taxiiclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// readBody reads a response body of at most lim.MaxResponseBytes, failing
// with ErrSlow when, past a grace period, it arrives slower than
// lim.MinBytesPerSecond. cancel aborts the request (and so a blocked
// read) when the throughput deadline passes.
func readBody(r io.Reader, lim Limits, cancel context.CancelFunc) ([]byte, error) {
	start := time.Now()
	var n int64
	deadline := func() time.Duration {
		return lim.SlowGrace + time.Duration(float64(n)/float64(lim.MinBytesPerSecond)*float64(time.Second)) - time.Since(start)
	}
	var slow atomic.Bool
	timer := time.AfterFunc(lim.SlowGrace, func() { slow.Store(true); cancel() })
	defer timer.Stop()
	var buf bytes.Buffer
	chunk := make([]byte, 64<<10)
	for {
		m, err := r.Read(chunk)
		if m > 0 {
			n += int64(m)
			if n > lim.MaxResponseBytes {
				return nil, fmt.Errorf("%w: response body exceeds %d bytes", ErrTooLarge, lim.MaxResponseBytes)
			}
			buf.Write(chunk[:m])
			if !timer.Stop() {
				return nil, slowErr(n, start, lim)
			}
			timer.Reset(max(deadline(), time.Millisecond))
		}
		if err == io.EOF {
			return buf.Bytes(), nil
		}
		if err != nil {
			if slow.Load() {
				return nil, slowErr(n, start, lim)
			}
			return nil, err
		}
	}
}

func slowErr(n int64, start time.Time, lim Limits) error {
	return fmt.Errorf("%w: %d bytes in %s, below %d bytes/s", ErrSlow, n, time.Since(start).Round(time.Millisecond), lim.MinBytesPerSecond)
}
