// Package ntpclock is camd's NTP-disciplined clock (github.com/beevik/ntp).
//
// It never needs to set the OS clock: Now is the offset measured at the last
// sync carried forward on the monotonic clock, so it is right in a container
// or as an unprivileged user, and a jump of the system clock between syncs
// does not move it. With SetSystemClock it also sets the OS clock, for a cam
// SoC where camd runs with CAP_SYS_TIME.
//
// Trust follows the mode (see clock.ModeAuto, ModeNTP, ModeSystem) and a
// floor: the later of the build time and the last-known-good time, which is
// persisted in the data directory. A reading earlier than the floor is never
// trusted.
//
// One source, an NTP server or the system clock, is believed only within
// bounds (see sync.go): not more than MaxAhead after the build time before
// the clock is trusted, and not more than a step budget away from the trusted
// time after. Beyond them it takes two servers that agree, and only they can
// raise the persisted floor past the ceiling.
package ntpclock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/beevik/ntp"

	"camd/platform/clock"
	"camd/platform/datadir"
)

// DefaultServers is the public NTP pool.
func DefaultServers() []string {
	return []string{"0.pool.ntp.org", "1.pool.ntp.org", "2.pool.ntp.org", "3.pool.ntp.org"}
}

// Defaults for the Config fields a caller may leave zero.
const (
	DefaultInterval     = time.Hour
	DefaultTimeout      = 5 * time.Second
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 4 * time.Minute
	DefaultPersistEvery = 10 * time.Minute
	// DefaultMaxAhead is how far past the build time a single source is
	// believed while the clock is not trusted yet. Five years covers a cam
	// left on the same firmware for its usual service life; past that a
	// lone server needs a second that agrees (the default pool gives four),
	// or a larger --clock-max-ahead.
	DefaultMaxAhead = 5 * 365 * 24 * time.Hour
)

// Config configures a Clock.
type Config struct {
	Mode           string        // clock.ModeAuto, ModeNTP or ModeSystem
	Servers        []string      // host or host:port
	Interval       time.Duration // between syncs once synced; jittered by ±10%
	Timeout        time.Duration // per query
	SetSystemClock bool          // also set the OS clock after each sync
	Floor          time.Time     // clock.BuildFloor
	Dir            datadir.Dir   // holds the last-known-good time
	Log            *slog.Logger

	// MaxAhead is how far after Floor (the build time) one source is
	// believed: the ceiling. Zero means DefaultMaxAhead.
	MaxAhead time.Duration

	// MinBackoff and MaxBackoff bound the retry delay while syncs fail.
	MinBackoff, MaxBackoff time.Duration
	// PersistEvery is the least time between two writes of the
	// last-known-good time: cam flash wears.
	PersistEvery time.Duration

	// Test seams; nil means the real thing.
	SystemTime func() time.Time                                               // the local clock
	Query      func(addr string, opt ntp.QueryOptions) (*ntp.Response, error) // one NTP query
	SetTime    func(time.Time) error                                          // set the OS clock
}

// Clock is an NTP-disciplined clock.clock.Clock. Run drives it.
type Clock struct {
	cfg       Config
	log       *slog.Logger
	lastGood  lastGoodFile
	buildTime time.Time
	ceiling   time.Time // buildTime + MaxAhead: the latest time one source is believed

	mu       sync.RWMutex
	floor    time.Time // later of the build floor and the last-known-good time
	synced   bool
	base     time.Time // time.Now() at the last sync, for its monotonic reading
	ref      time.Time // corrected time at base
	offset   time.Duration
	server   string
	lastSync time.Time
	nextSync time.Time
	saved    time.Time // monotonic time of the last last-known-good write
	anchor   anchor    // where the step budget is measured from; zero before the first sync
	writes   int       // last-known-good writes, for the flash-wear test
}

var _ clock.Clock = (*Clock)(nil)

// New returns a clock configured by cfg. It reads the last-known-good time
// and checks that SetSystemClock can work.
func New(cfg Config) (*Clock, error) {
	switch cfg.Mode {
	case clock.ModeAuto, clock.ModeNTP, clock.ModeSystem:
	default:
		return nil, fmt.Errorf("clock mode %q: want auto, ntp or system", cfg.Mode)
	}
	if cfg.Mode != clock.ModeSystem && len(cfg.Servers) == 0 {
		return nil, errors.New("clock: no NTP servers")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.SystemTime == nil {
		cfg.SystemTime = time.Now
	}
	if cfg.Query == nil {
		cfg.Query = ntp.QueryWithOptions
	}
	if cfg.SetTime == nil {
		cfg.SetTime = setSystemClock
	}
	cfg.Interval = orDefault(cfg.Interval, DefaultInterval)
	cfg.Timeout = orDefault(cfg.Timeout, DefaultTimeout)
	cfg.MinBackoff = orDefault(cfg.MinBackoff, DefaultMinBackoff)
	cfg.MaxBackoff = orDefault(cfg.MaxBackoff, DefaultMaxBackoff)
	cfg.PersistEvery = orDefault(cfg.PersistEvery, DefaultPersistEvery)
	cfg.MaxAhead = orDefault(cfg.MaxAhead, DefaultMaxAhead)
	if cfg.SetSystemClock {
		if cfg.Mode == clock.ModeSystem {
			return nil, errors.New("--set-system-clock needs NTP: it cannot be used with --clock system")
		}
		if err := canSetSystemClock(); err != nil {
			return nil, err
		}
	}

	c := &Clock{cfg: cfg, log: cfg.Log, lastGood: lastGoodFile{path: cfg.Dir.Join(LastGoodFileName)},
		buildTime: cfg.Floor, ceiling: cfg.Floor.Add(cfg.MaxAhead)}
	c.floor = cfg.Floor
	if t, err := c.lastGood.load(); err != nil {
		c.log.Warn("ignoring the last-known-good time", "err", err)
	} else if t.After(c.floor) {
		c.floor = t
	}
	if c.floor.After(c.ceiling) {
		// Only servers that agree can have put it there, or an older
		// camd that believed one: they are also what takes it down.
		c.log.Warn("the last-known-good time is later than a single source is believed; two NTP servers that agree on an earlier time discard it",
			"last_known_good", c.floor, "ceiling", c.ceiling, "path", c.lastGood.path)
	}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Now returns the NTP-corrected time once synced, the system time before.
func (c *Clock) Now() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.nowLocked()
}

func (c *Clock) nowLocked() time.Time {
	if c.synced {
		// time.Since reads the monotonic clock: a step of the system
		// clock between syncs does not move camd's time.
		return c.ref.Add(time.Since(c.base))
	}
	return c.cfg.SystemTime().Round(0)
}

// Trusted reports whether tokens may be issued and checked now.
func (c *Clock) Trusted() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.trustedLocked()
}

func (c *Clock) trustedLocked() bool {
	now := c.nowLocked()
	if now.Before(c.floor) {
		return false
	}
	switch c.cfg.Mode {
	case clock.ModeNTP:
		return c.synced
	case clock.ModeAuto:
		// An RTC past the ceiling is one source like any other: it waits
		// for NTP. In system mode the host is the authority and nothing
		// could confirm it, so the ceiling does not apply there.
		return c.synced || !now.After(c.ceiling)
	}
	return true
}

// Status describes the clock.
func (c *Clock) Status() clock.Status {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return clock.Status{
		Mode:     c.cfg.Mode,
		Trusted:  c.trustedLocked(),
		Synced:   c.synced,
		LastSync: c.lastSync,
		Offset:   c.offset,
		Server:   c.server,
		NextSync: c.nextSync,
	}
}

// Floor returns the time before which no reading is trusted.
func (c *Clock) Floor() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.floor
}

// Run syncs at start with exponential backoff, then every Interval, and
// persists the last-known-good time at most every PersistEvery and when ctx
// ends. In system mode it only persists. It returns when ctx ends.
func (c *Clock) Run(ctx context.Context) {
	persist := time.NewTicker(c.cfg.PersistEvery)
	defer persist.Stop()
	var syncTimer *time.Timer
	var syncC <-chan time.Time
	schedule := func(d time.Duration) {
		syncTimer = time.NewTimer(d)
		syncC = syncTimer.C
		c.mu.Lock()
		c.nextSync = c.nowLocked().Add(d)
		c.mu.Unlock()
	}
	if c.cfg.Mode != clock.ModeSystem {
		schedule(0)
	}
	backoff := c.cfg.MinBackoff
	for {
		select {
		case <-ctx.Done():
			if syncTimer != nil {
				syncTimer.Stop()
			}
			c.mu.Lock()
			c.nextSync = time.Time{}
			c.mu.Unlock()
			c.saveLastGood(true)
			return
		case <-persist.C:
			c.saveLastGood(false)
		case <-syncC:
			if err := c.Sync(ctx); err != nil {
				if ctx.Err() != nil {
					continue
				}
				c.log.Warn("NTP sync failed", "err", err, "retry_in", backoff.String())
				schedule(backoff)
				backoff = min(2*backoff, c.cfg.MaxBackoff)
				continue
			}
			backoff = c.cfg.MinBackoff
			schedule(jitter(c.cfg.Interval))
		}
	}
}

// jitter spreads d by ±10% so that a fleet of cams does not query in step.
func jitter(d time.Duration) time.Duration {
	spread := int64(d) / 10
	if spread <= 0 {
		return d
	}
	return d + time.Duration(rand.Int64N(2*spread+1)-spread)
}
