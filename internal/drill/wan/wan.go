// Package wan is the drill's wide-area network: a TCP proxy of our own
// on net.Conn, one listener per directed link between two nodes, that
// gives each link the conditions of a real path between two places
// (the kernel here has no netem):
//
//   - latency: every byte is delivered half the link's round-trip time
//     after it was sent, plus jitter, never earlier than the byte before
//     it (TCP does not reorder);
//   - loss: TCP hides a lost segment by retransmitting it, so what an
//     application sees of loss is a stall. The proxy cuts the stream
//     into segments of one MSS (1448 bytes); each is "lost" with the
//     link's probability, and then it and everything behind it wait for
//     the retransmission: one round trip when more data follows it (fast
//     retransmit after three duplicate ACKs), else a retransmission
//     timeout (Linux's minimum, 200 ms, plus the round trip). No byte is
//     ever dropped or corrupted: TCP would not let the application see
//     that;
//   - bandwidth: each direction of a link is a bottleneck of so many
//     bytes per second, shared by the link's connections;
//   - partitions: a link that is down refuses new connections (they are
//     reset at once) and resets the connections it carries, as a
//     middlebox or a routing change does; it comes back by itself when
//     the partition ends.
//
// A Proxy lives in the process that opens it. When one process's
// open-file limit cannot hold every link (a listener each, two
// descriptors per connection carried), Split spreads the links over
// processes of their own, each running Serve, driven over its standard
// input and output (the control protocol: control.go).
//
// Package-level choices are documented where they are made. The proxy
// never reads what it carries: TLS runs end to end through it.
package wan

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Link is the conditions of one direction of a path between two nodes
// (the other direction has its own Link, usually equal).
type Link struct {
	// RTT is the round-trip time of the path, the floor no exchange over
	// it can beat; each direction delays by half of it.
	RTT time.Duration
	// Jitter is the most that is added, uniformly at random, to one
	// segment's one-way delay.
	Jitter time.Duration
	// Loss is the probability that one segment is lost (and retransmitted).
	Loss float64
	// Bandwidth is the bottleneck, in bytes per second (0: unlimited).
	Bandwidth int64
}

// mss is the segment size the proxy reasons in: a 1500-byte Ethernet MTU
// less the IPv4, TCP and timestamp-option headers.
const mss = 1448

// rtoMin is Linux's minimum retransmission timeout (TCP_RTO_MIN).
const rtoMin = 200 * time.Millisecond

// Stats counts what a link did.
type Stats struct {
	Conns, Refused, Resets int64
	Bytes                  int64
	Lost                   int64 // segments that were retransmitted
}

// Proxy is a set of links, each with its own listener on 127.0.0.1.
type Proxy struct {
	mu    sync.Mutex
	links map[string]*link
	seed  uint64
	// held counts the descriptors the links' connections hold (the
	// accepted one from its accept, the dialed one from its dial, each
	// until its connection ends): the process's descriptors grow only
	// with it or with a listener (see peakFiles).
	held atomic.Int64
}

// New returns a proxy whose random choices (jitter, loss) derive from
// seed and each link's name: a link makes the same choices whatever
// order the links were opened in and whichever process holds it.
func New(seed uint64) *Proxy { return &Proxy{links: map[string]*link{}, seed: seed} }

// link is one directed link: a listener and the connections it carries.
type link struct {
	name     string
	ln       net.Listener
	cond     Link
	upstream func() string // the address to dial, read at each connection
	held     *atomic.Int64 // the proxy's Proxy.held
	down     atomic.Bool
	// lastUp is when the client last sent bytes (Unix nanoseconds), for
	// Active.
	lastUp atomic.Int64
	mu     sync.Mutex
	conns  map[*pair]struct{}
	rng    *rand.Rand
	// bottleneck per direction: when the link is next free, per
	// direction (0: client to server).
	free  [2]time.Time
	stats Stats
}

type pair struct{ client, server net.Conn }

// Listen opens the listener of link name, which forwards every
// connection to the address upstream returns at that moment, with the
// conditions cond. It returns the listener's address.
func (p *Proxy) Listen(name string, cond Link, upstream func() string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("wan: listen for link %s: %w", name, err)
	}
	l := &link{name: name, ln: ln, cond: cond, upstream: upstream, held: &p.held, conns: map[*pair]struct{}{}, rng: rand.New(rand.NewPCG(linkSeed(p.seed, name), 17))}
	p.mu.Lock()
	p.links[name] = l
	p.mu.Unlock()
	go l.serve()
	return ln.Addr().String(), nil
}

// linkSeed is the seed of link name's random choices.
func linkSeed(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return seed ^ h.Sum64()
}

// SetDown cuts link name (down) or restores it. Cutting resets every
// connection it carries.
func (p *Proxy) SetDown(name string, down bool) {
	p.mu.Lock()
	l := p.links[name]
	p.mu.Unlock()
	if l == nil || l.down.Swap(down) == down || !down {
		return
	}
	l.mu.Lock()
	cut := make([]*pair, 0, len(l.conns))
	for c := range l.conns {
		cut = append(cut, c)
	}
	l.mu.Unlock()
	l.count(func(s *Stats) { s.Resets += int64(len(cut)) })
	for _, c := range cut {
		reset(c.client)
		reset(c.server)
	}
}

// Active reports whether the client side of link name sent bytes within
// the last d (a node in the middle of a push on that link).
func (p *Proxy) Active(name string, d time.Duration) bool {
	p.mu.Lock()
	l := p.links[name]
	p.mu.Unlock()
	return l != nil && time.Since(time.Unix(0, l.lastUp.Load())) < d
}

// Stats returns the counters of every link, by name.
func (p *Proxy) Stats() map[string]Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]Stats, len(p.links))
	for n, l := range p.links {
		l.mu.Lock()
		out[n] = l.stats
		l.mu.Unlock()
	}
	return out
}

// Close closes every listener and connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	links := p.links
	p.links = map[string]*link{}
	p.mu.Unlock()
	var errs []error
	for _, l := range links {
		if err := l.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		l.mu.Lock()
		for c := range l.conns {
			c.client.Close()
			c.server.Close()
		}
		l.mu.Unlock()
	}
	return errors.Join(errs...)
}

// reset closes c with an RST (no lingering), as a cut path looks to TCP
// once the peer's retransmissions give up, only at once.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (l *link) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		if l.down.Load() {
			l.count(func(s *Stats) { s.Refused++ })
			reset(c)
			continue
		}
		l.held.Add(1)
		go func() {
			defer l.held.Add(-1)
			l.handle(c)
		}()
	}
}

func (l *link) count(f func(*Stats)) {
	l.mu.Lock()
	f(&l.stats)
	l.mu.Unlock()
}

func (l *link) handle(client net.Conn) {
	// The connection's set-up costs one round trip (SYN, SYN-ACK) before
	// the client may send.
	time.Sleep(l.cond.RTT)
	server, err := net.DialTimeout("tcp", l.upstream(), 10*time.Second)
	if err != nil || l.down.Load() {
		if server != nil {
			server.Close()
		}
		l.count(func(s *Stats) { s.Refused++ })
		reset(client)
		return
	}
	l.held.Add(1)
	defer l.held.Add(-1)
	pr := &pair{client: client, server: server}
	l.mu.Lock()
	l.conns[pr] = struct{}{}
	l.stats.Conns++
	l.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { l.pipe(server, client, 0) })
	wg.Go(func() { l.pipe(client, server, 1) })
	wg.Wait()
	l.mu.Lock()
	delete(l.conns, pr)
	l.mu.Unlock()
	// Both directions ended (each half-closed the other side's writing
	// half): release the descriptors now, not when the collector
	// finalizes the connections, which in a proxy process of the
	// 259-node drill left thousands open.
	client.Close()
	server.Close()
}

// chunk is data read from one side, with when it is to be delivered.
type chunk struct {
	data []byte
	at   time.Time
}

// queueChunks bounds what one direction of a connection holds in flight
// (64 chunks of at most 16 KiB: 1 MiB, more than the bandwidth-delay
// product of any link of the drill).
const queueChunks = 64

// pipe copies src to dst, delaying each chunk as the link says. dir is 0
// for client to server, 1 for the way back.
func (l *link) pipe(dst, src net.Conn, dir int) {
	q := make(chan chunk, queueChunks)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if d := time.Until(c.at); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(c.data); err != nil {
				// Drain so the reader is never blocked.
				for range q {
				}
				return
			}
		}
	}()
	buf := make([]byte, 16<<10)
	var last time.Time
	for {
		n, err := src.Read(buf)
		if n > 0 {
			now := time.Now()
			if dir == 0 {
				l.lastUp.Store(now.UnixNano())
			}
			at := l.schedule(now, n, dir)
			if at.Before(last) {
				at = last // in order, as TCP delivers
			}
			last = at
			q <- chunk{data: append([]byte(nil), buf[:n]...), at: at}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
	// One direction ended: end the other side's writing half, so that
	// a response still in flight is delivered before the close.
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	} else {
		dst.Close()
	}
}

// schedule returns when n bytes read now in direction dir are delivered:
// after the bottleneck has sent them, half a round trip and jitter
// later, plus a retransmission for each lost segment.
func (l *link) schedule(now time.Time, n, dir int) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Bytes += int64(n)
	start := now
	if l.cond.Bandwidth > 0 {
		if l.free[dir].After(start) {
			start = l.free[dir]
		}
		l.free[dir] = start.Add(time.Duration(float64(n) / float64(l.cond.Bandwidth) * float64(time.Second)))
		start = l.free[dir]
	}
	at := start.Add(l.cond.RTT / 2)
	if l.cond.Jitter > 0 {
		at = at.Add(time.Duration(l.rng.Int64N(int64(l.cond.Jitter))))
	}
	if l.cond.Loss > 0 {
		segs := (n + mss - 1) / mss
		for s := range segs {
			if l.rng.Float64() >= l.cond.Loss {
				continue
			}
			l.stats.Lost++
			if segs-s > 3 {
				at = at.Add(l.cond.RTT) // fast retransmit
			} else {
				at = at.Add(rtoMin + l.cond.RTT) // retransmission timeout
			}
		}
	}
	return at
}
