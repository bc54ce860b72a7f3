package ntpclock

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beevik/ntp"

	"camd/internal/testlog"
	"camd/platform/clock"
	"camd/platform/ntpclock/ntptest"
)

func TestSyncGoodServer(t *testing.T) {
	for _, offset := range []time.Duration{0, 90 * time.Second, -time.Hour, 3 * time.Hour} {
		t.Run(offset.String(), func(t *testing.T) {
			srv := ntptest.Start(t, ntptest.Behaviour{Offset: offset})
			log, logs := testlog.New()
			cfg := testConfig(t, clock.ModeNTP, srv.Addr)
			cfg.Log = log
			c := newClock(t, cfg)
			if c.Trusted() {
				t.Fatal("mode ntp trusts the clock before any sync")
			}

			if err := c.Sync(context.Background()); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			st := c.Status()
			if !st.Synced {
				t.Error("Status().Synced is false after a good sync")
			}
			if !st.Trusted || !c.Trusted() {
				t.Error("not trusted after a good sync")
			}
			if st.Server != srv.Addr {
				t.Errorf("Status().Server = %q, want %q", st.Server, srv.Addr)
			}
			if st.Mode != clock.ModeNTP {
				t.Errorf("Status().Mode = %q, want %q", st.Mode, clock.ModeNTP)
			}
			nearDur(t, "Status().Offset", st.Offset, offset, time.Second)
			near(t, "Now()", c.Now(), time.Now().Add(offset), time.Second)
			near(t, "Status().LastSync", st.LastSync, time.Now().Add(offset), time.Second)
			if q := srv.Queries(); q != 1 {
				t.Errorf("one Sync sent %d queries, want 1", q)
			}
			if len(logs.Lines("level=INFO", `msg="clock synced"`, "server="+srv.Addr)) != 1 {
				t.Errorf("the sync was not logged once:\n%s", logs)
			}
			if len(logs.Lines("disagree")) != 0 {
				t.Errorf("a single server was logged as disagreeing:\n%s", logs)
			}
		})
	}
}

func TestSyncFaults(t *testing.T) {
	tests := []struct {
		name    string
		b       ntptest.Behaviour
		closed  bool  // query a closed port instead of a fake server
		wantErr error // in the error chain
	}{
		{name: "silent", b: ntptest.Behaviour{Silent: true}, wantErr: os.ErrDeadlineExceeded},
		{name: "kiss of death RATE", b: ntptest.Behaviour{KissCode: "RATE"}, wantErr: ntp.ErrKissOfDeath},
		{name: "kiss of death DENY", b: ntptest.Behaviour{KissCode: "DENY"}, wantErr: ntp.ErrKissOfDeath},
		{name: "stratum 16", b: ntptest.Behaviour{Stratum: 16}, wantErr: ntp.ErrInvalidStratum},
		{name: "leap alarm", b: ntptest.Behaviour{Leap: 3}, wantErr: ntp.ErrInvalidLeapSecond},
		{name: "root dispersion 20s", b: ntptest.Behaviour{RootDispersion: 20 * time.Second}, wantErr: ntp.ErrInvalidDispersion},
		{name: "closed port", closed: true, wantErr: syscall.ECONNREFUSED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addr string
			var srv *ntptest.Server
			if tt.closed {
				addr = closedUDPAddr(t)
			} else {
				srv = ntptest.Start(t, tt.b)
				addr = srv.Addr
			}
			c := newClock(t, testConfig(t, clock.ModeNTP, addr))

			err := c.Sync(context.Background())
			if err == nil {
				t.Fatal("Sync succeeded")
			}
			if !strings.Contains(err.Error(), addr) {
				t.Errorf("Sync: %v, want the server %s named", err, addr)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Sync: %v, want %v in its chain", err, tt.wantErr)
			}
			st := c.Status()
			if st.Synced || st.Trusted || c.Trusted() || st.Server != "" || !st.LastSync.IsZero() || st.Offset != 0 {
				t.Errorf("Status() after a failed sync = %+v", st)
			}
			near(t, "Now()", c.Now(), time.Now(), time.Second)
			if srv != nil && srv.Queries() != 1 {
				t.Errorf("the server got %d queries, want 1", srv.Queries())
			}
		})
	}
}

// A bad server next to a good one is skipped, and logged.
func TestSyncSkipsBadServer(t *testing.T) {
	good := ntptest.Start(t, ntptest.Behaviour{Offset: 5 * time.Second})
	bad := ntptest.Start(t, ntptest.Behaviour{Stratum: 16})
	log, logs := testlog.New()
	cfg := testConfig(t, clock.ModeNTP, bad.Addr, good.Addr)
	cfg.Log = log
	c := newClock(t, cfg)
	if err := c.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if st := c.Status(); !st.Synced || st.Server != good.Addr {
		t.Errorf("Status() = %+v, want synced to %s", st, good.Addr)
	}
	nearDur(t, "Status().Offset", c.Status().Offset, 5*time.Second, time.Second)
	if len(logs.Lines("NTP server not used", bad.Addr)) != 1 {
		t.Errorf("the bad server was not logged:\n%s", logs)
	}
	if len(logs.Lines("disagree")) != 0 {
		t.Errorf("an invalid answer counted as a disagreement:\n%s", logs)
	}
}

// Once the clock is trusted, one server cannot step it by more than the
// panic threshold; two that agree can.
func TestStepFromTrustedClock(t *testing.T) {
	t.Run("one server ten years ahead is refused", func(t *testing.T) {
		srv := ntptest.Start(t, ntptest.Behaviour{Offset: tenYears})
		cfg := testConfig(t, clock.ModeAuto, srv.Addr)
		cfg.SystemTime = nil // the real clock, above the floor
		c := newClock(t, cfg)
		if !c.Trusted() {
			t.Fatal("mode auto does not trust the real clock above the floor")
		}
		err := c.Sync(context.Background())
		if err == nil {
			t.Fatal("Sync accepted a ten-year step from one server")
		}
		for _, want := range []string{"refusing", "two that agree", srv.Addr} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Sync: %v, want it to mention %q", err, want)
			}
		}
		if c.Status().Synced {
			t.Error("synced to the refused server")
		}
		near(t, "Now()", c.Now(), time.Now(), time.Second)
		if !c.Trusted() {
			t.Error("a refused sync made the clock untrusted")
		}
	})

	t.Run("a good and a ten-years-ahead server", func(t *testing.T) {
		good := ntptest.Start(t, ntptest.Behaviour{})
		bad := ntptest.Start(t, ntptest.Behaviour{Offset: tenYears})
		log, logs := testlog.New()
		cfg := testConfig(t, clock.ModeAuto, bad.Addr, good.Addr)
		cfg.Log = log
		c := newClock(t, cfg)
		if err := c.Sync(context.Background()); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		st := c.Status()
		if !st.Synced || st.Server != good.Addr {
			t.Errorf("Status() = %+v, want synced to the good server %s", st, good.Addr)
		}
		nearDur(t, "Status().Offset", st.Offset, 0, time.Second)
		near(t, "Now()", c.Now(), time.Now(), time.Second)
		lines := logs.Lines("level=WARN", `msg="NTP servers disagree`)
		if len(lines) != 1 {
			t.Fatalf("the disagreement was not logged once:\n%s", logs)
		}
		for _, a := range []string{good.Addr, bad.Addr} {
			if !strings.Contains(lines[0], a) {
				t.Errorf("the disagreement log does not name %s: %s", a, lines[0])
			}
		}
	})

	t.Run("two agree on ten years ahead, one good", func(t *testing.T) {
		// The larger group of agreeing servers wins, even against the
		// trusted clock: two that agree are enough to step it.
		bad1 := ntptest.Start(t, ntptest.Behaviour{Offset: tenYears})
		bad2 := ntptest.Start(t, ntptest.Behaviour{Offset: tenYears + 300*time.Millisecond})
		good := ntptest.Start(t, ntptest.Behaviour{})
		log, logs := testlog.New()
		cfg := testConfig(t, clock.ModeAuto, good.Addr, bad1.Addr, bad2.Addr)
		cfg.Log = log
		c := newClock(t, cfg)
		if !c.Trusted() {
			t.Fatal("mode auto does not trust the real clock above the floor")
		}
		if err := c.Sync(context.Background()); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		st := c.Status()
		if !st.Synced || !slices.Contains([]string{bad1.Addr, bad2.Addr}, st.Server) {
			t.Errorf("Status() = %+v, want synced to one of the two that agree", st)
		}
		nearDur(t, "Status().Offset", st.Offset, tenYears, time.Second)
		near(t, "Now()", c.Now(), time.Now().Add(tenYears), time.Second)
		if len(logs.Lines("level=WARN", `msg="NTP servers disagree`)) != 1 {
			t.Errorf("the disagreement was not logged once:\n%s", logs)
		}
	})

	// An untrusted clock has no time to compare with: see
	// TestFirstSyncCeiling for how far it believes one server.
}

// The panic threshold is 1000 s: a trusted clock takes smaller steps from a
// single server and refuses larger ones, either way.
func TestPanicThreshold(t *testing.T) {
	tests := []struct {
		offset time.Duration
		ok     bool
	}{
		{10 * time.Minute, true},
		{-10 * time.Minute, true},
		{panicThreshold - 5*time.Second, true},
		{panicThreshold + 5*time.Second, false},
		{20 * time.Minute, false},
		{-20 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.offset.String(), func(t *testing.T) {
			srv := ntptest.Start(t, ntptest.Behaviour{Offset: tt.offset})
			c := newClock(t, testConfig(t, clock.ModeAuto, srv.Addr))
			err := c.Sync(context.Background())
			if tt.ok {
				if err != nil {
					t.Fatalf("Sync: %v", err)
				}
				near(t, "Now()", c.Now(), time.Now().Add(tt.offset), time.Second)
				return
			}
			if err == nil || !strings.Contains(err.Error(), "refusing") {
				t.Fatalf("Sync: %v, want a refusal", err)
			}
			near(t, "Now()", c.Now(), time.Now(), time.Second)
		})
	}

	// Once synced, the trusted time is NTP time, not the local clock: a
	// second sync measures its step from there.
	t.Run("after a sync", func(t *testing.T) {
		srv := ntptest.Start(t, ntptest.Behaviour{Offset: 10 * time.Minute})
		c := newClock(t, testConfig(t, clock.ModeNTP, srv.Addr))
		if err := c.Sync(context.Background()); err != nil {
			t.Fatalf("first Sync: %v", err)
		}
		srv.Set(ntptest.Behaviour{Offset: 10*time.Minute + tenYears})
		if err := c.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Fatalf("second Sync: %v, want a refusal", err)
		}
		near(t, "Now()", c.Now(), time.Now().Add(10*time.Minute), time.Second)
		if st := c.Status(); st.Server != srv.Addr || (st.Offset-10*time.Minute).Abs() > time.Second {
			t.Errorf("Status() after the refused sync = %+v, want the first sync's", st)
		}
	})
}

// With the clock untrusted there is no time to compare with: of servers that
// disagree, the lowest root distance wins.
func TestDisagreeUntrustedLowestRootDistance(t *testing.T) {
	tests := []struct {
		name          string
		aheadDisp     time.Duration // root dispersion of the server 3 min ahead
		onTimeDisp    time.Duration // and of the one on time
		wantAhead     bool
		untrustedBase time.Time // the local clock's start; zero: the real clock
	}{
		{name: "on time is closer", aheadDisp: 2 * time.Second, onTimeDisp: 10 * time.Millisecond},
		{name: "ahead is closer", aheadDisp: 10 * time.Millisecond, onTimeDisp: 2 * time.Second, wantAhead: true},
		{name: "ahead is closer, 1970 clock", aheadDisp: 10 * time.Millisecond, onTimeDisp: 2 * time.Second, wantAhead: true, untrustedBase: base1970},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const ahead = 3 * time.Minute
			aheadSrv := ntptest.Start(t, ntptest.Behaviour{Offset: ahead, RootDispersion: tt.aheadDisp})
			onTime := ntptest.Start(t, ntptest.Behaviour{RootDispersion: tt.onTimeDisp})
			log, logs := testlog.New()
			// Mode ntp: untrusted until the first sync.
			cfg := testConfig(t, clock.ModeNTP, aheadSrv.Addr, onTime.Addr)
			cfg.Log = log
			if !tt.untrustedBase.IsZero() {
				cfg.SystemTime = newFakeSystem(tt.untrustedBase).Now
			}
			c := newClock(t, cfg)
			if c.Trusted() {
				t.Fatal("trusted before any sync in mode ntp")
			}
			if err := c.Sync(context.Background()); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			want, wantOffset := onTime.Addr, time.Duration(0)
			if tt.wantAhead {
				want, wantOffset = aheadSrv.Addr, ahead
			}
			if st := c.Status(); st.Server != want {
				t.Errorf("synced to %s, want %s", st.Server, want)
			}
			near(t, "Now()", c.Now(), time.Now().Add(wantOffset), time.Second)
			if len(logs.Lines("level=WARN", `msg="NTP servers disagree`, aheadSrv.Addr, onTime.Addr)) != 1 {
				t.Errorf("the disagreement was not logged once:\n%s", logs)
			}
		})
	}
}

// No answer before the build time is usable, however many servers give it.
func TestSyncBeforeBuildFloor(t *testing.T) {
	tests := []struct {
		name    string
		offsets []time.Duration
		ok      bool
	}{
		{name: "one server on time", offsets: []time.Duration{0}},
		{name: "two servers agree on time", offsets: []time.Duration{0, 0}},
		{name: "one server after the floor", offsets: []time.Duration{2 * time.Hour}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var servers []*ntptest.Server
			for _, o := range tt.offsets {
				servers = append(servers, ntptest.Start(t, ntptest.Behaviour{Offset: o}))
			}
			cfg := testConfig(t, clock.ModeNTP, addrs(servers...)...)
			cfg.Floor = time.Now().Add(time.Hour)
			c := newClock(t, cfg)
			err := c.Sync(context.Background())
			if tt.ok {
				if err != nil {
					t.Fatalf("Sync: %v", err)
				}
				if !c.Trusted() {
					t.Error("not trusted after a sync past the floor")
				}
				return
			}
			if err == nil {
				t.Fatal("Sync accepted a time before the build floor")
			}
			for _, s := range servers {
				if !strings.Contains(err.Error(), s.Addr) || !strings.Contains(err.Error(), "before this build") {
					t.Errorf("Sync: %v, want %s named as before this build", err, s.Addr)
				}
			}
			if st := c.Status(); st.Synced || st.Trusted {
				t.Errorf("Status() = %+v, want neither synced nor trusted", st)
			}
		})
	}
}

// Answers are sorted by server, so the choice does not depend on which came
// first; ties in root distance go to the lower RTT, then the first server.
func TestChooseDeterministic(t *testing.T) {
	resp := func(offset, dist, rtt time.Duration) *ntp.Response {
		return &ntp.Response{ClockOffset: offset, RootDistance: dist, RTT: rtt}
	}
	tests := []struct {
		name    string
		answers []answer
		trusted bool
		want    string
		size    int
	}{
		{
			name: "lowest root distance in the group",
			answers: []answer{
				{"a", resp(0, 50*time.Millisecond, time.Millisecond)},
				{"b", resp(100*time.Millisecond, 10*time.Millisecond, time.Millisecond)},
			},
			want: "b", size: 2,
		},
		{
			name: "then lowest RTT",
			answers: []answer{
				{"a", resp(0, 10*time.Millisecond, 5*time.Millisecond)},
				{"b", resp(0, 10*time.Millisecond, time.Millisecond)},
			},
			want: "b", size: 2,
		},
		{
			name: "agreement is within a second",
			answers: []answer{
				{"a", resp(0, 10*time.Millisecond, time.Millisecond)},
				{"b", resp(1500*time.Millisecond, time.Millisecond, time.Millisecond)},
				{"c", resp(1500*time.Millisecond, time.Millisecond, time.Millisecond)},
			},
			want: "b", size: 2,
		},
		{
			name: "trusted tie goes to the smaller step",
			answers: []answer{
				{"a", resp(time.Hour, time.Millisecond, time.Millisecond)},
				{"b", resp(time.Hour, time.Millisecond, time.Millisecond)},
				{"c", resp(0, 50*time.Millisecond, time.Millisecond)},
				{"d", resp(0, 50*time.Millisecond, time.Millisecond)},
			},
			trusted: true,
			want:    "c", size: 2,
		},
		{
			name: "untrusted tie goes to the lower root distance",
			answers: []answer{
				{"a", resp(time.Hour, time.Millisecond, time.Millisecond)},
				{"b", resp(time.Hour, time.Millisecond, time.Millisecond)},
				{"c", resp(0, 50*time.Millisecond, time.Millisecond)},
				{"d", resp(0, 50*time.Millisecond, time.Millisecond)},
			},
			want: "a", size: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode, sys := clock.ModeNTP, time.Now
			if tt.trusted {
				mode = clock.ModeAuto
			}
			cfg := testConfig(t, mode, "127.0.0.1:1")
			cfg.SystemTime = sys
			c := newClock(t, cfg)
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.trustedLocked() != tt.trusted {
				t.Fatalf("trusted = %v, want %v", !tt.trusted, tt.trusted)
			}
			best, size, err := c.choose(tt.answers, time.Now())
			if err != nil {
				t.Fatalf("choose: %v", err)
			}
			if best.server != tt.want || size != tt.size {
				t.Errorf("choose = %s (group of %d), want %s (group of %d)", best.server, size, tt.want, tt.size)
			}
		})
	}
}

// queryAll asks every server at once and sorts the answers by server, so
// that which one answered first does not change the choice.
func TestQueryAllSorted(t *testing.T) {
	// No packets: the Query seam answers, in the reverse of sorted order.
	servers := []string{"127.0.0.1:3", "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:4"}
	turn := map[string]chan struct{}{}
	for _, s := range servers {
		turn[s] = make(chan struct{})
	}
	next := map[string]string{"127.0.0.1:4": "127.0.0.1:3", "127.0.0.1:3": "127.0.0.1:2", "127.0.0.1:2": "127.0.0.1:1"}
	var order []string
	var mu sync.Mutex
	cfg := testConfig(t, clock.ModeNTP, servers...)
	cfg.Query = func(addr string, opt ntp.QueryOptions) (*ntp.Response, error) {
		if opt.Timeout != cfg.Timeout || opt.GetSystemTime == nil {
			t.Errorf("query options %+v, want the configured timeout and local clock", opt)
		}
		<-turn[addr]
		mu.Lock()
		order = append(order, addr)
		mu.Unlock()
		if n, ok := next[addr]; ok {
			defer close(turn[n])
		}
		if addr == "127.0.0.1:4" {
			return nil, errors.New("no answer")
		}
		return &ntp.Response{Stratum: 2, Time: time.Now(), ReferenceTime: time.Now().Add(-time.Second)}, nil
	}
	c := newClock(t, cfg)
	close(turn["127.0.0.1:4"])
	answers, errs := c.queryAll(context.Background())
	if want := []string{"127.0.0.1:4", "127.0.0.1:3", "127.0.0.1:2", "127.0.0.1:1"}; !slices.Equal(order, want) {
		t.Fatalf("answered in order %v, want %v", order, want)
	}
	var got []string
	for _, a := range answers {
		got = append(got, a.server)
	}
	if want := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}; !slices.Equal(got, want) {
		t.Errorf("answers from %v, want sorted %v", got, want)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "127.0.0.1:4: no answer") {
		t.Errorf("errors %v, want the failing server's", errs)
	}

	// A context that ended is reported with the answers.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, s := range servers {
		turn[s] = make(chan struct{})
		close(turn[s])
	}
	next = nil
	if _, errs := c.queryAll(ctx); !slices.ContainsFunc(errs, func(err error) bool { return errors.Is(err, context.Canceled) }) {
		t.Errorf("errors %v after the context ended, want context.Canceled", errs)
	}
}
