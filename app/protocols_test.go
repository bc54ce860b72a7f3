package app_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"camd/config"
)

// TestHTTP1Only: over TLS camd answers HTTP/1.1 however the client asks.
// It never agrees to HTTP/2 in the handshake, and Go's client, which uses
// HTTP/2 wherever a server offers it, gets HTTP/1.1 answers.
func TestHTTP1Only(t *testing.T) {
	s := startServer(t, "", serverOpts{cfg: func(c *config.Config) { c.TLS = "auto" }})
	host := strings.TrimPrefix(s.URL, "http://")
	conf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}

	conn, err := tls.Dial("tcp", host, conf)
	if err != nil {
		t.Fatal(err)
	}
	if p := conn.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("ALPN with h2 offered first: camd chose %q, want http/1.1", p)
	}
	conn.Close()

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	res, err := client.Get("https://" + host + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Proto != "HTTP/1.1" {
		t.Errorf("GET /healthz over TLS: %d %s, want 200 over HTTP/1.1", res.StatusCode, res.Proto)
	}
}
