package app_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"camd/apierr"
	"camd/config"
)

// TestConnCaps: past --max-conns-per-addr an address is answered at once
// with a JSON 429 too_many_connections and Retry-After, before any request
// is read, while another address is served, and Go's own canned errors
// still pass through the caps. (They used to be rewritten as JSON on plain
// HTTP; now they are net/http's text/plain over HTTP and HTTPS alike.)
func TestConnCaps(t *testing.T) {
	s := startServer(t, "", serverOpts{cfg: func(c *config.Config) { c.MaxConnsPerAddr = 2 }})
	addr := strings.TrimPrefix(s.URL, "http://")
	dial := func(src string) (net.Conn, *bufio.Reader) {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c, bufio.NewReader(c)
	}
	get := func(src, req string) (*http.Response, string) {
		t.Helper()
		c, br := dial(src)
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	healthz := "GET /healthz HTTP/1.1\r\nHost: cam\r\n\r\n"
	for _, tc := range []struct {
		name, src, req string
		status         int
		body           string      // the JSON error, or net/http's text/plain one; "" for none
		code           apierr.Code // the JSON error's code; "" for net/http's text/plain
		retryAfter     string
	}{
		{"first from an address", "127.0.0.20", healthz, 200, "", "", ""},
		{"second from it", "127.0.0.20", healthz, 200, "", "", ""},
		{"third from it", "127.0.0.20", healthz, 429, "too many connections from this address", apierr.TooManyConnections, "1"},
		{"another address", "127.0.0.21", healthz, 200, "", "", ""},
		{"canned 400 through the caps", "127.0.0.21", "GET /healthz HTTP/1.1\r\n\r\n", 400, "400 Bad Request: missing required Host header", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := get(tc.src, tc.req)
			if res.StatusCode != tc.status || res.Header.Get("Retry-After") != tc.retryAfter {
				t.Fatalf("%d Retry-After %q %s, want %d %q", res.StatusCode, res.Header.Get("Retry-After"), body, tc.status, tc.retryAfter)
			}
			switch {
			case tc.body == "":
				return
			case tc.code == "":
				checkPlain(t, rawAnswer{res.StatusCode, res.Header, []byte(body), res.Close})
				if body != tc.body {
					t.Errorf("body %q, want net/http's %q", body, tc.body)
				}
				return
			}
			var e struct{ Error, Code string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != tc.body || res.Header.Get("Content-Type") != "application/json" || !res.Close {
				t.Errorf("answer %q %q close=%v, want the JSON error %q, closing", res.Header.Get("Content-Type"), body, res.Close, tc.body)
			}
			if e.Code != string(tc.code) {
				t.Errorf("code %q, want %q; body %s", e.Code, tc.code, body)
			}
		})
	}
}
