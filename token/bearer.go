package token

import (
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	echojwt "github.com/labstack/echo-jwt/v4"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"camd/platform/clock"
)

// Realm is the realm named in Bearer challenges.
const Realm = "camd"

// contextKey is where the bearer middleware leaves the verified claims.
const contextKey = "camd.token.claims"

var (
	errNoBearer       = errors.New("no bearer token")
	errRepeatedHeader = errors.New("more than one Authorization header")
	errUntrusted      = errors.New("clock not trusted")
)

// Bearer returns echo-jwt middleware that admits a request only with a valid
// token in "Authorization: Bearer <token>" (RFC 6750 section 2.1). It never
// looks at the query string, a form or a cookie. Refusals carry the RFC 6750
// challenge and the handler never runs.
//
// It is one echo-jwt middleware, the RequireTrustedClock check included
// (first, in the token extractor), rather than RequireTrustedClock wrapped
// around it: Echo applies a route's middleware to its handler on every
// request, and each middleware applied is a closure allocated.
func (a *Authority) Bearer() (echo.MiddlewareFunc, error) {
	cfg := echojwt.Config{
		ContextKey: contextKey,
		TokenLookupFuncs: []middleware.ValuesExtractor{func(c echo.Context) ([]string, error) {
			if !a.clock.Trusted() {
				return nil, errUntrusted
			}
			return bearerFromHeader(c)
		}},
		ParseTokenFunc: func(_ echo.Context, auth string) (any, error) {
			raw, _ := bearerToken(auth) // bearerFromHeader has checked it
			return a.Verify(raw)
		},
		ErrorHandler: func(c echo.Context, err error) error {
			if errors.Is(err, errUntrusted) {
				return a.untrusted(c)
			}
			return bearerError(c, err)
		},
		SuccessHandler: func(c echo.Context) {
			if claims, ok := FromContext(c); ok && a.onUse != nil {
				a.onUse(c, claims)
			}
		},
	}
	return cfg.ToMiddleware()
}

// RequireTrustedClock answers 503 {"error":"clock not synchronized"} with
// Retry-After while the clock is not trusted: neither issuing a token nor
// judging one's exp means anything then.
func (a *Authority) RequireTrustedClock() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if a.clock.Trusted() {
				return next(c)
			}
			return a.untrusted(c)
		}
	}
}

// untrusted refuses a request while the clock is not trusted.
func (a *Authority) untrusted(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(retryAfter(a.clock.Status(), a.clock.Now())))
	return echo.NewHTTPError(http.StatusServiceUnavailable, "clock not synchronized")
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

// FromContext returns the claims the Bearer middleware verified for c.
func FromContext(c echo.Context) (*Claims, bool) {
	claims, ok := c.Get(contextKey).(*Claims)
	return claims, ok
}

// bearerFromHeader finds the one Authorization header and checks that it
// holds a Bearer token. It returns the header's own value slice, "Bearer
// <token>", which echo-jwt only reads, rather than a new []string{token}:
// one allocation less per request. ParseTokenFunc takes the token out.
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

// bearerError answers a refused request: 400 invalid_request for a repeated
// header, 401 with error="invalid_token" when a token was presented and
// failed, and a bare 401 challenge when none was presented (RFC 6750 3.1).
func bearerError(c echo.Context, err error) error {
	challenge := `Bearer realm="` + Realm + `"`
	status, msg := http.StatusUnauthorized, "missing bearer token"
	switch {
	case errors.Is(err, errRepeatedHeader):
		challenge += `, error="invalid_request"`
		status, msg = http.StatusBadRequest, "more than one Authorization header"
	case errors.Is(err, ErrInvalid):
		challenge += `, error="invalid_token"`
		msg = "invalid or expired token"
	}
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, challenge)
	return echo.NewHTTPError(status, msg)
}

// RequireScope admits a request whose verified token grants any of scopes;
// any other gets 403 with the RFC 6750 insufficient_scope challenge naming
// them. It goes after Bearer.
func RequireScope(scopes ...string) echo.MiddlewareFunc {
	challenge := `Bearer realm="` + Realm + `", error="insufficient_scope", scope="` + strings.Join(scopes, " ") + `"`
	msg := "token lacks scope " + strings.Join(scopes, " or ")
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if claims, ok := FromContext(c); ok && slices.ContainsFunc(scopes, claims.HasScope) {
				return next(c)
			}
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, challenge)
			return echo.NewHTTPError(http.StatusForbidden, msg)
		}
	}
}
