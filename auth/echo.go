package auth

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	echojwt "github.com/labstack/echo-jwt/v4"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"camd/apierr"
	"camd/platform/clock"
)

// This file is the auth service's one meeting point with Echo: every
// middleware a module puts in front of its routes is made here.

// Realm is the realm named in Bearer challenges.
const Realm = "camd"

// Context keys: where the adapters leave the verified Principal, and the
// mark that Basic accepted the credentials.
const (
	principalKey   = "camd.auth.principal"
	basicPassedKey = "camd.auth.basic.passed"
)

// PrincipalFrom returns who the request is from, as Bearer or Basic
// verified it.
func PrincipalFrom(c echo.Context) (*Principal, bool) {
	p, ok := c.Get(principalKey).(*Principal)
	return p, ok
}

var (
	errNoBearer       = apierr.New(apierr.MissingToken, "missing bearer token")
	errRepeatedHeader = apierr.New(apierr.InvalidRequest, "more than one Authorization header")
	errUntrusted      = errors.New("clock not trusted")
)

// scopeError refuses a valid token that lacks the route's scopes.
type scopeError struct{ scopes []string }

func (e *scopeError) Error() string { return "token lacks scope " + strings.Join(e.scopes, " or ") }

// bearerConfig is the echo-jwt configuration every Bearer middleware
// shares; Bearer adds the route's scope check to it.
func (s *Service) bearerConfig() echojwt.Config {
	return echojwt.Config{
		ContextKey: principalKey,
		// The clock is checked first, in the extractor: neither issuing a
		// token nor judging its exp means anything without trusted time.
		TokenLookupFuncs: []middleware.ValuesExtractor{func(c echo.Context) ([]string, error) {
			if !s.clock.Trusted() {
				return nil, errUntrusted
			}
			return bearerFromHeader(c)
		}},
		ErrorHandler: func(c echo.Context, err error) error {
			if errors.Is(err, errUntrusted) {
				return s.untrusted(c)
			}
			return bearerError(c, err)
		},
		SuccessHandler: func(c echo.Context) {
			if p, ok := PrincipalFrom(c); ok && p.Kind == KindClient {
				s.clients.Used(p.Client, c.RealIP(), s.clock.Now())
			}
		},
	}
}

// Bearer returns echo-jwt middleware that admits a request only with a
// valid token in "Authorization: Bearer <token>" (RFC 6750 section 2.1)
// that grants any of scopes (none named: any valid token). It never looks at
// the query string, a form or a cookie. Refusals carry the RFC 6750
// challenge and the handler never runs; the Principal is in PrincipalFrom.
func (s *Service) Bearer(scopes ...string) echo.MiddlewareFunc {
	cfg := s.bearer
	cfg.ParseTokenFunc = func(_ echo.Context, auth string) (any, error) {
		raw, _ := bearerToken(auth) // bearerFromHeader has checked it
		p, err := s.Verify(raw)
		if err != nil {
			return nil, err
		}
		if len(scopes) > 0 && !hasAny(p, scopes) {
			return nil, &scopeError{scopes}
		}
		return p, nil
	}
	mw, err := cfg.ToMiddleware()
	if err != nil {
		panic("auth: echo-jwt configuration: " + err.Error()) // a programming error, caught by every test
	}
	return mw
}

func hasAny(p *Principal, scopes []string) bool {
	for _, sc := range scopes {
		if p.HasScope(sc) {
			return true
		}
	}
	return false
}

// RequireTrustedClock answers 503 clock_untrusted with Retry-After while the
// clock is not trusted: neither issuing a token nor judging one's exp means
// anything then.
func (s *Service) RequireTrustedClock() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if s.clock.Trusted() {
				return next(c)
			}
			return s.untrusted(c)
		}
	}
}

// untrusted refuses a request while the clock is not trusted.
func (s *Service) untrusted(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(retryAfter(s.clock.Status(), s.clock.Now())))
	return apierr.New(apierr.ClockUntrusted, "clock not synchronized")
}

// retryAfter is the seconds until the clock's next sync attempt, within
// [1, 300]; 10 when none is planned.
func retryAfter(st clock.Status, now time.Time) int {
	if st.NextSync.IsZero() {
		return 10
	}
	secs := int(math.Ceil(st.NextSync.Sub(now).Seconds()))
	return min(max(secs, 1), 300)
}

// bearerFromHeader finds the one Authorization header and checks that it
// holds a Bearer token. It returns the header's own value slice, "Bearer
// <token>", which echo-jwt only reads: ParseTokenFunc takes the token out.
func bearerFromHeader(c echo.Context) ([]string, error) {
	values := c.Request().Header.Values(echo.HeaderAuthorization)
	switch {
	case len(values) == 0:
		return nil, errNoBearer
	case len(values) > 1:
		// Authorization is not a list header; two of them are ambiguous
		// and trying each would let a client probe with many tokens.
		return nil, errRepeatedHeader
	}
	if _, ok := bearerToken(values[0]); !ok {
		return nil, errNoBearer
	}
	return values, nil
}

// bearerToken returns the token of an Authorization value "Bearer <token>",
// and false when it is not one. The scheme is case-insensitive (RFC 7235
// section 2.1).
func bearerToken(auth string) (string, bool) {
	scheme, tok, _ := strings.Cut(auth, " ")
	tok = strings.TrimLeft(tok, " ")
	return tok, strings.EqualFold(scheme, "Bearer") && tok != ""
}

// bearerError answers a refused request with its RFC 6750 challenge:
// error="invalid_request" for a repeated header, "insufficient_scope" for a
// token without the route's scopes, "invalid_token" for every token refused
// (expired, revoked, rotated, password changed or not camd's: the code and
// error_description say which), and a bare challenge when none was
// presented (section 3.1).
func bearerError(c echo.Context, err error) error {
	challenge := `Bearer realm="` + Realm + `"`
	var se *scopeError
	e, _ := apierr.As(err)
	switch {
	case errors.As(err, &se):
		challenge += `, error="insufficient_scope", scope="` + strings.Join(se.scopes, " ") + `"`
		e = apierr.New(apierr.InsufficientScope, se.Error())
	case e == nil:
		return err // not a refusal: a 500 (an unreadable password file)
	case e.Code == apierr.InvalidRequest:
		challenge += `, error="invalid_request"`
	case e.Code != apierr.MissingToken:
		challenge += `, error="invalid_token", error_description="` + e.Message + `"`
	}
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, challenge)
	return e
}

// Basic returns Echo's BasicAuth middleware for the owner, checking through
// the lockout (see CheckBasic), with the challenge spelled "Basic
// realm=...", as RFC 7617 does. A malformed header is a 400 invalid_request
// and nothing more: no log line for a client's mistake.
func (s *Service) Basic(realm string) echo.MiddlewareFunc {
	mw := middleware.BasicAuthWithConfig(middleware.BasicAuthConfig{
		Realm: realm,
		Validator: func(user, pass string, c echo.Context) (bool, error) {
			ok, err := s.CheckBasic(c.Request().Context(), c.RealIP(), user, pass)
			if err != nil {
				return false, retryLater(c, err)
			}
			if ok {
				p := ownerPrincipal // a copy: a handler may not change another request's
				c.Set(principalKey, &p)
			}
			return ok, nil
		},
	})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		// passed is set once the credentials are accepted: what the rest of
		// the chain returns is not BasicAuth's to relabel.
		h := mw(func(c echo.Context) error {
			c.Set(basicPassedKey, true)
			return next(c)
		})
		return func(c echo.Context) error {
			// As on the bearer routes: two credentials are ambiguous, and
			// Echo would take the first.
			if len(c.Request().Header.Values(echo.HeaderAuthorization)) > 1 {
				return errRepeatedHeader
			}
			err := h(c)
			if passed, _ := c.Get(basicPassedKey).(bool); passed {
				return err
			}
			hdr := c.Response().Header()
			if v := hdr.Get(echo.HeaderWWWAuthenticate); strings.HasPrefix(v, "basic ") {
				hdr.Set(echo.HeaderWWWAuthenticate, "Basic "+v[len("basic "):])
			}
			he, ok := err.(*echo.HTTPError) // BasicAuth's own refusals, unwrapped
			if !ok {
				return err
			}
			switch he.Code {
			case http.StatusUnauthorized:
				// Another scheme (a bearer token) is no Basic credential.
				if a := c.Request().Header.Get(echo.HeaderAuthorization); len(a) < 6 || !strings.EqualFold(a[:6], "basic ") {
					return apierr.New(apierr.MissingCredentials, "missing credentials")
				}
				return apierr.New(apierr.InvalidCredentials, "wrong user or password")
			case http.StatusBadRequest:
				return apierr.New(apierr.InvalidRequest, "malformed Authorization header")
			}
			return err
		}
	}
}

// LoginRequest is Service.Login for a request: the address is the client's, and a
// refusal carries its challenge (RFC 9110 section 15.5.2 requires one on
// every 401) or its Retry-After.
func (s *Service) LoginRequest(c echo.Context, user, pass string) (Grant, error) {
	g, err := s.Login(c.Request().Context(), c.RealIP(), user, pass)
	if e, ok := apierr.As(err); ok && e.Code == apierr.InvalidCredentials {
		// The scheme of what a login obtains; no error attribute, as no
		// token was presented (RFC 6750 section 3.1).
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="`+Realm+`"`)
	}
	return g, retryLater(c, err)
}

// retryLater sets Retry-After, in whole seconds rounded up, for a refused
// password check.
func retryLater(c echo.Context, err error) error {
	var r *Refusal
	if errors.As(err, &r) {
		c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(max(1, int(math.Ceil(r.RetryAfter.Seconds())))))
	}
	return err
}
