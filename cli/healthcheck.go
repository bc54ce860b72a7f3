package cli

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"camd/config"
)

// healthcheck asks the local server's /healthz, for container HEALTHCHECKs
// in an image with no shell or curl: exit 0 on a 200.
func healthcheck(args []string, opts Options) int {
	cfg, code := parse("healthcheck", args, opts)
	if code >= 0 {
		return code
	}
	if err := checkHealth(cfg); err != nil {
		fmt.Fprintln(opts.Stderr, err)
		return exitFailure
	}
	return exitOK
}

// checkHealth returns nil when the server cfg describes answers /healthz
// with a 200. It writes one HTTP/1.1 request itself rather than use an
// http.Client: the client's Transport, with its HTTP/2 half and proxy
// handling, would add some 0.4 MiB to a binary that otherwise only serves.
func checkHealth(cfg config.Config) error {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("healthcheck: listen address %q: %w", cfg.Listen, err)
	}
	// A wildcard listener is reached on loopback.
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, port)
	url := "http://" + addr + "/healthz"
	deadline := time.Now().Add(3 * time.Second)
	dialer := &net.Dialer{Deadline: deadline}
	var conn net.Conn
	if cfg.TLS != "" && cfg.TLS != "off" {
		// The probe sends nothing secret and talks to this host; the
		// certificate is self-signed and pinned by real clients.
		url = "https://" + addr + "/healthz"
		conn, err = tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		conn, err = dialer.Dial("tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	req := "GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: camd-healthcheck\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return fmt.Errorf("healthcheck: %s: %w", url, err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %s: %w", url, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", url, res.Status)
	}
	return nil
}
