package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"camd/apierr"
	"camd/auth"
	"camd/platform/clock"
	"camd/platform/datadir"
	"camd/platform/password"
)

// cheapHash keeps argon2id fast in tests; the parameters are written into
// the hash, so nothing else changes.
var cheapHash = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// t0 is the tests' start time, whole seconds (tokens carry whole seconds).
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const ttl = time.Hour

// testClock is a clock a test moves and distrusts; safe for the server's
// goroutines.
type testClock struct {
	mu        sync.Mutex
	now       time.Time
	untrusted bool
	next      time.Time // Status().NextSync
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Trusted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.untrusted
}

func (c *testClock) Status() clock.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return clock.Status{Mode: "test", Trusted: !c.untrusted, NextSync: c.next}
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// distrust makes the clock untrusted, its next sync in d.
func (c *testClock) distrust(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.untrusted, c.next = true, c.now.Add(d)
}

func (c *testClock) trust() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.untrusted = false
}

// testScopes are what a registry with ack and a snapshot module declares.
var testScopes = []auth.Scope{
	{Name: "snapshot", Description: "get the camera's snapshot"},
	{Name: "ack", Description: "post acknowledgements", Default: true},
	{Name: "ack:read", Description: "read the last acknowledgement"},
}

// fixture is an auth service on a fresh data directory.
type fixture struct {
	svc      *auth.Service
	clk      *testClock
	dir      datadir.Dir
	password string // the initial owner password
}

// open opens a service on a temporary data directory, creating the initial
// owner password; change adjusts the configuration first.
func open(t testing.TB, change func(*auth.Config)) *fixture {
	t.Helper()
	dir, err := datadir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return openIn(t, dir, &testClock{now: t0}, change)
}

// openIn opens a service on dir.
func openIn(t testing.TB, dir datadir.Dir, clk *testClock, change func(*auth.Config)) *fixture {
	t.Helper()
	f := &fixture{clk: clk, dir: dir}
	cfg := auth.Config{
		Dir:            dir,
		TokenTTL:       ttl,
		Clock:          clk,
		Scopes:         testScopes,
		PasswordParams: &cheapHash,
		InitialPassword: func(pw string) error {
			f.password = pw
			return nil
		},
	}
	if change != nil {
		change(&cfg)
	}
	svc, err := auth.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	f.svc = svc
	return f
}

// login logs the owner in at the clock's time and returns the token.
func (f *fixture) login(t testing.TB) string {
	t.Helper()
	g, err := f.svc.Login(context.Background(), "192.0.2.1", auth.Owner, f.password)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return g.Token
}

// loginAt logs the owner in with the clock at at, then puts the clock back.
func (f *fixture) loginAt(t testing.TB, at time.Time) string {
	t.Helper()
	was := f.clk.Now()
	f.clk.set(at)
	defer f.clk.set(was)
	return f.login(t)
}

// addClient creates a client and returns its token.
func (f *fixture) addClient(t testing.TB, name string, scopes ...string) string {
	t.Helper()
	_, g, err := f.svc.AddClient(name, scopes)
	if err != nil {
		t.Fatalf("AddClient(%q, %q): %v", name, scopes, err)
	}
	return g.Token
}

// wantCode fails unless err is an *apierr.Error (possibly wrapped) with
// code.
func wantCode(t *testing.T, err error, code apierr.Code) {
	t.Helper()
	e, ok := apierr.As(err)
	if !ok {
		t.Errorf("error %v (%T), want an *apierr.Error with code %s", err, err, code)
		return
	}
	if e.Code != code {
		t.Errorf("error %v: code %s, want %s", err, e.Code, code)
	}
}

// newEcho returns an Echo with the app's error handler's shape: every error
// is apierr.Body, with the status of its code.
func newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		body := apierr.Body{Error: "internal server error", Code: apierr.Internal}
		if ae, ok := apierr.As(err); ok {
			body = apierr.Body{Error: ae.Message, Code: ae.Code}
		} else if he := (*echo.HTTPError)(nil); errors.As(err, &he) {
			body.Code = apierr.FromStatus(he.Code)
		}
		_ = c.JSON(body.Code.Status(), body)
	}
	return e
}

// serve runs e on a loopback listener for the test.
func serve(t *testing.T, e *echo.Echo) string {
	t.Helper()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv.URL
}

// response is what a test looks at in an answer.
type response struct {
	status int
	header http.Header
	body   string
	err    apierr.Body // decoded when the answer is JSON with a code
}

// request sends method url with the Authorization values auth (each its
// own header line) and, if form is non-nil, a urlencoded body.
func request(t *testing.T, method, target string, auth []string, form url.Values) response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
	}
	for _, v := range auth {
		req.Header.Add(echo.HeaderAuthorization, v)
	}
	return send(t, req)
}

// send sends req and reads the answer.
func send(t *testing.T, req *http.Request) response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: res.StatusCode, header: res.Header, body: string(raw)}
	if strings.HasPrefix(res.Header.Get(echo.HeaderContentType), echo.MIMEApplicationJSON) {
		_ = json.Unmarshal(raw, &r.err)
	}
	return r
}

// check compares an answer's status, code and WWW-Authenticate with the
// wanted ones; challenge "" means no challenge, and a challenge ending in
// "*" is a prefix.
func (r response) check(t *testing.T, status int, code apierr.Code, challenge string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if r.err.Code != code {
		t.Errorf("code %q, want %q; body %s", r.err.Code, code, r.body)
	}
	if code != "" && r.err.Error == "" {
		t.Errorf("no error message in %s", r.body)
	}
	got := r.header.Values(echo.HeaderWWWAuthenticate)
	switch {
	case challenge == "":
		if len(got) != 0 {
			t.Errorf("WWW-Authenticate %q, want none", got)
		}
	case strings.HasSuffix(challenge, "*"):
		if len(got) != 1 || !strings.HasPrefix(got[0], strings.TrimSuffix(challenge, "*")) {
			t.Errorf("WWW-Authenticate %q, want one starting %q", got, strings.TrimSuffix(challenge, "*"))
		}
	default:
		if len(got) != 1 || got[0] != challenge {
			t.Errorf("WWW-Authenticate %q, want %q", got, challenge)
		}
	}
}
