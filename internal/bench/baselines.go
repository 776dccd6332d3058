package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Table is one Markdown table of a baselines file.
type Table struct {
	// Section is the heading the table is under.
	Section string
	Header  []string
	Rows    [][]string
	// Line is the line of the header in the file.
	Line int
}

// Baselines are the tables of a Markdown file of recorded figures, such as
// ../shared/bench/BASELINES.md.
type Baselines struct {
	// Source names the file, for the figures' provenance.
	Source string
	Tables []Table
}

// maxBaselineLine bounds a line of a baselines file.
const maxBaselineLine = 64 << 10

// ParseBaselines reads the Markdown tables of data (a table: consecutive
// lines starting with '|', a header, a line of dashes, then rows). name
// names the file in errors and in the figures' provenance.
func ParseBaselines(name string, data []byte) (*Baselines, error) {
	b := &Baselines{Source: name}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxBaselineLine)
	var (
		section string
		cur     *Table
		// skip is set on lines starting with '|' that are not a table
		// (no separator line after the first).
		skip bool
		sep  bool
		line int
	)
	end := func() {
		if cur != nil && sep {
			b.Tables = append(b.Tables, *cur)
		}
		cur, skip, sep = nil, false, false
	}
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(t, "|") {
			end()
			if strings.HasPrefix(t, "#") {
				section = strings.TrimSpace(strings.TrimLeft(t, "#"))
			}
			continue
		}
		if skip {
			continue
		}
		cells := splitRow(t)
		switch {
		case cur == nil:
			cur = &Table{Section: section, Header: cells, Line: line}
		case !sep:
			if !isSeparator(cells) {
				cur, skip = nil, true
				continue
			}
			sep = true
		default:
			cur.Rows = append(cur.Rows, cells)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: line %d: %w", name, line+1, err)
	}
	end()
	return b, nil
}

// splitRow splits a Markdown table row into trimmed cells; a '|' inside
// backquotes does not split.
func splitRow(t string) []string {
	t = strings.TrimPrefix(t, "|")
	if strings.HasSuffix(t, "|") && !strings.HasSuffix(t, `\|`) {
		t = t[:len(t)-1]
	}
	var cells []string
	var cell strings.Builder
	inCode := false
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '`':
			inCode = !inCode
			cell.WriteByte(c)
		case c == '\\' && i+1 < len(t) && t[i+1] == '|':
			cell.WriteByte('|')
			i++
		case c == '|' && !inCode:
			cells = append(cells, normalise(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(c)
		}
	}
	return append(cells, normalise(cell.String()))
}

func isSeparator(cells []string) bool {
	for _, c := range cells {
		c = strings.Trim(c, ":")
		if c == "" || strings.Trim(c, "-") != "" {
			return false
		}
	}
	return len(cells) > 0
}

// normalise trims a cell and collapses its runs of white space.
func normalise(s string) string { return strings.Join(strings.Fields(s), " ") }

// Cell returns the cell of column col in the first row, of any table
// having that column, whose cells match where (column → cell text,
// compared after collapsing white space), with the table's header line.
func (b *Baselines) Cell(where map[string]string, col string) (cell string, line int, ok bool) {
	for _, t := range b.Tables {
		ci := index(t.Header, col)
		if ci < 0 {
			continue
		}
		idx := map[int]string{}
		for k, v := range where {
			i := index(t.Header, k)
			if i < 0 {
				idx = nil
				break
			}
			idx[i] = normalise(v)
		}
		if idx == nil {
			continue
		}
	rows:
		for _, r := range t.Rows {
			for i, v := range idx {
				if i >= len(r) || r[i] != v {
					continue rows
				}
			}
			if ci < len(r) {
				return r[ci], t.Line, true
			}
		}
	}
	return "", 0, false
}

func index(header []string, col string) int {
	col = normalise(col)
	for i, h := range header {
		if h == col {
			return i
		}
	}
	return -1
}

var numberRE = regexp.MustCompile(`\d[\d,]*(?:\.\d+)?`)

// Numbers returns the numbers written in a cell, in order: "2,254 / 3,363
// ms" gives 2254 and 3363.
func Numbers(cell string) []float64 {
	var out []float64
	for _, m := range numberRE.FindAllString(cell, -1) {
		v, err := strconv.ParseFloat(strings.ReplaceAll(m, ",", ""), 64)
		if err == nil {
			out = append(out, v)
		}
	}
	return out
}

// BaselineRef locates a recorded figure: the row whose cells match Where,
// the column Col, and which number of the cell (Index, from 0).
type BaselineRef struct {
	Where map[string]string
	Col   string
	Index int
	// Scale multiplies the number (e.g. 1000 for seconds to milliseconds).
	Scale float64
}

// Peer returns the recorded figure ref locates, as a recorded peer named
// name, or false when the file has no such cell or number.
func (b *Baselines) Peer(name string, ref BaselineRef) (Peer, bool) {
	if b == nil {
		return Peer{}, false
	}
	cell, line, ok := b.Cell(ref.Where, ref.Col)
	if !ok {
		return Peer{}, false
	}
	nums := Numbers(cell)
	if ref.Index < 0 || ref.Index >= len(nums) {
		return Peer{}, false
	}
	v := nums[ref.Index]
	if ref.Scale != 0 {
		v *= ref.Scale
	}
	return Peer{Name: name, Value: v, Recorded: true, Source: fmt.Sprintf("%s:%d (%s)", b.Source, line, cell)}, true
}
