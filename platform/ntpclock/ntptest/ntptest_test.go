package ntptest_test

import (
	"testing"
	"time"

	"github.com/beevik/ntp"

	"camd/platform/ntpclock/ntptest"
)

// TestAnswers checks the fake against the real client: each behaviour comes
// out as beevik/ntp understands it.
func TestAnswers(t *testing.T) {
	tests := []struct {
		name    string
		b       ntptest.Behaviour
		offset  time.Duration // expected ClockOffset, within a second
		invalid error         // expected Validate error
	}{
		{"good", ntptest.Behaviour{}, 0, nil},
		{"ten years ahead", ntptest.Behaviour{Offset: 10 * 365 * 24 * time.Hour}, 10 * 365 * 24 * time.Hour, nil},
		{"an hour behind", ntptest.Behaviour{Offset: -time.Hour}, -time.Hour, nil},
		{"kiss of death", ntptest.Behaviour{KissCode: "RATE"}, 0, ntp.ErrKissOfDeath},
		{"stratum 16", ntptest.Behaviour{Stratum: 16}, 0, ntp.ErrInvalidStratum},
		{"leap alarm", ntptest.Behaviour{Leap: 3}, 0, ntp.ErrInvalidLeapSecond},
		{"root distance too large", ntptest.Behaviour{RootDispersion: 20 * time.Second}, 0, ntp.ErrInvalidDispersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ntptest.Start(t, tc.b)
			r, err := ntp.QueryWithOptions(s.Addr, ntp.QueryOptions{Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(); err != tc.invalid {
				t.Fatalf("Validate() = %v, want %v", err, tc.invalid)
			}
			if tc.invalid == nil && (r.ClockOffset-tc.offset).Abs() > time.Second {
				t.Errorf("ClockOffset = %v, want about %v", r.ClockOffset, tc.offset)
			}
			if s.Queries() != 1 {
				t.Errorf("Queries() = %d, want 1", s.Queries())
			}
		})
	}
	t.Run("silent", func(t *testing.T) {
		s := ntptest.Start(t, ntptest.Behaviour{Silent: true})
		if _, err := ntp.QueryWithOptions(s.Addr, ntp.QueryOptions{Timeout: 200 * time.Millisecond}); err == nil {
			t.Error("a silent server answered")
		}
	})
}
