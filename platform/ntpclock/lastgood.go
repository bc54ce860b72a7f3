package ntpclock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"camd/platform/atomicfile"
	"camd/platform/datadir"
)

// LastGoodFileName is the last-known-good time's name in the data directory.
const LastGoodFileName = "clock.lastgood"

// lastGoodFile persists the last time the clock was trusted, so that a cam
// rebooting without an RTC cannot be sent back before it.
type lastGoodFile struct {
	path string
}

// load returns the persisted time, or the zero time when there is none.
func (f lastGoodFile) load() (time.Time, error) {
	raw, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read %s: %w", f.path, err)
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(raw)))
	if err != nil {
		return time.Time{}, fmt.Errorf("parse %s: %w", f.path, err)
	}
	return t, nil
}

func (f lastGoodFile) save(t time.Time) error {
	return atomicfile.WriteFile(f.path, []byte(t.UTC().Format(time.RFC3339Nano)+"\n"), 0o600)
}

// saveLastGood writes the current time when it is trusted, at most every
// PersistEvery unless final (shutdown, or a floor just lowered). The floor
// rises with it, but never past plausibleLocked: a single source cannot
// raise it beyond what it would be believed for. The file is written
// outside the lock, so Now never waits on flash.
func (c *Clock) saveLastGood(final bool) {
	c.mu.RLock()
	due := final || c.saved.IsZero() || time.Since(c.saved) >= c.cfg.PersistEvery
	trusted, now := c.trustedLocked(), c.nowLocked()
	if p := c.plausibleLocked(); now.After(p) {
		// Capped, but never below the floor already held.
		now = p
		if c.floor.After(now) {
			now = c.floor
		}
	}
	c.mu.RUnlock()
	if !trusted || !due {
		return
	}
	if err := c.lastGood.save(now); err != nil {
		c.log.Error("could not persist the last-known-good time", "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.saved = time.Now()
	c.writes++
	if now.After(c.floor) {
		c.floor = now
	}
}

// plausibleLocked is the latest floor camd will persist: the ceiling, or
// the time servers last agreed on carried forward, whichever is later.
func (c *Clock) plausibleLocked() time.Time {
	p := c.ceiling
	if c.anchor.agreed {
		if t := c.anchor.ref.Add(time.Since(c.anchor.mono)); t.After(p) {
			p = t
		}
	}
	return p
}

// LastKnownGood returns the last-known-good time kept in dir, zero when
// there is none. Offline commands use it so that what they write is never
// dated before what the server last trusted.
func LastKnownGood(dir datadir.Dir) (time.Time, error) {
	return lastGoodFile{path: dir.Join(LastGoodFileName)}.load()
}
