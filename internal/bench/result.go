package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Direction says which way a figure improves.
type Direction string

// Directions of figures.
const (
	Higher Direction = "higher" // more is better (rates)
	Lower  Direction = "lower"  // less is better (times, memory, counts)
	Info   Direction = ""       // neither: shown, not judged
)

// Goal is a floor or a ceiling an issue set for a figure.
type Goal struct {
	// Op is one of ">=", ">", "<=", "<".
	Op    string  `json:"op"`
	Value float64 `json:"value"`
}

// AtLeast returns the goal value >= v.
func AtLeast(v float64) *Goal { return &Goal{Op: ">=", Value: v} }

// AtMost returns the goal value <= v.
func AtMost(v float64) *Goal { return &Goal{Op: "<=", Value: v} }

// Below returns the goal value < v.
func Below(v float64) *Goal { return &Goal{Op: "<", Value: v} }

// Met reports whether v meets the goal.
func (g Goal) Met(v float64) bool {
	switch g.Op {
	case ">=":
		return v >= g.Value
	case ">":
		return v > g.Value
	case "<=":
		return v <= g.Value
	case "<":
		return v < g.Value
	}
	return false
}

func (g Goal) valid() bool {
	switch g.Op {
	case ">=", ">", "<=", "<":
		return !math.IsNaN(g.Value) && !math.IsInf(g.Value, 0)
	}
	return false
}

// Peer is another system's figure for the same measure: measured in the
// same run, or recorded earlier on a machine of the same kind (Recorded,
// with its Source) when the peer cannot run here.
type Peer struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Recorded bool    `json:"recorded,omitempty"`
	// Source says where a recorded figure comes from.
	Source string `json:"source,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Machine describes the machine a figure was measured on.
type Machine struct {
	CPU    string  `json:"cpu"`
	Cores  int     `json:"cores"`
	MemGiB float64 `json:"mem_gib,omitempty"`
	Kernel string  `json:"kernel,omitempty"`
	Go     string  `json:"go,omitempty"`
	// LoadBefore and LoadAfter are the 1-minute load averages when the
	// figure's workload started and ended.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
}

// Figure is one measured value of one workload.
type Figure struct {
	Name   string    `json:"name"`
	Value  float64   `json:"value"`
	Unit   string    `json:"unit"`
	Better Direction `json:"better,omitempty"`
	Goal   *Goal     `json:"goal,omitempty"`
	Peers  []Peer    `json:"peers,omitempty"`
	Note   string    `json:"note,omitempty"`
}

// Record is one line of a results file: a figure with where, when and on
// what it was measured. A figure measured several times in a run has one
// record per sample.
type Record struct {
	Figure
	Workload string    `json:"workload"`
	Sample   int       `json:"sample"`
	Mode     string    `json:"mode"`
	Commit   string    `json:"commit"`
	Time     time.Time `json:"time"`
	Machine  Machine   `json:"machine"`
}

// WriteRecords writes records as JSON lines.
func WriteRecords(w io.Writer, recs []Record) error {
	enc := json.NewEncoder(w)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write record %s: %w", r.Name, err)
		}
	}
	return nil
}

// maxRecordLine bounds one line of a results file.
const maxRecordLine = 1 << 20

// ReadRecords reads a results file written by WriteRecords. Blank lines
// are skipped; a line that is not a valid record is an error naming the
// file (name) and the line.
func ReadRecords(name string, r io.Reader) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxRecordLine)
	var out []Record
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec Record
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return nil, fmt.Errorf("%s:%d: not a bench record: %w", name, line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%s:%d: more than one JSON value on the line", name, line)
		}
		if err := rec.check(); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, line+1, maxRecordLine)
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// check validates the fields a comparison relies on.
func (r Record) check() error {
	switch {
	case strings.TrimSpace(r.Name) == "":
		return errors.New("record has no name")
	case math.IsNaN(r.Value) || math.IsInf(r.Value, 0):
		return fmt.Errorf("figure %s: value is not a finite number", r.Name)
	case r.Better != Higher && r.Better != Lower && r.Better != Info:
		return fmt.Errorf("figure %s: better is %q, want %q, %q or empty", r.Name, r.Better, Higher, Lower)
	case r.Goal != nil && !r.Goal.valid():
		return fmt.Errorf("figure %s: goal %q %v is not a comparison with a finite number", r.Name, r.Goal.Op, r.Goal.Value)
	}
	for _, p := range r.Peers {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			return fmt.Errorf("figure %s: peer %s: value is not a finite number", r.Name, p.Name)
		}
	}
	return nil
}

// Ratio is how many times better than the peer the figure is (above 1:
// better), given the figure's direction; 0 when it cannot be said.
func Ratio(f Figure, p Peer) float64 {
	if f.Value <= 0 || p.Value <= 0 {
		return 0
	}
	switch f.Better {
	case Higher:
		return f.Value / p.Value
	case Lower:
		return p.Value / f.Value
	}
	return 0
}
