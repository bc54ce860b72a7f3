// Package clock is the one place camd reads wall-clock time from. Token
// issuing and checking go through a Clock, which also says whether its time
// can be trusted: a cam without a battery-backed RTC boots at 1970 or at its
// firmware's build date, and then every token looks expired, or an expired
// stolen one looks valid again.
package clock

import (
	"runtime/debug"
	"time"
)

// Clock tells the time and whether it is good enough to judge token lifetimes.
type Clock interface {
	Now() time.Time
	// Trusted reports whether Now can be relied on. Tokens are neither
	// issued nor accepted while it is false.
	Trusted() bool
	// Status describes the clock for /healthz and Retry-After.
	Status() Status
}

// Status is a clock's state, as /healthz shows it.
type Status struct {
	Mode     string        // auto, ntp or system
	Trusted  bool          // tokens are issued and accepted
	Synced   bool          // an NTP server has answered
	LastSync time.Time     // zero before the first sync
	Offset   time.Duration // NTP time minus the system clock at the last sync
	Server   string        // the server used at the last sync
	NextSync time.Time     // zero when no sync is planned
}

// Modes of trust, chosen with --clock.
const (
	// ModeAuto trusts the system clock while it reads later than the floor,
	// and NTP time once a server has answered.
	ModeAuto = "auto"
	// ModeNTP trusts time only after the first successful NTP sync.
	ModeNTP = "ntp"
	// ModeSystem trusts the system clock (above the floor) and sends no NTP
	// traffic: for containers whose host keeps time.
	ModeSystem = "system"
)

// BuildFloor returns the earliest time a correct clock can show for this
// binary: the later of the stamped build time (RFC 3339, may be empty), the
// VCS commit time Go recorded, and the date this code was written.
func BuildFloor(stamped string) time.Time {
	// When this clock code was written: no correct clock reads earlier,
	// whatever the build stamps say.
	floor := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	if t, err := time.Parse(time.RFC3339, stamped); err == nil && t.After(floor) {
		floor = t
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key != "vcs.time" {
				continue
			}
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil && t.After(floor) {
				floor = t
			}
		}
	}
	return floor
}

// System is the operating system's clock, trusted while it reads at or after
// Floor. It is --clock system, and what tests use when they need no NTP.
type System struct {
	Floor time.Time
}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// Trusted reports whether the system clock reads at or after the floor.
func (s System) Trusted() bool { return !time.Now().Before(s.Floor) }

// Status reports the system clock's trust.
func (s System) Status() Status { return Status{Mode: ModeSystem, Trusted: s.Trusted()} }

// Func adapts a function to an always-trusted Clock; tests use it to fix or
// move time.
type Func func() time.Time

// Now calls f.
func (f Func) Now() time.Time { return f() }

// Trusted is always true.
func (Func) Trusted() bool { return true }

// Status reports a trusted test clock.
func (Func) Status() Status { return Status{Mode: "test", Trusted: true} }
