// Package clock is the one place camd reads wall-clock time from. Token
// issuing and checking go through a Clock so that the NTP-disciplined clock
// can replace the system one without touching the modules.
package clock

import "time"

// Clock tells the current time.
type Clock interface {
	Now() time.Time
}

// System is the operating system's clock.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// Func adapts a function to a Clock; tests use it to fix or move time.
type Func func() time.Time

// Now calls f.
func (f Func) Now() time.Time { return f() }
