package notify_test

import (
	"bufio"
	"bytes"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/notify"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestSyslogFormat(t *testing.T) {
	at := time.Date(2026, 11, 20, 12, 0, 0, 123456789, time.UTC)
	alert := correlate.Alert{
		ID: "x-entente-alert--b0139324-8548-5b42-ad44-d2aab6aa92c3", Threat: "malware--fdd60b30-b67c-41e3-b0b9-f01faf20d111",
		Tier: "global", TierRank: 3, Change: correlate.ChangeEscalated, Organisations: 12,
		Countries: []string{"DE", "FR", "IT"}, FirstSeen: at.Add(-time.Hour), LastSeen: at,
	}
	msgs := []notify.Message{
		notify.AlertMessage(alert, "node1.cert.example", at),
		{Facility: notify.FacilityLocal0, Severity: notify.SevInfo, Time: at, AppName: "entente", Msg: "no structured data, no host"},
		{Facility: 1, Severity: notify.SevNotice, Hostname: "host with spaces\tand\x00controls", AppName: strings.Repeat("a", 60),
			ProcID: "1234", MsgID: "ID47", Data: []notify.SDElement{
				{ID: "exampleSDID@32473", Params: []notify.SDParam{{"iut", "3"}, {"eventSource", "Application"}, {"eventID", "1011"}}},
				{ID: "esc@32473", Params: []notify.SDParam{{"quote", `say "hi"`}, {"backslash", `C:\path`}, {"bracket", "a]b"}, {"bad=name\"]", "v"}, {"utf8", "Zürich \xff"}}},
				{ID: "", Params: []notify.SDParam{{"dropped", "because the id is empty"}}},
			}, Msg: "BOM-less message"},
		{Facility: 99, Severity: -3},
		{Severity: notify.SevInfo, Msg: "two\nlines"},
	}
	var out bytes.Buffer
	s := notify.NewSyslogWriter(&out)
	for _, m := range msgs {
		if err := s.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join("testdata", "syslog.golden")
	if *update {
		os.WriteFile(path, out.Bytes(), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("syslog output differs from %s:\ngot:\n%s\nwant:\n%s", path, out.Bytes(), want)
	}
}

func TestSyslogOverTCPAndUDP(t *testing.T) {
	m := notify.Message{Facility: notify.FacilitySecurity, Severity: notify.SevWarning, Time: now, Hostname: "h", AppName: "entente", Msg: "hello"}
	line := m.Format()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		var n int
		var buf bytes.Buffer
		for range 2 {
			lenStr, _ := r.ReadString(' ')
			n = 0
			for _, ch := range strings.TrimSpace(lenStr) {
				n = n*10 + int(ch-'0')
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				got <- err.Error()
				return
			}
			buf.Write(b)
			buf.WriteByte('|')
		}
		got <- buf.String()
	}()
	s, err := notify.DialSyslog("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s.Send(m)
	s.Send(m)
	s.Close()
	if g := <-got; g != line+"|"+line+"|" {
		t.Errorf("TCP receiver got %q, want two octet-counted %q", g, line)
	}

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	u, err := notify.DialSyslog("udp", pc.LocalAddr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if err := u.Send(m); err != nil {
		t.Fatal(err)
	}
	pc.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 2048)
	n, _, err := pc.ReadFrom(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:n]) != line {
		t.Errorf("UDP datagram %q, want %q", b[:n], line)
	}
}

// unescape reverses EscapeParamValue.
func unescape(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) || !strings.ContainsRune(`"\]`, rune(s[i+1])) {
				return "", false
			}
			i++
		case '"', ']':
			return "", false // must have been escaped
		}
		b.WriteByte(s[i])
	}
	return b.String(), true
}

func FuzzSyslogEscape(f *testing.F) {
	for _, s := range []string{"", `a"b`, `\`, "]", `\"]`, "Zürich", "\xff\xfe", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		esc := notify.EscapeParamValue(v)
		if !utf8.ValidString(esc) {
			t.Fatalf("escaped %q is not valid UTF-8", esc)
		}
		back, ok := unescape(esc)
		if !ok {
			t.Fatalf("escaped %q has an unescaped special character", esc)
		}
		if want := strings.ToValidUTF8(v, "\uFFFD"); back != want {
			t.Fatalf("round trip %q → %q → %q", v, esc, back)
		}
		// A whole message carrying it parses back into one SD element.
		line := notify.Message{Data: []notify.SDElement{{ID: "x@32473", Params: []notify.SDParam{{"v", v}}}}}.Format()
		if !strings.HasPrefix(line, `<0>1 - - - - - [x@32473 v="`) || !strings.HasSuffix(line, `"]`) {
			t.Fatalf("malformed line %q", line)
		}
	})
}
