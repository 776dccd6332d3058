package sensor

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// zeekFields maps the Zeek field names (of any log) that hold observables
// to their kinds.
var zeekFields = map[string]ObsKind{
	"id.orig_h":             ObsIP,
	"id.resp_h":             ObsIP,
	"src":                   ObsIP,
	"dst":                   ObsIP,
	"tx_hosts":              ObsIP,
	"rx_hosts":              ObsIP,
	"san.ip":                ObsIP,
	"x_originating_ip":      ObsIP,
	"query":                 ObsDomain,
	"server_name":           ObsDomain,
	"san.dns":               ObsDomain,
	"answers":               ObsAny,
	"host":                  ObsHost,
	"uri":                   obsURI,
	"md5":                   ObsHash,
	"sha1":                  ObsHash,
	"sha256":                ObsHash,
	"fingerprint":           ObsHash,
	"cert_chain_fps":        ObsHash,
	"client_cert_chain_fps": ObsHash,
	"mailfrom":              ObsEmail,
	"rcptto":                ObsEmail,
	"from":                  ObsEmail,
	"to":                    ObsEmail,
	"cc":                    ObsEmail,
	"reply_to":              ObsEmail,
}

// Formats lists the log formats by name, as --log-format takes them.
var Formats = map[string]Format{
	"zeek":      ZeekTSV,
	"zeek-json": ZeekJSON,
	"eve":       EVE,
}

// Detect guesses the format of a log from its first lines: Zeek TSV
// starts with '#' header lines; a JSON object with "event_type" is
// Suricata EVE; one with "id.orig_h", "uid", "_path" or "ts" is Zeek JSON.
// Generic JSON lines cannot be detected: name them with a field mapping.
func Detect(data []byte) (Format, error) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var l []byte
		if i < 0 {
			l, data = data, nil
		} else {
			l, data = data[:i], data[i+1:]
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		switch {
		case bytes.HasPrefix(l, []byte("#separator")) || bytes.HasPrefix(l, []byte("#fields")):
			return ZeekTSV, nil
		case l[0] == '{' && bytes.Contains(l, []byte(`"event_type"`)):
			return EVE, nil
		case l[0] == '{' && (bytes.Contains(l, []byte(`"id.orig_h"`)) || bytes.Contains(l, []byte(`"_path"`)) || bytes.Contains(l, []byte(`"uid"`)) || bytes.Contains(l, []byte(`"ts":`))):
			return ZeekJSON, nil
		case l[0] == '{':
			return nil, errors.New("cannot tell the log format: a JSON object that is neither Suricata EVE nor Zeek JSON (use --log-format jsonl with a field mapping)")
		}
		return nil, errors.New("cannot tell the log format: not Zeek TSV (no #separator or #fields header), Zeek JSON or Suricata EVE JSON")
	}
	return nil, errors.New("cannot tell the log format: no data")
}

// jsonFormat is a JSON-lines format described by a spec tree.
type jsonFormat struct {
	name   string
	root   *specNode
	time   *specNode
	layout []string // time layouts; empty for epoch seconds
}

func (f *jsonFormat) Name() string      { return f.name }
func (f *jsonFormat) Stateful() bool    { return false }
func (f *jsonFormat) NewParser() Parser { return &jsonParser{f: f} }

type jsonParser struct {
	f  *jsonFormat
	js jsonScanner
}

func (p *jsonParser) Parse(line []byte, obs []Obs) ([]Obs, error) {
	from := len(obs)
	obs, err := p.js.scan(line, p.f.root, obs)
	if err != nil {
		return obs[:from], err
	}
	return joinURL(obs, from), nil
}

func (p *jsonParser) Time(line []byte) (time.Time, bool) {
	if p.f.time == nil {
		return time.Time{}, false
	}
	var js jsonScanner
	obs, err := js.scan(line, p.f.time, nil)
	if err != nil || len(obs) == 0 {
		return time.Time{}, false
	}
	return parseTime(obs[0].Value, p.f.layout)
}

// parseTime parses a timestamp as one of layouts or, for a number, as
// seconds since the epoch. Times before 2000 are taken to be relative
// (some captures log seconds since their start) and rejected.
func parseTime(v []byte, layouts []string) (time.Time, bool) {
	s := string(v)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 946684800 || f > 1e11 || math.IsNaN(f) {
			return time.Time{}, false
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil && t.Year() >= 2000 {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999-0700"}

func newJSONFormat(name string, fields map[string]ObsKind, nested bool, timeField string) *jsonFormat {
	f := &jsonFormat{name: name, root: &specNode{}, layout: timeLayouts}
	for p, k := range fields {
		f.root.add(p, k, nested)
	}
	if timeField != "" {
		f.time = &specNode{}
		f.time.add(timeField, obsTime, nested)
	}
	return f
}

// ZeekJSON is Zeek's JSON log format (LogAscii::use_json), any log type.
var ZeekJSON Format = newJSONFormat("zeek-json", zeekFields, false, "ts")

// eveFields are the Suricata EVE members that hold observables, for
// every event type (flow, dns v1/v2/v3, http, tls, fileinfo, alert, smtp).
var eveFields = map[string]ObsKind{
	"src_ip":             ObsIP,
	"dest_ip":            ObsIP,
	"dns.rrname":         ObsDomain,
	"dns.rdata":          ObsAny,
	"dns.queries.rrname": ObsDomain,
	"dns.answers.rrname": ObsDomain,
	"dns.answers.rdata":  ObsAny,
	"dns.grouped.A":      ObsIP,
	"dns.grouped.AAAA":   ObsIP,
	"dns.grouped.CNAME":  ObsDomain,
	"http.hostname":      ObsHost,
	"http.url":           obsURI,
	"tls.sni":            ObsDomain,
	"tls.fingerprint":    ObsHash,
	"fileinfo.md5":       ObsHash,
	"fileinfo.sha1":      ObsHash,
	"fileinfo.sha256":    ObsHash,
	"email.from":         ObsEmail,
	"email.to":           ObsEmail,
	"email.cc":           ObsEmail,
	"smtp.mail_from":     ObsEmail,
	"smtp.rcpt_to":       ObsEmail,
}

// EVE is Suricata's EVE JSON format.
var EVE Format = newJSONFormat("eve", eveFields, true, "timestamp")

// JSONLines returns a format for JSON lines whose fields are named by
// mapping: "path=kind,path=kind,..." where a path names nested members
// with dots (a.b.c) and kind is ip, domain, host, url, email, hash or
// any. timeField, when not empty, is the path of the record's timestamp
// (RFC 3339 or epoch seconds).
func JSONLines(mapping, timeField string) (Format, error) {
	fields := map[string]ObsKind{}
	for _, part := range strings.Split(mapping, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		path, kind, ok := strings.Cut(part, "=")
		if !ok || path == "" {
			return nil, fmt.Errorf("field mapping %q: want path=kind", part)
		}
		k, ok := ParseObsKind(kind)
		if !ok {
			return nil, fmt.Errorf("field mapping %q: unknown kind %q (want ip, domain, host, url, email, hash or any)", part, kind)
		}
		if k == ObsURL {
			k = obsURI // a whole URL; joinURL keeps it as a URL without a host
		}
		fields[path] = k
	}
	if len(fields) == 0 {
		return nil, errors.New("empty field mapping")
	}
	return newJSONFormat("jsonl", fields, true, timeField), nil
}
