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
	// step larger than this needs two servers that agree. It is also what
	// single servers may move the clock in total (see stepBudget).
	panicThreshold = 1000 * time.Second
	// maxDrift is the largest frequency error an honest oscillator can
	// have: 500 ppm, the most NTP and the Linux kernel correct (RFC 5905's
	// tolerance, the kernel's MAXFREQ). The step budget grows by this much
	// of the time since its anchor, so real drift is always corrected.
	maxDrift = 500e-6
)

// anchor is the trusted time the step budget is measured from: the last
// sync on which servers agreed, or else the time at the first sync.
type anchor struct {
	ref    time.Time // camd's time at mono
	mono   time.Time // time.Now() then, for its monotonic reading
	agreed bool      // set by servers that agreed, so it may raise the floor past the ceiling
}

// stepBudget is how far single servers may move a trusted clock, in total,
// from its anchor after elapsed: the panic threshold plus what an honest
// oscillator can drift meanwhile. A server stepping a little less than
// the threshold at every sync therefore stops after the first step.
func stepBudget(elapsed time.Duration) time.Duration {
	return panicThreshold + time.Duration(float64(elapsed)*maxDrift)
}

// answer is one server's valid response.
type answer struct {
	server string
	resp   *ntp.Response
}

// Sync queries every server once and, if the answers allow it, sets camd's
// time from the best one. One server alone must keep within the ceiling
// (untrusted) or the step budget (trusted); servers that agree need not.
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
	trusted, prev := c.trustedLocked(), c.nowLocked()
	agreed := size >= 2
	if trusted && !agreed {
		// Walking: each step below the panic threshold, together far
		// more. Single servers share one budget since the anchor.
		since, expected, elapsed := prev, prev, time.Duration(0)
		if !c.anchor.mono.IsZero() {
			elapsed = mono.Sub(c.anchor.mono)
			since, expected = c.anchor.ref, c.anchor.ref.Add(elapsed)
		}
		if moved, budget := ref.Sub(expected), stepBudget(elapsed); moved.Abs() > budget {
			return false, fmt.Errorf("refusing to move the trusted clock by %s in all since %s on the word of one server (%s): single servers may move it %s in total; it takes two that agree",
				moved.Round(time.Second), since.Format(time.RFC3339), best.server, budget.Round(time.Second))
		}
	}
	if ref.Before(c.floor) && size < 2 {
		// Earlier than the last-known-good time: one server may be lying
		// or misconfigured; it takes two that agree to move below it.
		return false, fmt.Errorf("NTP server %s says %s, earlier than the last-known-good time %s; two servers that agree on it discard that floor",
			best.server, ref.Format(time.RFC3339), c.floor.Format(time.RFC3339))
	}
	if ref.Before(c.floor) {
		c.log.Error("NTP servers agree on a time earlier than the last-known-good time; lowering the floor to the build time",
			"ntp_time", ref, "last_known_good", c.floor)
		c.floor = c.buildTime
		lowered = true
	}
	switch {
	case agreed:
		c.anchor = anchor{ref: ref, mono: mono, agreed: true}
	case c.anchor.mono.IsZero() && trusted:
		// The first step from a trusted system clock counts against
		// the budget too.
		c.anchor = anchor{ref: prev, mono: mono}
	case c.anchor.mono.IsZero():
		c.anchor = anchor{ref: ref, mono: mono}
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
// that disagree. While the clock is untrusted it drops a lone answer past the
// ceiling; once trusted it refuses a big step unless two servers agree on
// it. It returns the answer and the size of its group.
func (c *Clock) choose(answers []answer, local time.Time) (answer, int, error) {
	agreeing := func(a answer) []answer {
		var g []answer
		for _, b := range answers {
			if (a.resp.ClockOffset - b.resp.ClockOffset).Abs() <= agreeWithin {
				g = append(g, b)
			}
		}
		return g
	}
	trusted := c.trustedLocked()
	var groups [][]answer
	var tooFar []error
	for _, a := range answers {
		g := agreeing(a)
		if t := local.Add(a.resp.ClockOffset); !trusted && len(g) < 2 && t.After(c.ceiling) {
			// Nothing to compare with yet: one server alone is not
			// believed further than the ceiling past the build.
			tooFar = append(tooFar, fmt.Errorf("NTP server %s says %s, more than --clock-max-ahead (%s) after this build (%s); it takes two servers that agree",
				a.server, t.Round(time.Second).Format(time.RFC3339), c.cfg.MaxAhead, c.buildTime.Format(time.RFC3339)))
			continue
		}
		groups = append(groups, g)
	}
	if len(groups) == 0 {
		return answer{}, 0, errors.Join(tooFar...)
	}
	for _, err := range tooFar {
		c.log.Warn("NTP server not used", "err", err)
	}
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
