package app

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"camd/lockout"
	"camd/platform/password"
)

// PasswordGate checks the owner password for login and Basic auth, with
// brute-force protection: every check is reserved with the lockout before
// it is hashed (lockout.Limiter.Begin), so attempts in flight count against
// an address's limit, and a full hash queue is refused rather than waited
// for. A locked address gets 429 with Retry-After and a busy one 503 with
// Retry-After, both without their password being checked. Bearer tokens
// never pass through here, so a client with a bad token is never locked
// out, and a valid token works from a locked address.
type PasswordGate struct {
	owner   *password.Store
	limiter *lockout.Limiter
	// v6Prefix is how many leading bits of an IPv6 address one lockout
	// entry covers (lockout.Key).
	v6Prefix int
}

// NewPasswordGate returns a gate over owner and limiter that counts IPv6
// addresses by their first v6Prefix bits.
func NewPasswordGate(owner *password.Store, limiter *lockout.Limiter, v6Prefix int) *PasswordGate {
	return &PasswordGate{owner: owner, limiter: limiter, v6Prefix: v6Prefix}
}

// Check reports whether user and pass are the owner's and, when they are,
// the password version a token issued for them must carry. It returns a
// 429 or 503 *echo.HTTPError while c's address is locked or the checks are
// busy.
func (g *PasswordGate) Check(c echo.Context, user, pass string) (ok bool, version string, err error) {
	return g.check(c, func(ctx context.Context) (bool, string, error) {
		return g.owner.Check(ctx, user, pass)
	})
}

// CheckBasic is Check for HTTP Basic credentials, which a browser resends
// with every request: a verified credential is trusted again for
// password.RecentTTL without hashing (password.Store.CheckRecent), and
// without taking one of the address's places in flight, as it is no guess.
func (g *PasswordGate) CheckBasic(c echo.Context, user, pass string) (bool, error) {
	if ok, wait := g.limiter.Check(g.key(c)); !ok {
		return false, refusal(c, &lockout.Refusal{Locked: true, RetryAfter: wait})
	}
	if ok, err := g.owner.Recent(user, pass); ok || err != nil {
		return ok, err
	}
	ok, _, err := g.check(c, func(ctx context.Context) (bool, string, error) {
		ok, err := g.owner.CheckRecent(ctx, user, pass)
		return ok, "", err
	})
	return ok, err
}

func (g *PasswordGate) key(c echo.Context) string { return lockout.Key(c.RealIP(), g.v6Prefix) }

func (g *PasswordGate) check(c echo.Context, verify func(context.Context) (bool, string, error)) (bool, string, error) {
	at, err := g.limiter.Begin(g.key(c))
	if err != nil {
		return false, "", refusal(c, err)
	}
	defer at.Abandon() // a no-op once Fail or Succeed ran; frees the place on a panic
	ok, version, err := verify(c.Request().Context())
	switch {
	case errors.Is(err, password.ErrBusy), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// A full queue, or a client that left while it waited: not a
		// guess, and nothing for an operator to act on.
		return false, "", refusal(c, &lockout.Refusal{RetryAfter: time.Second})
	case errors.Is(err, password.ErrChanged):
		return false, "", nil // wrong now, but no guess: not counted
	case err != nil:
		return false, "", err
	case ok:
		at.Succeed()
	default:
		at.Fail()
	}
	return ok, version, nil
}

// refusal answers a *lockout.Refusal: 429 for a locked address, 503 for a
// busy gate, each with Retry-After in whole seconds, rounded up.
func refusal(c echo.Context, err error) error {
	var r *lockout.Refusal
	if !errors.As(err, &r) {
		return err
	}
	c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(max(1, int(math.Ceil(r.RetryAfter.Seconds())))))
	if r.Locked {
		return echo.NewHTTPError(http.StatusTooManyRequests, "too many failed attempts; try again later")
	}
	return echo.NewHTTPError(http.StatusServiceUnavailable, "too many password checks at once; try again later")
}
