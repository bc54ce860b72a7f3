package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"camd/apierr"
	"camd/app"
	"camd/config"
	"camd/internal/apitest"
	"camd/internal/testlog"
	"camd/modules/ack"
	"camd/modules/admin"
	"camd/modules/apidoc"
	"camd/modules/auth"
	"camd/modules/health"
	"camd/platform/clock"
	"camd/platform/password"
)

// cheapHash keeps the suite fast; the shipped cost is measured in benchmarks.
var cheapHash = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// TestMain reports, with -v, how many exchanges were checked against the
// OpenAPI document, so a run shows the check is on.
func TestMain(m *testing.M) {
	code := m.Run()
	if v, err := apitest.Default(); err == nil && testing.Verbose() {
		fmt.Printf("OpenAPI: %d exchanges checked against modules/apidoc/openapi.yaml\n", v.Checked())
	}
	os.Exit(code)
}

// standardRegistry builds a registry from exactly the standard modules, the
// way a test names what it runs instead of relying on init() side effects.
func standardRegistry(extra ...app.ModuleInfo) *app.Registry {
	r := app.NewRegistry()
	for _, info := range append([]app.ModuleInfo{ack.Info(), admin.Info(), apidoc.Info(), auth.Info(), health.Info()}, extra...) {
		r.Register(info)
	}
	return r
}

// server is a camd serving on a real loopback listener.
type server struct {
	URL      string
	Password string // the initial owner password
	DataDir  string
	Logs     *testlog.Buffer
	stop     func() error
}

type serverOpts struct {
	quiet    bool // discard logs, for tests that measure memory
	cfg      func(*config.Config)
	clock    clock.Clock
	registry *app.Registry
	timeouts app.Timeouts // zero fields keep app.DefaultTimeouts
}

func defaultConfig(dataDir string) config.Config {
	// --clock system: the tests send no NTP traffic unless they ask for it.
	return config.Config{Listen: "127.0.0.1:0", DataDir: dataDir, TokenTTL: time.Hour, LogFormat: "text",
		ClockMode: "system", NTPInterval: time.Hour}
}

// startServer provisions camd in a fresh data directory (or the one given)
// and serves it on 127.0.0.1 until the test ends.
func startServer(t *testing.T, dataDir string, o serverOpts) *server {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	cfg := defaultConfig(dataDir)
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if o.registry == nil {
		o.registry = standardRegistry()
	}
	logs := &testlog.Buffer{}
	var stderr bytes.Buffer
	a, err := app.New(cfg, app.Options{
		Registry:       o.registry,
		Log:            logger(logs, o.quiet),
		Clock:          o.clock,
		Stderr:         &stderr,
		Version:        "test",
		PasswordParams: &cheapHash,
		Timeouts:       o.timeouts,
	})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	var once sync.Once
	var stopErr error
	s := &server{
		URL:     "http://" + ln.Addr().String(),
		DataDir: dataDir,
		Logs:    logs,
		stop: func() error {
			once.Do(func() { cancel(); stopErr = <-done })
			return stopErr
		},
	}
	if line, ok := strings.CutPrefix(strings.TrimSpace(stderr.String()), "initial owner password: "); ok {
		s.Password = line
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("Serve returned %v", err)
		}
	})
	return s
}

// response is what a test needs of an HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   string
}

// JSON decodes the body into a map, failing the test when it is not JSON.
func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.Body)
	}
	return m
}

// do sends one request with the given headers ("Name: value" pairs).
func do(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	return doWith(t, &http.Client{Timeout: 10 * time.Second}, method, url, body, headers...)
}

// doWith is do on a given client, to reuse its connections. Every exchange
// is checked against the OpenAPI document (see camd/internal/apitest).
func doWith(t *testing.T, client *http.Client, method, url, body string, headers ...string) response {
	t.Helper()
	client = apitest.Client(t, client, testRoute)
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: string(b)}
}

// testRoute matches requests to the routes that test-only modules mount
// under /test/: they are no part of camd's API, so the OpenAPI document does
// not list them.
func testRoute(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/test/") }

const jsonCT = "Content-Type: application/json"

// login returns a fresh token for the owner.
func login(t *testing.T, s *server) string {
	t.Helper()
	r := do(t, "POST", s.URL+"/api/login", `{"user":"owner","pass":"`+s.Password+`"}`, jsonCT)
	if r.Status != http.StatusOK {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	tok, _ := r.JSON(t)["token"].(string)
	if tok == "" {
		t.Fatalf("login: no token in %s", r.Body)
	}
	return tok
}

// basic encodes Basic credentials.
func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// flip changes the first character of s, which always changes decoded bits.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func logger(w *testlog.Buffer, quiet bool) *slog.Logger {
	if quiet {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// rawAnswer is an answer read off a raw connection.
type rawAnswer struct {
	Status int
	Header http.Header
	Body   []byte
	Close  bool // the server said Connection: close
}

// checkPlain checks net/http's own answer to a request it cannot parse,
// which it sends before any handler runs: text/plain, the status and its
// text in the body (501's body says "Unsupported transfer encoding"), and
// the connection closed. camd used to rewrite these as JSON on plain HTTP
// only; now they are the same over HTTP and HTTPS, as the OpenAPI document
// says.
func checkPlain(t *testing.T, a rawAnswer) {
	t.Helper()
	if ct := a.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q, want net/http's text/plain; body %q", ct, a.Body)
	}
	want := fmt.Sprintf("%d %s", a.Status, http.StatusText(a.Status))
	if a.Status == http.StatusNotImplemented {
		want = "Unsupported transfer encoding"
	}
	if !strings.HasPrefix(string(a.Body), want) {
		t.Errorf("body %q, want net/http's %q", a.Body, want)
	}
	if !a.Close {
		t.Errorf("net/http's %d did not close the connection", a.Status)
	}
}

// checkError checks a JSON error answer: camd's one shape, {"error":
// "<message>", "code": "<code>"}, and nothing else, with the code wanted.
func checkError(t *testing.T, r response, code apierr.Code) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON; body %q", ct, r.Body)
	}
	var e map[string]any
	if err := json.Unmarshal([]byte(r.Body), &e); err != nil {
		t.Fatalf("body is not JSON: %v: %q", err, r.Body)
	}
	if msg, _ := e["error"].(string); msg == "" || len(e) != 2 {
		t.Errorf(`body %s, want {"error": "...", "code": %q}`, r.Body, code)
	}
	if e["code"] != string(code) {
		t.Errorf("code %v, want %q; body %s", e["code"], code, r.Body)
	}
	return e
}
