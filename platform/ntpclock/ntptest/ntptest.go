// Package ntptest runs a fake NTPv4 server on 127.0.0.1 whose answers a test
// controls: wrong time, kiss-of-death, bad stratum, leap alarm, or silence.
// It speaks the real wire format over real UDP, so the client under test is
// exercised exactly as against a real server.
package ntptest

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Behaviour is how the server answers.
type Behaviour struct {
	Silent         bool          // read queries and never answer
	Offset         time.Duration // the server's clock is real time plus Offset
	Stratum        uint8         // 0 with KissCode means kiss-of-death; default 2
	KissCode       string        // such as "RATE" or "DENY", sent as the reference ID with stratum 0
	Leap           uint8         // 3 means "clock not synchronised"
	RootDelay      time.Duration // default 10 ms
	RootDispersion time.Duration // default 10 ms
}

// Server is a fake NTP server.
type Server struct {
	Addr    string // 127.0.0.1:port
	conn    *net.UDPConn
	mu      sync.Mutex
	b       Behaviour
	queries atomic.Int64
	done    chan struct{}
}

// Start runs a server until the test ends.
func Start(tb testing.TB, b Behaviour) *Server {
	tb.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatalf("ntptest: %v", err)
	}
	s := &Server{Addr: conn.LocalAddr().String(), conn: conn, b: b, done: make(chan struct{})}
	go s.serve()
	tb.Cleanup(s.Close)
	return s
}

// Set changes how the server answers from the next query on.
func (s *Server) Set(b Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = b
}

// Queries returns how many queries the server has received.
func (s *Server) Queries() int { return int(s.queries.Load()) }

// Close stops the server.
func (s *Server) Close() {
	select {
	case <-s.done:
	default:
		s.conn.Close()
		<-s.done
	}
}

func (s *Server) serve() {
	defer close(s.done)
	buf := make([]byte, 512)
	for {
		n, peer, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if n < 48 {
			continue
		}
		s.queries.Add(1)
		s.mu.Lock()
		b := s.b
		s.mu.Unlock()
		if b.Silent {
			continue
		}
		s.conn.WriteToUDP(reply(buf[:48], b, time.Now().Add(b.Offset)), peer)
	}
}

// reply builds an NTPv4 server packet (RFC 5905 figure 8) for request req.
func reply(req []byte, b Behaviour, now time.Time) []byte {
	stratum := b.Stratum
	if stratum == 0 && b.KissCode == "" {
		stratum = 2
	}
	rootDelay, rootDisp := b.RootDelay, b.RootDispersion
	if rootDelay == 0 {
		rootDelay = 10 * time.Millisecond
	}
	if rootDisp == 0 {
		rootDisp = 10 * time.Millisecond
	}
	p := make([]byte, 48)
	p[0] = b.Leap<<6 | 4<<3 | 4 // LI, version 4, mode 4 (server)
	p[1] = stratum
	p[2] = 6    // poll 64 s
	p[3] = 0xEC // precision 2^-20 s
	binary.BigEndian.PutUint32(p[4:], shortFormat(rootDelay))
	binary.BigEndian.PutUint32(p[8:], shortFormat(rootDisp))
	refID := "LOCL"
	if b.KissCode != "" {
		refID = b.KissCode
	}
	copy(p[12:16], refID)
	binary.BigEndian.PutUint64(p[16:], timestamp(now.Add(-time.Second))) // reference
	copy(p[24:32], req[40:48])                                           // origin: the client's transmit
	binary.BigEndian.PutUint64(p[32:], timestamp(now))                   // receive
	binary.BigEndian.PutUint64(p[40:], timestamp(now))                   // transmit
	return p
}

// ntpEpoch is 1900-01-01, where NTP timestamps start.
func ntpEpoch() time.Time { return time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC) }

// timestamp is t in NTP's 32.32 fixed point, seconds modulo 2^32 (clients
// infer the era, so 2036 and later wrap as on the wire).
func timestamp(t time.Time) uint64 {
	d := t.Sub(ntpEpoch()) // saturates near 2192; fine for tests
	sec := uint64(d / time.Second)
	frac := uint64(d%time.Second) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

// shortFormat is d in NTP's 16.16 fixed point.
func shortFormat(d time.Duration) uint32 {
	return uint32(d * (1 << 16) / time.Second)
}
