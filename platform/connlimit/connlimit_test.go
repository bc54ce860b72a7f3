package connlimit

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

func TestDefaultMax(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{0, 1},
		{64, 1},
		{128, 64},
		{256, 192},
		{1024, 256},
		{4096, 256},
		{1 << 40, 256},
	} {
		if got := DefaultMax(tc.nofile); got != tc.want {
			t.Errorf("DefaultMax(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
	}
}

type fakeAddrConn struct {
	net.Conn
	addr string
}

func (c fakeAddrConn) RemoteAddr() net.Addr { return fakeAddr(c.addr) }

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

func TestKey(t *testing.T) {
	// A /64 as one client, as camd's lockout.KeyAddr counts them.
	v6by64 := func(a netip.Addr) string {
		if a.Is6() {
			p, _ := a.Prefix(64)
			return p.String()
		}
		return a.String()
	}
	l := New(Config{Max: 1, Key: v6by64, Exempt: func(a netip.Addr) bool { return a == netip.MustParseAddr("10.0.0.1") }})
	for _, tc := range []struct {
		remote, want string
		exempt       bool
	}{
		{"192.0.2.1:1234", "192.0.2.1", false},
		{"[::ffff:192.0.2.1]:1234", "192.0.2.1", false},
		{"10.0.0.1:80", "10.0.0.1", true},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64", false},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64", false},
		{"[fe80::1%eth0]:443", "fe80::/64", false},
		{"@unix", "@unix", false},
	} {
		key, exempt := l.key(fakeAddrConn{addr: tc.remote})
		if key != tc.want || exempt != tc.exempt {
			t.Errorf("key(%s) = %q, %v; want %q, %v", tc.remote, key, exempt, tc.want, tc.exempt)
		}
	}
}

// server serves l's caps on loopback with a handler answering "ok", and
// returns its address.
func server(t *testing.T, cfg Config) (*Limiter, string) {
	t.Helper()
	l := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ConnState: l.ConnState,
	}
	go srv.Serve(l.Listener(ln))
	t.Cleanup(func() { srv.Close() })
	return l, ln.Addr().String()
}

// client is one keep-alive connection from a loopback source address.
type client struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, src, addr string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c, bufio.NewReader(c)}
}

// get makes one request and returns the status, or 0 and the error when the
// connection failed.
func (c *client) get() (int, string, error) {
	c.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return 0, "", err
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(b), err
}

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("not within 5s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func refusal(r Reason) []byte {
	body := r.String()
	return []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body)
}

// TestPerAddr: an address past its cap is refused at once, with the
// refusal, while another address is served; closing a connection frees its
// place; an exempt address has no per-address cap.
func TestPerAddr(t *testing.T) {
	l, addr := server(t, Config{Max: 10, PerAddr: 2, Refusal: refusal,
		Exempt: func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.30") }})
	a1, a2 := dial(t, "127.0.0.20", addr), dial(t, "127.0.0.20", addr)
	for _, c := range []*client{a1, a2} {
		if st, _, err := c.get(); st != 200 {
			t.Fatalf("within the cap: %d %v", st, err)
		}
	}
	st, body, err := dial(t, "127.0.0.20", addr).get()
	if st != http.StatusTooManyRequests || body != PerAddr.String() {
		t.Errorf("third connection from one address: %d %q %v, want the refusal", st, body, err)
	}
	if st, _, err := dial(t, "127.0.0.21", addr).get(); st != 200 {
		t.Errorf("another address: %d %v", st, err)
	}
	for range 3 {
		if st, _, err := dial(t, "127.0.0.30", addr).get(); st != 200 {
			t.Errorf("exempt address: %d %v", st, err)
		}
	}
	a1.c.Close()
	eventually(t, "the closed connection's place is freed", func() bool { return l.Stats().Held == 5 })
	if st, _, err := dial(t, "127.0.0.20", addr).get(); st != 200 {
		t.Errorf("after a close, the address is served again: %d %v", st, err)
	}
	if s := l.Stats(); s.PerAddr != 1 {
		t.Errorf("stats %+v, want one refusal per address", s)
	}
}

// TestFull: at the total cap a new connection takes the place of the one
// idle longest; with none idle it is refused.
func TestFull(t *testing.T) {
	l, addr := server(t, Config{Max: 2, Refusal: refusal, BusyIdle: time.Hour})
	a, b := dial(t, "127.0.0.20", addr), dial(t, "127.0.0.21", addr)
	a.get()
	b.get()
	eventually(t, "both idle", func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.idleLen() == 2 })
	c := dial(t, "127.0.0.22", addr)
	if st, _, err := c.get(); st != 200 {
		t.Fatalf("a new client at the cap: %d %v, want served", st, err)
	}
	if _, _, err := a.get(); err == nil {
		t.Errorf("the longest idle connection still works; want it closed for the new one")
	}
	if st, _, err := b.get(); st != 200 {
		t.Errorf("the younger idle connection: %d %v, want kept", st, err)
	}
	if s := l.Stats(); s.Held != 2 || s.Evicted != 1 {
		t.Errorf("stats %+v, want 2 held, 1 evicted", s)
	}

	// Connections that have sent nothing count as idle since they were
	// accepted: the oldest silent one makes room too.
	b.c.Close()
	c.c.Close()
	eventually(t, "closed", func() bool { return l.Stats().Held == 0 })
	n1 := dial(t, "127.0.0.23", addr)
	eventually(t, "the first silent connection held", func() bool { return l.Stats().Held == 1 })
	n2 := dial(t, "127.0.0.24", addr)
	eventually(t, "two silent connections held", func() bool { return l.Stats().Held == 2 })
	if st, _, err := dial(t, "127.0.0.25", addr).get(); st != 200 {
		t.Errorf("a new client beside two silent connections at the cap: %d %v, want served", st, err)
	}
	if _, _, err := n1.get(); err == nil {
		t.Errorf("the oldest silent connection still works; want it closed for the new one")
	}
	if st, _, err := n2.get(); st != 200 {
		t.Errorf("the younger silent connection: %d %v, want kept", st, err)
	}
}

// TestFullBusy: at the total cap with every connection in the middle of a
// request, a new one is refused at once.
func TestFullBusy(t *testing.T) {
	release := make(chan struct{})
	l := New(Config{Max: 2, Refusal: refusal, BusyIdle: time.Hour})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-release
			io.WriteString(w, "ok")
		}),
		ConnState: l.ConnState,
	}
	go srv.Serve(l.Listener(ln))
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()
	var busy []*client
	for i := range 2 {
		c := dial(t, "127.0.0."+strconv.Itoa(60+i), addr)
		c.c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c.c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		busy = append(busy, c)
	}
	eventually(t, "both in a request", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.total == 2 && l.idleLen() == 0
	})
	st, body, err := dial(t, "127.0.0.62", addr).get()
	if st != http.StatusTooManyRequests || body != Full.String() {
		t.Errorf("at the cap with none idle: %d %q %v, want the refusal", st, body, err)
	}
	close(release)
	for _, c := range busy {
		res, err := http.ReadResponse(c.br, nil)
		if err != nil || res.StatusCode != 200 {
			t.Errorf("a connection in a request: %v %v, want it answered", res, err)
		}
	}
}

// TestPressure: at three quarters of the cap, connections idle for BusyIdle
// are closed, oldest first, until the pressure ends; below it they stay.
func TestPressure(t *testing.T) {
	l, addr := server(t, Config{Max: 8, BusyIdle: 50 * time.Millisecond})
	var cs []*client
	for i := range 5 {
		c := dial(t, "127.0.0."+strconv.Itoa(40+i), addr)
		if st, _, err := c.get(); st != 200 {
			t.Fatal(st, err)
		}
		cs = append(cs, c)
	}
	time.Sleep(200 * time.Millisecond)
	if s := l.Stats(); s.Held != 5 || s.IdleClosed != 0 {
		t.Fatalf("below the mark of 6: %+v, want all 5 kept", s)
	}
	cs = append(cs, dial(t, "127.0.0.50", addr)) // the sixth: pressure
	eventually(t, "idle ones closed down to below the mark", func() bool { return l.Stats().Held == 5 })
	if _, _, err := cs[0].get(); err == nil {
		t.Errorf("the oldest idle connection survived the pressure")
	}
	for _, c := range cs[1:] {
		if st, _, err := c.get(); st != 200 {
			t.Errorf("connection beyond the first closed too: %d %v", st, err)
		}
	}
}

// TestTLS: the Limiter wraps the TCP listener beneath TLS, and still sees
// the TLS connections' states through NetConn.
func TestTLS(t *testing.T) {
	l := New(Config{Max: 1, BusyIdle: time.Hour})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ConnState = l.ConnState
	srv.Listener = l.Listener(srv.Listener)
	srv.StartTLS()
	defer srv.Close()
	get := func() error {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // the test's own certificate
		defer tr.CloseIdleConnections()
		res, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(srv.URL)
		if err != nil {
			return err
		}
		res.Body.Close()
		return nil
	}
	first := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer first.CloseIdleConnections()
	if res, err := (&http.Client{Transport: first}).Get(srv.URL); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, res.Body) // read to the end, so the connection stays open
		res.Body.Close()
	}
	eventually(t, "the TLS connection is seen idle", func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.idleLen() == 1 })
	if err := get(); err != nil {
		t.Errorf("a second client at a cap of one: %v, want the idle TLS connection closed for it", err)
	}
	if s := l.Stats(); s.Evicted != 1 {
		t.Errorf("stats %+v, want one eviction", s)
	}
}

// idleLen counts the idle list, walking it both ways so that a broken link
// shows as a wrong count. Callers hold l.mu.
func (l *Limiter) idleLen() int {
	n, back := 0, 0
	for c := l.idleHead; c != nil; c = c.next {
		n++
	}
	for c := l.idleTail; c != nil; c = c.prev {
		back++
	}
	if n != back {
		return -1
	}
	return n
}
