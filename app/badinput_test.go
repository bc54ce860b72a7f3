package app_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"camd/apierr"
	"camd/app"
	"camd/config"
	"camd/internal/testlog"
)

// badRequest is one malformed request, sent as raw bytes on its own
// connection so that nothing between the test and camd tidies it up.
type badRequest struct {
	name string
	// wire is the request as sent. In it, {host}, {bearer} and {basic}
	// stand for the server's address, "Bearer <owner token>" and "Basic
	// <owner credentials>".
	wire string
	// body is sent after wire; stream sends it, or endless chunks, in the
	// background while the answer is read, as a client that never stops
	// would.
	body   []byte
	stream bool
	// halfClose ends the client's side after the bytes, so a body shorter
	// than its Content-Length ends in EOF rather than a timeout.
	halfClose bool
	status    int
	// code is the JSON error's code. plain instead marks a request that
	// Go's HTTP server refuses itself, before any handler runs: its answer
	// is net/http's text/plain, which camd no longer rewrites (the same
	// over HTTP and HTTPS; the OpenAPI document says so).
	code  apierr.Code
	plain bool
}

// request builds the wire form of a request with a Host header and, when
// body is not empty, a Content-Length.
func request(method, target string, headers []string, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: {host}\r\n", method, target)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	return b.String()
}

// Header shorthands for the rows.
var (
	asJSON   = []string{"Content-Type: application/json"}
	asText   = []string{"Content-Type: text/plain"}
	asForm   = []string{"Content-Type: application/x-www-form-urlencoded"}
	asBearer = []string{"Authorization: {bearer}", "Content-Type: application/json"}
	asAdmin  = []string{"Authorization: {basic}", "Content-Type: application/json"}
	noCT     = []string{"Authorization: {basic}"}
	// asPage is the admin page's own form post, as a current browser sends it.
	asPage  = []string{"Authorization: {basic}", "Content-Type: application/x-www-form-urlencoded", "Sec-Fetch-Site: same-origin"}
	tokNoCT = []string{"Authorization: {bearer}"}
)

// sized returns a request line and headers for a body of n bytes, which is
// then streamed, so the test never holds it in one string twice.
func sized(method, target string, headers []string, n int) (string, []byte) {
	wire := request(method, target, append(headers, fmt.Sprintf("Content-Length: %d", n)), "")
	return wire, []byte(strings.Repeat("[", n))
}

func badRequests() []badRequest {
	tenMiB := 10 << 20
	deep := `{"user":` + strings.Repeat("[", 1500) + strings.Repeat("]", 1500) + `,"pass":"x"}`
	rows := []badRequest{
		// Bodies: login.
		{name: "login user of wrong type", wire: request("POST", "/api/login", asJSON, `{"user":1,"pass":"x"}`), status: 400, code: apierr.InvalidBody},
		{name: "login pass null", wire: request("POST", "/api/login", asJSON, `{"user":"owner","pass":null}`), status: 400, code: apierr.InvalidBody},
		{name: "login pass object", wire: request("POST", "/api/login", asJSON, `{"user":"owner","pass":{"$ne":""}}`), status: 400, code: apierr.InvalidBody},
		{name: "login duplicate keys", wire: request("POST", "/api/login", asJSON, `{"user":"owner","pass":"a","pass":"b"}`), status: 400, code: apierr.InvalidBody},
		{name: "login top-level array", wire: request("POST", "/api/login", asJSON, `[{"user":"owner"}]`), status: 400, code: apierr.InvalidBody},
		{name: "login top-level string", wire: request("POST", "/api/login", asJSON, `"owner"`), status: 400, code: apierr.InvalidBody},
		{name: "login top-level null", wire: request("POST", "/api/login", asJSON, `null`), status: 400, code: apierr.InvalidBody},
		{name: "login truncated JSON", wire: request("POST", "/api/login", asJSON, `{"user":"owner","pass":`), status: 400, code: apierr.InvalidBody},
		{name: "login trailing data", wire: request("POST", "/api/login", asJSON, `{"user":"owner","pass":"x"} {}`), status: 400, code: apierr.InvalidBody},
		{name: "login unquoted keys", wire: request("POST", "/api/login", asJSON, `{user:"owner"}`), status: 400, code: apierr.InvalidBody},
		{name: "login byte order mark", wire: request("POST", "/api/login", asJSON, "\ufeff{}"), status: 400, code: apierr.InvalidBody},
		{name: "login NUL bytes", wire: request("POST", "/api/login", asJSON, "{\"user\":\"owner\x00\"}"), status: 400, code: apierr.InvalidBody},
		{name: "login deep nesting under the limit", wire: request("POST", "/api/login", asJSON, deep), status: 400, code: apierr.InvalidBody},
		{name: "login wrong content type", wire: request("POST", "/api/login", asText, `{"user":"owner","pass":"x"}`), status: 415, code: apierr.UnsupportedMediaType},
		{name: "login form body", wire: request("POST", "/api/login", asForm, `user=owner&pass=x`), status: 415, code: apierr.UnsupportedMediaType},
		{name: "login missing content type", wire: request("POST", "/api/login", nil, `{"user":"owner","pass":"x"}`), status: 415, code: apierr.UnsupportedMediaType},
		{name: "login body shorter than Content-Length", wire: request("POST", "/api/login", append(asJSON, "Content-Length: 100"), "") + `{"user":`, halfClose: true, status: 400, code: apierr.InvalidBody},
		{name: "login bad chunk size", wire: request("POST", "/api/login", append(asJSON, "Transfer-Encoding: chunked"), "") + "zz\r\n{}\r\n0\r\n\r\n", status: 400, code: apierr.InvalidBody},
		{name: "login negative Content-Length", wire: request("POST", "/api/login", append(asJSON, "Content-Length: -1"), ""), status: 400, plain: true},
		{name: "login non-numeric Content-Length", wire: request("POST", "/api/login", append(asJSON, "Content-Length: abc"), ""), status: 400, plain: true},
		{name: "login two Content-Lengths", wire: request("POST", "/api/login", append(asJSON, "Content-Length: 2", "Content-Length: 3"), "") + "{}", status: 400, plain: true},

		// Bodies: ack.
		{name: "ack count string", wire: request("POST", "/api/ack", asBearer, `{"count":"3"}`), status: 400, code: apierr.InvalidBody},
		{name: "ack count negative", wire: request("POST", "/api/ack", asBearer, `{"count":-1}`), status: 400, code: apierr.InvalidBody},
		{name: "ack count fraction", wire: request("POST", "/api/ack", asBearer, `{"count":1.5}`), status: 400, code: apierr.InvalidBody},
		{name: "ack count exponent", wire: request("POST", "/api/ack", asBearer, `{"count":1e3}`), status: 400, code: apierr.InvalidBody},
		{name: "ack count over 2^53", wire: request("POST", "/api/ack", asBearer, `{"count":18446744073709551616}`), status: 400, code: apierr.InvalidBody},
		{name: "ack count array", wire: request("POST", "/api/ack", asBearer, `{"count":[1]}`), status: 400, code: apierr.InvalidBody},
		{name: "ack count missing", wire: request("POST", "/api/ack", asBearer, `{"n":1}`), status: 400, code: apierr.InvalidBody},
		{name: "ack duplicate keys", wire: request("POST", "/api/ack", asBearer, `{"count":1,"count":2}`), status: 400, code: apierr.InvalidBody},
		{name: "ack truncated JSON", wire: request("POST", "/api/ack", asBearer, `{"count":1`), status: 400, code: apierr.InvalidBody},
		{name: "ack top-level number", wire: request("POST", "/api/ack", asBearer, `1`), status: 400, code: apierr.InvalidBody},
		{name: "ack wrong content type", wire: request("POST", "/api/ack", append(tokNoCT, asText...), `{"count":1}`), status: 415, code: apierr.UnsupportedMediaType},
		{name: "ack missing content type", wire: request("POST", "/api/ack", tokNoCT, `{"count":1}`), status: 415, code: apierr.UnsupportedMediaType},
		{name: "ack without a token", wire: request("POST", "/api/ack", asJSON, `{"count":1}`), status: 401, code: apierr.MissingToken},
		{name: "ack token in the query", wire: request("GET", "/api/ack?access_token=x.y.z", nil, ""), status: 401, code: apierr.MissingToken},

		// Bodies: admin.
		{name: "client name of wrong type", wire: request("POST", "/admin/clients", asAdmin, `{"name":5}`), status: 400, code: apierr.InvalidBody},
		{name: "client scopes not an array", wire: request("POST", "/admin/clients", asAdmin, `{"name":"cam2","scopes":"ack"}`), status: 400, code: apierr.InvalidBody},
		{name: "client unknown scope", wire: request("POST", "/admin/clients", asAdmin, `{"name":"cam2","scopes":["root"]}`), status: 400, code: apierr.InvalidBody},
		{name: "client bad name", wire: request("POST", "/admin/clients", asAdmin, `{"name":"../../etc"}`), status: 400, code: apierr.InvalidBody},
		{name: "client duplicate keys", wire: request("POST", "/admin/clients", asAdmin, `{"name":"a","name":"b"}`), status: 400, code: apierr.InvalidBody},
		{name: "client form body", wire: request("POST", "/admin/clients", append(noCT, asForm...), `name=cam2`), status: 415, code: apierr.UnsupportedMediaType},
		{name: "client missing content type", wire: request("POST", "/admin/clients", noCT, `{"name":"cam2"}`), status: 415, code: apierr.UnsupportedMediaType},
		{name: "delete unknown client", wire: request("DELETE", "/admin/clients/nobody", noCT, ""), status: 404, code: apierr.NotFound},
		{name: "delete client encoded slash", wire: request("DELETE", "/admin/clients/a%2Fb", noCT, ""), status: 404, code: apierr.NotFound},
		{name: "password of wrong type", wire: request("POST", "/admin/password", asAdmin, `{"password":12345678901234}`), status: 400, code: apierr.InvalidBody},
		{name: "password too short", wire: request("POST", "/admin/password", asAdmin, `{"password":"abc"}`), status: 400, code: apierr.InvalidBody},
		{name: "password truncated JSON", wire: request("POST", "/admin/password", asAdmin, `{"password":"`), status: 400, code: apierr.InvalidBody},
		{name: "password text body", wire: request("POST", "/admin/password", append(noCT, asText...), `hunter22hunter22`), status: 415, code: apierr.UnsupportedMediaType},
		{name: "rotate secret text body", wire: request("POST", "/admin/rotate-secret", append(noCT, asText...), `now`), status: 415, code: apierr.UnsupportedMediaType},
		{name: "rotate secret without content type", wire: request("POST", "/admin/rotate-secret", noCT, ""), status: 415, code: apierr.UnsupportedMediaType},

		// The admin page's forms: refusals before any handler are JSON.
		{name: "page form as JSON", wire: request("POST", "/admin/ui/clients", asAdmin, `{"name":"x"}`), status: 415, code: apierr.UnsupportedMediaType},
		{name: "page form as multipart", wire: request("POST", "/admin/ui/rotate-secret", append(noCT, "Content-Type: multipart/form-data; boundary=b"), "--b--\r\n"), status: 415, code: apierr.UnsupportedMediaType},
		{name: "page form without CSRF token", wire: request("POST", "/admin/ui/clients", append(noCT, asForm...), "name=x"), status: 403, code: apierr.CSRF},
		{name: "page form cross-site", wire: request("POST", "/admin/ui/rotate-secret", append(noCT, append(asForm, "Sec-Fetch-Site: cross-site")...), "confirm=yes"), status: 403, code: apierr.CSRF},
		{name: "page form same-site", wire: request("POST", "/admin/ui/password", append(noCT, append(asForm, "Sec-Fetch-Site: same-site")...), "password=x"), status: 403, code: apierr.CSRF},
		{name: "page form Sec-Fetch-Site none", wire: request("POST", "/admin/ui/clients/x/revoke", append(noCT, append(asForm, "Sec-Fetch-Site: none")...), "_csrf=x"), status: 403, code: apierr.CSRF},
		// The CSRF check comes before the password: without the page's
		// signed token this is refused whatever its credentials.
		{name: "page form without token or credentials", wire: request("POST", "/admin/ui/clients", append(asForm, "Sec-Fetch-Site: same-origin"), "name=x"), status: 403, code: apierr.CSRF},
		{name: "page form over 4 KiB", wire: request("POST", "/admin/ui/clients", asPage, "name="+strings.Repeat("a", 5000)), status: 413, code: apierr.BodyTooLarge},
		{name: "page form bad percent-encoding", wire: request("POST", "/admin/ui/clients", asPage, "name=%zz"), status: 400, code: apierr.InvalidBody},
		{name: "page form shorter than Content-Length", wire: request("POST", "/admin/ui/rotate-secret", append(asPage, "Content-Length: 100"), "") + "confirm=yes", halfClose: true, status: 400, code: apierr.InvalidBody},
		{name: "GET page form", wire: request("GET", "/admin/ui/password", noCT, ""), status: 405, code: apierr.MethodNotAllowed},
		{name: "page without credentials", wire: request("GET", "/admin", []string{"Accept: text/html"}, ""), status: 401, code: apierr.MissingCredentials},
		{name: "POST stylesheet", wire: request("POST", "/admin/assets/admin.css", asForm, "x=1"), status: 405, code: apierr.MethodNotAllowed},
		{name: "stylesheet dot-dot to admin", wire: request("GET", "/admin/assets/../status", nil, ""), status: 404, code: apierr.NotFound},

		// Credentials in the wrong shape.
		{name: "admin without credentials", wire: request("GET", "/admin/status", nil, ""), status: 401, code: apierr.MissingCredentials},
		{name: "admin Basic not base64", wire: request("GET", "/admin/status", []string{"Authorization: Basic !!!"}, ""), status: 400, code: apierr.InvalidRequest},
		{name: "admin Basic without colon", wire: request("GET", "/admin/status", []string{"Authorization: Basic b3duZXI="}, ""), status: 401, code: apierr.InvalidCredentials},
		{name: "admin Bearer scheme", wire: request("GET", "/admin/clients", []string{"Authorization: {bearer}"}, ""), status: 401, code: apierr.MissingCredentials},
		{name: "healthz with garbage credentials", wire: request("POST", "/healthz", []string{"Authorization: Basic !!!"}, ""), status: 405, code: apierr.MethodNotAllowed},

		// Odd methods.
		{name: "PUT ack", wire: request("PUT", "/api/ack", asBearer, `{"count":1}`), status: 405, code: apierr.MethodNotAllowed},
		{name: "DELETE ack", wire: request("DELETE", "/api/ack", tokNoCT, ""), status: 405, code: apierr.MethodNotAllowed},
		{name: "unknown method on login", wire: request("FOO", "/api/login", asJSON, `{}`), status: 405, code: apierr.MethodNotAllowed},
		{name: "lower-case method", wire: request("post", "/api/login", asJSON, `{}`), status: 405, code: apierr.MethodNotAllowed},
		{name: "TRACE admin", wire: request("TRACE", "/admin", noCT, ""), status: 405, code: apierr.MethodNotAllowed},
		{name: "PATCH password", wire: request("PATCH", "/admin/password", asAdmin, `{}`), status: 405, code: apierr.MethodNotAllowed},
		{name: "GET rotate secret", wire: request("GET", "/admin/rotate-secret", noCT, ""), status: 405, code: apierr.MethodNotAllowed},
		{name: "PUT clients", wire: request("PUT", "/admin/clients", asAdmin, `{}`), status: 405, code: apierr.MethodNotAllowed},
		{name: "POST healthz", wire: request("POST", "/healthz", asJSON, `{}`), status: 405, code: apierr.MethodNotAllowed},
		{name: "POST openapi", wire: request("POST", "/openapi.yaml", asJSON, `{}`), status: 405, code: apierr.MethodNotAllowed},
		{name: "trailing slash on openapi", wire: request("GET", "/openapi.yaml/", nil, ""), status: 404, code: apierr.NotFound},
		{name: "openapi dot-dot to admin", wire: request("GET", "/openapi.yaml/../admin/status", nil, ""), status: 404, code: apierr.NotFound},

		// Path tricks: none may reach a route, least of all around its auth.
		{name: "dot-dot from admin to ack", wire: request("POST", "/admin/../api/ack", asBearer, `{"count":1}`), status: 404, code: apierr.NotFound},
		{name: "dot-dot to admin", wire: request("GET", "/api/../admin/status", nil, ""), status: 404, code: apierr.NotFound},
		{name: "encoded dot-dot", wire: request("GET", "/%2e%2e/admin/status", nil, ""), status: 404, code: apierr.NotFound},
		{name: "encoded slash", wire: request("POST", "/api%2Fack", asBearer, `{"count":1}`), status: 404, code: apierr.NotFound},
		{name: "trailing slash on ack", wire: request("POST", "/api/ack/", asBearer, `{"count":1}`), status: 404, code: apierr.NotFound},
		{name: "trailing slash on admin", wire: request("GET", "/admin/", nil, ""), status: 404, code: apierr.NotFound},
		{name: "double slash admin", wire: request("GET", "//admin", nil, ""), status: 404, code: apierr.NotFound},
		{name: "double slash inside", wire: request("GET", "/admin//status", nil, ""), status: 404, code: apierr.NotFound},
		{name: "upper-case path", wire: request("GET", "/ADMIN/status", nil, ""), status: 404, code: apierr.NotFound},
		{name: "semicolon parameter", wire: request("GET", "/admin;x=1/status", nil, ""), status: 404, code: apierr.NotFound},
		{name: "encoded NUL", wire: request("GET", "/admin%00", nil, ""), status: 404, code: apierr.NotFound},
		{name: "encoded space", wire: request("GET", "/healthz%20", nil, ""), status: 404, code: apierr.NotFound},
		{name: "absolute form with dot-dot", wire: request("GET", "http://{host}/healthz/../admin/status", nil, ""), status: 404, code: apierr.NotFound},
		{name: "asterisk target", wire: request("GET", "*", nil, ""), status: 404, code: apierr.NotFound},
		{name: "relative target", wire: request("GET", "admin", nil, ""), status: 400, plain: true},

		// Headers.
		{name: "one oversized header", wire: request("GET", "/healthz", []string{"X-Big: " + strings.Repeat("a", 16<<10)}, ""), status: 431, plain: true},
		{name: "many headers", wire: request("GET", "/healthz", manyHeaders(200), ""), status: 431, plain: true},
		{name: "oversized URL", wire: request("GET", "/healthz?"+strings.Repeat("a", 16<<10), nil, ""), status: 431, plain: true},
		{name: "oversized bearer token", wire: request("GET", "/api/ack", []string{"Authorization: Bearer " + strings.Repeat("a", 16<<10)}, ""), status: 431, plain: true},
		{name: "missing Host", wire: "GET /healthz HTTP/1.1\r\n\r\n", status: 400, plain: true},
		{name: "two Host headers", wire: "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400, plain: true},
		{name: "malformed Host", wire: "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400, plain: true},
		{name: "space in a header name", wire: request("GET", "/healthz", []string{"Bad Header: x"}, ""), status: 400, plain: true},
		{name: "header without colon", wire: request("GET", "/healthz", []string{"NoColonHere"}, ""), status: 400, plain: true},
		{name: "NUL in a header value", wire: request("GET", "/healthz", []string{"X-A: a\x00b"}, ""), status: 400, plain: true},
		{name: "garbage request line", wire: "HELLO\r\n\r\n", status: 400, plain: true},
		{name: "malformed HTTP version", wire: "GET /healthz HTTP/one\r\nHost: x\r\n\r\n", status: 400, plain: true},
	}

	// Bodies too big to keep: Content-Length says 10 MiB, and the body is
	// streamed for as long as camd reads it.
	for _, r := range []struct{ name, target string }{
		{"login 10 MiB body", "/api/login"},
		{"ack 10 MiB body", "/api/ack"},
		{"clients 10 MiB body", "/admin/clients"},
		{"password 10 MiB body", "/admin/password"},
		{"rotate secret 10 MiB body", "/admin/rotate-secret"},
		{"page form 10 MiB body", "/admin/ui/clients"},
	} {
		headers := asJSON
		switch {
		case strings.HasPrefix(r.target, "/admin/ui"):
			headers = asPage
		case strings.HasPrefix(r.target, "/admin"):
			headers = asAdmin
		case r.target == "/api/ack":
			headers = asBearer
		}
		wire, body := sized("POST", r.target, headers, tenMiB)
		rows = append(rows, badRequest{name: r.name, wire: wire, body: body, stream: true, status: 413, code: apierr.BodyTooLarge})
	}
	// A 10 MiB body without a Content-Length, chunked, and nesting far past
	// the limit: the limiter must count what it reads.
	rows = append(rows,
		badRequest{name: "ack 10 MiB chunked", wire: request("POST", "/api/ack", append(asBearer, "Transfer-Encoding: chunked"), ""),
			body: chunked(strings.Repeat("[", tenMiB)), stream: true, status: 413, code: apierr.BodyTooLarge},
		badRequest{name: "login deep nesting over the limit", wire: request("POST", "/api/login", append(asJSON, "Transfer-Encoding: chunked"), ""),
			body: chunked(strings.Repeat("[", 100000)), stream: true, status: 413, code: apierr.BodyTooLarge},
	)
	// Chunked bodies that never end: the server's ReadTimeout ends them
	// (badInputReadTimeout, not the 15 s a phone on a slow link gets).
	for _, target := range []string{"/api/login", "/api/ack", "/admin/password", "/admin/ui/rotate-secret"} {
		headers := asJSON
		switch target {
		case "/api/ack":
			headers = asBearer
		case "/admin/password":
			headers = asAdmin
		case "/admin/ui/rotate-secret":
			headers = asPage
		}
		rows = append(rows, badRequest{name: "endless chunked body to " + path.Base(target),
			wire:   request("POST", target, append(headers, "Transfer-Encoding: chunked"), ""),
			stream: true, status: 408, code: apierr.RequestTimeout})
	}
	return rows
}

func manyHeaders(n int) []string {
	h := make([]string, n)
	for i := range h {
		h[i] = fmt.Sprintf("X-Header-%03d: %s", i, strings.Repeat("v", 60))
	}
	return h
}

func chunked(s string) []byte {
	var b strings.Builder
	for len(s) > 0 {
		n := min(len(s), 32<<10)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, s[:n])
		s = s[n:]
	}
	b.WriteString("0\r\n\r\n")
	return []byte(b.String())
}

// badInputReadTimeout is TestBadInput's server ReadTimeout, which ends the
// endless bodies: long enough for every finite row's body on a loaded
// 2-core machine, short enough not to wait out the real 15 s.
const badInputReadTimeout = 4 * time.Second

// TestBadInput sends every row to a real server, each on its own connection
// from its own loopback address (so the brute-force lockout of one row
// cannot change another's answer), and expects the row's 4xx with camd's
// JSON error. Then the server must still serve.
func TestBadInput(t *testing.T) {
	s := startServer(t, "", serverOpts{timeouts: app.Timeouts{Read: badInputReadTimeout}})
	host := strings.TrimPrefix(s.URL, "http://")
	replace := strings.NewReplacer("{host}", host, "{bearer}", "Bearer "+login(t, s), "{basic}", "Basic "+basic("owner", s.Password))
	rows := badRequests()
	if len(rows) < 60 {
		t.Fatalf("only %d rows; the suite promises at least 60", len(rows))
	}
	if len(rows) > 250 {
		t.Fatalf("%d rows: each takes a loopback address 127.0.1.x", len(rows))
	}
	check := func(t *testing.T, i int, row badRequest) {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i+1))}
		ans := sendRaw(t, host, local, replace.Replace(row.wire), row)
		status, hdr, body := ans.Status, ans.Header, ans.Body
		if status >= 500 {
			t.Fatalf("status %d, a server error: %s", status, body)
		}
		if status != row.status {
			t.Errorf("status %d, want %d; body %s", status, row.status, body)
		}
		if row.plain {
			checkPlain(t, ans)
			return
		}
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q, want JSON; body %q", ct, body)
		}
		var e map[string]any
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("body is not JSON: %v: %q", err, body)
		}
		if msg, _ := e["error"].(string); msg == "" || len(e) != 2 {
			t.Errorf(`body %s, want {"error": "...", "code": %q}`, body, row.code)
		}
		if e["code"] != string(row.code) {
			t.Errorf("code %v, want %q; body %s", e["code"], row.code, body)
		}
	}
	// The group returns when every row has, parallel ones included.
	t.Run("rows", func(t *testing.T) {
		var endless sync.WaitGroup
		for i, row := range rows {
			if row.stream && row.body == nil {
				// Each waits out the ReadTimeout: all at once, in
				// goroutines, as t.Parallel would run two at a time on a
				// 2-core machine.
				endless.Go(func() { t.Run(row.name, func(t *testing.T) { check(t, i, row) }) })
				continue
			}
			t.Run(row.name, func(t *testing.T) {
				t.Parallel()
				check(t, i, row)
			})
		}
		endless.Wait()
	})
	t.Run("still serving", func(t *testing.T) {
		if r := do(t, "GET", s.URL+"/healthz", ""); r.Status != http.StatusOK {
			t.Fatalf("healthz: %d %s", r.Status, r.Body)
		}
		tok := login(t, s)
		if r := do(t, "POST", s.URL+"/api/ack", `{"count":7}`, jsonCT, "Authorization: Bearer "+tok); r.Status != http.StatusOK {
			t.Fatalf("ack: %d %s", r.Status, r.Body)
		}
		if logs := s.Logs.String(); strings.Contains(logs, "panic") {
			t.Errorf("a request panicked:\n%s", logs)
		}
		// A client's bad request is an access-log line, nothing more: only
		// internal errors are logged at ERROR.
		if lines := testlog.AtLevel(s.Logs.String(), "ERROR"); len(lines) != 0 {
			t.Errorf("bad input logged at ERROR:\n%s", strings.Join(lines, "\n"))
		}
	})
}

// sendRaw writes wire (and row's body) on a new connection from local and
// reads one response.
func sendRaw(t *testing.T, host string, local *net.TCPAddr, wire string, row badRequest) rawAnswer {
	t.Helper()
	d := net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The endless bodies wait out the server's ReadTimeout.
	conn.SetDeadline(time.Now().Add(badInputReadTimeout + 25*time.Second))
	if _, err := io.WriteString(conn, wire); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := make(chan struct{})
	defer close(stop)
	switch {
	case row.stream && row.body == nil:
		// A chunk a second, never the last one.
		wg.Go(func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			io.WriteString(conn, "1\r\n{\r\n")
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := io.WriteString(conn, "1\r\n \r\n"); err != nil {
						return
					}
				}
			}
		})
	case row.stream:
		// camd answers and closes before it has read it all; the write
		// error that follows is expected.
		wg.Go(func() { conn.Write(row.body) })
	default:
		if _, err := conn.Write(row.body); err != nil {
			t.Fatal(err)
		}
	}
	if row.halfClose {
		conn.(*net.TCPConn).CloseWrite()
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	conn.SetDeadline(time.Now()) // ends the streaming writer
	return rawAnswer{res.StatusCode, res.Header, body, res.Close}
}

// TestErrorShapeSameOverHTTPS: camd's answers to bad input are the same
// over HTTPS as over plain HTTP, net/http's own text/plain ones included
// (camd once rewrote those as JSON on plain HTTP only, where it could see
// the bytes).
func TestErrorShapeSameOverHTTPS(t *testing.T) {
	plain := startServer(t, "", serverOpts{})
	secure := startServer(t, "", serverOpts{cfg: func(c *config.Config) { c.TLS = "auto" }})
	rows := []badRequest{
		{name: "missing Host", wire: "GET /healthz HTTP/1.1\r\n\r\n", status: 400, plain: true},
		{name: "garbage request line", wire: "HELLO\r\n\r\n", status: 400, plain: true},
		{name: "header without colon", wire: request("GET", "/healthz", []string{"NoColonHere"}, ""), status: 400, plain: true},
		{name: "one oversized header", wire: request("GET", "/healthz", []string{"X-Big: " + strings.Repeat("a", 16<<10)}, ""), status: 431, plain: true},
		{name: "login wrong content type", wire: request("POST", "/api/login", asText, `{"user":"owner","pass":"x"}`), status: 415, code: apierr.UnsupportedMediaType},
		{name: "login malformed JSON", wire: request("POST", "/api/login", asJSON, `{"user":`), status: 400, code: apierr.InvalidBody},
		{name: "ack without a token", wire: request("POST", "/api/ack", asJSON, `{"count":1}`), status: 401, code: apierr.MissingToken},
		{name: "admin Basic not base64", wire: request("GET", "/admin/status", []string{"Authorization: Basic !!!"}, ""), status: 400, code: apierr.InvalidRequest},
		{name: "unknown route", wire: request("GET", "/nope", nil, ""), status: 404, code: apierr.NotFound},
	}
	send := func(t *testing.T, s *server, tlsOn bool, wire string) rawAnswer {
		t.Helper()
		addr := strings.TrimPrefix(s.URL, "http://")
		d := &net.Dialer{Timeout: 5 * time.Second}
		var conn net.Conn
		var err error
		if tlsOn {
			// A self-signed certificate on loopback: what it is does not
			// matter here, only what is answered through it.
			conn, err = tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		} else {
			conn, err = d.Dial("tcp", addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		go io.WriteString(conn, strings.ReplaceAll(wire, "{host}", addr)) // the server may answer (431) before reading it all
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("read body: %v", err)
		}
		return rawAnswer{res.StatusCode, res.Header, body, res.Close}
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			var answers []rawAnswer
			for _, tlsOn := range []bool{false, true} {
				s := plain
				if tlsOn {
					s = secure
				}
				a := send(t, s, tlsOn, row.wire)
				if a.Status != row.status {
					t.Fatalf("TLS %v: status %d %q, want %d", tlsOn, a.Status, a.Body, row.status)
				}
				if row.plain {
					checkPlain(t, a)
				} else {
					checkError(t, response{Status: a.Status, Header: a.Header, Body: string(a.Body)}, row.code)
				}
				answers = append(answers, a)
			}
			h, s := answers[0], answers[1]
			if h.Header.Get("Content-Type") != s.Header.Get("Content-Type") || string(h.Body) != string(s.Body) {
				t.Errorf("HTTP answered %q %q, HTTPS %q %q", h.Header.Get("Content-Type"), h.Body, s.Header.Get("Content-Type"), s.Body)
			}
		})
	}
}
