package sensor

import (
	"errors"
	"fmt"
	"strings"
)

// evNode is one level of the tree of JSON members an event reader
// extracts.
type evNode struct {
	f        evField
	children map[string]*evNode
}

func (n *evNode) add(path string, f evField, nested bool) {
	parts := []string{path}
	if nested {
		parts = strings.Split(path, ".")
	}
	for _, p := range parts {
		if n.children == nil {
			n.children = map[string]*evNode{}
		}
		c := n.children[p]
		if c == nil {
			c = &evNode{}
			n.children[p] = c
		}
		n = c
	}
	n.f = f
}

// jsonEventFormat reads JSON lines as events.
type jsonEventFormat struct {
	name   string
	root   *evNode
	obs    Format // the observable format of the same lines
	decide func(*fieldSet) EventKind
}

// Name, Stateful, NewParser and NewEventParser make a jsonEventFormat
// an EventFormat.
func (f *jsonEventFormat) Name() string      { return f.name }
func (f *jsonEventFormat) Stateful() bool    { return false }
func (f *jsonEventFormat) NewParser() Parser { return f.obs.NewParser() }
func (f *jsonEventFormat) NewEventParser() EventParser {
	return &jsonEventParser{f: f}
}

// ZeekJSONEvents reads Zeek JSON conn, dhcp, known_devices, dns and
// software logs as events. The log of a line is named by its _path
// member (json-streaming-logs) or recognised by its fields.
var ZeekJSONEvents EventFormat = func() EventFormat {
	f := &jsonEventFormat{name: "zeek-json", root: &evNode{}, obs: ZeekJSON}
	for name, fld := range zeekEventFields {
		f.root.add(name, fld, false)
	}
	f.decide = func(s *fieldSet) EventKind {
		if s.has(fPath) {
			return zeekPathKinds[string(s.val[fPath])]
		}
		return inferKind(s)
	}
	return f
}()

// eveEventFields are the Suricata EVE members the event reader extracts:
// flow and netflow events (flow.start is the flow's time), dhcp events
// and dns answers (EVE dns versions 1, 2 and 3).
var eveEventFields = map[string]evField{
	"timestamp":                    fTime,
	"event_type":                   fEventType,
	"src_ip":                       fSrc,
	"dest_ip":                      fDst,
	"src_port":                     fSrcPort,
	"dest_port":                    fDstPort,
	"proto":                        fProto,
	"flow.start":                   fStart,
	"flow.end":                     fEnd,
	"flow.bytes_toserver":          fSrcBytes,
	"flow.bytes_toclient":          fDstBytes,
	"flow.pkts_toserver":           fSrcPkts,
	"flow.pkts_toclient":           fDstPkts,
	"netflow.start":                fStart,
	"netflow.end":                  fEnd,
	"netflow.bytes":                fSrcBytes,
	"netflow.pkts":                 fSrcPkts,
	"ether.src_mac":                fSrcMAC,
	"ether.dest_mac":               fDstMAC,
	"dhcp.client_mac":              fMAC,
	"dhcp.assigned_ip":             fAssigned,
	"dhcp.client_ip":               fClient,
	"dhcp.hostname":                fHostName,
	"dhcp.params":                  fFingerprint,
	"dhcp.vendor_class_identifier": fVendorClass,
	"dns.type":                     fDNSType,
	"dns.rrname":                   fQuery,
	"dns.queries.rrname":           fQuery,
	"dns.rdata":                    fAnswer,
	"dns.answers.rdata":            fAnswer,
	"dns.grouped.A":                fAnswer,
	"dns.grouped.AAAA":             fAnswer,
}

// EVEEvents reads Suricata EVE flow, netflow, dhcp and dns events.
var EVEEvents EventFormat = func() EventFormat {
	f := &jsonEventFormat{name: "eve", root: &evNode{}, obs: EVE}
	for name, fld := range eveEventFields {
		f.root.add(name, fld, true)
	}
	f.decide = func(s *fieldSet) EventKind {
		switch string(s.val[fEventType]) {
		case "flow", "netflow":
			return EventFlow
		case "dhcp":
			return EventLease
		case "dns":
			if s.has(fAnswer) {
				return EventDNS
			}
		}
		return 0
	}
	return f
}()

// eventFieldNames are the field names of a JSON-lines event mapping.
var eventFieldNames = map[string]evField{
	"time": fTime, "start": fStart, "end": fEnd, "src": fSrc, "dst": fDst, "src_port": fSrcPort, "dst_port": fDstPort,
	"proto": fProto, "duration": fDuration, "src_bytes": fSrcBytes, "dst_bytes": fDstBytes, "src_pkts": fSrcPkts,
	"dst_pkts": fDstPkts, "src_mac": fSrcMAC, "dst_mac": fDstMAC,
}

// JSONLinesEvents returns a reader of connections written as JSON lines,
// one connection a line, whose members are named by mapping:
// "path=field,path=field,..." where a path names nested members with dots
// and a field is one of time, start, end (RFC 3339 or epoch seconds),
// src, dst, src_port, dst_port, proto, duration (seconds), src_bytes,
// dst_bytes, src_pkts, dst_pkts, src_mac, dst_mac. src and dst are
// required.
func JSONLinesEvents(mapping string) (EventFormat, error) {
	root := &evNode{}
	seen := map[evField]bool{}
	obsFields := []string{}
	for _, part := range strings.Split(mapping, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		path, name, ok := strings.Cut(part, "=")
		if !ok || path == "" {
			return nil, fmt.Errorf("event mapping %q: want path=field", part)
		}
		f, ok := eventFieldNames[name]
		if !ok {
			return nil, fmt.Errorf("event mapping %q: unknown field %q (want time, start, end, src, dst, src_port, dst_port, proto, duration, src_bytes, dst_bytes, src_pkts, dst_pkts, src_mac or dst_mac)", part, name)
		}
		root.add(path, f, true)
		seen[f] = true
		if f == fSrc || f == fDst {
			obsFields = append(obsFields, path+"=ip")
		}
	}
	if !seen[fSrc] || !seen[fDst] {
		return nil, errors.New("event mapping: src and dst are required")
	}
	obs, err := JSONLines(strings.Join(obsFields, ","), "")
	if err != nil {
		return nil, err
	}
	return &jsonEventFormat{name: "jsonl", root: root, obs: obs, decide: func(*fieldSet) EventKind { return EventFlow }}, nil
}

type jsonEventParser struct {
	f  *jsonEventFormat
	js jsonScanner // for its unescape scratch space
	fs fieldSet
	ev *Event
}

// ParseEvent reads one JSON line.
func (p *jsonEventParser) ParseEvent(line []byte, ev *Event) (bool, error) {
	p.js.scratch = p.js.scratch[:0]
	p.fs.have = 0
	p.ev = ev
	i := skipWS(line, 0)
	if i >= len(line) {
		return false, nil // blank line
	}
	if line[i] != '{' {
		return false, &jsonError{i, "line is not a JSON object"}
	}
	i, err := p.object(line, i, p.f.root, 0)
	if err != nil {
		return false, err
	}
	if i = skipWS(line, i); i != len(line) {
		return false, &jsonError{i, "data after the JSON object"}
	}
	k := p.f.decide(&p.fs)
	if k == 0 {
		return false, nil
	}
	return fillEvent(k, &p.fs, ev, 0)
}

func (p *jsonEventParser) object(b []byte, i int, node *evNode, depth int) (int, error) {
	if depth > maxJSONDepth {
		return i, &jsonError{i, "nested too deeply"}
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, &jsonError{i, "expected a member name"}
		}
		start := i + 1
		end, esc, err := scanString(b, i)
		if err != nil {
			return i, err
		}
		var child *evNode
		if !esc && node != nil && node.children != nil {
			child = node.children[string(b[start:end-1])]
		}
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return i, &jsonError{i, "expected ':'"}
		}
		i = skipWS(b, i+1)
		if child == nil {
			i, err = skipValue(b, i, depth+1)
		} else {
			i, err = p.value(b, i, child, depth+1)
		}
		if err != nil {
			return i, err
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return i, &jsonError{i, "unterminated object"}
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, &jsonError{i, "expected ',' or '}'"}
		}
	}
}

func (p *jsonEventParser) value(b []byte, i int, node *evNode, depth int) (int, error) {
	if i >= len(b) {
		return i, &jsonError{i, "expected a value"}
	}
	switch b[i] {
	case '"':
		end, esc, err := scanString(b, i)
		if err != nil {
			return i, err
		}
		if node.f != fNone {
			v := b[i+1 : end-1]
			if esc {
				v, err = p.js.unescape(v)
				if err != nil {
					return i, &jsonError{i, err.Error()}
				}
			}
			p.put(node.f, v)
		}
		return end, nil
	case '{':
		return p.object(b, i, node, depth)
	case '[':
		if depth > maxJSONDepth {
			return i, &jsonError{i, "nested too deeply"}
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			i, err = p.value(b, i, node, depth+1)
			if err != nil {
				return i, err
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return i, &jsonError{i, "unterminated array"}
			}
			switch b[i] {
			case ',':
				i = skipWS(b, i+1)
			case ']':
				return i + 1, nil
			default:
				return i, &jsonError{i, "expected ',' or ']'"}
			}
		}
	default:
		end, err := skipScalar(b, i)
		if err != nil {
			return i, err
		}
		if node.f != fNone && b[i] != 'n' { // null is no value
			p.put(node.f, b[i:end])
		}
		return end, nil
	}
}

// put records the value of a field: answers are collected as addresses,
// the values of a fingerprint array are joined with commas, other fields
// keep their last value.
func (p *jsonEventParser) put(f evField, v []byte) {
	switch f {
	case fAnswer:
		if a, ok := parseAddr(v); ok {
			p.ev.Addrs = append(p.ev.Addrs, a)
		}
	case fFingerprint:
		if p.fs.has(f) {
			joined := make([]byte, 0, len(p.fs.val[f])+1+len(v))
			joined = append(append(append(joined, p.fs.val[f]...), ','), v...)
			v = joined
		}
	}
	if len(v) > 0 {
		p.fs.set(f, v)
	}
}
