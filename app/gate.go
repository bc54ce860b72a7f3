package app

import (
	"context"
	"math"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"camd/lockout"
	"camd/platform/password"
)

// PasswordGate checks the owner password for login and Basic auth, with
// brute-force protection: failures are counted per client address, and a
// locked address gets 429 with Retry-After without its password being
// checked. Bearer tokens never pass through here, so a client with a bad
// token is never locked out, and a valid token works from a locked address.
type PasswordGate struct {
	owner   *password.Store
	limiter *lockout.Limiter
}

// Check reports whether user and pass are the owner's. It returns a 429
// *echo.HTTPError while c's address is locked.
func (g *PasswordGate) Check(c echo.Context, user, pass string) (bool, error) {
	return g.check(c, user, pass, g.owner.Check)
}

// CheckBasic is Check for HTTP Basic credentials, which a browser resends
// with every request: a verified credential is trusted again for
// password.RecentTTL without hashing (password.Store.CheckRecent).
func (g *PasswordGate) CheckBasic(c echo.Context, user, pass string) (bool, error) {
	return g.check(c, user, pass, g.owner.CheckRecent)
}

func (g *PasswordGate) check(c echo.Context, user, pass string, verify func(context.Context, string, string) (bool, error)) (bool, error) {
	addr := c.RealIP()
	if ok, wait := g.limiter.Check(addr); !ok {
		return false, tooMany(c, wait.Seconds())
	}
	ok, err := verify(c.Request().Context(), user, pass)
	if err != nil {
		return false, err
	}
	if ok {
		g.limiter.Success(addr)
	} else {
		g.limiter.Failure(addr)
	}
	return ok, nil
}

func tooMany(c echo.Context, seconds float64) error {
	c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(max(1, int(math.Ceil(seconds)))))
	return echo.NewHTTPError(http.StatusTooManyRequests, "too many failed attempts; try again later")
}
