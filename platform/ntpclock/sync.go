package ntpclock

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beevik/ntp"
)

// Selection thresholds.
const (
	// agreeWithin is how close two servers' offsets must be to count as
	// agreeing on the time.
	agreeWithin = time.Second
	// panicThreshold is RFC 5905's PANICT: once the clock is trusted, a
	// step larger than this needs two servers that agree.
	panicThreshold = 1000 * time.Second
)

// answer is one server's valid response.
type answer struct {
	server string
	resp   *ntp.Response
}

// Sync queries every server once and, if the answers allow it, sets camd's
// time from the best one.
func (c *Clock) Sync(ctx context.Context) error {
	lowered, err := c.sync(ctx)
	if lowered {
		// Persist the lowered floor now: a restart must not bring back
		// the wrong one.
		c.saveLastGood(true)
	}
	return err
}

// sync is Sync under the lock; it reports whether it lowered the floor.
func (c *Clock) sync(ctx context.Context) (lowered bool, err error) {
	if len(c.cfg.Servers) == 0 {
		return false, errors.New("no NTP servers configured")
	}
	answers, errs := c.queryAll(ctx)
	if len(answers) == 0 {
		return false, fmt.Errorf("no usable NTP answer: %w", errors.Join(errs...))
	}
	for _, err := range errs {
		c.log.Info("NTP server not used", "err", err)
	}

	local := c.cfg.SystemTime()
	mono := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	best, size, err := c.choose(answers, local)
	if err != nil {
		return false, err
	}
	ref := local.Add(best.resp.ClockOffset).Round(0)
	if ref.Before(c.floor) && size < 2 {
		// Earlier than the last-known-good time: one server may be lying
		// or misconfigured; it takes two that agree to move below it.
		return false, fmt.Errorf("NTP server %s says %s, earlier than the last-known-good time %s",
			best.server, ref.Format(time.RFC3339), c.floor.Format(time.RFC3339))
	}
	if ref.Before(c.floor) {
		c.log.Error("NTP servers agree on a time earlier than the last-known-good time; lowering the floor to the build time",
			"ntp_time", ref, "last_known_good", c.floor)
		c.floor = c.buildTime
		lowered = true
	}
	c.synced, c.base, c.ref = true, mono, ref
	c.offset, c.server, c.lastSync = best.resp.ClockOffset, best.server, ref
	c.log.Info("clock synced", "server", best.server, "offset", best.resp.ClockOffset.String(),
		"rtt", best.resp.RTT.String(), "stratum", best.resp.Stratum, "root_distance", best.resp.RootDistance.String())

	if c.cfg.SetSystemClock {
		if err := c.cfg.SetTime(c.nowLocked()); err != nil {
			c.log.Error("could not set the system clock", "err", err)
		}
	}
	return lowered, nil
}

// queryAll asks every server at once and keeps the answers that pass
// Response.Validate (no kiss-of-death, a synchronised stratum, a sane root
// distance) and are not before the build time.
func (c *Clock) queryAll(ctx context.Context) ([]answer, []error) {
	var (
		mu      sync.Mutex
		answers []answer
		errs    []error
		wg      sync.WaitGroup
	)
	opt := ntp.QueryOptions{Timeout: c.cfg.Timeout, GetSystemTime: c.cfg.SystemTime}
	for _, server := range c.cfg.Servers {
		wg.Go(func() {
			resp, err := c.cfg.Query(server, opt)
			if err == nil {
				err = resp.Validate()
			}
			if err == nil && c.cfg.SystemTime().Add(resp.ClockOffset).Before(c.buildTime) {
				err = errors.New("time before this build")
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", server, err))
				return
			}
			answers = append(answers, answer{server: server, resp: resp})
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	// Sorted, so the choice does not depend on which answer came first.
	slices.SortFunc(answers, func(a, b answer) int { return strings.Compare(a.server, b.server) })
	return answers, errs
}

// choose picks the answer to trust: from the largest group of servers that
// agree, the one with the lowest root distance, then RTT. It logs servers
// that disagree, and refuses a big step from a trusted clock unless two
// servers agree on it. It returns the answer and the size of its group.
func (c *Clock) choose(answers []answer, local time.Time) (answer, int, error) {
	var groups [][]answer
	for _, a := range answers {
		var g []answer
		for _, b := range answers {
			if (a.resp.ClockOffset - b.resp.ClockOffset).Abs() <= agreeWithin {
				g = append(g, b)
			}
		}
		groups = append(groups, g)
	}
	trusted := c.trustedLocked()
	now := c.nowLocked()
	step := func(a answer) time.Duration { return local.Add(a.resp.ClockOffset).Sub(now) }

	slices.SortStableFunc(groups, func(x, y []answer) int {
		if len(x) != len(y) {
			return len(y) - len(x) // larger groups first
		}
		if trusted {
			// A tie between groups: believe the one nearest the time we
			// already trust.
			return cmp.Compare(step(x[0]).Abs(), step(y[0]).Abs())
		}
		return cmp.Compare(bestOf(x).resp.RootDistance, bestOf(y).resp.RootDistance)
	})
	if len(groups[0]) < len(answers) {
		attrs := []any{}
		for _, a := range answers {
			attrs = append(attrs, slog.String(a.server, a.resp.ClockOffset.String()))
		}
		c.log.Warn("NTP servers disagree on the time", attrs...)
	}
	group := groups[0]
	best := bestOf(group)
	if trusted && step(best).Abs() > panicThreshold && len(group) < 2 {
		return answer{}, 0, fmt.Errorf("refusing to step the trusted clock by %s on the word of one server (%s); it takes two that agree",
			step(best).Round(time.Second), best.server)
	}
	return best, len(group), nil
}

// bestOf is the answer with the lowest root distance, then RTT.
func bestOf(group []answer) answer {
	return slices.MinFunc(group, func(a, b answer) int {
		if c := cmp.Compare(a.resp.RootDistance, b.resp.RootDistance); c != 0 {
			return c
		}
		return cmp.Compare(a.resp.RTT, b.resp.RTT)
	})
}
