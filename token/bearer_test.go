package token_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"camd/token"
)

const (
	bareChallenge         = `Bearer realm="camd"`
	invalidTokenChallenge = `Bearer realm="camd", error="invalid_token"`
	invalidRequest        = `Bearer realm="camd", error="invalid_request"`
)

// protected serves GET /p behind the Bearer middleware with echo's default
// error handler, and reports the claims the handler saw.
type protected struct {
	e      *echo.Echo
	calls  int
	claims *token.Claims
	found  bool
}

func newProtected(t *testing.T, a *token.Authority) *protected {
	t.Helper()
	mw, err := a.Bearer()
	if err != nil {
		t.Fatalf("Bearer: %v", err)
	}
	p := &protected{e: echo.New()}
	p.e.GET("/p", func(c echo.Context) error {
		p.calls++
		p.claims, p.found = token.FromContext(c)
		return c.String(http.StatusOK, "secret stuff")
	}, mw)
	return p
}

func TestBearer(t *testing.T) {
	a, clk := newAuthority(t)
	valid := mustIssue(t, a, "owner")

	other, err := token.NewAuthority(otherKey, time.Hour, clk.Clock())
	if err != nil {
		t.Fatal(err)
	}
	foreign := mustIssue(t, other, "owner")

	clk.now = t0.Add(-2 * time.Hour)
	expired := mustIssue(t, a, "owner") // iat two hours ago, exp one hour ago
	clk.now = t0

	tests := []struct {
		name      string
		auth      []string // Authorization header values
		target    string   // request target; "/p" when empty
		cookie    *http.Cookie
		wantCode  int
		challenge string // WWW-Authenticate; "" means none
	}{
		{name: "no header", wantCode: 401, challenge: bareChallenge},
		{name: "empty header", auth: []string{""}, wantCode: 401, challenge: bareChallenge},
		{name: "Basic", auth: []string{"Basic b3duZXI6cGFzc3dvcmQ="}, wantCode: 401, challenge: bareChallenge},
		{name: "other scheme with a valid token", auth: []string{"Token " + valid}, wantCode: 401, challenge: bareChallenge},
		{name: "Bearer without token", auth: []string{"Bearer"}, wantCode: 401, challenge: bareChallenge},
		{name: "Bearer and a space", auth: []string{"Bearer "}, wantCode: 401, challenge: bareChallenge},
		{name: "Bearer and spaces", auth: []string{"Bearer    "}, wantCode: 401, challenge: bareChallenge},
		{name: "no space after Bearer", auth: []string{"Bearer" + valid}, wantCode: 401, challenge: bareChallenge},
		{name: "bad token", auth: []string{"Bearer not-a-token"}, wantCode: 401, challenge: invalidTokenChallenge},
		{name: "token of another key", auth: []string{"Bearer " + foreign}, wantCode: 401, challenge: invalidTokenChallenge},
		{name: "expired token", auth: []string{"Bearer " + expired}, wantCode: 401, challenge: invalidTokenChallenge},
		{name: "valid token and more", auth: []string{"Bearer " + valid + " extra"}, wantCode: 401, challenge: invalidTokenChallenge},
		{name: "valid", auth: []string{"Bearer " + valid}, wantCode: 200},
		{name: "lower-case scheme", auth: []string{"bearer " + valid}, wantCode: 200},
		{name: "upper-case scheme", auth: []string{"BEARER " + valid}, wantCode: 200},
		{name: "mixed-case scheme", auth: []string{"bEaReR " + valid}, wantCode: 200},
		{name: "several spaces", auth: []string{"Bearer   " + valid}, wantCode: 200},
		{name: "two valid headers", auth: []string{"Bearer " + valid, "Bearer " + valid}, wantCode: 400, challenge: invalidRequest},
		{name: "Basic and Bearer headers", auth: []string{"Basic b3duZXI6cGFzc3dvcmQ=", "Bearer " + valid}, wantCode: 400, challenge: invalidRequest},
		{name: "two empty headers", auth: []string{"", ""}, wantCode: 400, challenge: invalidRequest},
		{name: "token in the query only", target: "/p?access_token=" + valid, wantCode: 401, challenge: bareChallenge},
		{name: "token in the query, bad header", auth: []string{"Bearer x"}, target: "/p?access_token=" + valid, wantCode: 401, challenge: invalidTokenChallenge},
		{name: "token in an access_token cookie only", cookie: &http.Cookie{Name: "access_token", Value: valid}, wantCode: 401, challenge: bareChallenge},
		{name: "token in a token cookie only", cookie: &http.Cookie{Name: "token", Value: valid}, wantCode: 401, challenge: bareChallenge},
		{name: "token in an Authorization cookie only", cookie: &http.Cookie{Name: "Authorization", Value: "Bearer " + valid}, wantCode: 401, challenge: bareChallenge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProtected(t, a)
			target := tt.target
			if target == "" {
				target = "/p"
			}
			req := httptest.NewRequest(http.MethodGet, target, nil)
			for _, v := range tt.auth {
				req.Header.Add(echo.HeaderAuthorization, v)
			}
			if tt.cookie != nil {
				req.AddCookie(tt.cookie)
			}
			rec := httptest.NewRecorder()
			p.e.ServeHTTP(rec, req)

			if rec.Code != tt.wantCode {
				t.Errorf("status = %d, want %d; body %s", rec.Code, tt.wantCode, rec.Body)
			}
			if got := rec.Header().Values(echo.HeaderWWWAuthenticate); tt.challenge == "" && len(got) != 0 || tt.challenge != "" && (len(got) != 1 || got[0] != tt.challenge) {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
			if tt.wantCode != http.StatusOK {
				if p.calls != 0 {
					t.Errorf("handler ran %d times for a refused request", p.calls)
				}
				if rec.Body.String() == "secret stuff" {
					t.Error("refused request got the handler's body")
				}
				return
			}
			if p.calls != 1 {
				t.Fatalf("handler ran %d times, want once", p.calls)
			}
			if !p.found || p.claims == nil {
				t.Fatal("FromContext found no claims in the handler")
			}
			if p.claims.Subject != "owner" || p.claims.Issuer != token.Issuer {
				t.Errorf("FromContext claims = %+v", p.claims)
			}
		})
	}
}

func TestBearerEachRequestVerified(t *testing.T) {
	// The middleware keeps no state between requests: the same token is
	// accepted, then refused once the clock passes its expiry.
	a, clk := newAuthority(t)
	p := newProtected(t, a)
	tok := mustIssue(t, a, "owner")
	steps := []struct {
		at   time.Time
		want int
	}{
		{t0, 200},
		{t0.Add(ttl - 2*time.Second), 200},
		{t0.Add(ttl), 401},
		{t0, 200},
	}
	for i, s := range steps {
		clk.now = s.at
		req := httptest.NewRequest(http.MethodGet, "/p", nil)
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+tok)
		rec := httptest.NewRecorder()
		p.e.ServeHTTP(rec, req)
		if rec.Code != s.want {
			t.Errorf("step %d at %v: status %d, want %d", i, s.at, rec.Code, s.want)
		}
	}
}

func TestFromContextWithoutMiddleware(t *testing.T) {
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
	if claims, ok := token.FromContext(c); ok || claims != nil {
		t.Errorf("FromContext = %+v, %v on a bare context; want nil, false", claims, ok)
	}
}
