package feed

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/observable"
)

// Columns maps the columns of a CSV feed. Each field names a column by
// its header name (when the file has a header row or a "# a,b,c" header
// comment) or by its 1-based number; Value is required, the rest are
// optional.
type Columns struct {
	Value      string `toml:"value" json:"value"`
	Kind       string `toml:"kind" json:"kind,omitempty"` // a column holding the kind (MISP or ThreatFox type names, or observable kinds)
	FirstSeen  string `toml:"first_seen" json:"first_seen,omitempty"`
	LastSeen   string `toml:"last_seen" json:"last_seen,omitempty"`
	Tags       string `toml:"tags" json:"tags,omitempty"` // comma-separated labels
	Reference  string `toml:"reference" json:"reference,omitempty"`
	Confidence string `toml:"confidence" json:"confidence,omitempty"`
	// Comma is the field separator (',' when zero).
	Comma rune `toml:"comma" json:"comma,omitempty"`
	// Header says the first non-comment row holds the column names.
	Header bool `toml:"header" json:"header,omitempty"`
	// FixedKind, when set, is the kind of every value (otherwise it is
	// detected per value, or read from the Kind column).
	FixedKind observable.Kind `toml:"fixed_kind" json:"fixed_kind,omitempty"`
}

// The built-in CSV layouts.
var (
	// URLhaus csv.txt: id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter.
	URLhausColumns = Columns{Value: "url", FirstSeen: "dateadded", LastSeen: "last_online", Tags: "tags", Reference: "urlhaus_link", FixedKind: observable.URL}
	// ThreatFox CSV export: first_seen_utc,ioc_id,ioc_value,ioc_type,threat_type,fk_malware,
	// malware_alias,malware_printable,last_seen_utc,confidence_level,reference,tags,anonymous,reporter.
	ThreatFoxColumns = Columns{Value: "ioc_value", Kind: "ioc_type", FirstSeen: "first_seen_utc", LastSeen: "last_seen_utc", Tags: "malware_printable", Reference: "reference", Confidence: "confidence_level"}
	// Feodo Tracker ipblocklist.csv: first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware.
	FeodoColumns = Columns{Value: "dst_ip", FirstSeen: "first_seen_utc", LastSeen: "last_online", Tags: "malware", FixedKind: observable.IPv4}
)

// the header names of each built-in layout, used when a file has none.
var layoutHeaders = map[string][]string{
	"urlhaus":   {"id", "dateadded", "url", "url_status", "last_online", "threat", "tags", "urlhaus_link", "reporter"},
	"threatfox": {"first_seen_utc", "ioc_id", "ioc_value", "ioc_type", "threat_type", "fk_malware", "malware_alias", "malware_printable", "last_seen_utc", "confidence_level", "reference", "tags", "anonymous", "reporter"},
	"feodo":     {"first_seen_utc", "dst_ip", "dst_port", "c2_status", "last_online", "malware"},
}

// detectCSVLayout recognises a built-in layout from a header line.
func detectCSVLayout(h string) string {
	switch {
	case strings.Contains(h, "urlhaus_link") || strings.Contains(h, "url_status"):
		return "urlhaus"
	case strings.Contains(h, "ioc_value"):
		return "threatfox"
	case strings.Contains(h, "dst_ip") && strings.Contains(h, "c2_status"):
		return "feodo"
	}
	return ""
}

func splitHeader(h string) []string {
	h = strings.TrimSpace(strings.TrimLeft(h, "#"))
	parts := strings.Split(h, ",")
	for i, p := range parts {
		parts[i] = strings.ToLower(strings.Trim(strings.TrimSpace(p), `"`))
	}
	return parts
}

// csvTimes are the timestamp layouts feeds use.
var csvTimes = []string{"2006-01-02 15:04:05", time.RFC3339, "2006-01-02T15:04:05", "2006-01-02", "2006-01-02 15:04:05 MST"}

func parseFeedTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	for _, l := range csvTimes {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0).UTC(), true
	}
	return time.Time{}, false
}

// kindFromType maps a type column (ThreatFox ioc_type, MISP type or an
// observable kind) to an observable kind; "" means detect.
func kindFromType(t string) (observable.Kind, bool) {
	t = strings.ToLower(strings.TrimSpace(t))
	switch t {
	case "", "auto":
		return "", true
	case "ip:port", "ip", "ip-dst", "ip-src", "ip-dst|port", "ip-src|port", "ipv4", "ipv6", "ipv4-addr", "ipv6-addr", "cidr4", "cidr6":
		return observable.IPv4, true
	case "domain", "hostname", "domain-name":
		return observable.Domain, true
	case "url", "uri":
		return observable.URL, true
	case "md5_hash", "md5":
		return observable.MD5, true
	case "sha1_hash", "sha1":
		return observable.SHA1, true
	case "sha256_hash", "sha256":
		return observable.SHA256, true
	case "sha512_hash", "sha512":
		return observable.SHA512, true
	case "email", "email-src", "email-dst", "email-addr":
		return observable.Email, true
	}
	return "", false
}

// csv imports a CSV feed.
func (b *batch) csv(r io.Reader) error {
	layout := strings.ToLower(b.opts.CSV)
	cols := b.opts.Columns
	switch layout {
	case "urlhaus":
		cols = URLhausColumns
	case "threatfox":
		cols = ThreatFoxColumns
	case "feodo":
		cols = FeodoColumns
	case "", "custom":
	default:
		return fmt.Errorf("unknown CSV layout %q (want urlhaus, threatfox, feodo or custom)", b.opts.CSV)
	}
	var header []string
	if layout != "" && layout != "custom" {
		header = layoutHeaders[layout]
	}
	cr := csv.NewReader(r)
	if cols.Comma != 0 {
		cr.Comma = cols.Comma
	}
	cr.Comment = 0
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	var idx map[string]int
	var lastComment string
	needHeader := cols.Header
	row := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		row++
		where := fmt.Sprintf("%s:row %d", b.name, line)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				b.res.Stats.Records++
				b.reject(fmt.Sprintf("%s:row %d", b.name, pe.Line), pe.Err.Error())
				continue
			}
			return err
		}
		if len(rec) == 0 || len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if first := strings.TrimSpace(rec[0]); strings.HasPrefix(first, "#") {
			lastComment = strings.Join(rec, ",")
			continue
		}
		if idx == nil {
			// Decide the layout and the column index.
			if layout == "" {
				if l := detectCSVLayout(lastComment); l != "" {
					layout = l
				} else if l := detectCSVLayout(strings.Join(rec, ",")); l != "" {
					layout, needHeader = l, true
				} else {
					layout = "custom"
				}
				switch layout {
				case "urlhaus":
					cols = URLhausColumns
				case "threatfox":
					cols = ThreatFoxColumns
				case "feodo":
					cols = FeodoColumns
				}
			}
			if header == nil && lastComment != "" && detectCSVLayout(lastComment) != "" || header == nil && layout == "custom" && !needHeader && lastComment != "" && strings.Contains(lastComment, ",") {
				header = splitHeader(lastComment)
			}
			if needHeader {
				header = splitHeader(strings.Join(rec, ","))
			}
			if header == nil && layout != "custom" {
				header = layoutHeaders[layout]
			}
			if cols.Value == "" {
				return fmt.Errorf("CSV layout %s: no value column given", layout)
			}
			idx = map[string]int{}
			for i, h := range header {
				if _, dup := idx[h]; !dup {
					idx[h] = i
				}
			}
			if _, err := colIndex(idx, cols.Value); err != nil {
				return fmt.Errorf("CSV value column: %w", err)
			}
			if needHeader {
				continue
			}
		}
		b.res.Stats.Records++
		b.csvRow(where, rec, idx, cols)
		b.im.maybeSettle()
	}
	return nil
}

// colIndex resolves a column name or 1-based number.
func colIndex(idx map[string]int, c string) (int, error) {
	if c == "" {
		return -1, nil
	}
	if n, err := strconv.Atoi(c); err == nil {
		if n < 1 {
			return 0, fmt.Errorf("column number %d: columns are numbered from 1", n)
		}
		return n - 1, nil
	}
	i, ok := idx[strings.ToLower(c)]
	if !ok {
		return 0, fmt.Errorf("no column named %q", c)
	}
	return i, nil
}

func field(rec []string, idx map[string]int, c string) string {
	i, err := colIndex(idx, c)
	if err != nil || i < 0 || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

func (b *batch) csvRow(where string, rec []string, idx map[string]int, cols Columns) {
	vi, _ := colIndex(idx, cols.Value)
	if vi >= len(rec) {
		b.reject(where, fmt.Sprintf("row has %d fields, the value is in column %d", len(rec), vi+1))
		return
	}
	v := strings.TrimSpace(rec[vi])
	if v == "" {
		b.reject(where, "empty value")
		return
	}
	kind := cols.FixedKind
	if cols.Kind != "" {
		t := field(rec, idx, cols.Kind)
		k, ok := kindFromType(t)
		if !ok {
			b.reject(where, fmt.Sprintf("unknown indicator type %q", t))
			return
		}
		kind = k
	}
	var k observable.Kind
	var n string
	var err error
	switch kind {
	case "":
		k, n, err = detect(v)
	case observable.IPv4, observable.IPv6, observable.CIDR4, observable.CIDR6:
		if dk, dn, derr := detect(v); derr == nil && (dk == observable.IPv4 || dk == observable.IPv6 || dk == observable.CIDR4 || dk == observable.CIDR6) {
			k, n = dk, dn
		} else {
			_, _, err = observable.NormalizeKind(kind, v)
			if err == nil {
				err = fmt.Errorf("%q is not an IP address", v)
			}
		}
	default:
		k = kind
		n, err = observable.Normalize(kind, v)
	}
	if err != nil {
		b.reject(where, err.Error())
		return
	}
	o := obs{kind: k, value: n, indicator: true, confidence: -1}
	if t, ok := parseFeedTime(field(rec, idx, cols.FirstSeen)); ok {
		o.validFrom = t
	}
	if t, ok := parseFeedTime(field(rec, idx, cols.LastSeen)); ok && t.After(o.validFrom) && !o.validFrom.IsZero() {
		// Keep the default lifetime counted from the last sighting.
		d, ok := b.opts.DefaultValidFor[k]
		if !ok {
			d = DefaultValidFor[k]
		}
		if d > 0 {
			o.validUntil = t.Add(d)
		}
	}
	if c := field(rec, idx, cols.Confidence); c != "" {
		if n, err := strconv.Atoi(c); err == nil && n >= 0 && n <= 100 {
			o.confidence = n
		}
	}
	for _, t := range strings.Split(field(rec, idx, cols.Tags), ",") {
		if t = strings.TrimSpace(t); t != "" && t != "None" {
			o.labels = append(o.labels, t)
		}
	}
	if ref := field(rec, idx, cols.Reference); strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://") {
		o.ref.URL = ref
	}
	b.add(o)
}
