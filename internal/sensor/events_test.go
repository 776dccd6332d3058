package sensor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente/internal/testutil"
)

// gotEvent is one event as text, for comparison.
type gotEvent struct {
	File string
	Line int64
	Text string
	ev   Event // a copy, without Name, Aux and Addrs
}

// eventText writes the fields of an event that its kind sets.
func eventText(ev *Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s t=%d", ev.Kind, ev.Time)
	switch ev.Kind {
	case EventFlow:
		fmt.Fprintf(&b, " %s:%d>%s:%d p=%d d=%d b=%d/%d k=%d/%d", ev.Src, ev.SrcPort, ev.Dst, ev.DstPort, ev.Proto, ev.Duration, ev.SrcBytes, ev.DstBytes, ev.SrcPkts, ev.DstPkts)
		if !ev.SrcMAC.IsZero() || !ev.DstMAC.IsZero() {
			fmt.Fprintf(&b, " mac=%s>%s", ev.SrcMAC, ev.DstMAC)
		}
	case EventLease:
		fmt.Fprintf(&b, " %s=%s name=%q fp=%q", ev.SrcMAC, ev.Src, ev.Name, ev.Aux)
	case EventDevice:
		fmt.Fprintf(&b, " %s name=%q", ev.SrcMAC, ev.Name)
	case EventDNS:
		fmt.Fprintf(&b, " %s %q=%v", ev.Src, ev.Name, ev.Addrs)
	case EventSoftware:
		fmt.Fprintf(&b, " %s %q %q", ev.Src, ev.Name, ev.Aux)
	}
	return b.String()
}

type eventCollector struct {
	mu     *sync.Mutex
	events *[]gotEvent
}

func (c eventCollector) Event(ch *Chunk, line int64, ev *Event) {
	s := eventText(ev)
	cp := *ev
	cp.Name, cp.Aux, cp.Addrs = nil, nil, nil
	c.mu.Lock()
	*c.events = append(*c.events, gotEvent{ch.File, line, s, cp})
	c.mu.Unlock()
}

func (eventCollector) ChunkDone(*Chunk) {}

func scanEvents(t testing.TB, inputs []Input, opts Options) ([]gotEvent, Stats, error) {
	var mu sync.Mutex
	var events []gotEvent
	st, err := ScanEvents(context.Background(), inputs, opts, func(int) EventHandler { return eventCollector{&mu, &events} })
	sort.SliceStable(events, func(i, j int) bool {
		if events[i].File != events[j].File {
			return events[i].File < events[j].File
		}
		return events[i].Line < events[j].Line
	})
	return events, st, err
}

// refSeconds is the reference reading of a Zeek time or interval.
func refSeconds(t *testing.T, s string) int64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("reference: %q: %v", s, err)
	}
	return int64(math.Round(f * 1e9))
}

// closeNanos compares nanosecond times read two ways: the float reference
// loses precision past about a microsecond for epoch times.
func closeNanos(a, b int64) bool { return a-b < 2000 && b-a < 2000 }

// TestRealZeekConnEvents reads the real Zeek conn logs (TSV and JSON) and
// checks every connection against a reference reading with strings,
// strconv and net/netip.
func TestRealZeekConnEvents(t *testing.T) {
	dir := testutil.SharedData(t, "logs", "zeek")
	for _, name := range []string{"slips-test10-mixed/conn.log", "slips-test9-mixed/conn.log"} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			data := readMaybeGzip(t, p)
			events, st, err := scanEvents(t, []Input{fileInput(p)}, Options{ChunkSize: 8 << 10})
			if err != nil || st.Bad != 0 {
				t.Fatalf("err %v, bad %d %v", err, st.Bad, st.BadLines)
			}
			type ref struct {
				ts, dur       int64
				src, dst      netip.Addr
				sport, dport  uint64
				sbytes, dbyte uint64
			}
			var want []ref
			var fields []string
			for _, l := range strings.Split(string(data), "\n") {
				l = strings.TrimLeft(l, " \t")
				if strings.HasPrefix(l, "#fields\t") {
					fields = strings.Split(l, "\t")[1:]
					continue
				}
				if l == "" || l[0] == '#' {
					continue
				}
				rec := map[string]string{}
				if l[0] == '{' {
					var m map[string]any
					if err := json.Unmarshal([]byte(l), &m); err != nil {
						t.Fatal(err)
					}
					for k, v := range m {
						rec[k] = fmt.Sprint(v)
						if f, ok := v.(float64); ok {
							rec[k] = strconv.FormatFloat(f, 'f', -1, 64)
						}
					}
				} else {
					for i, v := range strings.Split(l, "\t") {
						if v != "-" {
							rec[fields[i]] = v
						}
					}
				}
				r := ref{ts: refSeconds(t, rec["ts"]), src: netip.MustParseAddr(rec["id.orig_h"]), dst: netip.MustParseAddr(rec["id.resp_h"])}
				if v, ok := rec["duration"]; ok {
					r.dur = refSeconds(t, v)
				}
				r.sport, _ = strconv.ParseUint(rec["id.orig_p"], 10, 16)
				r.dport, _ = strconv.ParseUint(rec["id.resp_p"], 10, 16)
				// Payload bytes, else (unset) the IP bytes.
				for _, b := range []struct {
					dst         *uint64
					payload, ip string
				}{{&r.sbytes, "orig_bytes", "orig_ip_bytes"}, {&r.dbyte, "resp_bytes", "resp_ip_bytes"}} {
					v, ok := rec[b.payload]
					if !ok {
						v = rec[b.ip]
					}
					*b.dst, _ = strconv.ParseUint(v, 10, 64)
				}
				want = append(want, r)
			}
			if len(events) != len(want) || len(want) == 0 {
				t.Fatalf("%d events, want %d", len(events), len(want))
			}
			for i, e := range events {
				w := want[i]
				ev := e.ev
				if ev.Kind != EventFlow || !closeNanos(ev.Time, w.ts) || !closeNanos(ev.Duration, w.dur) || ev.Src != w.src || ev.Dst != w.dst ||
					uint64(ev.SrcPort) != w.sport || uint64(ev.DstPort) != w.dport || ev.SrcBytes != w.sbytes || ev.DstBytes != w.dbyte || ev.Proto == 0 {
					t.Fatalf("line %d: event %q, want %+v", e.Line, e.Text, w)
				}
			}
		})
	}
}

// TestRealEVEEvents checks the flows and DNS answers of the real Suricata
// EVE capture against encoding/json.
func TestRealEVEEvents(t *testing.T) {
	p := testutil.SharedData(t, "logs", "suricata", "slips-test6-malicious", "eve.json.gz")
	data := readMaybeGzip(t, p)
	events, st, err := scanEvents(t, []Input{fileInput(p)}, Options{ChunkSize: 32 << 10})
	if err != nil || st.Bad != 0 {
		t.Fatalf("err %v, bad %d %v", err, st.Bad, st.BadLines)
	}
	var want []string
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var r struct {
			EventType string `json:"event_type"`
			Src       string `json:"src_ip"`
			Dst       string `json:"dest_ip"`
			SrcPort   uint16 `json:"src_port"`
			DstPort   uint16 `json:"dest_port"`
			Proto     string `json:"proto"`
			Flow      struct {
				Start, End    string
				BytesToServer uint64 `json:"bytes_toserver"`
				BytesToClient uint64 `json:"bytes_toclient"`
				PktsToServer  uint64 `json:"pkts_toserver"`
				PktsToClient  uint64 `json:"pkts_toclient"`
			}
			DNS struct {
				Type    string `json:"type"`
				RRName  string `json:"rrname"`
				Answers []struct {
					RData string `json:"rdata"`
				} `json:"answers"`
				Grouped map[string][]string `json:"grouped"`
			} `json:"dns"`
		}
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatal(err)
		}
		switch r.EventType {
		case "flow":
			layout := "2006-01-02T15:04:05.999999999-0700"
			s, err1 := time.Parse(layout, r.Flow.Start)
			e, err2 := time.Parse(layout, r.Flow.End)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			proto := map[string]int{"TCP": 6, "UDP": 17, "ICMP": 1, "IPv6-ICMP": 58}[r.Proto]
			want = append(want, fmt.Sprintf("flow t=%d %s:%d>%s:%d p=%d d=%d b=%d/%d k=%d/%d", s.UnixNano(), netip.MustParseAddr(r.Src), r.SrcPort,
				netip.MustParseAddr(r.Dst), r.DstPort, proto, e.Sub(s).Nanoseconds(), r.Flow.BytesToServer, r.Flow.BytesToClient, r.Flow.PktsToServer, r.Flow.PktsToClient))
		case "dns":
			var addrs []netip.Addr
			for _, a := range r.DNS.Answers {
				if ip, err := netip.ParseAddr(a.RData); err == nil {
					addrs = append(addrs, ip)
				}
			}
			for _, k := range []string{"A", "AAAA"} {
				for _, a := range r.DNS.Grouped[k] {
					addrs = append(addrs, netip.MustParseAddr(a))
				}
			}
			if len(addrs) == 0 {
				continue
			}
			want = append(want, fmt.Sprintf("dns %q=%v", r.DNS.RRName, addrs))
		}
	}
	var got []string
	for _, e := range events {
		if strings.HasPrefix(e.Text, "dns ") {
			// the client and time are checked elsewhere; compare name and answers
			f := strings.SplitN(e.Text, " ", 4)
			got = append(got, "dns "+f[3])
			continue
		}
		got = append(got, e.Text)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EVE events (-want +got):\n%s", diff)
	}
	if n := strings.Count(strings.Join(got, "\n"), "flow t="); n != 3512 {
		t.Errorf("%d flows, SOURCES.md says 3512", n)
	}
}

// TestZeekMetadataEvents reads the real DHCP and software logs and small
// logs with link-layer addresses, known devices and DHCP fingerprints in
// both Zeek encodings.
func TestZeekMetadataEvents(t *testing.T) {
	dir := testutil.SharedData(t, "logs", "zeek", "slips-test9-mixed")
	events, st, err := scanEvents(t, []Input{fileInput(filepath.Join(dir, "dhcp.log")), fileInput(filepath.Join(dir, "software.log"))}, Options{})
	if err != nil || st.Bad != 0 {
		t.Fatalf("err %v, bad %v", err, st.BadLines)
	}
	var texts []string
	for _, e := range events {
		texts = append(texts, e.Text)
	}
	want := []string{
		`lease t=22333203000 08:00:27:7f:09:e1=10.0.2.15 name="John-PC" fp=""`,
		`lease t=29856019000 08:00:27:7f:09:e1=10.0.2.15 name="John-PC" fp=""`,
		`lease t=95133897000 08:00:27:7f:09:e1=10.0.2.15 name="John-PC" fp=""`,
		`lease t=158888916000 08:00:27:7f:09:e1=10.0.2.15 name="John-PC" fp=""`,
		`lease t=254507939000 08:00:27:7f:09:e1=10.0.2.15 name="John-PC" fp=""`,
		`software t=1632302615444328000 192.168.1.247 "OpenSSH" "OpenSSH_8.1"`,
		`software t=1632302619444328000 192.168.1.247 "OpenSSH" "OpenSSH_9.1"`,
		`software t=1632328801587939000 192.168.1.1 "Linux" "Linux/2.6.36, UPnP/1.0, Portable SDK for UPnP devices/1.6.19"`,
	}
	if diff := cmp.Diff(want, texts); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	tsv := "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n" +
		"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\tresp_bytes\tconn_state\torig_l2_addr\tresp_l2_addr\n" +
		"1700000000.5\tC1\t192.168.1.20\t50000\t203.0.113.9\t443\ttcp\t-\t-\t-\tS0\tbc:ad:28:00:00:01\t00:11:22:33:44:55\n" +
		"#close\t2023\n#separator \\x09\n#path\tknown_devices\n#fields\tts\tmac\tdhcp_host_name\n1700000001.000000\tbc:ad:28:00:00:01\tcam-door\n" +
		"#path\tdhcp\n#fields\tts\tmac\tassigned_addr\thost_name\tmsg_types\tparams\n1700000002\tbc:ad:28:00:00:01\t192.168.1.20\tcam-door\tREQUEST,ACK\t1,3,6,15\n" +
		"#path\tdns\n#fields\tts\tid.orig_h\tquery\tanswers\n1700000003\t192.168.1.20\tcloud.example\tcdn.example,203.0.113.9,2001:db8::9\n" +
		"#path\thttp\n#fields\tts\tid.orig_h\thost\n1700000004\t192.168.1.20\tcloud.example\n"
	json := `{"_path":"conn","ts":1700000000.5,"id.orig_h":"192.168.1.20","id.orig_p":50000,"id.resp_h":"203.0.113.9","id.resp_p":443,"proto":"tcp","conn_state":"S0","orig_l2_addr":"bc:ad:28:00:00:01","resp_l2_addr":"00:11:22:33:44:55"}
{"ts":"2023-11-14T22:13:21Z","mac":"bc:ad:28:00:00:01","dhcp_host_name":"cam-door"}
{"ts":1700000002,"mac":"bc:ad:28:00:00:01","assigned_addr":"192.168.1.20","host_name":"cam-door","msg_types":["REQUEST","ACK"],"params":["1","3","6","15"]}
{"ts":1700000003,"id.orig_h":"192.168.1.20","query":"cloud.example","answers":["cdn.example","203.0.113.9","2001:db8::9"]}
{"_path":"http","ts":1700000004,"id.orig_h":"192.168.1.20","host":"cloud.example"}
`
	wantMeta := []string{
		`flow t=1700000000500000000 192.168.1.20:50000>203.0.113.9:443 p=6 d=0 b=0/0 k=0/0 mac=bc:ad:28:00:00:01>00:11:22:33:44:55`,
		`device t=1700000001000000000 bc:ad:28:00:00:01 name="cam-door"`,
		`lease t=1700000002000000000 bc:ad:28:00:00:01=192.168.1.20 name="cam-door" fp="1,3,6,15"`,
		`dns t=1700000003000000000 192.168.1.20 "cloud.example"=[203.0.113.9 2001:db8::9]`,
	}
	for name, data := range map[string]string{"meta.log": tsv, "meta.json": json} {
		events, st, err := scanEvents(t, []Input{bytesInput(name, []byte(data))}, Options{})
		if err != nil || st.Bad != 0 {
			t.Fatalf("%s: err %v, bad %v", name, err, st.BadLines)
		}
		var texts []string
		for _, e := range events {
			texts = append(texts, e.Text)
		}
		if diff := cmp.Diff(wantMeta, texts); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

func TestEVEMetadataEvents(t *testing.T) {
	lines := `{"timestamp":"2024-01-02T03:04:05.5+0100","event_type":"dhcp","src_ip":"192.168.1.1","dest_ip":"192.168.1.20","dhcp":{"type":"reply","client_mac":"bc:ad:28:00:00:01","assigned_ip":"192.168.1.20","hostname":"cam-door","params":["subnet_mask","router","dns_server"]}}
{"timestamp":"2024-01-02T03:04:06Z","event_type":"flow","src_ip":"2001:db8::20","src_port":1,"dest_ip":"2001:db8:1::9","dest_port":2,"proto":"IPv6-ICMP","ether":{"src_mac":"bc:ad:28:00:00:01","dest_mac":"00:11:22:33:44:55"},"flow":{"start":"2024-01-02T03:04:00.000000+0000","end":"2024-01-02T03:04:02.250000+0000","bytes_toserver":10,"bytes_toclient":20,"pkts_toserver":1,"pkts_toclient":2}}
{"timestamp":"2024-01-02T03:04:07Z","event_type":"dns","src_ip":"192.168.1.1","dest_ip":"192.168.1.20","dns":{"version":3,"queries":[{"rrname":"cloud.example"}],"grouped":{"A":["203.0.113.9"],"CNAME":["x.example"]}}}
{"timestamp":"2024-01-02T03:04:08Z","event_type":"alert","src_ip":"192.168.1.1","dest_ip":"192.168.1.20"}
{"timestamp":"2024-01-02T03:04:09Z","event_type":"netflow","src_ip":"192.168.1.20","src_port":5,"dest_ip":"198.51.100.1","dest_port":6,"proto":"UDP","netflow":{"start":"2024-01-02T03:04:09Z","end":"2024-01-02T03:04:10Z","bytes":99,"pkts":3}}
`
	events, st, err := scanEvents(t, []Input{bytesInput("eve.json", []byte(lines))}, Options{})
	if err != nil || st.Bad != 0 {
		t.Fatalf("err %v, bad %v", err, st.BadLines)
	}
	var texts []string
	for _, e := range events {
		texts = append(texts, e.Text)
	}
	want := []string{
		`lease t=1704161045500000000 bc:ad:28:00:00:01=192.168.1.20 name="cam-door" fp="subnet_mask,router,dns_server"`,
		`flow t=1704164640000000000 2001:db8::20:1>2001:db8:1::9:2 p=58 d=2250000000 b=10/20 k=1/2 mac=bc:ad:28:00:00:01>00:11:22:33:44:55`,
		`dns t=1704164647000000000 192.168.1.1 "cloud.example"=[203.0.113.9]`,
		`flow t=1704164649000000000 192.168.1.20:5>198.51.100.1:6 p=17 d=1000000000 b=99/0 k=3/0`,
	}
	if diff := cmp.Diff(want, texts); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestEventBadLines: a bad value names the field at fault; the line is a
// bad line and reading goes on.
func TestEventBadLines(t *testing.T) {
	hdr := "#separator \\x09\n#path\tconn\n#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\tresp_bytes\tconn_state\n"
	good := "1700000000\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0.1\t10\t20\tSF\n"
	data := hdr + good +
		"1700000000\t10.0.0.999\t1\t8.8.8.8\t53\tudp\t0.1\t10\t20\tSF\n" +
		"yesterday\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0.1\t10\t20\tSF\n" +
		"1700000000\t10.0.0.1\t70000\t8.8.8.8\t53\tudp\t0.1\t10\t20\tSF\n" +
		"1700000000\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t-0.1\t10\t20\tSF\n" +
		"1700000000\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0.1\tmany\t20\tSF\n" +
		"1700000000\t10.0.0.1\t1\t8.8.8.8\n" + good
	events, st, err := scanEvents(t, []Input{bytesInput("bad.log", []byte(data))}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || st.Bad != 6 {
		t.Fatalf("%d events, %d bad (%v); want 2 and 6", len(events), st.Bad, st.BadLines)
	}
	wantErr := []string{"originator \"10.0.0.999\" is not an IP address", "time \"yesterday\"", "originator port 70000", "duration \"-0.1\"",
		"originator bytes \"many\" is not a count", "line has 4 fields"}
	for i, b := range st.BadLines {
		if b.Line != int64(i+5) || !strings.Contains(b.Err.Error(), wantErr[i]) || !strings.HasPrefix(b.Error(), fmt.Sprintf("bad.log:%d: ", i+5)) {
			t.Errorf("bad line %d: %v, want line %d and %q", i, b, i+5, wantErr[i])
		}
	}
	// A format without an event reader is refused, naming the input.
	jf, _ := JSONLines("a=ip", "")
	_, _, err = scanEvents(t, []Input{bytesInput("x.json", []byte(`{"a":"1.2.3.4"}`+"\n"))}, Options{Format: jf})
	if err == nil || !strings.Contains(err.Error(), "x.json") {
		t.Errorf("error %v, want one naming x.json", err)
	}
}

func TestJSONLinesEvents(t *testing.T) {
	f, err := JSONLinesEvents("when=time,net.src=src,net.dst=dst,net.dport=dst_port,net.proto=proto,bytes.out=src_bytes,bytes.in=dst_bytes,len=duration,mac=src_mac")
	if err != nil {
		t.Fatal(err)
	}
	events, st, err := scanEvents(t, []Input{bytesInput("x.jsonl", []byte(
		`{"when":"2024-05-06T07:08:09.25Z","net":{"src":"10.1.1.1","dst":"192.0.2.1","dport":8883,"proto":"tcp"},"bytes":{"out":100,"in":2000},"len":1.5,"mac":"BC-AD-28-00-00-02"}`+"\n"+
			`{"net":{"src":"10.1.1.1"}}`+"\n"))}, Options{Format: f})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, fmt.Sprintf("%s:%d %s", e.File, e.Line, e.Text))
	}
	want := []string{"x.jsonl:1 flow t=1714979289250000000 10.1.1.1:0>192.0.2.1:8883 p=6 d=1500000000 b=100/2000 k=0/0 mac=bc:ad:28:00:00:02>00:00:00:00:00:00"}
	if diff := cmp.Diff(want, got); diff != "" || st.Bad != 1 {
		t.Errorf("events (-want +got):\n%s\nbad %v", diff, st.BadLines)
	}
	for _, m := range []string{"a=src", "a=src,b=dst,c=colour", "a src"} {
		if _, err := JSONLinesEvents(m); err == nil {
			t.Errorf("mapping %q accepted", m)
		}
	}
}

func TestEventValueParsers(t *testing.T) {
	for _, s := range []string{"0", "1", "1601998366.785668", "22.335172", "0.000001", "1.5e9", "16e8", "8.9e9", "1e-3"} {
		got, ok := parseSecondsNanos([]byte(s))
		f, _ := strconv.ParseFloat(s, 64)
		if !ok || math.Abs(float64(got)-f*1e9) > 1e3 {
			t.Errorf("parseSecondsNanos(%q) = %d, %v; want %v", s, got, ok, f*1e9)
		}
	}
	for _, s := range []string{"", "-1", "1.2.3", "1e", "abc", "1e999", "99999999999999"} {
		if v, ok := parseSecondsNanos([]byte(s)); ok {
			t.Errorf("parseSecondsNanos(%q) = %d, want refusal", s, v)
		}
	}
	for _, s := range []string{"2021-06-06T20:45:12.198137+0200", "2024-01-02T03:04:05Z", "2024-02-29T23:59:59.999999999-07:30", "1999-12-31T23:59:59+00", "2000-03-01 00:00:00"} {
		got, ok := parseRFC3339Nanos([]byte(s))
		var want time.Time
		var err error
		for _, l := range []string{"2006-01-02T15:04:05.999999999-0700", time.RFC3339Nano, "2006-01-02T15:04:05-07", "2006-01-02 15:04:05"} {
			if want, err = time.Parse(l, s); err == nil {
				break
			}
		}
		if err != nil || !ok || got != want.UnixNano() {
			t.Errorf("parseRFC3339Nanos(%q) = %d, %v; want %d (%v)", s, got, ok, want.UnixNano(), err)
		}
	}
	for _, s := range []string{"2024-13-01T00:00:00Z", "2024-01-01T00:00:00+2500", "2024-01-01T00:00:00.Z", "2024-01-01", "2024-01-01T00:00:00Zjunk"} {
		if _, ok := parseRFC3339Nanos([]byte(s)); ok {
			t.Errorf("parseRFC3339Nanos(%q) accepted", s)
		}
	}
	for s, want := range map[string]string{"BC:AD:28:00:00:01": "bc:ad:28:00:00:01", "bc-ad-28-00-00-01": "bc:ad:28:00:00:01", "bcad.2800.0001": "bc:ad:28:00:00:01"} {
		m, ok := ParseMAC(s)
		if !ok || m.String() != want {
			t.Errorf("ParseMAC(%q) = %v, %v", s, m, ok)
		}
	}
	for _, s := range []string{"bc:ad:28:00:00", "bc:ad:28-00:00:01", "bcad.2800-0001", "gg:ad:28:00:00:01"} {
		if _, ok := ParseMAC(s); ok {
			t.Errorf("ParseMAC(%q) accepted", s)
		}
	}
	for s, want := range map[string]uint8{"tcp": 6, "UDP": 17, "icmp": 1, "IPv6-ICMP": 58, "icmpv6": 58, "47": 47} {
		if got, ok := protoNumber([]byte(s)); !ok || got != want {
			t.Errorf("protoNumber(%q) = %d, %v", s, got, ok)
		}
	}
}

// FuzzEventValues compares the allocation-free value parsers with the
// standard library.
func FuzzEventValues(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "::ffff:1.2.3.4", "2001:db8::1", "1601998366.785668", "2021-06-06T20:45:12.198137+0200", "bc:ad:28:00:00:01", "01.2.3.4", "1::2::3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := parseAddr([]byte(s))
		w, err := netip.ParseAddr(s)
		if w.Zone() == "" && ok != (err == nil) || ok && a != w.Unmap() {
			t.Fatalf("parseAddr(%q) = %v, %v; netip says %v, %v", s, a, ok, w, err)
		}
		if v, ok := parseSecondsNanos([]byte(s)); ok {
			if f, err := strconv.ParseFloat(s, 64); err != nil || math.Abs(float64(v)-f*1e9) > 1e3+f*1e-6 {
				t.Fatalf("parseSecondsNanos(%q) = %d; ParseFloat says %v, %v", s, v, f, err)
			}
		}
		if v, ok := parseRFC3339Nanos([]byte(s)); ok && v < 0 {
			t.Fatalf("parseRFC3339Nanos(%q) = %d", s, v)
		}
		if m, ok := ParseMAC(s); ok {
			if m2, ok := ParseMAC(m.String()); !ok || m2 != m {
				t.Fatalf("ParseMAC(%q) = %v does not round-trip", s, m)
			}
		}
	})
}

func eventLines(events []gotEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = fmt.Sprintf("%s:%d %s", e.File, e.Line, e.Text)
	}
	return out
}

// eventInvariance checks that reading data as events gives the same
// events and bad lines whatever the chunk size and the number of workers.
func eventInvariance(t *testing.T, f Format, data []byte) {
	opts := Options{Format: f, MaxLineSize: 1024, ChunkSize: 1024, Workers: 2}
	a, sa, _ := scanEvents(t, []Input{bytesInput("f", data)}, opts)
	opts.ChunkSize, opts.Workers = 1<<16, 1
	b, sb, _ := scanEvents(t, []Input{bytesInput("f", data)}, opts)
	if diff := cmp.Diff(eventLines(b), eventLines(a)); diff != "" {
		t.Fatalf("chunk size changes the events (-big +small):\n%s", diff)
	}
	if sa.Bad != sb.Bad || sa.Lines != sb.Lines || sa.Records != int64(len(a)) {
		t.Fatalf("bad %d/%d lines %d/%d records %d/%d", sa.Bad, sb.Bad, sa.Lines, sb.Lines, sa.Records, len(a))
	}
}

func FuzzZeekTSVEvents(f *testing.F) {
	f.Add([]byte("#separator \\x09\n#path\tconn\n#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\tresp_bytes\tconn_state\torig_l2_addr\n1.5\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0.1\t10\t20\tSF\t00:11:22:33:44:55\n"))
	f.Add([]byte("#fields\tts\tmac\tassigned_addr\thost_name\tmsg_types\n1\taa:bb:cc:dd:ee:ff\t10.0.0.2\tcam\tACK\n#path\tdns\n#fields\tts\tid.orig_h\tquery\tanswers\n2\t10.0.0.2\tx.example\t1.1.1.1,(empty)\n"))
	f.Fuzz(func(t *testing.T, data []byte) { eventInvariance(t, ZeekTSVEvents, data) })
}

func FuzzZeekJSONEvents(f *testing.F) {
	f.Add([]byte(`{"ts":1.5,"id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"8.8.8.8","id.resp_p":53,"proto":"udp","conn_state":"SF","orig_bytes":10}` + "\n"))
	f.Add([]byte(`{"ts":"2024-01-01T00:00:00Z","mac":"aa:bb:cc:dd:ee:ff","dhcp_host_name":"x"}` + "\n" + `{"_path":"software","host":"10.0.0.1","software_type":"A","name":"B"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) { eventInvariance(t, ZeekJSONEvents, data) })
}

func FuzzEVEEvents(f *testing.F) {
	f.Add([]byte(`{"event_type":"flow","src_ip":"10.0.0.1","dest_ip":"8.8.8.8","proto":"UDP","flow":{"start":"2021-06-06T20:45:12.198137+0200","end":"2021-06-06T20:45:13+0200","bytes_toserver":1}}` + "\n"))
	f.Add([]byte(`{"event_type":"dhcp","dhcp":{"client_mac":"aa:bb:cc:dd:ee:ff","assigned_ip":"10.0.0.2","params":["a","b"]}}` + "\n" + `{"event_type":"dns","dns":{"rrname":"x","answers":[{"rdata":"1.1.1.1"}]}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) { eventInvariance(t, EVEEvents, data) })
}

func FuzzJSONLinesEvents(f *testing.F) {
	jf, err := JSONLinesEvents("t=time,s=src,d=dst,p=dst_port,b=src_bytes,m=src_mac,x.y=duration")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"t":1700000000,"s":"10.0.0.1","d":"2001:db8::1","p":443,"b":5,"m":"aa:bb:cc:dd:ee:ff","x":{"y":2.5}}` + "\n"))
	f.Add([]byte(`{"s":["10.0.0.1"],"d":null}` + "\n[]\n"))
	f.Fuzz(func(t *testing.T, data []byte) { eventInvariance(t, jf, data) })
}

// BenchmarkZeekConnEvents parses the lines of a real conn.log as the
// device watch reads them (one parser, no scanner), its data lines
// repeated to 150,000: ns per line.
func BenchmarkZeekConnEvents(b *testing.B) {
	data := readMaybeGzip(b, filepath.Join(testutil.SharedData(b, "logs", "zeek"), "slips-test10-mixed", "conn.log"))
	var head, body [][]byte
	for _, l := range bytes.Split(data, []byte("\n")) {
		if len(l) > 0 && l[0] == '#' {
			head = append(head, l)
		} else if len(l) > 0 {
			body = append(body, l)
		}
	}
	lines := head
	for len(lines) < 150_000 {
		lines = append(lines, body...)
	}
	p := ZeekTSVEvents.NewEventParser()
	for b.Loop() {
		for _, l := range lines {
			var ev Event
			if _, err := p.ParseEvent(l, &ev); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
}

// TestZeekConnFieldSplit: conn.log lines whose fields have random widths
// (empty, unset, one byte to tens), so that separators fall at every
// place in the eight-byte words the parser reads, parse to the values
// written.
func TestZeekConnFieldSplit(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	filler := func() string {
		switch r.IntN(4) {
		case 0:
			return ""
		case 1:
			return "-"
		default:
			return strings.Repeat("x", r.IntN(30))
		}
	}
	for _, sep := range []string{"\t", ","} {
		p := ZeekTSVEvents.NewEventParser()
		header := "#fields" + sep + strings.Join([]string{"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
			"duration", "orig_bytes", "resp_bytes", "conn_state", "history"}, sep)
		for _, h := range []string{"#separator " + fmt.Sprintf("\\x%02x", sep[0]), "#path" + sep + "conn", header} {
			if _, err := p.ParseEvent([]byte(h), &Event{}); err != nil {
				t.Fatal(err)
			}
		}
		for range 5000 {
			src := netip.AddrFrom4([4]byte{10, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
			dst := netip.AddrFrom4([4]byte{byte(1 + r.IntN(200)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
			sec, usec := 1600000000+r.IntN(1e8), r.IntN(1e6)
			sp, dp, ob, rb := r.IntN(65536), r.IntN(65536), r.Uint64N(1e12), r.Uint64N(1e6)
			dur := "-"
			if r.IntN(2) == 0 {
				dur = fmt.Sprintf("%d.%06d", r.IntN(1000), r.IntN(1e6))
			}
			rbs := strconv.FormatUint(rb, 10)
			if r.IntN(4) == 0 {
				rbs, rb = "-", 0
			}
			fields := []string{fmt.Sprintf("%d.%06d", sec, usec), filler(), src.String(), strconv.Itoa(sp), dst.String(), strconv.Itoa(dp), "tcp", filler(),
				dur, strconv.FormatUint(ob, 10), rbs, "SF", filler()}
			line := strings.Join(fields, sep)
			var ev Event
			ok, err := p.ParseEvent([]byte(line), &ev)
			if !ok || err != nil {
				t.Fatalf("%q: %v %v", line, ok, err)
			}
			if ev.Time != int64(sec)*1e9+int64(usec)*1e3 || ev.Src != src || ev.Dst != dst || ev.SrcPort != uint16(sp) || ev.DstPort != uint16(dp) ||
				ev.Proto != 6 || ev.SrcBytes != ob || ev.DstBytes != rb || (dur == "-") != (ev.Duration == 0) {
				t.Fatalf("%q: parsed %+v", line, ev)
			}
		}
	}
}

// TestSkipPackets: with Options.SkipPackets the connections of the real
// conn.logs, and of lines with unset byte counts (whose IP byte counts
// after the packet counts stand in) or too few columns, read as without
// it, but for the packet counts.
func TestSkipPackets(t *testing.T) {
	dir := testutil.SharedData(t, "logs", "zeek")
	hdr := "#separator \\x09\n#path\tconn\n#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\tresp_bytes\tconn_state\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\n"
	synthetic := hdr +
		"1700000000\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0.1\t10\t20\tSF\t1\t38\t1\t48\n" + // all set
		"1700000000\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0.1\t-\t-\tS0\t1\t38\t1\t48\n" + // the IP byte counts stand in
		"1700000000\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0.1\t10\t-\tS0\t1\t38\t1\t48\n" +
		"1700000000\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0.1\t10\t20\tSF\t1\t38\n" + // two columns short
		"1700000000\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0.1\t10\t20\n" + // five short
		"1700000000\t10.0.0.1\t1\t8.8.8.8\t53\tudp\t0.1\t10\t20\tSF\t1\t38\t1\t48\textra\n" // one more than named
	inputs := []Input{fileInput(filepath.Join(dir, "slips-test10-mixed", "conn.log")), fileInput(filepath.Join(dir, "slips-test9-mixed", "conn.log")),
		bytesInput("synthetic.log", []byte(synthetic))}
	all, st, err := scanEvents(t, inputs, Options{ChunkSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	skip, sst, err := scanEvents(t, inputs, Options{ChunkSize: 8 << 10, SkipPackets: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Bad != 2 || sst.Bad != st.Bad || len(skip) != len(all) || len(all) < 100 {
		t.Fatalf("%d events, %d bad; with SkipPackets %d, %d bad (%v); want the same, 2 bad", len(all), st.Bad, len(skip), sst.Bad, sst.BadLines)
	}
	pkts := 0
	for i := range all {
		a, s := all[i].ev, skip[i].ev
		if a.SrcPkts+a.DstPkts > 0 {
			pkts++
		}
		tsv := !strings.Contains(skip[i].File, "test9") // test9's conn.log is Zeek JSON, whose reader reads them anyway
		if tsv && (s.SrcPkts != 0 || s.DstPkts != 0) {
			t.Fatalf("%s:%d: packets read: %+v", skip[i].File, skip[i].Line, s)
		}
		a.SrcPkts, a.DstPkts, s.SrcPkts, s.DstPkts = 0, 0, 0, 0
		if all[i].File != skip[i].File || all[i].Line != skip[i].Line || !cmp.Equal(a, s, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })) {
			t.Fatalf("%s:%d: %+v\nwith SkipPackets %+v", all[i].File, all[i].Line, all[i].ev, skip[i].ev)
		}
	}
	if pkts == 0 {
		t.Fatal("no packet counts read without SkipPackets")
	}
}
