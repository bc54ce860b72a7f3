// Package connlimit caps the connections a server holds, in total and per
// client address, so that idle keep-alive connections cannot take every file
// descriptor and the memory behind them.
//
// Unlike golang.org/x/net/netutil.LimitListener it never blocks Accept: a
// blocked Accept leaves new clients in the kernel's backlog for as long as
// the connections holding the slots live, which is the attack. Instead:
//
//   - a connection over its address's cap is refused at once;
//   - a connection over the total cap takes the place of the connection
//     that has been idle longest (a new one that has sent nothing counts as
//     idle since it was accepted), or is refused at once when none is idle;
//   - while the total is at or above three quarters of the cap, connections
//     idle for longer than BusyIdle are closed.
//
// A refusal writes Config.Refusal (an HTTP answer, for plain HTTP) and closes
// the connection. The server reports idle and active connections through
// ConnState, which must be set as the http.Server's ConnState hook.
package connlimit

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Reason says why a connection was refused.
type Reason int

// The reasons for a refusal.
const (
	PerAddr Reason = iota + 1 // its address holds PerAddr connections
	Full                      // the server holds Max, none of them idle
)

// Config describes the caps.
type Config struct {
	// Max bounds the connections held at once; it must be positive.
	Max int
	// PerAddr bounds the connections of one client (see Key); 0 means no
	// per-address cap.
	PerAddr int
	// Key names the client an address belongs to, so that the cap counts
	// clients as the rest of the server does (camd: lockout.KeyAddr, an
	// IPv6 /64 as one); nil counts each address apart.
	Key func(netip.Addr) string
	// Exempt reports addresses with no per-address cap, such as trusted
	// reverse proxies, which carry many clients; they still count in Max.
	Exempt func(netip.Addr) bool
	// BusyIdle is the idle timeout while the server is near Max; default
	// 1 second.
	BusyIdle time.Duration
	// Refusal returns the bytes written to a refused connection before it
	// is closed, or nil to close it without a word (TLS, where a plain
	// answer would be noise).
	Refusal func(Reason) []byte
	// Log receives one line per refusal burst; nil discards.
	Log *slog.Logger
}

// DefaultBusyIdle is Config.BusyIdle's default.
const DefaultBusyIdle = time.Second

// maxRefusing bounds the refusals in progress at once: each holds a
// descriptor and a goroutine for up to refuseLinger. Past it, a refused
// connection is closed without an answer.
const (
	maxRefusing  = 16
	refuseLinger = time.Second
)

// Limiter tracks the connections of one server.
type Limiter struct {
	cfg  Config
	high int // the pressure mark: 3/4 of Max

	mu     sync.Mutex
	total  int
	byAddr map[string]int
	// The idle connections, longest idle first, linked through the Conns
	// themselves: a connection goes idle after every request, and a list
	// that allocates an element each time would be per-request garbage.
	idleHead, idleTail *Conn
	wake               chan struct{}

	refusing chan struct{}
	stats    struct{ perAddr, full, evicted, idleClosed atomic.Int64 }
	lastLog  atomic.Int64 // unix seconds of the last refusal log line
}

// New returns a Limiter for cfg.
func New(cfg Config) *Limiter {
	cfg.Max = max(cfg.Max, 1)
	if cfg.BusyIdle <= 0 {
		cfg.BusyIdle = DefaultBusyIdle
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Limiter{
		cfg: cfg, high: max(1, cfg.Max*3/4), byAddr: map[string]int{},
		wake: make(chan struct{}, 1), refusing: make(chan struct{}, maxRefusing),
	}
}

// DefaultMax is the default total cap for a process whose open-files limit
// is nofile: a quarter of the limit, at least 64 descriptors, stays free for
// camd's files, the refusals in progress and the resolver, and the cap never
// exceeds 256. An idle connection costs camd about 23 KiB (measured: its
// read and write buffers and its goroutine's stack), so 256 take about
// 6 MiB, which a cam with 64-128 MiB beside video can spare; its clients (a
// phone, a browser's six, a few dozen devices) need far fewer.
func DefaultMax(nofile uint64) int {
	const ceiling = 256
	if nofile > 1<<20 {
		nofile = 1 << 20
	}
	n := int(nofile)
	return max(1, min(ceiling, n-max(64, n/4)))
}

// Stats are counters since the Limiter was made.
type Stats struct {
	Held       int   // connections held now
	PerAddr    int64 // refused for their address's cap
	Full       int64 // refused at the total cap, with none idle
	Evicted    int64 // idle connections closed to make room
	IdleClosed int64 // idle connections closed under pressure
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	held := l.total
	l.mu.Unlock()
	return Stats{Held: held, PerAddr: l.stats.perAddr.Load(), Full: l.stats.full.Load(),
		Evicted: l.stats.evicted.Load(), IdleClosed: l.stats.idleClosed.Load()}
}

// Listener wraps ln: its Accept applies the caps. Wrap the TCP listener
// itself, before TLS, so a refusal costs no handshake.
func (l *Limiter) Listener(ln net.Listener) net.Listener {
	cl := &listener{Listener: ln, l: l, done: make(chan struct{})}
	go l.janitor(cl.done)
	return cl
}

type listener struct {
	net.Listener
	l    *Limiter
	once sync.Once
	done chan struct{}
}

func (cl *listener) Accept() (net.Conn, error) {
	for {
		c, err := cl.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := cl.l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

func (cl *listener) Close() error {
	cl.once.Do(func() { close(cl.done) })
	return cl.Listener.Close()
}

// key is the address c counts against, and whether it is exempt.
func (l *Limiter) key(c net.Conn) (string, bool) {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String(), false
	}
	a := ap.Addr().Unmap().WithZone("")
	exempt := l.cfg.Exempt != nil && l.cfg.Exempt(a)
	if l.cfg.Key != nil {
		return l.cfg.Key(a), exempt
	}
	return a.String(), exempt
}

// admit counts c in, or refuses it and returns nil.
func (l *Limiter) admit(c net.Conn) *Conn {
	key, exempt := l.key(c)
	l.mu.Lock()
	if !exempt && l.cfg.PerAddr > 0 && l.byAddr[key] >= l.cfg.PerAddr {
		l.mu.Unlock()
		l.stats.perAddr.Add(1)
		l.refuse(c, PerAddr, key)
		return nil
	}
	var victim *Conn
	if l.total >= l.cfg.Max {
		front := l.idleHead
		if front == nil {
			l.mu.Unlock()
			l.stats.full.Add(1)
			l.refuse(c, Full, key)
			return nil
		}
		// The new connection takes the oldest idle one's place at once,
		// so the count never passes Max.
		victim = front
		l.removeIdle(victim)
		l.releaseLocked(victim)
	}
	lc := &Conn{Conn: c, l: l, key: key}
	l.total++
	l.byAddr[key]++
	if l.total >= l.high {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	l.mu.Unlock()
	if victim != nil {
		l.stats.evicted.Add(1)
		victim.Conn.Close()
	}
	return lc
}

// releaseLocked takes c out of the counts, once.
func (l *Limiter) releaseLocked(c *Conn) {
	if c.released {
		return
	}
	c.released = true
	l.total--
	if n := l.byAddr[c.key] - 1; n > 0 {
		l.byAddr[c.key] = n
	} else {
		delete(l.byAddr, c.key)
	}
}

// refuse answers c with the refusal, if any, and closes it. The answer is
// followed by a half-close and a short drain, so that the client's unread
// request does not turn the close into a reset that destroys the answer.
func (l *Limiter) refuse(c net.Conn, why Reason, key string) {
	if now := time.Now().Unix(); l.lastLog.Swap(now) != now {
		l.cfg.Log.Warn("refused a connection", "reason", why.String(), "addr", key, "held", l.Stats().Held,
			"refused_per_addr", l.stats.perAddr.Load(), "refused_full", l.stats.full.Load())
	}
	var msg []byte
	if l.cfg.Refusal != nil {
		msg = l.cfg.Refusal(why)
	}
	if msg == nil {
		c.Close()
		return
	}
	select {
	case l.refusing <- struct{}{}:
	default:
		c.Close() // too many refusals in progress already
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(refuseLinger))
		if _, err := c.Write(msg); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

func (r Reason) String() string {
	switch r {
	case PerAddr:
		return "too many connections from this address"
	case Full:
		return "too many connections"
	}
	return "unknown"
}

// janitor closes connections idle for BusyIdle while the total is at or
// above the pressure mark, and sleeps otherwise.
func (l *Limiter) janitor(done <-chan struct{}) {
	tick := max(l.cfg.BusyIdle/4, 10*time.Millisecond)
	for {
		select {
		case <-done:
			return
		case <-l.wake:
		}
		t := time.NewTicker(tick)
		for l.closeIdle() {
			select {
			case <-done:
				t.Stop()
				return
			case <-t.C:
			}
		}
		t.Stop()
	}
}

// closeIdle closes the connections idle for BusyIdle, oldest first, while
// the total is at or above the pressure mark. It reports whether the
// pressure lasts.
func (l *Limiter) closeIdle() bool {
	var victims []*Conn
	l.mu.Lock()
	cutoff := time.Now().Add(-l.cfg.BusyIdle)
	for l.total >= l.high {
		c := l.idleHead
		if c == nil || c.idleSince.After(cutoff) {
			break
		}
		l.removeIdle(c)
		l.releaseLocked(c)
		victims = append(victims, c)
	}
	busy := l.total >= l.high
	l.mu.Unlock()
	for _, c := range victims {
		l.stats.idleClosed.Add(1)
		c.Conn.Close()
	}
	return busy
}

// ConnState is the http.Server ConnState hook: it tells the Limiter which
// connections are idle. c may be the Conn that Accept returned or a
// *tls.Conn (or any wrapper with NetConn) around one.
func (l *Limiter) ConnState(c net.Conn, state http.ConnState) {
	lc := unwrap(c)
	if lc == nil || lc.l != l {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.removeIdle(lc)
	// A new connection that has sent nothing yet is as evictable as an
	// idle one: closing it loses no request, and otherwise a few addresses
	// could hold every place with silent connections, reopened as the
	// header timeout closes them.
	if (state == http.StateIdle || state == http.StateNew) && !lc.released {
		lc.idleSince = time.Now()
		l.pushIdle(lc)
	}
}

// pushIdle puts c at the back of the idle list. Callers hold l.mu.
func (l *Limiter) pushIdle(c *Conn) {
	c.prev, c.next, c.idle = l.idleTail, nil, true
	if l.idleTail != nil {
		l.idleTail.next = c
	} else {
		l.idleHead = c
	}
	l.idleTail = c
}

// removeIdle takes c out of the idle list if it is there. Callers hold l.mu.
func (l *Limiter) removeIdle(c *Conn) {
	if !c.idle {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.idleHead = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.idleTail = c.prev
	}
	c.prev, c.next, c.idle = nil, nil, false
}

func unwrap(c net.Conn) *Conn {
	for range 8 {
		switch v := c.(type) {
		case *Conn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// Conn is a connection the Limiter counts until it is closed.
type Conn struct {
	net.Conn
	l   *Limiter
	key string
	// Guarded by l.mu.
	released   bool
	idle       bool  // in the Limiter's idle list
	prev, next *Conn // its neighbours there
	idleSince  time.Time
}

// Close closes the connection and frees its place.
func (c *Conn) Close() error {
	c.l.mu.Lock()
	c.l.removeIdle(c)
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite half-closes the connection when the one beneath can, as
// net/http does after some error answers so the client reads them.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// NetConn returns the connection beneath.
func (c *Conn) NetConn() net.Conn { return c.Conn }
