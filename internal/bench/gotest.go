package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// BenchResult is one result line of `go test -bench`.
type BenchResult struct {
	// Name is the benchmark's name without the -GOMAXPROCS suffix, with
	// its sub-benchmarks ("BenchmarkTAXIIRead10k/gc=400").
	Name       string
	Iterations int64
	// Metrics maps each reported unit ("ns/op", "gate-%") to its value.
	Metrics map[string]float64
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// maxBenchLine bounds one line of `go test` output.
const maxBenchLine = 1 << 20

// ParseGoBench reads the result lines of `go test -bench` output (the
// lines of the benchmark format: name, iterations, then value-unit pairs),
// ignoring every other line. A result line with a value that is not a
// number is an error naming its line.
func ParseGoBench(r io.Reader) ([]BenchResult, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxBenchLine)
	var out []BenchResult
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || n <= 0 {
			continue // a log line that starts with a benchmark's name
		}
		if len(f)%2 != 0 {
			return nil, fmt.Errorf("go test output line %d: %q: values and units do not pair up", line, sc.Text())
		}
		res := BenchResult{Name: procsSuffix.ReplaceAllString(f[0], ""), Iterations: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("go test output line %d: %q is not a number (unit %s)", line, f[i], f[i+1])
			}
			res.Metrics[f[i+1]] = v
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("go test output line %d: longer than %d bytes", line+1, maxBenchLine)
		}
		return nil, fmt.Errorf("read go test output: %w", err)
	}
	return out, nil
}
