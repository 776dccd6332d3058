package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/notify"
)

func TestDialSyslogURL(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, tc := range []struct {
		url, wantErr string
	}{
		{"udp://" + pc.LocalAddr().String(), ""},
		{"udp://", "host:port is required"},
		{"unix://", "a socket path is required"},
		{"http://127.0.0.1:514", "use udp://host:port"},
		{"127.0.0.1:514", "first path segment"},
		{"syslog.example:514", "use udp://host:port"},
		{"udp://%zz", "invalid URL escape"},
	} {
		s, err := dialSyslogURL(tc.url)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.url, err)
				continue
			}
			if err := s.Send(notify.Message{Facility: notify.FacilitySecurity, Severity: notify.SevWarning, Time: time.Now(), AppName: "entente", Msg: "test"}); err != nil {
				t.Errorf("%s: send: %v", tc.url, err)
			}
			buf := make([]byte, 2048)
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := pc.ReadFrom(buf)
			if err != nil || !strings.HasPrefix(string(buf[:n]), "<36>1 ") {
				t.Errorf("%s: received %q, %v; want an RFC 5424 message of priority 36", tc.url, buf[:n], err)
			}
			s.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: error %v, want one containing %q", tc.url, err, tc.wantErr)
		}
	}
}
