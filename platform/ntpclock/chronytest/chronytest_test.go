package chronytest_test

import (
	"testing"
	"time"

	"github.com/beevik/ntp"

	"camd/platform/ntpclock/chronytest"
)

func TestChronyAnswers(t *testing.T) {
	s := chronytest.Start(t)
	r, err := ntp.QueryWithOptions(s.Addr, ntp.QueryOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil || r.Stratum != 8 {
		t.Errorf("Validate() = %v, stratum %d; want a valid stratum-8 answer", err, r.Stratum)
	}
	if r.ClockOffset.Abs() > time.Second {
		t.Errorf("offset %v: chronyd serves this machine's clock", r.ClockOffset)
	}
	s.Stop()
	if _, err := ntp.QueryWithOptions(s.Addr, ntp.QueryOptions{Timeout: 300 * time.Millisecond}); err == nil {
		t.Error("chronyd still answers after Stop")
	}
}
