package app_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"camd/apierr"
	"camd/app"
	"camd/auth"
	"camd/config"
	"camd/platform/clock"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestSeedFlow is the README's walk-through: log in with the printed
// password, ack with the token, read the ack back, open /admin.
func TestSeedFlow(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	if len(s.Password) < 16 {
		t.Fatalf("initial password %q: want at least 16 characters", s.Password)
	}

	r := do(t, "POST", s.URL+"/api/login", `{"user":"owner","pass":"`+s.Password+`"}`, jsonCT)
	if r.Status != http.StatusOK {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("login Cache-Control = %q, want no-store", got)
	}
	body := r.JSON(t)
	if body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) {
		t.Errorf("login body = %v", body)
	}
	tok := body["token"].(string)

	r = do(t, "POST", s.URL+"/api/ack", `{"count": 3, "extra": "ignored"}`, jsonCT, "Authorization: Bearer "+tok)
	if r.Status != http.StatusOK {
		t.Fatalf("ack: %d %s", r.Status, r.Body)
	}
	ackBody := r.JSON(t)
	if ackBody["ok"] != true || ackBody["user"] != "owner" || ackBody["count"] != float64(3) {
		t.Errorf("ack body = %v", ackBody)
	}
	if _, err := time.Parse(time.RFC3339, ackBody["acked_at"].(string)); err != nil {
		t.Errorf("acked_at: %v", err)
	}

	r = do(t, "GET", s.URL+"/api/ack", "", "Authorization: bearer "+tok)
	if r.Status != http.StatusOK {
		t.Fatalf("get ack: %d %s", r.Status, r.Body)
	}
	if got := r.JSON(t); got["count"] != float64(3) || got["acked_at"] != ackBody["acked_at"] || got["user"] != "owner" {
		t.Errorf("get ack = %v, want the ack just posted %v", got, ackBody)
	}

	r = do(t, "GET", s.URL+"/admin", "", "Authorization: Basic "+basic("owner", s.Password))
	if r.Status != http.StatusOK || r.Body != "hi owner" {
		t.Errorf("admin: %d %q", r.Status, r.Body)
	}

	r = do(t, "GET", s.URL+"/healthz", "")
	if r.Status != http.StatusOK || r.JSON(t)["status"] != "ok" {
		t.Errorf("healthz: %d %s", r.Status, r.Body)
	}

	// Never log a secret, password, token or Authorization header.
	logs := s.Logs.String()
	for _, leak := range []string{s.Password, tok, "Authorization", "authorization", basic("owner", s.Password)} {
		if strings.Contains(logs, leak) {
			t.Errorf("logs contain %q", leak)
		}
	}
	if !strings.Contains(logs, "path=/api/ack") || !strings.Contains(logs, "id=") {
		t.Errorf("access log lacks request lines with ids:\n%s", logs)
	}
}

func TestGetAckBeforeAnyAck(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	r := do(t, "GET", s.URL+"/api/ack", "", "Authorization: Bearer "+login(t, s))
	if r.Status != http.StatusNotFound || r.JSON(t)["error"] != "no ack recorded yet" {
		t.Errorf("got %d %s", r.Status, r.Body)
	}
	checkError(t, r, apierr.NotFound)
}

// TestLoginErrors covers every refusal of POST /api/login.
func TestLoginErrors(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	big := `{"user":"owner","pass":"` + strings.Repeat("a", 5000) + `"}`
	// The limit is 4 KiB: 4096 bytes pass, 4097 do not.
	sized := func(n int) string {
		const head, tail = `{"user":"owner","pass":"`, `"}`
		return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
	}
	tests := []struct {
		name    string
		body    string
		headers []string
		status  int
		err     string
		code    apierr.Code
	}{
		{"wrong password", `{"user":"owner","pass":"wrong-password"}`, []string{jsonCT}, 401, "wrong user or password", apierr.InvalidCredentials},
		{"unknown user", `{"user":"root","pass":"` + s.Password + `"}`, []string{jsonCT}, 401, "wrong user or password", apierr.InvalidCredentials},
		{"user differs in case", `{"user":"Owner","pass":"` + s.Password + `"}`, []string{jsonCT}, 401, "wrong user or password", apierr.InvalidCredentials},
		{"empty password", `{"user":"owner","pass":""}`, []string{jsonCT}, 401, "wrong user or password", apierr.InvalidCredentials},
		{"malformed JSON", `{"user":"owner",`, []string{jsonCT}, 400, "malformed JSON: unexpected end of body", apierr.InvalidBody},
		{"not JSON", `user=owner`, []string{jsonCT}, 400, "", apierr.InvalidBody},
		{"not an object", `["owner"]`, []string{jsonCT}, 400, "request body must be a JSON object", apierr.InvalidBody},
		{"missing user", `{"pass":"x"}`, []string{jsonCT}, 400, "missing user", apierr.InvalidBody},
		{"missing pass", `{"user":"owner"}`, []string{jsonCT}, 400, "missing pass", apierr.InvalidBody},
		{"empty body", ``, []string{jsonCT}, 400, "missing user", apierr.InvalidBody},
		{"user not a string", `{"user":1,"pass":"x"}`, []string{jsonCT}, 400, "user must be a string", apierr.InvalidBody},
		{"pass not a string", `{"user":"owner","pass":true}`, []string{jsonCT}, 400, "pass must be a string", apierr.InvalidBody},
		{"pass null", `{"user":"owner","pass":null}`, []string{jsonCT}, 400, "pass must be a string", apierr.InvalidBody},
		{"duplicate key", `{"user":"x","user":"owner","pass":"p"}`, []string{jsonCT}, 400, `duplicate key "user" in request body`, apierr.InvalidBody},
		{"trailing data", `{"user":"owner","pass":"p"} {}`, []string{jsonCT}, 400, "malformed JSON: unexpected data after the object", apierr.InvalidBody},
		{"no content type", `{"user":"owner","pass":"p"}`, nil, 415, "Content-Type must be application/json", apierr.UnsupportedMediaType},
		{"form content type", `{"user":"owner","pass":"p"}`, []string{"Content-Type: application/x-www-form-urlencoded"}, 415, "Content-Type must be application/json", apierr.UnsupportedMediaType},
		{"text content type", `{"user":"owner","pass":"p"}`, []string{"Content-Type: text/plain"}, 415, "Content-Type must be application/json", apierr.UnsupportedMediaType},
		{"body too large", big, []string{jsonCT}, 413, "request entity too large", apierr.BodyTooLarge},
		{"body of 4096 bytes", sized(4096), []string{jsonCT}, 401, "wrong user or password", apierr.InvalidCredentials},
		{"body of 4097 bytes", sized(4097), []string{jsonCT}, 413, "request entity too large", apierr.BodyTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", s.URL+"/api/login", tc.body, tc.headers...)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.Status, tc.status, r.Body)
			}
			got, _ := r.JSON(t)["error"].(string)
			if got == "" || (tc.err != "" && got != tc.err) {
				t.Errorf("error %q, want %q", got, tc.err)
			}
			checkError(t, r, tc.code)
			if strings.Contains(r.Body, "token") {
				t.Errorf("refusal carries a token: %s", r.Body)
			}
			// RFC 9110 15.5.2: a 401 carries a challenge. It names the
			// scheme a login obtains, with no error attribute, as no token
			// was presented (RFC 6750 3.1).
			want := ""
			if tc.status == http.StatusUnauthorized {
				want = `Bearer realm="camd"`
			}
			if got := r.Header.Values("WWW-Authenticate"); want == "" && len(got) != 0 || want != "" && (len(got) != 1 || got[0] != want) {
				t.Errorf("WWW-Authenticate %q, want %q", got, want)
			}
		})
	}
	// Five wrong passwords above: this address is now locked out.
	r := do(t, "POST", s.URL+"/api/login", `{"user":"owner","pass":"`+s.Password+`"}`, jsonCT)
	if r.Status != http.StatusTooManyRequests {
		t.Errorf("login after five failures: %d %s", r.Status, r.Body)
	}
	checkError(t, r, apierr.LockedOut)
	if r.Header.Get("Retry-After") == "" {
		t.Error("locked out without Retry-After")
	}
}

func TestLoginWithCharset(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	r := do(t, "POST", s.URL+"/api/login", `{"user":"owner","pass":"`+s.Password+`"}`, "Content-Type: application/json; charset=utf-8")
	if r.Status != http.StatusOK {
		t.Errorf("login with charset: %d %s", r.Status, r.Body)
	}
}

// TestAckBodyErrors covers every refusal of an authenticated ack body.
func TestAckBodyErrors(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	auth := "Authorization: Bearer " + login(t, s)
	tests := []struct {
		name    string
		body    string
		headers []string
		status  int
		err     string
		code    apierr.Code
	}{
		{"missing count", `{}`, []string{jsonCT}, 400, "missing count", apierr.InvalidBody},
		{"empty body", ``, []string{jsonCT}, 400, "missing count", apierr.InvalidBody},
		{"empty body no content type", ``, nil, 400, "missing count", apierr.InvalidBody},
		{"string", `{"count":"3"}`, []string{jsonCT}, 400, "count must be a number, not a string", apierr.InvalidBody},
		{"fraction", `{"count":1.5}`, []string{jsonCT}, 400, "count must be a whole number", apierr.InvalidBody},
		{"integral fraction", `{"count":1.0}`, []string{jsonCT}, 400, "count must be a whole number", apierr.InvalidBody},
		{"exponent", `{"count":1e3}`, []string{jsonCT}, 400, "count must be a whole number", apierr.InvalidBody},
		{"negative", `{"count":-1}`, []string{jsonCT}, 400, "count must not be negative", apierr.InvalidBody},
		{"over 2^53-1", `{"count":9007199254740992}`, []string{jsonCT}, 400, "count must be at most 9007199254740991", apierr.InvalidBody},
		{"huge", `{"count":123456789012345678901234567890}`, []string{jsonCT}, 400, "count must be at most 9007199254740991", apierr.InvalidBody},
		{"null", `{"count":null}`, []string{jsonCT}, 400, "count must be a non-negative integer", apierr.InvalidBody},
		{"bool", `{"count":true}`, []string{jsonCT}, 400, "count must be a non-negative integer", apierr.InvalidBody},
		{"array", `{"count":[1]}`, []string{jsonCT}, 400, "count must be a non-negative integer", apierr.InvalidBody},
		{"object", `{"count":{"n":1}}`, []string{jsonCT}, 400, "count must be a non-negative integer", apierr.InvalidBody},
		{"malformed", `{"count":`, []string{jsonCT}, 400, "malformed JSON: unexpected end of body", apierr.InvalidBody},
		{"top-level number", `3`, []string{jsonCT}, 400, "request body must be a JSON object", apierr.InvalidBody},
		{"no content type", `{"count":1}`, nil, 415, "Content-Type must be application/json", apierr.UnsupportedMediaType},
		{"too large", `{"count":1,"pad":"` + strings.Repeat("x", 5000) + `"}`, []string{jsonCT}, 413, "request entity too large", apierr.BodyTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", s.URL+"/api/ack", tc.body, append(tc.headers, auth)...)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.Status, tc.status, r.Body)
			}
			if got := r.JSON(t)["error"]; got != tc.err {
				t.Errorf("error %q, want %q", got, tc.err)
			}
			checkError(t, r, tc.code)
		})
	}
	// None of the refused bodies was recorded.
	r := do(t, "GET", s.URL+"/api/ack", "", auth)
	if r.Status != http.StatusNotFound {
		t.Errorf("a refused ack was recorded: %d %s", r.Status, r.Body)
	}
	for _, n := range []string{"0", "9007199254740991"} {
		r := do(t, "POST", s.URL+"/api/ack", `{"count":`+n+`}`, jsonCT, auth)
		if r.Status != http.StatusOK || !strings.Contains(r.Body, `"count":`+n) {
			t.Errorf("count %s: %d %s", n, r.Status, r.Body)
		}
	}
}

// TestBearerRefusals covers the 401s of the JWT group: the handler never
// runs, and the challenge follows RFC 6750.
func TestBearerRefusals(t *testing.T) {
	now := time.Now()
	var offset atomic.Int64
	clk := clock.Func(func() time.Time { return now.Add(time.Duration(offset.Load())) })
	s := startServer(t, "", serverOpts{clock: clk})
	tok := login(t, s)
	other := startServer(t, "", serverOpts{}) // another secret
	foreign := login(t, other)

	const bare = `Bearer realm="camd"`
	// Every refused token gets error="invalid_token" (RFC 6750 3.1), with
	// the JSON error's message as its error_description.
	const invalid = `Bearer realm="camd", error="invalid_token", error_description="invalid token"`
	const expired = `Bearer realm="camd", error="invalid_token", error_description="the token has expired; log in again"`
	dot := strings.LastIndex(tok, ".")
	tests := []struct {
		name      string
		url       string
		headers   []string
		status    int
		challenge string
		code      apierr.Code
	}{
		{"no header", "/api/ack", nil, 401, bare, apierr.MissingToken},
		{"basic scheme", "/api/ack", []string{"Authorization: Basic " + basic("owner", s.Password)}, 401, bare, apierr.MissingToken},
		{"bearer without token", "/api/ack", []string{"Authorization: Bearer"}, 401, bare, apierr.MissingToken},
		{"token in query", "/api/ack?access_token=" + tok, nil, 401, bare, apierr.MissingToken},
		{"token in cookie", "/api/ack", []string{"Cookie: token=" + tok}, 401, bare, apierr.MissingToken},
		{"garbage token", "/api/ack", []string{"Authorization: Bearer not.a.jwt"}, 401, invalid, apierr.InvalidToken},
		{"tampered signature", "/api/ack", []string{"Authorization: Bearer " + tok[:dot+1] + flip(tok[dot+1:])}, 401, invalid, apierr.InvalidToken},
		{"truncated signature", "/api/ack", []string{"Authorization: Bearer " + tok[:len(tok)-4]}, 401, invalid, apierr.InvalidToken},
		{"other secret", "/api/ack", []string{"Authorization: Bearer " + foreign}, 401, invalid, apierr.InvalidToken},
		{"two headers", "/api/ack", []string{"Authorization: Bearer " + tok, "Authorization: Bearer " + tok}, 400, `Bearer realm="camd", error="invalid_request"`, apierr.InvalidRequest},
	}
	for _, tc := range tests {
		for _, method := range []string{"GET", "POST"} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				r := do(t, method, s.URL+tc.url, `{"count":1}`, append(tc.headers, jsonCT)...)
				if r.Status != tc.status {
					t.Fatalf("status %d, want %d (%s)", r.Status, tc.status, r.Body)
				}
				if got := r.Header.Get("WWW-Authenticate"); got != tc.challenge {
					t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
				}
				if r.JSON(t)["error"] == nil {
					t.Errorf("no JSON error: %s", r.Body)
				}
				checkError(t, r, tc.code)
			})
		}
	}

	t.Run("expired", func(t *testing.T) {
		offset.Store(int64(time.Hour + time.Second))
		defer offset.Store(0)
		r := do(t, "POST", s.URL+"/api/ack", `{"count":1}`, jsonCT, "Authorization: Bearer "+tok)
		if r.Status != 401 || r.Header.Get("WWW-Authenticate") != expired {
			t.Errorf("expired token: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
		}
		checkError(t, r, apierr.TokenExpired)
	})
	// The handler never ran for any of them.
	if r := do(t, "GET", s.URL+"/api/ack", "", "Authorization: Bearer "+tok); r.Status != http.StatusNotFound {
		t.Errorf("an ack was recorded by a refused request: %d %s", r.Status, r.Body)
	}
}

// TestTokenRefusalCodes: an expired, a revoked, a replaced, a
// password-changed and a secret-rotated token are told apart by their
// code, while the RFC 6750 challenge's error stays invalid_token for all,
// its error_description the JSON error's message.
func TestTokenRefusalCodes(t *testing.T) {
	now := time.Now()
	var offset atomic.Int64
	clk := clock.Func(func() time.Time { return now.Add(time.Duration(offset.Load())) })
	s := startServer(t, "", serverOpts{clock: clk})
	owner := func() string { return "Authorization: Basic " + basic("owner", s.Password) }
	admin := func(method, path, body string, want int) response {
		t.Helper()
		r := do(t, method, s.URL+path, body, jsonCT, owner())
		if r.Status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, r.Status, r.Body, want)
		}
		return r
	}
	newClient := func(name string) string {
		t.Helper()
		tok, _ := admin("POST", "/admin/clients", `{"name":"`+name+`"}`, http.StatusCreated).JSON(t)["token"].(string)
		return tok
	}

	// Rotation first: it refuses every token before it, whatever else
	// holds for them.
	preRotation, clientPreRotation := login(t, s), newClient("old-cam")
	admin("POST", "/admin/rotate-secret", "{}", http.StatusOK)
	prePassword := login(t, s)
	admin("POST", "/admin/password", `{"password":"refusal-codes password"}`, http.StatusNoContent)
	s.Password = "refusal-codes password"
	revoked := newClient("gone")
	admin("DELETE", "/admin/clients/gone", "", http.StatusNoContent)
	replaced := newClient("porch")
	admin("DELETE", "/admin/clients/porch", "", http.StatusNoContent)
	replacement := newClient("porch")
	fresh := login(t, s)

	const challenge = `Bearer realm="camd", error="invalid_token", error_description="`
	tests := []struct {
		name, token string
		expired     bool // sent with the clock past the token's exp
		code        apierr.Code
		msg         string // "" for a token that is served
	}{
		{"fresh owner token", fresh, false, "", ""},
		{"the replacement client's token", replacement, false, "", ""},
		{"owner token from before the rotation", preRotation, false, apierr.SecretRotated, "the token was signed with a signing secret since rotated"},
		{"client token from before the rotation", clientPreRotation, false, apierr.SecretRotated, "the token was signed with a signing secret since rotated"},
		{"owner token from before the password change", prePassword, false, apierr.PasswordChanged, "the owner password changed after the token was issued; log in again"},
		{"revoked client", revoked, false, apierr.TokenRevoked, "the client gone was revoked or replaced"},
		{"replaced client", replaced, false, apierr.TokenRevoked, "the client porch was revoked or replaced"},
		{"expired owner token", fresh, true, apierr.TokenExpired, "the token has expired; log in again"},
		{"not a token", "not.a.jwt", false, apierr.InvalidToken, "invalid token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.expired {
				offset.Store(int64(time.Hour + time.Second))
				defer offset.Store(0)
			}
			r := do(t, "GET", s.URL+"/api/ack", "", "Authorization: Bearer "+tc.token)
			if tc.code == "" {
				if r.Status != http.StatusNotFound { // served: no ack yet
					t.Fatalf("got %d %s, want the token served", r.Status, r.Body)
				}
				return
			}
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("status %d %s, want 401", r.Status, r.Body)
			}
			if got := checkError(t, r, tc.code)["error"]; got != tc.msg {
				t.Errorf("error %q, want %q", got, tc.msg)
			}
			if got := r.Header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != challenge+tc.msg+`"` {
				t.Errorf("WWW-Authenticate %q, want %q", got, challenge+tc.msg+`"`)
			}
		})
	}
}

func TestAdminBasicAuth(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	const challenge = `Basic realm="Backyard cam admin"`
	tests := []struct {
		name   string
		header []string
		status int
		code   apierr.Code // of a 401
	}{
		{"no credentials", nil, 401, apierr.MissingCredentials},
		{"wrong password", []string{"Authorization: Basic " + basic("owner", "wrong-password")}, 401, apierr.InvalidCredentials},
		{"wrong user", []string{"Authorization: Basic " + basic("admin", s.Password)}, 401, apierr.InvalidCredentials},
		{"bearer token", []string{"Authorization: Bearer " + login(t, s)}, 401, apierr.MissingCredentials},
		{"lower-case scheme", []string{"Authorization: basic " + basic("owner", s.Password)}, 200, ""},
		{"right credentials", []string{"Authorization: Basic " + basic("owner", s.Password)}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "GET", s.URL+"/admin", "", tc.header...)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.Status, tc.status, r.Body)
			}
			if tc.status == 401 {
				if got := r.Header.Get("WWW-Authenticate"); got != challenge {
					t.Errorf("WWW-Authenticate %q, want %q", got, challenge)
				}
				if r.JSON(t)["error"] == nil {
					t.Errorf("no JSON error: %s", r.Body)
				}
				checkError(t, r, tc.code)
			} else if r.Body != "hi owner" {
				t.Errorf("body %q", r.Body)
			}
		})
	}
}

// TestErrorsAreJSON: unknown routes, wrong methods and panics all answer with
// the one error shape and never a stack trace.
func TestErrorsAreJSON(t *testing.T) {
	panicky := app.ModuleInfo{ID: "test.panic", New: func() app.Module { return panicModule{} }}
	s := startServer(t, "", serverOpts{registry: standardRegistry(panicky)})
	tests := []struct {
		method, path string
		status       int
		err          string
		code         apierr.Code
	}{
		{"GET", "/nope", 404, "not found", apierr.NotFound},
		{"GET", "/api/ack/", 404, "not found", apierr.NotFound},
		{"GET", "/api/login", 405, "method not allowed", apierr.MethodNotAllowed},
		{"DELETE", "/api/ack", 405, "method not allowed", apierr.MethodNotAllowed},
		{"POST", "/healthz", 405, "method not allowed", apierr.MethodNotAllowed},
		{"GET", "/test/panic", 500, "internal server error", apierr.Internal},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := do(t, tc.method, s.URL+tc.path, "")
			if r.Status != tc.status || r.JSON(t)["error"] != tc.err {
				t.Errorf("got %d %s, want %d %q", r.Status, r.Body, tc.status, tc.err)
			}
			checkError(t, r, tc.code)
			if strings.Contains(r.Body, "goroutine") || strings.Contains(r.Body, ".go:") {
				t.Errorf("body leaks a stack: %s", r.Body)
			}
		})
	}
	if r := do(t, "GET", s.URL+"/healthz", ""); r.Status != 200 {
		t.Errorf("server stopped serving after a panic: %d", r.Status)
	}
	if !strings.Contains(s.Logs.String(), "panic recovered") {
		t.Error("the panic was not logged")
	}
}

type panicModule struct{}

func (panicModule) Provision(d app.Deps) error {
	d.Echo.GET("/test/panic", func(echo.Context) error { panic("boom") })
	return nil
}

// TestGracefulShutdown: a request in flight when the server is told to stop
// still gets its answer, and Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	slow := app.ModuleInfo{ID: "test.slow", New: func() app.Module { return slowModule{entered, release} }}
	s := startServer(t, "", serverOpts{registry: standardRegistry(slow)})
	got := make(chan response, 1)
	go func() { got <- do(t, "GET", s.URL+"/test/slow", "") }()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned %v before the in-flight request finished", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if r := <-got; r.Status != http.StatusOK || r.Body != "done" {
		t.Errorf("in-flight request: %d %q", r.Status, r.Body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

type slowModule struct{ entered, release chan struct{} }

func (m slowModule) Provision(d app.Deps) error {
	d.Echo.GET("/test/slow", func(c echo.Context) error {
		close(m.entered)
		<-m.release
		return c.String(http.StatusOK, "done")
	})
	return nil
}

func TestTokenTTLIsConfigurable(t *testing.T) {
	s := startServer(t, "", serverOpts{cfg: func(c *config.Config) { c.TokenTTL = 5 * time.Minute }})
	r := do(t, "POST", s.URL+"/api/login", `{"user":"owner","pass":"`+s.Password+`"}`, jsonCT)
	if got := r.JSON(t)["expires_in"]; got != float64(300) {
		t.Errorf("expires_in = %v, want 300", got)
	}
}

// TestAdminOverPlainHTTPWarning: a warning when Basic credentials would
// cross the network in the clear, none on loopback.
func TestAdminOverPlainHTTPWarning(t *testing.T) {
	for _, tc := range []struct {
		listen, tls string
		warn        bool
	}{
		{"127.0.0.1:0", "off", false},
		{"[::1]:0", "off", false},
		{"localhost:0", "off", false},
		{":0", "off", true},
		{"0.0.0.0:0", "off", true},
		{"192.0.2.10:8080", "off", true},
		{":0", "auto", false}, // HTTPS: the credentials are encrypted
	} {
		t.Run(tc.listen+" tls "+tc.tls, func(t *testing.T) {
			s := startServer(t, "", serverOpts{cfg: func(c *config.Config) { c.Listen, c.TLS = tc.listen, tc.tls }})
			got := strings.Contains(s.Logs.String(), "/admin uses HTTP Basic auth over plain HTTP")
			if got != tc.warn {
				t.Errorf("warning logged = %v, want %v", got, tc.warn)
			}
		})
	}
}

// TestRoutes compares the mounted routes with a golden file, so a module that
// silently stops registering is caught. Refresh with: go test ./app -update
func TestRoutes(t *testing.T) {
	a, err := app.New(defaultConfig(t.TempDir()), app.Options{Registry: standardRegistry(), PasswordParams: &cheapHash})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	got := strings.Join(a.Routes(), "\n") + "\n"
	golden := filepath.Join("testdata", "routes.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("routes:\n%s\nwant:\n%s", got, want)
	}
}

func TestRegistry(t *testing.T) {
	mod := func(id string) app.ModuleInfo {
		return app.ModuleInfo{ID: id, New: func() app.Module { return panicModule{} }}
	}
	r := app.NewRegistry()
	for _, id := range []string{"b", "c", "a"} {
		r.Register(mod(id))
	}
	var ids []string
	for _, m := range r.Modules() {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, ",") != "a,b,c" {
		t.Errorf("Modules() = %v, want sorted a,b,c", ids)
	}
	withScope := func(id, scope string) app.ModuleInfo {
		m := mod(id)
		m.Scopes = []auth.Scope{{Name: scope, Description: "test"}}
		return m
	}
	withFlags := func(id string, flags ...config.Flag) app.ModuleInfo {
		m := mod(id)
		m.Flags = flags
		return m
	}
	withFlag := func(id, flag string) app.ModuleInfo { return withFlags(id, config.Flag{Name: flag}) }
	r.Register(withScope("s", "s:read"))
	r.Register(withFlags("f", config.Flag{Name: "f-path", Env: "CAMD_F_PATH"}))
	if got := r.Scopes(); len(got) != 1 || got[0].Name != "s:read" {
		t.Errorf("Scopes() = %v, want the one declared", got)
	}
	if got := r.Flags(); len(got) != 1 || got[0].Name != "f-path" {
		t.Errorf("Flags() = %v, want the one declared", got)
	}
	for _, tt := range []struct {
		name string
		info app.ModuleInfo
		want string // in the panic's message
	}{
		{"duplicate", mod("a"), `"a" registered twice`},
		{"empty ID", app.ModuleInfo{New: func() app.Module { return panicModule{} }}, "without an ID"},
		{"nil New", app.ModuleInfo{ID: "d"}, "without New"},
		{"duplicate scope", withScope("s2", "s:read"), `scope "s:read", which module "s" has`},
		{"another module's flag", withFlag("f2", "f-path"), `--f-path, which module "f" has`},
		{"another module's variable", withFlags("f3", config.Flag{Name: "f3-path", Env: "CAMD_F_PATH"}), `CAMD_F_PATH, which module "f" has`},
		{"the same flag twice", withFlags("f4", config.Flag{Name: "f4-x"}, config.Flag{Name: "f4-x"}), "--f4-x twice"},
		{"camd's own flag", withFlag("f5", "listen"), "--listen is one of camd's own"},
		{"camd's own variable", withFlags("f6", config.Flag{Name: "f6-dir", Env: "CAMD_DATA_DIR"}), "CAMD_DATA_DIR sets camd's --data-dir"},
		{"client add's flag", withFlag("f7", "scope"), "--scope is reserved"},
		{"help", withFlag("f8", "help"), "--help is reserved"},
		{"h", withFlag("f9", "h"), "--h is reserved"},
		{"empty flag name", withFlag("f10", ""), "flag name"},
		{"dashes", withFlag("f11", "-f11-x"), "flag name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.Contains(msg, tt.want) {
					t.Errorf("Register panicked with %q, want a message with %q", msg, tt.want)
				}
			}()
			r.Register(tt.info)
		})
	}
	if ids := len(r.Modules()); ids != 5 {
		t.Errorf("%d modules after the refusals, want the 5 accepted", ids)
	}
	// The default registry is separate: a test registry never leaks into it.
	for _, m := range app.DefaultRegistry.Modules() {
		if m.ID == "a" {
			t.Error("test module leaked into DefaultRegistry")
		}
	}
}

func TestNewFailsOnUnusableDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{
		"parent is a file": filepath.Join(file, "data"),
		"not writable":     "/proc/camd-test-data",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := app.New(defaultConfig(dir), app.Options{Registry: standardRegistry(), PasswordParams: &cheapHash})
			if err == nil || !strings.Contains(err.Error(), dir) {
				t.Errorf("New: %v, want an error naming %s", err, dir)
			}
		})
	}
}

func TestModuleProvisionErrorStopsStart(t *testing.T) {
	broken := app.ModuleInfo{ID: "test.broken", New: func() app.Module { return brokenModule{} }}
	_, err := app.New(defaultConfig(t.TempDir()), app.Options{Registry: standardRegistry(broken), PasswordParams: &cheapHash})
	if err == nil || !strings.Contains(err.Error(), `"test.broken"`) {
		t.Errorf("New: %v, want an error naming the module", err)
	}
}

type brokenModule struct{}

func (brokenModule) Provision(app.Deps) error { return context.DeadlineExceeded }

// TestAckReadsFollowEveryAck: GET /api/ack, whose answer is kept encoded
// between acks, answers the latest ack after every POST, byte for byte as
// the JSON encoder writes it.
func TestAckReadsFollowEveryAck(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	auth := "Authorization: Bearer " + login(t, s)
	for _, count := range []int{1, 2, 2, 9007199254740991, 0} {
		post := do(t, "POST", s.URL+"/api/ack", `{"count":`+strconv.Itoa(count)+`}`, jsonCT, auth)
		if post.Status != http.StatusOK {
			t.Fatalf("POST count %d: %d %s", count, post.Status, post.Body)
		}
		at, _ := post.JSON(t)["acked_at"].(string)
		want := `{"user":"owner","count":` + strconv.Itoa(count) + `,"acked_at":"` + at + `"}` + "\n"
		for range 2 { // the second read answers from the kept encoding
			get := do(t, "GET", s.URL+"/api/ack", "", auth)
			if get.Status != http.StatusOK || get.Body != want {
				t.Fatalf("GET after count %d: %d %q, want %q", count, get.Status, get.Body, want)
			}
			if ct := get.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		}
	}
}
