package app

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"

	"camd/apierr"
	"camd/config"
	"camd/platform/connlimit"
)

// newConnLimiter builds the connection caps from cfg: --max-conns, or one
// derived from the open-files limit, and --max-conns-per-addr, from which
// trusted proxies are exempt as they carry many clients. Over plain HTTP a
// refused connection gets a JSON 429 or 503; over TLS it is closed.
func newConnLimiter(cfg config.Config, tls bool, key func(netip.Addr) string, log *slog.Logger) *connlimit.Limiter {
	nofile := fileLimit()
	maxConns := cfg.MaxConns
	if maxConns == 0 {
		maxConns = connlimit.DefaultMax(nofile)
	} else if uint64(maxConns)+64 > nofile {
		log.Warn("--max-conns leaves fewer than 64 of the open-files limit for camd's own files; new connections may fail with EMFILE",
			"max_conns", maxConns, "nofile", nofile)
	}
	proxies := cfg.Proxies()
	c := connlimit.Config{
		Max:     maxConns,
		PerAddr: cfg.MaxConnsPerAddr,
		Key:     key, // one client, as the lockout counts them
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
		perAddr := connRefusal(apierr.TooManyConnections, connlimit.PerAddr.String())
		full := connRefusal(apierr.Busy, connlimit.Full.String())
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
func connRefusal(code apierr.Code, msg string) []byte {
	status := code.Status()
	js, _ := json.Marshal(apierr.Body{Error: msg, Code: code}) // a struct of two strings
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
