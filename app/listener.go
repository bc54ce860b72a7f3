package app

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"camd/config"
	"camd/lockout"
	"camd/platform/connlimit"
)

// newConnLimiter builds the connection caps from cfg: --max-conns, or one
// derived from the open-files limit, and --max-conns-per-addr, from which
// trusted proxies are exempt as they carry many clients. Over plain HTTP a
// refused connection gets a JSON 429 or 503; over TLS it is closed.
func newConnLimiter(cfg config.Config, tls bool, log *slog.Logger) *connlimit.Limiter {
	nofile := fileLimit()
	maxConns := cfg.MaxConns
	if maxConns == 0 {
		maxConns = connlimit.DefaultMax(nofile)
	} else if uint64(maxConns)+64 > nofile {
		log.Warn("--max-conns leaves fewer than 64 of the open-files limit for camd's own files; new connections may fail with EMFILE",
			"max_conns", maxConns, "nofile", nofile)
	}
	proxies, prefix := cfg.Proxies(), cfg.LockoutPrefix()
	c := connlimit.Config{
		Max:     maxConns,
		PerAddr: cfg.MaxConnsPerAddr,
		Key:     func(a netip.Addr) string { return lockout.KeyAddr(a, prefix) }, // one client, as the lockout counts them
		Exempt: func(a netip.Addr) bool {
			ip := net.IP(a.AsSlice())
			for _, n := range proxies {
				if n.Contains(ip) {
					return true
				}
			}
			return false
		},
		Log: log.With("module", "conns"),
	}
	if !tls {
		perAddr := connRefusal(http.StatusTooManyRequests, connlimit.PerAddr.String())
		full := connRefusal(http.StatusServiceUnavailable, connlimit.Full.String())
		c.Refusal = func(r connlimit.Reason) []byte {
			if r == connlimit.PerAddr {
				return perAddr
			}
			return full
		}
	}
	log.Info("connection caps", "max_conns", maxConns, "max_conns_per_addr", cfg.MaxConnsPerAddr, "nofile", nofile)
	return connlimit.New(c)
}

// fileLimit is the open-files soft limit, which the Go runtime has raised
// to the hard one at start; 1024, the usual default, if it cannot be read.
func fileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == 0 {
		return 1024
	}
	return lim.Cur
}

// connRefusal is the whole answer to a connection refused before any request
// was read, in camd's error shape, asking the client to come back later.
func connRefusal(status int, msg string) []byte {
	js, _ := json.Marshal(errorBody{Error: msg}) // a struct of one string
	js = append(js, '\n')
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	b.WriteString("Content-Type: application/json\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(js)) + "\r\n")
	b.WriteString("Connection: close\r\n")
	b.WriteString("Retry-After: 1\r\n")
	b.WriteString("X-Content-Type-Options: nosniff\r\n\r\n")
	b.Write(js)
	return b.Bytes()
}

// Go's net/http answers a few bad requests itself, before any handler runs:
// headers over MaxHeaderBytes (431), a malformed request line or header
// (400), an unsupported HTTP version (505) or transfer coding (501). It
// writes each as one canned text/plain answer straight to the connection,
// in exactly this shape:
//
//	HTTP/1.1 <code> <text><cannedHeaders><text>
//
// camd promises one error shape, so jsonErrors rewrites exactly that shape
// into the JSON one. Nothing else matches it: every answer that goes
// through a handler carries a Date header after Content-Type and
// Connection, and the canned one carries none.
const cannedHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// jsonErrors wraps ln so that Go's canned error answers come out as JSON.
// It is for plain HTTP only: over TLS the canned answers are written to the
// *tls.Conn that net/http makes itself, out of a listener's reach.
func jsonErrors(ln net.Listener) net.Listener { return jsonErrorListener{ln} }

type jsonErrorListener struct{ net.Listener }

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		// closeWriter keeps net/http's half-close after a 431, which lets
		// the client read the answer before the connection goes.
		return jsonErrorTCPConn{tc}, nil
	}
	return jsonErrorConn{c}, nil
}

type jsonErrorConn struct{ net.Conn }

func (c jsonErrorConn) Write(p []byte) (int, error) { return writeRewritten(c.Conn, p) }

type jsonErrorTCPConn struct{ *net.TCPConn }

func (c jsonErrorTCPConn) Write(p []byte) (int, error) { return writeRewritten(c.TCPConn, p) }

// writeRewritten writes p to c, or its JSON form when p is a canned answer.
// It reports len(p) written on success, as the caller wrote p.
func writeRewritten(c net.Conn, p []byte) (int, error) {
	out, ok := rewriteCanned(p)
	if !ok {
		return c.Write(p)
	}
	if _, err := c.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// rewriteCanned returns the JSON form of a canned answer, and false for
// anything else. The check costs a scan of the status line: every response
// passes through here.
func rewriteCanned(p []byte) ([]byte, bool) {
	const proto = "HTTP/1.1 "
	if !bytes.HasPrefix(p, []byte(proto)) {
		return nil, false
	}
	// The status line is short; a canned answer is a few dozen bytes more.
	end := bytes.IndexByte(p[:min(len(p), 256)], '\r')
	if end < 0 || !bytes.HasPrefix(p[end:], []byte(cannedHeaders)) {
		return nil, false
	}
	status := string(p[len(proto):end]) // "431 Request Header Fields Too Large"
	body := string(p[end+len(cannedHeaders):])
	if strings.ContainsAny(body, "\r\n") {
		return nil, false
	}
	code, text, ok := strings.Cut(status, " ")
	if n, err := strconv.Atoi(code); !ok || text == "" || err != nil || n < 400 || n > 599 {
		return nil, false
	}
	// In the lower case of camd's other messages, keeping Go's detail:
	// "400 Bad Request: missing required Host header" becomes "bad
	// request: missing required Host header". The 501 says why in its body.
	reason, detail, _ := strings.Cut(text, ": ")
	msg := strings.ToLower(reason)
	if detail != "" {
		msg += ": " + detail
	} else if body != "" && !strings.HasPrefix(body, code) {
		msg += ": " + strings.ToLower(body)
	}
	js, err := json.Marshal(errorBody{Error: msg})
	if err != nil {
		return nil, false
	}
	js = append(js, '\n')
	// The status line stays Go's own; the answer still closes the
	// connection, as net/http closes it right after.
	var b bytes.Buffer
	b.WriteString(proto + status + "\r\n")
	b.WriteString("Content-Type: application/json\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(js)) + "\r\n")
	b.WriteString("Connection: close\r\n")
	b.WriteString("X-Content-Type-Options: nosniff\r\n\r\n")
	b.Write(js)
	return b.Bytes(), true
}
