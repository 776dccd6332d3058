package wan_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/drill/wan"
)

// echo serves an echo server on 127.0.0.1 and returns its address.
func echo(t *testing.T) string {
	t.Helper()
	return tagged(t, "")
}

// roundTrip sends n bytes through addr and reads them back, returning
// how long the exchange took after the connection was up.
func roundTrip(t *testing.T, addr string, n int) (time.Duration, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	msg := bytes.Repeat([]byte("x"), n)
	start := time.Now()
	if _, err := c.Write(msg); err != nil {
		return 0, err
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		return 0, err
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("the proxy changed the data")
	}
	return time.Since(start), nil
}

func TestLatencyIsTheFloor(t *testing.T) {
	up := echo(t)
	p := wan.New(1)
	defer p.Close()
	addr, err := p.Listen("a->b", wan.Link{RTT: 80 * time.Millisecond, Jitter: 5 * time.Millisecond}, func() string { return up })
	if err != nil {
		t.Fatal(err)
	}
	// The exchange crosses the link twice each way (to the echo and
	// back): at least two round trips, and not much more.
	d, err := roundTrip(t, addr, 100)
	if err != nil {
		t.Fatal(err)
	}
	if d < 160*time.Millisecond || d > 400*time.Millisecond {
		t.Errorf("a 100-byte echo through an 80 ms link took %s, want 160 ms to 400 ms", d)
	}
}

func TestBandwidthCap(t *testing.T) {
	up := echo(t)
	p := wan.New(1)
	defer p.Close()
	addr, _ := p.Listen("a->b", wan.Link{Bandwidth: 1 << 20}, func() string { return up })
	// 512 KiB out and back at 1 MiB/s each way, sent by the same link
	// object in both directions: about half a second at least.
	d, err := roundTrip(t, addr, 512<<10)
	if err != nil {
		t.Fatal(err)
	}
	if d < 450*time.Millisecond {
		t.Errorf("512 KiB through a 1 MiB/s link in %s, want at least ~0.5 s", d)
	}
}

func TestLossStallsNeverDrops(t *testing.T) {
	up := echo(t)
	p := wan.New(7)
	defer p.Close()
	addr, _ := p.Listen("a->b", wan.Link{RTT: 10 * time.Millisecond, Loss: 0.05}, func() string { return up })
	d, err := roundTrip(t, addr, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	st := p.Stats()["a->b"]
	if st.Lost == 0 {
		t.Fatalf("no segment lost at 5%% over %d bytes", st.Bytes)
	}
	if d < time.Duration(st.Lost)*10*time.Millisecond/2 {
		t.Errorf("%d lost segments cost only %s", st.Lost, d)
	}
}

func TestPartitionResetsAndRefuses(t *testing.T) {
	up := echo(t)
	p := wan.New(1)
	defer p.Close()
	addr, _ := p.Listen("a->b", wan.Link{RTT: 2 * time.Millisecond}, func() string { return up })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if !p.Active("a->b", time.Second) {
		t.Error("the link is not active right after the client sent")
	}
	p.SetDown("a->b", true)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Error("a connection survived the partition")
	}
	if _, err := roundTrip(t, addr, 10); err == nil {
		t.Error("a new connection crossed a partition")
	}
	p.SetDown("a->b", false)
	if _, err := roundTrip(t, addr, 10); err != nil {
		t.Errorf("after the partition: %v", err)
	}
	if st := p.Stats()["a->b"]; st.Refused == 0 || st.Resets != 1 {
		t.Errorf("stats %+v count no refusal", st)
	}
}
