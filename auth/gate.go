package auth

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"camd/apierr"
	"camd/lockout"
	"camd/platform/password"
)

// gate checks the owner password for login and Basic auth, with brute-force
// protection: every check is reserved with the lockout before it is hashed
// (lockout.Limiter.Begin), so attempts in flight count against an address's
// limit, and a full hash queue is refused rather than waited for. Bearer
// tokens never pass through here, so a client with a bad token is never
// locked out, and a valid token works from a locked address.
type gate struct {
	owner   *password.Store
	limiter *lockout.Limiter
	// v6Prefix is how many leading bits of an IPv6 address one lockout
	// entry covers (lockout.Key).
	v6Prefix int
}

// Refusal is a check not made: the address is locked out, or too many
// checks are in flight. RetryAfter says when to come back.
type Refusal struct {
	Err        *apierr.Error // locked_out or busy
	RetryAfter time.Duration
}

func (r *Refusal) Error() string { return r.Err.Error() }
func (r *Refusal) Unwrap() error { return r.Err }

// check reports whether user and pass are the owner's and, when they are,
// the password version a token issued for them must carry. It returns a
// *Refusal while addr is locked or the checks are busy.
func (g *gate) check(ctx context.Context, addr, user, pass string) (ok bool, version string, err error) {
	return g.run(ctx, addr, func(ctx context.Context) (bool, string, error) {
		return g.owner.Check(ctx, user, pass)
	})
}

// checkBasic is check for HTTP Basic credentials, which a browser resends
// with every request: a verified credential is trusted again for
// password.RecentTTL without hashing (password.Store.CheckRecent), and
// without taking one of the address's places in flight, as it is no guess.
func (g *gate) checkBasic(ctx context.Context, addr, user, pass string) (bool, error) {
	key := lockout.Key(addr, g.v6Prefix)
	if ok, wait := g.limiter.Check(key); !ok {
		return false, refusal(&lockout.Refusal{Locked: true, RetryAfter: wait})
	}
	if ok, err := g.owner.Recent(user, pass); ok || err != nil {
		return ok, err
	}
	ok, _, err := g.run(ctx, addr, func(ctx context.Context) (bool, string, error) {
		ok, err := g.owner.CheckRecent(ctx, user, pass)
		return ok, "", err
	})
	return ok, err
}

func (g *gate) run(ctx context.Context, addr string, verify func(context.Context) (bool, string, error)) (bool, string, error) {
	at, err := g.limiter.Begin(lockout.Key(addr, g.v6Prefix))
	if err != nil {
		return false, "", refusal(err)
	}
	defer at.Abandon() // a no-op once Fail or Succeed ran; frees the place on a panic
	ok, version, err := verify(ctx)
	switch {
	case errors.Is(err, password.ErrBusy), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// A full queue, or a client that left while it waited: not a
		// guess, and nothing for an operator to act on.
		return false, "", refusal(&lockout.Refusal{RetryAfter: time.Second})
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

// refusal turns a *lockout.Refusal into a *Refusal: locked_out for a locked
// address, busy for a full gate.
func refusal(err error) error {
	var r *lockout.Refusal
	if !errors.As(err, &r) {
		return err
	}
	if r.Locked {
		return &Refusal{apierr.New(apierr.LockedOut, "too many failed attempts; try again later"), r.RetryAfter}
	}
	return &Refusal{apierr.New(apierr.Busy, "too many password checks at once; try again later"), r.RetryAfter}
}

// ClientKey is the one client an address counts as, as the lockout counts
// them: an IPv4 address, or an IPv6 address's prefix of LockoutIPv6Prefix
// bits. The connection caps count clients with it too.
func (s *Service) ClientKey(a netip.Addr) string { return lockout.KeyAddr(a, s.gate.v6Prefix) }
