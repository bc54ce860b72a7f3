package auth_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"camd/apierr"
	"camd/auth"
)

// The RFC 6750 section 3 challenges of the Bearer routes.
const (
	bareChallenge         = `Bearer realm="camd"`
	invalidTokenChallenge = `Bearer realm="camd", error="invalid_token"*` // error_description follows
	invalidRequest        = `Bearer realm="camd", error="invalid_request"`
)

// seen records what the handlers behind the adapters saw.
type seen struct {
	mu    sync.Mutex
	calls int
	p     *auth.Principal
	found bool
}

func (s *seen) handler(c echo.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.p, s.found = auth.PrincipalFrom(c)
	return c.String(http.StatusOK, "secret stuff")
}

func (s *seen) reset() (calls int, p *auth.Principal, found bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls, p, found = s.calls, s.p, s.found
	s.calls, s.p, s.found = 0, nil, false
	return calls, p, found
}

func TestBearer(t *testing.T) {
	f := open(t, nil)
	valid := f.login(t)
	expired := f.loginAt(t, t0.Add(-2*ttl)) // exp an hour ago
	foreign := open(t, nil).login(t)
	ackClient := f.addClient(t, "porch", "ack")
	readClient := f.addClient(t, "garage", "ack:read")
	snapClient := f.addClient(t, "cloud", "snapshot")
	revoked := f.addClient(t, "gone", "ack")
	if err := f.svc.RevokeClient("gone"); err != nil {
		t.Fatal(err)
	}

	var s seen
	e := newEcho()
	e.GET("/p", s.handler, f.svc.Bearer())
	e.GET("/ack", s.handler, f.svc.Bearer("ack"))
	e.GET("/read", s.handler, f.svc.Bearer("ack", "ack:read"))
	base := serve(t, e)

	tests := []struct {
		name      string
		auth      []string // Authorization header values
		target    string   // request target; "/p" when empty
		cookie    *http.Cookie
		status    int
		code      apierr.Code
		challenge string // WWW-Authenticate; "" means none, a trailing * a prefix
		who       string // the Principal's Subject on success
	}{
		{name: "no header", status: 401, code: apierr.MissingToken, challenge: bareChallenge},
		{name: "empty header", auth: []string{""}, status: 401, code: apierr.MissingToken, challenge: bareChallenge},
		{name: "Basic", auth: []string{"Basic b3duZXI6cGFzc3dvcmQ="}, status: 401, code: apierr.MissingToken, challenge: bareChallenge},
		{name: "other scheme with a valid token", auth: []string{"Token " + valid}, status: 401, code: apierr.MissingToken, challenge: bareChallenge},
		{name: "Bearer without token", auth: []string{"Bearer"}, status: 401, code: apierr.MissingToken, challenge: bareChallenge},
		{name: "Bearer and a space", auth: []string{"Bearer "}, status: 401, code: apierr.MissingToken, challenge: bareChallenge},
		{name: "Bearer and spaces", auth: []string{"Bearer    "}, status: 401, code: apierr.MissingToken, challenge: bareChallenge},
		{name: "no space after Bearer", auth: []string{"Bearer" + valid}, status: 401, code: apierr.MissingToken, challenge: bareChallenge},
		{name: "bad token", auth: []string{"Bearer not-a-token"}, status: 401, code: apierr.InvalidToken, challenge: invalidTokenChallenge},
		{name: "token of another key", auth: []string{"Bearer " + foreign}, status: 401, code: apierr.InvalidToken, challenge: invalidTokenChallenge},
		{name: "expired token", auth: []string{"Bearer " + expired}, status: 401, code: apierr.TokenExpired, challenge: invalidTokenChallenge},
		{name: "revoked client", auth: []string{"Bearer " + revoked}, target: "/ack", status: 401, code: apierr.TokenRevoked, challenge: invalidTokenChallenge},
		{name: "valid token and more", auth: []string{"Bearer " + valid + " extra"}, status: 401, code: apierr.InvalidToken, challenge: invalidTokenChallenge},
		{name: "valid", auth: []string{"Bearer " + valid}, status: 200, who: "owner"},
		{name: "lower-case scheme", auth: []string{"bearer " + valid}, status: 200, who: "owner"},
		{name: "upper-case scheme", auth: []string{"BEARER " + valid}, status: 200, who: "owner"},
		{name: "mixed-case scheme", auth: []string{"bEaReR " + valid}, status: 200, who: "owner"},
		{name: "several spaces", auth: []string{"Bearer   " + valid}, status: 200, who: "owner"},
		{name: "two valid headers", auth: []string{"Bearer " + valid, "Bearer " + valid}, status: 400, code: apierr.InvalidRequest, challenge: invalidRequest},
		{name: "Basic and Bearer headers", auth: []string{"Basic b3duZXI6cGFzc3dvcmQ=", "Bearer " + valid}, status: 400, code: apierr.InvalidRequest, challenge: invalidRequest},
		{name: "two empty headers", auth: []string{"", ""}, status: 400, code: apierr.InvalidRequest, challenge: invalidRequest},
		{name: "token in the query only", target: "/p?access_token=" + valid, status: 401, code: apierr.MissingToken, challenge: bareChallenge},
		{name: "token in the query, bad header", auth: []string{"Bearer x"}, target: "/p?access_token=" + valid, status: 401, code: apierr.InvalidToken, challenge: invalidTokenChallenge},
		{name: "token in an access_token cookie only", cookie: &http.Cookie{Name: "access_token", Value: valid}, status: 401, code: apierr.MissingToken, challenge: bareChallenge},
		{name: "token in a token cookie only", cookie: &http.Cookie{Name: "token", Value: valid}, status: 401, code: apierr.MissingToken, challenge: bareChallenge},
		{name: "token in an Authorization cookie only", cookie: &http.Cookie{Name: "Authorization", Value: "Bearer " + valid}, status: 401, code: apierr.MissingToken, challenge: bareChallenge},
		// Scopes.
		{name: "owner on a scoped route", auth: []string{"Bearer " + valid}, target: "/ack", status: 200, who: "owner"},
		{name: "client with the scope", auth: []string{"Bearer " + ackClient}, target: "/ack", status: 200, who: "client:porch"},
		{name: "client with one of the scopes", auth: []string{"Bearer " + readClient}, target: "/read", status: 200, who: "client:garage"},
		{name: "client on an unscoped route", auth: []string{"Bearer " + snapClient}, status: 200, who: "client:cloud"},
		{name: "client without the scope", auth: []string{"Bearer " + readClient}, target: "/ack", status: 403, code: apierr.InsufficientScope,
			challenge: `Bearer realm="camd", error="insufficient_scope", scope="ack"`},
		{name: "client without any of the scopes", auth: []string{"Bearer " + snapClient}, target: "/read", status: 403, code: apierr.InsufficientScope,
			challenge: `Bearer realm="camd", error="insufficient_scope", scope="ack ack:read"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			if target == "" {
				target = "/p"
			}
			req, err := http.NewRequest(http.MethodGet, base+target, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range tt.auth {
				req.Header.Add(echo.HeaderAuthorization, v)
			}
			if tt.cookie != nil {
				req.AddCookie(tt.cookie)
			}
			r := send(t, req)
			r.check(t, tt.status, tt.code, tt.challenge)
			calls, p, found := s.reset()
			if tt.status != http.StatusOK {
				if calls != 0 {
					t.Errorf("handler ran %d times for a refused request", calls)
				}
				if r.body == "secret stuff" {
					t.Error("refused request got the handler's body")
				}
				return
			}
			if calls != 1 {
				t.Fatalf("handler ran %d times, want once", calls)
			}
			if !found || p == nil || p.Subject != tt.who {
				t.Fatalf("PrincipalFrom = %+v, %v; want %s", p, found, tt.who)
			}
		})
	}
}

// TestBearerChallengeDescribes: the error= attribute stays invalid_token
// for every refused token; error_description and code say which.
func TestBearerChallengeDescribes(t *testing.T) {
	f := open(t, nil)
	expired := f.loginAt(t, t0.Add(-2*ttl))
	e := newEcho()
	e.GET("/p", func(c echo.Context) error { return c.NoContent(204) }, f.svc.Bearer())
	base := serve(t, e)
	r := request(t, "GET", base+"/p", []string{"Bearer " + expired}, nil)
	r.check(t, 401, apierr.TokenExpired, invalidTokenChallenge)
	if got := r.header.Get(echo.HeaderWWWAuthenticate); got != `Bearer realm="camd", error="invalid_token", error_description="`+r.err.Error+`"` {
		t.Errorf("WWW-Authenticate %q: want the message %q as error_description", got, r.err.Error)
	}
}

// TestBearerEachRequestVerified: the middleware keeps no state between
// requests: the same token is accepted, then refused once the clock passes
// its expiry, and accepted again when the clock goes back.
func TestBearerEachRequestVerified(t *testing.T) {
	f := open(t, nil)
	tok := f.login(t)
	e := newEcho()
	e.GET("/p", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, f.svc.Bearer())
	base := serve(t, e)
	steps := []struct {
		at   time.Time
		want int
		code apierr.Code
	}{
		{t0, 204, ""},
		{t0.Add(ttl - 2*time.Second), 204, ""},
		{t0.Add(ttl), 401, apierr.TokenExpired},
		{t0, 204, ""},
	}
	for i, s := range steps {
		f.clk.set(s.at)
		r := request(t, "GET", base+"/p", []string{"Bearer " + tok}, nil)
		if r.status != s.want || r.err.Code != s.code {
			t.Errorf("step %d at %v: %d %q, want %d %q", i, s.at, r.status, r.err.Code, s.want, s.code)
		}
	}
}

func TestPrincipalFromWithoutMiddleware(t *testing.T) {
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
	if p, ok := auth.PrincipalFrom(c); ok || p != nil {
		t.Errorf("PrincipalFrom = %+v, %v on a bare context; want nil, false", p, ok)
	}
	c.Set("user", &auth.Principal{Subject: "owner", Kind: auth.KindOwner})
	if p, ok := auth.PrincipalFrom(c); ok || p != nil {
		t.Errorf("PrincipalFrom read echo-jwt's default key: %+v", p)
	}
}

// TestRequireTrustedClock: while the clock is untrusted, login and the
// bearer chain answer 503 clock_untrusted with Retry-After and never reach
// the handler, whatever the token; once trusted they work.
func TestRequireTrustedClock(t *testing.T) {
	f := open(t, nil)
	tok := f.login(t)
	e := newEcho()
	var s seen
	e.POST("/login", s.handler, f.svc.RequireTrustedClock())
	e.GET("/protected", s.handler, f.svc.Bearer())
	e.GET("/scoped", s.handler, f.svc.Bearer("ack"))
	base := serve(t, e)

	for _, tc := range []struct {
		method, path string
		auth         []string
	}{
		{http.MethodPost, "/login", nil},
		{http.MethodGet, "/protected", []string{"Bearer " + tok}},
		{http.MethodGet, "/scoped", []string{"Bearer " + tok}},
		// The clock is checked first: no token judged meanwhile.
		{http.MethodGet, "/protected", nil},
		{http.MethodGet, "/protected", []string{"Bearer garbage"}},
		{http.MethodGet, "/protected", []string{"Bearer " + tok, "Bearer " + tok}},
	} {
		f.clk.distrust(7 * time.Second)
		r := request(t, tc.method, base+tc.path, tc.auth, nil)
		r.check(t, http.StatusServiceUnavailable, apierr.ClockUntrusted, "")
		if got := r.header.Get(echo.HeaderRetryAfter); got != "7" {
			t.Errorf("%s %s untrusted: Retry-After %q, want 7", tc.method, tc.path, got)
		}
		if calls, _, _ := s.reset(); calls != 0 {
			t.Errorf("%s %s untrusted: the handler ran", tc.method, tc.path)
		}
		f.clk.trust()
		r = request(t, tc.method, base+tc.path, tc.auth, nil)
		if tc.path == "/login" || len(tc.auth) == 1 && tc.auth[0] == "Bearer "+tok {
			if r.status != http.StatusOK {
				t.Errorf("%s %s trusted: %d, want 200; %s", tc.method, tc.path, r.status, r.body)
			}
			if calls, _, _ := s.reset(); calls != 1 {
				t.Errorf("%s %s trusted: handler ran %d times, want once", tc.method, tc.path, calls)
			}
		} else if r.status == http.StatusServiceUnavailable || r.status == http.StatusOK {
			t.Errorf("%s %s trusted: %d, want the token's own refusal", tc.method, tc.path, r.status)
		}
	}
}

// TestBasic: the Basic adapter answers with the RFC 7617 challenge spelled
// "Basic realm=...", tells a missing credential from a wrong one, and
// refuses a malformed or repeated header as a client's mistake (400).
func TestBasic(t *testing.T) {
	f := open(t, nil)
	var s seen
	e := newEcho()
	e.GET("/admin", s.handler, f.svc.Basic("camd admin"))
	base := serve(t, e)
	basic := func(cred string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(cred)) }
	const challenge = `Basic realm="camd admin"`
	tests := []struct {
		name      string
		auth      []string
		status    int
		code      apierr.Code
		challenge string
	}{
		{name: "no header", status: 401, code: apierr.MissingCredentials, challenge: challenge},
		{name: "wrong password", auth: []string{basic("owner:wrong")}, status: 401, code: apierr.InvalidCredentials, challenge: challenge},
		{name: "wrong user", auth: []string{basic("admin:" + f.password)}, status: 401, code: apierr.InvalidCredentials, challenge: challenge},
		{name: "no colon", auth: []string{basic("owner" + f.password)}, status: 401, code: apierr.InvalidCredentials, challenge: challenge},
		{name: "a Bearer token", auth: []string{"Bearer " + f.login(t)}, status: 401, code: apierr.MissingCredentials, challenge: challenge},
		{name: "malformed base64", auth: []string{"Basic !!!not-base64!!!"}, status: 400, code: apierr.InvalidRequest},
		{name: "two headers", auth: []string{basic("owner:" + f.password), basic("owner:" + f.password)}, status: 400, code: apierr.InvalidRequest},
		{name: "right", auth: []string{basic("owner:" + f.password)}, status: 200},
		{name: "lower-case scheme", auth: []string{"basic " + base64.StdEncoding.EncodeToString([]byte("owner:"+f.password))}, status: 200},
		{name: "right again, remembered", auth: []string{basic("owner:" + f.password)}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(t, http.MethodGet, base+"/admin", tt.auth, nil)
			r.check(t, tt.status, tt.code, tt.challenge)
			calls, p, found := s.reset()
			if tt.status != 200 {
				if calls != 0 {
					t.Errorf("handler ran for a refused request")
				}
				return
			}
			if calls != 1 || !found || p.Kind != auth.KindOwner || p.Subject != "owner" || p.TokenID != "" {
				t.Errorf("handler ran %d times with Principal %+v, %v", calls, p, found)
			}
		})
	}
}

// TestBasicLockout: wrong Basic passwords lock the address like wrong
// logins do; while locked even the right password, recently verified or
// not, is refused with 429 locked_out and Retry-After.
func TestBasicLockout(t *testing.T) {
	f := open(t, nil)
	e := newEcho()
	e.GET("/admin", func(c echo.Context) error { return c.NoContent(204) }, f.svc.Basic("camd"))
	base := serve(t, e)
	right := "Basic " + base64.StdEncoding.EncodeToString([]byte("owner:"+f.password))
	wrong := "Basic " + base64.StdEncoding.EncodeToString([]byte("owner:nope"))
	if r := request(t, "GET", base+"/admin", []string{right}, nil); r.status != 204 {
		t.Fatalf("right password: %d %s", r.status, r.body)
	}
	for i := range 5 {
		r := request(t, "GET", base+"/admin", []string{wrong}, nil)
		r.check(t, 401, apierr.InvalidCredentials, `Basic realm="camd"`)
		if t.Failed() {
			t.Fatalf("failure %d", i+1)
		}
	}
	r := request(t, "GET", base+"/admin", []string{right}, nil)
	r.check(t, http.StatusTooManyRequests, apierr.LockedOut, "")
	if n, err := strconv.Atoi(r.header.Get(echo.HeaderRetryAfter)); err != nil || n < 1 || n > 15*60 {
		t.Errorf("Retry-After %q, want whole seconds", r.header.Get(echo.HeaderRetryAfter))
	}
	// The lockout is the service's, not the adapter's: login is locked too.
	e.POST("/login", func(c echo.Context) error {
		_, err := f.svc.LoginRequest(c, c.FormValue("user"), c.FormValue("pass"))
		return err
	})
	r = request(t, "POST", base+"/login", nil, url.Values{"user": {"owner"}, "pass": {f.password}})
	r.check(t, http.StatusTooManyRequests, apierr.LockedOut, "")
}

// TestLoginRequest: LoginRequest takes the client's address from the
// request, and its refusals carry what RFC 9110 asks: a WWW-Authenticate
// challenge on the 401, Retry-After on the 429.
func TestLoginRequest(t *testing.T) {
	f := open(t, nil)
	e := newEcho()
	e.POST("/login", func(c echo.Context) error {
		g, err := f.svc.LoginRequest(c, c.FormValue("user"), c.FormValue("pass"))
		if err != nil {
			return err
		}
		p, err := f.svc.Verify(g.Token)
		if err != nil {
			return err
		}
		return c.String(http.StatusOK, string(p.Kind)+" "+strconv.Itoa(int(g.ExpiresIn.Seconds())))
	}, f.svc.RequireTrustedClock())
	base := serve(t, e)
	login := func(user, pass string) response {
		return request(t, http.MethodPost, base+"/login", nil, url.Values{"user": {user}, "pass": {pass}})
	}
	r := login("owner", f.password)
	r.check(t, 200, "", "")
	if r.body != "owner 3600" {
		t.Errorf("login: %q, want an owner token living 3600 s", r.body)
	}
	for i := range 5 {
		r := login("owner", "wrong "+strconv.Itoa(i))
		r.check(t, 401, apierr.InvalidCredentials, `Bearer realm="camd"`)
		if r.header.Get(echo.HeaderRetryAfter) != "" {
			t.Error("Retry-After on a wrong password")
		}
	}
	r = login("owner", f.password)
	r.check(t, http.StatusTooManyRequests, apierr.LockedOut, "")
	if n, err := strconv.Atoi(r.header.Get(echo.HeaderRetryAfter)); err != nil || n < 1 {
		t.Errorf("locked: Retry-After %q, want whole seconds", r.header.Get(echo.HeaderRetryAfter))
	}
}

// TestBearerScopesOfRevokedClient: scopes are judged only for a client that
// still exists: a revoked client is told token_revoked, not
// insufficient_scope, wherever it knocks.
func TestBearerScopesOfRevokedClient(t *testing.T) {
	f := open(t, nil)
	tok := f.addClient(t, "porch", "snapshot")
	if err := f.svc.RevokeClient("porch"); err != nil {
		t.Fatal(err)
	}
	e := newEcho()
	e.GET("/ack", func(c echo.Context) error { return c.NoContent(204) }, f.svc.Bearer("ack"))
	base := serve(t, e)
	request(t, "GET", base+"/ack", []string{"Bearer " + tok}, nil).check(t, 401, apierr.TokenRevoked, invalidTokenChallenge)
	if list, _ := f.svc.Clients(); !slices.Equal(names(list), nil) {
		t.Errorf("Clients() = %v after revoking the only client", list)
	}
}

func names(list []auth.Client) []string {
	var out []string
	for _, c := range list {
		out = append(out, c.Name)
	}
	return out
}
