package cli

import (
	"crypto/tls"
	"fmt"
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
// with a 200.
func checkHealth(cfg config.Config) error {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("healthcheck: listen address %q: %w", cfg.Listen, err)
	}
	// A wildcard listener is reached on loopback.
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme, transport := "http", http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLS != "" && cfg.TLS != "off" {
		// The probe sends nothing secret and talks to this host; the
		// certificate is self-signed and pinned by real clients.
		scheme = "https"
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	client := &http.Client{Timeout: 3 * time.Second, Transport: transport}
	url := scheme + "://" + net.JoinHostPort(host, port) + "/healthz"
	res, err := client.Get(url)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", url, res.Status)
	}
	return nil
}
