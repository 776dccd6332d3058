package wan_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/drill/wan"
)

// TestMain lets the test binary be a proxy process: with
// WAN_TEST_PROXY=seed it serves the control protocol on its standard
// input and output instead of running the tests.
func TestMain(m *testing.M) {
	if s := os.Getenv("WAN_TEST_PROXY"); s != "" {
		seed, _ := strconv.ParseUint(s, 10, 64)
		if err := wan.Serve(os.Stdin, os.Stdout, seed); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// With WAN_TEST_PARENT set, it is a drill that starts one proxy
	// process, prints its pid and waits to be killed.
	if os.Getenv("WAN_TEST_PARENT") != "" {
		s, err := wan.StartSplit(1, proxyCommand)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(s.Pids()[0])
		select {}
	}
	os.Exit(m.Run())
}

// proxyCommand is the test binary as proxy process i.
func proxyCommand(i int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WAN_TEST_PROXY=1", "WAN_TEST_PARENT=")
	cmd.Stderr = os.Stderr
	return cmd
}

// tagged serves, on 127.0.0.1, a server that writes tag (if any) on each
// connection and then echoes; it returns its address.
func tagged(t *testing.T, tag string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if tag != "" {
					c.Write([]byte(tag))
				}
				// Through a buffer: io.Copy between two TCP connections
				// splices through a pipe pair that stays open in a pool
				// until the collector runs, which would blur the counts
				// of open files TestPeakFilesFollowsConnections reads.
				io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// dialTag connects to addr and reads the one-byte tag of the server the
// connection reached.
func dialTag(addr string) (net.Conn, string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, "", err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		c.Close()
		return nil, "", err
	}
	c.SetReadDeadline(time.Time{})
	return c, string(b), nil
}

// control is the parent's end of a Serve run in this process over pipes.
type control struct {
	t   *testing.T
	enc *json.Encoder
	sc  *bufio.Scanner
}

func (c *control) do(req wan.Request) wan.Response {
	c.t.Helper()
	if err := c.enc.Encode(req); err != nil {
		c.t.Fatalf("send %s: %v", req.Op, err)
	}
	if !c.sc.Scan() {
		c.t.Fatalf("no answer to %s: %v", req.Op, c.sc.Err())
	}
	var resp wan.Response
	if err := json.Unmarshal(c.sc.Bytes(), &resp); err != nil {
		c.t.Fatalf("answer to %s: %q: %v", req.Op, c.sc.Bytes(), err)
	}
	return resp
}

// TestControlProtocol drives Serve line by line: links open on the
// target set by upstream (refused before it is set), follow it when it
// moves, go down and up, report activity and stats; a bad request is
// answered with an error and the next is served; shutdown ends Serve.
func TestControlProtocol(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	served := make(chan error, 1)
	go func() { served <- wan.Serve(inR, outW, 1); outW.Close() }()
	c := &control{t: t, enc: json.NewEncoder(inW), sc: bufio.NewScanner(outR)}

	resp := c.do(wan.Request{Op: wan.OpListen, Links: []wan.LinkSpec{
		{Name: "0->1", Target: "1", Cond: wan.Link{RTT: 2 * time.Millisecond}},
		{Name: "1->0", Target: "0", Cond: wan.Link{RTT: 2 * time.Millisecond}},
	}})
	if resp.Error != "" || len(resp.Addrs) != 2 || resp.Addrs[0] == resp.Addrs[1] {
		t.Fatalf("listen: %+v", resp)
	}
	l01 := resp.Addrs[0]
	if conn, _, err := dialTag(l01); err == nil {
		conn.Close()
		t.Fatal("a link with no upstream yet carried a connection")
	}
	if r := c.do(wan.Request{Op: wan.OpUpstream, Target: "1", Addr: tagged(t, "A")}); r.Error != "" {
		t.Fatal(r.Error)
	}
	conn, tag, err := dialTag(l01)
	if err != nil || tag != "A" {
		t.Fatalf("through 0->1: %q, %v", tag, err)
	}
	conn.Write([]byte("x"))
	if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
		t.Fatalf("echo through 0->1: %v", err)
	}
	if r := c.do(wan.Request{Op: wan.OpActive, Names: []string{"1->0", "0->1"}, Within: time.Second}); !r.Active {
		t.Error("0->1 is not active right after its client sent")
	}
	if r := c.do(wan.Request{Op: wan.OpActive, Names: []string{"1->0"}, Within: time.Second}); r.Active {
		t.Error("1->0 is active: nothing crossed it")
	}
	// The target moves (a node restarted on a new port).
	c.do(wan.Request{Op: wan.OpUpstream, Target: "1", Addr: tagged(t, "B")})
	if c2, tag, err := dialTag(l01); err != nil || tag != "B" {
		t.Errorf("after the move: %q, %v", tag, err)
	} else {
		c2.Close()
	}
	c.do(wan.Request{Op: wan.OpDown, Names: []string{"0->1"}})
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 8)); err == nil {
		t.Error("a connection survived the link going down")
	}
	conn.Close()
	if c3, _, err := dialTag(l01); err == nil {
		c3.Close()
		t.Error("a new connection crossed a link that is down")
	}
	c.do(wan.Request{Op: wan.OpUp, Names: []string{"0->1"}})
	if c4, tag, err := dialTag(l01); err != nil || tag != "B" {
		t.Errorf("after the link came up: %q, %v", tag, err)
	} else {
		c4.Close()
	}
	st := c.do(wan.Request{Op: wan.OpStats})
	s := st.Stats["0->1"]
	// The connection to B may still be closing when the link goes down.
	if len(st.Stats) != 2 || s.Conns != 3 || s.Resets < 1 || s.Resets > 2 || s.Refused != 2 || s.Bytes < 3 {
		t.Errorf("stats %+v: want 3 connections, 1 or 2 resets, 2 refused, bytes", st.Stats)
	}
	if st.OpenFiles < 2 {
		t.Errorf("the proxy's peak open files %d: it holds two listeners", st.OpenFiles)
	}
	if r := c.do(wan.Request{Op: "jump"}); r.Error == "" {
		t.Error("an unknown operation was accepted")
	}
	if err := c.enc.Encode("not a request"); err != nil || !c.sc.Scan() || !json.Valid(c.sc.Bytes()) {
		t.Fatalf("a malformed request: %v", err)
	}
	if r := c.do(wan.Request{Op: wan.OpShutdown}); r.Error != "" {
		t.Errorf("shutdown: %s", r.Error)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, _, err := dialTag(l01); err == nil {
		t.Error("a link listens after shutdown")
	}
}

// TestServeEndsWithItsInput: a proxy process whose input closes (its
// parent died) exits.
func TestServeEndsWithItsInput(t *testing.T) {
	cmd := proxyCommand(0)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the proxy process ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the proxy process outlived its input")
	}
}

// TestSplit carries links through two proxy processes: each holds some
// of them, a partition cuts and restores links in both (connections
// reset, new ones refused, then carried again), and the stats are those
// of every link of both.
func TestSplit(t *testing.T) {
	s, err := wan.StartSplit(2, proxyCommand)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Processes() != 2 || len(s.Pids()) != 2 || s.Pids()[0] == s.Pids()[1] {
		t.Fatalf("%d processes, pids %v", s.Processes(), s.Pids())
	}
	if err := s.SetUpstream("0", tagged(t, "A")); err != nil {
		t.Fatal(err)
	}
	const links = 8
	addrs := map[string]string{}
	var names []string
	held := map[int]int{}
	for i := 1; i <= links; i++ {
		name := fmt.Sprintf("%d->0", i)
		a, err := s.Listen(name, wan.Link{RTT: time.Millisecond, Loss: 0.2}, "0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[name] = a
		names = append(names, name)
		held[s.Process(name)]++
	}
	if held[0] == 0 || held[1] == 0 {
		t.Fatalf("links by process %v: one process carries none", held)
	}
	// One connection on each link, with data both ways.
	conns := map[string]net.Conn{}
	for _, n := range names {
		c, tag, err := dialTag(addrs[n])
		if err != nil || tag != "A" {
			t.Fatalf("through %s: %q, %v", n, tag, err)
		}
		defer c.Close()
		msg := make([]byte, 64<<10)
		c.Write(msg)
		if _, err := io.ReadFull(c, msg); err != nil {
			t.Fatalf("echo through %s: %v", n, err)
		}
		conns[n] = c
	}
	if ok, err := s.Active(names, time.Minute); err != nil || !ok {
		t.Errorf("no link active after the echoes: %v", err)
	}
	// The partition: every link, in both processes.
	if err := s.SetDown(names, true); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		c := conns[n]
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: a connection survived the partition", n)
		}
		if c2, _, err := dialTag(addrs[n]); err == nil {
			c2.Close()
			t.Errorf("%s: a new connection crossed the partition", n)
		}
	}
	if err := s.SetDown(names, false); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		c, tag, err := dialTag(addrs[n])
		if err != nil || tag != "A" {
			t.Errorf("%s after the partition: %q, %v", n, tag, err)
			continue
		}
		c.Close()
	}
	stats, files, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	var sum wan.Stats
	for _, n := range names {
		st, ok := stats[n]
		if !ok {
			t.Errorf("no stats for %s", n)
		}
		if st.Conns != 2 || st.Resets != 1 || st.Refused != 1 {
			t.Errorf("%s: %+v, want 2 connections, 1 reset, 1 refused", n, st)
		}
		sum.Bytes += st.Bytes
		sum.Lost += st.Lost
	}
	if len(stats) != links || sum.Bytes < links*2*64<<10 || sum.Lost == 0 {
		t.Errorf("%d links' stats, %d bytes, %d segments lost: want %d links, both ways of 64 KiB each, losses at 20%%", len(stats), sum.Bytes, sum.Lost, links)
	}
	if len(files) != 2 || files[0] < held[0] || files[1] < held[1] {
		t.Errorf("peak open files %v: fewer than the listeners %v", files, held)
	}
	pids := s.Pids()
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			t.Errorf("proxy process %d outlived Close", pid)
		}
	}
}

// TestPeakFilesFollowsConnections checks that a proxy process's peak of
// open files, counted only when its connections reach a new high, still
// sees connections opened and closed between two requests: 40
// connections held for a second, then closed, are in the next stats'
// peak; and that the proxy closes both descriptors of a connection once
// it ends, not when the collector finalizes them.
func TestPeakFilesFollowsConnections(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	served := make(chan error, 1)
	go func() { served <- wan.Serve(inR, outW, 1); outW.Close() }()
	c := &control{t: t, enc: json.NewEncoder(inW), sc: bufio.NewScanner(outR)}
	resp := c.do(wan.Request{Op: wan.OpListen, Links: []wan.LinkSpec{{Name: "0->1", Target: "1", Cond: wan.Link{RTT: time.Millisecond}}}})
	if resp.Error != "" {
		t.Fatal(resp.Error)
	}
	c.do(wan.Request{Op: wan.OpUpstream, Target: "1", Addr: echo(t)})
	before := c.do(wan.Request{Op: wan.OpStats}).OpenFiles
	base := wan.OpenFiles()
	const n = 40
	var conns []net.Conn
	for range n {
		conn, err := net.DialTimeout("tcp", resp.Addrs[0], 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second) // four ticks of the sampler
	for _, conn := range conns {
		conn.Close()
	}
	// Wait until they are closed on every side (the proxy and the echo
	// server are in this process), so that the stats' own count cannot
	// see them: only the sampler's counts can.
	for deadline := time.Now().Add(5 * time.Second); wan.OpenFiles() > base+2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open 5 s after the connections closed, %d before them", wan.OpenFiles(), base)
		}
	}
	// Both of each connection's descriptors in the proxy, and the
	// client's and the echo server's.
	if got := c.do(wan.Request{Op: wan.OpStats}).OpenFiles; got < before+2*n {
		t.Errorf("peak open files %d after %d connections held; %d before them: the peak missed them", got, n, before)
	}
	c.do(wan.Request{Op: wan.OpShutdown})
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
