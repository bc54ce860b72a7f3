package app_test

import (
	"context"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"camd/app"
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
	}{
		{"wrong password", `{"user":"owner","pass":"wrong-password"}`, []string{jsonCT}, 401, "wrong user or password"},
		{"unknown user", `{"user":"root","pass":"` + s.Password + `"}`, []string{jsonCT}, 401, "wrong user or password"},
		{"user differs in case", `{"user":"Owner","pass":"` + s.Password + `"}`, []string{jsonCT}, 401, "wrong user or password"},
		{"empty password", `{"user":"owner","pass":""}`, []string{jsonCT}, 401, "wrong user or password"},
		{"malformed JSON", `{"user":"owner",`, []string{jsonCT}, 400, "malformed JSON: unexpected end of body"},
		{"not JSON", `user=owner`, []string{jsonCT}, 400, ""},
		{"not an object", `["owner"]`, []string{jsonCT}, 400, "request body must be a JSON object"},
		{"missing user", `{"pass":"x"}`, []string{jsonCT}, 400, "missing user"},
		{"missing pass", `{"user":"owner"}`, []string{jsonCT}, 400, "missing pass"},
		{"empty body", ``, []string{jsonCT}, 400, "missing user"},
		{"user not a string", `{"user":1,"pass":"x"}`, []string{jsonCT}, 400, "user must be a string"},
		{"pass not a string", `{"user":"owner","pass":true}`, []string{jsonCT}, 400, "pass must be a string"},
		{"pass null", `{"user":"owner","pass":null}`, []string{jsonCT}, 400, "pass must be a string"},
		{"duplicate key", `{"user":"x","user":"owner","pass":"p"}`, []string{jsonCT}, 400, `duplicate key "user" in request body`},
		{"trailing data", `{"user":"owner","pass":"p"} {}`, []string{jsonCT}, 400, "malformed JSON: unexpected data after the object"},
		{"no content type", `{"user":"owner","pass":"p"}`, nil, 415, "Content-Type must be application/json"},
		{"form content type", `{"user":"owner","pass":"p"}`, []string{"Content-Type: application/x-www-form-urlencoded"}, 415, "Content-Type must be application/json"},
		{"text content type", `{"user":"owner","pass":"p"}`, []string{"Content-Type: text/plain"}, 415, "Content-Type must be application/json"},
		{"body too large", big, []string{jsonCT}, 413, "request entity too large"},
		{"body of 4096 bytes", sized(4096), []string{jsonCT}, 401, "wrong user or password"},
		{"body of 4097 bytes", sized(4097), []string{jsonCT}, 413, "request entity too large"},
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
			if strings.Contains(r.Body, "token") {
				t.Errorf("refusal carries a token: %s", r.Body)
			}
		})
	}
	// Five wrong passwords above: this address is now locked out.
	r := do(t, "POST", s.URL+"/api/login", `{"user":"owner","pass":"`+s.Password+`"}`, jsonCT)
	if r.Status != http.StatusTooManyRequests {
		t.Errorf("login after five failures: %d %s", r.Status, r.Body)
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
	}{
		{"missing count", `{}`, []string{jsonCT}, 400, "missing count"},
		{"empty body", ``, []string{jsonCT}, 400, "missing count"},
		{"empty body no content type", ``, nil, 400, "missing count"},
		{"string", `{"count":"3"}`, []string{jsonCT}, 400, "count must be a number, not a string"},
		{"fraction", `{"count":1.5}`, []string{jsonCT}, 400, "count must be a whole number"},
		{"integral fraction", `{"count":1.0}`, []string{jsonCT}, 400, "count must be a whole number"},
		{"exponent", `{"count":1e3}`, []string{jsonCT}, 400, "count must be a whole number"},
		{"negative", `{"count":-1}`, []string{jsonCT}, 400, "count must not be negative"},
		{"over 2^53-1", `{"count":9007199254740992}`, []string{jsonCT}, 400, "count must be at most 9007199254740991"},
		{"huge", `{"count":123456789012345678901234567890}`, []string{jsonCT}, 400, "count must be at most 9007199254740991"},
		{"null", `{"count":null}`, []string{jsonCT}, 400, "count must be a non-negative integer"},
		{"bool", `{"count":true}`, []string{jsonCT}, 400, "count must be a non-negative integer"},
		{"array", `{"count":[1]}`, []string{jsonCT}, 400, "count must be a non-negative integer"},
		{"object", `{"count":{"n":1}}`, []string{jsonCT}, 400, "count must be a non-negative integer"},
		{"malformed", `{"count":`, []string{jsonCT}, 400, "malformed JSON: unexpected end of body"},
		{"top-level number", `3`, []string{jsonCT}, 400, "request body must be a JSON object"},
		{"no content type", `{"count":1}`, nil, 415, "Content-Type must be application/json"},
		{"too large", `{"count":1,"pad":"` + strings.Repeat("x", 5000) + `"}`, []string{jsonCT}, 413, "request entity too large"},
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
	const invalid = `Bearer realm="camd", error="invalid_token"`
	dot := strings.LastIndex(tok, ".")
	tests := []struct {
		name      string
		url       string
		headers   []string
		status    int
		challenge string
	}{
		{"no header", "/api/ack", nil, 401, bare},
		{"basic scheme", "/api/ack", []string{"Authorization: Basic " + basic("owner", s.Password)}, 401, bare},
		{"bearer without token", "/api/ack", []string{"Authorization: Bearer"}, 401, bare},
		{"token in query", "/api/ack?access_token=" + tok, nil, 401, bare},
		{"token in cookie", "/api/ack", []string{"Cookie: token=" + tok}, 401, bare},
		{"garbage token", "/api/ack", []string{"Authorization: Bearer not.a.jwt"}, 401, invalid},
		{"tampered signature", "/api/ack", []string{"Authorization: Bearer " + tok[:dot+1] + flip(tok[dot+1:])}, 401, invalid},
		{"truncated signature", "/api/ack", []string{"Authorization: Bearer " + tok[:len(tok)-4]}, 401, invalid},
		{"other secret", "/api/ack", []string{"Authorization: Bearer " + foreign}, 401, invalid},
		{"two headers", "/api/ack", []string{"Authorization: Bearer " + tok, "Authorization: Bearer " + tok}, 400, `Bearer realm="camd", error="invalid_request"`},
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
			})
		}
	}

	t.Run("expired", func(t *testing.T) {
		offset.Store(int64(time.Hour + time.Second))
		defer offset.Store(0)
		r := do(t, "POST", s.URL+"/api/ack", `{"count":1}`, jsonCT, "Authorization: Bearer "+tok)
		if r.Status != 401 || r.Header.Get("WWW-Authenticate") != invalid {
			t.Errorf("expired token: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
		}
	})
	// The handler never ran for any of them.
	if r := do(t, "GET", s.URL+"/api/ack", "", "Authorization: Bearer "+tok); r.Status != http.StatusNotFound {
		t.Errorf("an ack was recorded by a refused request: %d %s", r.Status, r.Body)
	}
}

func TestAdminBasicAuth(t *testing.T) {
	s := startServer(t, "", serverOpts{})
	const challenge = `Basic realm="Backyard cam admin"`
	tests := []struct {
		name   string
		header []string
		status int
	}{
		{"no credentials", nil, 401},
		{"wrong password", []string{"Authorization: Basic " + basic("owner", "wrong-password")}, 401},
		{"wrong user", []string{"Authorization: Basic " + basic("admin", s.Password)}, 401},
		{"bearer token", []string{"Authorization: Bearer " + login(t, s)}, 401},
		{"lower-case scheme", []string{"Authorization: basic " + basic("owner", s.Password)}, 200},
		{"right credentials", []string{"Authorization: Basic " + basic("owner", s.Password)}, 200},
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
	}{
		{"GET", "/nope", 404, "not found"},
		{"GET", "/api/ack/", 404, "not found"},
		{"GET", "/api/login", 405, "method not allowed"},
		{"DELETE", "/api/ack", 405, "method not allowed"},
		{"POST", "/healthz", 405, "method not allowed"},
		{"GET", "/test/panic", 500, "internal server error"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := do(t, tc.method, s.URL+tc.path, "")
			if r.Status != tc.status || r.JSON(t)["error"] != tc.err {
				t.Errorf("got %d %s, want %d %q", r.Status, r.Body, tc.status, tc.err)
			}
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
	for name, info := range map[string]app.ModuleInfo{
		"duplicate": mod("a"),
		"empty ID":  {New: func() app.Module { return panicModule{} }},
		"nil New":   {ID: "d"},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Register did not panic")
				}
			}()
			r.Register(info)
		})
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
