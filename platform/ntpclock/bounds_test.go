package ntpclock

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"camd/internal/testlog"
	"camd/platform/clock"
	"camd/platform/ntpclock/ntptest"
)

// thirtyYears is how far ahead issue 13's lying server was.
const thirtyYears = 30 * 365 * 24 * time.Hour

// Before the clock is trusted, one server is believed up to MaxAhead after
// the build time and no further; servers that agree are believed anywhere
// after the floor.
func TestFirstSyncCeiling(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		local   time.Time       // the system clock's start; zero: real time
		offsets []time.Duration // one server each
		ok      bool
		want    time.Duration // camd's time minus real time after an accepted sync
	}{
		{name: "ntp: one server 30 years ahead", mode: clock.ModeNTP, offsets: []time.Duration{thirtyYears}},
		{name: "auto at 1970: one server 30 years ahead", mode: clock.ModeAuto, local: base1970, offsets: []time.Duration{thirtyYears}},
		{name: "ntp: one server 6 years ahead", mode: clock.ModeNTP, offsets: []time.Duration{6 * 365 * 24 * time.Hour}},
		{name: "ntp: one server 4 years ahead, within the span", mode: clock.ModeNTP, offsets: []time.Duration{4 * 365 * 24 * time.Hour}, ok: true, want: 4 * 365 * 24 * time.Hour},
		{name: "auto at 1970: one honest server", mode: clock.ModeAuto, local: base1970, offsets: []time.Duration{0}, ok: true},
		{name: "ntp: two agree 30 years ahead", mode: clock.ModeNTP, offsets: []time.Duration{thirtyYears, thirtyYears + 300*time.Millisecond}, ok: true, want: thirtyYears},
		{name: "auto at 1970: one 30 years ahead, one honest", mode: clock.ModeAuto, local: base1970, offsets: []time.Duration{thirtyYears, 0}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var servers []*ntptest.Server
			for _, o := range tt.offsets {
				servers = append(servers, ntptest.Start(t, ntptest.Behaviour{Offset: o}))
			}
			log, logs := testlog.New()
			cfg := testConfig(t, tt.mode, addrs(servers...)...)
			cfg.Log = log
			if !tt.local.IsZero() {
				cfg.SystemTime = newFakeSystem(tt.local).Now
			}
			c := newClock(t, cfg)
			if c.Trusted() && tt.mode == clock.ModeNTP {
				t.Fatal("trusted before any sync")
			}
			err := c.Sync(context.Background())
			c.saveLastGood(true) // as at shutdown
			if tt.ok {
				if err != nil {
					t.Fatalf("Sync: %v", err)
				}
				if !c.Trusted() {
					t.Error("not trusted after an accepted sync")
				}
				near(t, "Now()", c.Now(), time.Now().Add(tt.want), time.Second)
				if len(tt.offsets) == 2 && tt.offsets[1] == 0 && len(logs.Lines("level=WARN", "NTP server not used", servers[0].Addr, "--clock-max-ahead")) != 1 {
					t.Errorf("the server past the ceiling was not logged:\n%s", logs)
				}
				return
			}
			if err == nil {
				t.Fatalf("Sync accepted one server %s ahead; Now() = %s", tt.offsets[0], c.Now().Format(time.RFC3339))
			}
			for _, want := range []string{servers[0].Addr, "--clock-max-ahead", "two servers that agree"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Sync: %v, want it to mention %q", err, want)
				}
			}
			if st := c.Status(); st.Synced || st.Trusted || c.Trusted() {
				t.Errorf("Status() = %+v after the refusal, want neither synced nor trusted", st)
			}
			if _, err := os.Stat(cfg.Dir.Join(LastGoodFileName)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the refused answer left a last-known-good time: %v", err)
			}
		})
	}
}

// Issue 13's reproduction, in-process: one server 30 years ahead, then a
// restart with an honest server. Before the fix camd took 2056, saved it as
// the floor, and refused the honest server for ever after.
func TestOneServerFarAheadThenRestart(t *testing.T) {
	for _, tt := range []struct {
		mode  string
		local time.Time
	}{{clock.ModeNTP, time.Time{}}, {clock.ModeAuto, base1970}} {
		t.Run(tt.mode, func(t *testing.T) {
			liar := ntptest.Start(t, ntptest.Behaviour{Offset: thirtyYears})
			cfg := testConfig(t, tt.mode, liar.Addr)
			if !tt.local.IsZero() {
				cfg.SystemTime = newFakeSystem(tt.local).Now
			}
			c := newClock(t, cfg)
			stop := run(t, c)
			waitFor(t, "the answer to be judged and asked again", func() bool { return liar.Queries() >= 2 || c.Status().Synced })
			stop()
			if c.Trusted() || c.Now().After(time.Now().Add(time.Hour)) {
				t.Errorf("after one +30-year answer: trusted %v, Now() %s", c.Trusted(), c.Now().Format(time.RFC3339))
			}
			if f := c.Floor(); !f.Equal(cfg.Floor) {
				t.Errorf("Floor() = %s, want the build floor", f.Format(time.RFC3339))
			}

			honest := ntptest.Start(t, ntptest.Behaviour{})
			cfg.Servers = []string{honest.Addr}
			again := newClock(t, cfg)
			if err := again.Sync(context.Background()); err != nil {
				t.Fatalf("Sync with an honest server after the restart: %v", err)
			}
			if !again.Trusted() {
				t.Error("not trusted after the restart")
			}
			near(t, "Now() after the restart", again.Now(), time.Now(), time.Second)
		})
	}
}

// auto mode believes an RTC no further than the ceiling either: one that
// reads 30 years ahead waits for NTP, which then sets it right.
func TestAutoRTCPastCeiling(t *testing.T) {
	srv := ntptest.Start(t, ntptest.Behaviour{})
	cfg := testConfig(t, clock.ModeAuto, srv.Addr)
	cfg.SystemTime = newFakeSystem(time.Now().Add(thirtyYears)).Now
	c := newClock(t, cfg)
	if c.Trusted() {
		t.Fatalf("an RTC 30 years ahead is trusted: Now() %s", c.Now().Format(time.RFC3339))
	}
	c.saveLastGood(true)
	if writeCount(c) != 0 {
		t.Error("the untrusted RTC time was persisted")
	}
	if err := c.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if !c.Trusted() {
		t.Error("not trusted after syncing")
	}
	near(t, "Now()", c.Now(), time.Now(), time.Second)
}

// A server that steps a trusted clock by a little less than the panic
// threshold at every sync must not walk it: issue 13 measured 66 minutes in
// 4 syncs of 990 s. Single servers together move it at most the budget;
// honest drift is still corrected, and servers that agree still step it.
func TestWalkerIsStopped(t *testing.T) {
	tests := []struct {
		name     string
		mode     string
		step     time.Duration // added to the server's offset at every sync
		agreeing bool          // a second server says the same
		accepted int           // syncs of 8 that are taken
	}{
		{name: "990 s ahead per sync, auto", mode: clock.ModeAuto, step: 990 * time.Second, accepted: 1},
		{name: "990 s behind per sync, auto", mode: clock.ModeAuto, step: -990 * time.Second, accepted: 1},
		{name: "600 s ahead per sync, ntp", mode: clock.ModeNTP, step: 600 * time.Second, accepted: 1},
		{name: "150 s ahead per sync, ntp: the budget runs out after 6", mode: clock.ModeNTP, step: 150 * time.Second, accepted: 6},
		{name: "honest drift of 20 ms per sync", mode: clock.ModeNTP, step: 20 * time.Millisecond, accepted: 8},
		{name: "two servers that agree, 990 s per sync", mode: clock.ModeNTP, step: 990 * time.Second, agreeing: true, accepted: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ntptest.Start(t, ntptest.Behaviour{})
			servers := []*ntptest.Server{srv}
			if tt.agreeing {
				servers = append(servers, ntptest.Start(t, ntptest.Behaviour{}))
			}
			c := newClock(t, testConfig(t, tt.mode, addrs(servers...)...))
			if err := c.Sync(context.Background()); err != nil {
				t.Fatalf("first Sync: %v", err)
			}
			accepted := 0
			var lastErr error
			for i := 1; i <= 8; i++ {
				for _, s := range servers {
					s.Set(ntptest.Behaviour{Offset: time.Duration(i) * tt.step})
				}
				if lastErr = c.Sync(context.Background()); lastErr == nil {
					accepted++
				}
			}
			moved := c.Now().Sub(time.Now())
			t.Logf("8 syncs of %s: %d accepted, the clock moved %s", tt.step, accepted, moved.Round(time.Second))
			if accepted != tt.accepted {
				t.Errorf("%d syncs accepted, want %d (last error: %v)", accepted, tt.accepted, lastErr)
			}
			if !tt.agreeing && moved.Abs() > stepBudget(time.Minute) {
				t.Errorf("a single server walked the trusted clock by %s; the budget is %s", moved.Round(time.Second), stepBudget(0))
			}
			if accepted < 8 && (lastErr == nil || !strings.Contains(lastErr.Error(), "two that agree")) {
				t.Errorf("refusal %v, want it to say it takes two that agree", lastErr)
			}
			if !c.Trusted() {
				t.Error("refusing the walker made the clock untrusted")
			}
		})
	}
}

func TestStepBudget(t *testing.T) {
	tests := []struct {
		elapsed, want time.Duration
	}{
		{0, panicThreshold},
		{time.Hour, panicThreshold + 1800*time.Millisecond},
		{24 * time.Hour, panicThreshold + 43200*time.Millisecond},
	}
	for _, tt := range tests {
		if got := stepBudget(tt.elapsed); got != tt.want {
			t.Errorf("stepBudget(%s) = %s, want %s", tt.elapsed, got, tt.want)
		}
	}
}

// A single source never raises the persisted floor past the ceiling;
// servers that agree do.
func TestFloorCappedForSingleSource(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		servers int // honest servers that agree; 0 for none
		capped  bool
	}{
		{name: "system clock past the ceiling", mode: clock.ModeSystem, capped: true},
		{name: "two servers agree past the ceiling", mode: clock.ModeNTP, servers: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var servers []*ntptest.Server
			for range tt.servers {
				servers = append(servers, ntptest.Start(t, ntptest.Behaviour{}))
			}
			cfg := testConfig(t, tt.mode, addrs(servers...)...)
			// The ceiling is a day ago: real time is past it.
			cfg.Floor, cfg.MaxAhead = time.Now().Add(-48*time.Hour), 24*time.Hour
			ceiling := cfg.Floor.Add(cfg.MaxAhead)
			c := newClock(t, cfg)
			if len(servers) > 0 {
				if err := c.Sync(context.Background()); err != nil {
					t.Fatalf("Sync: %v", err)
				}
			}
			if !c.Trusted() {
				t.Fatal("not trusted")
			}
			c.saveLastGood(true)
			saved, err := c.lastGood.load()
			if err != nil {
				t.Fatal(err)
			}
			want := time.Now()
			if tt.capped {
				want = ceiling
			}
			near(t, "saved last-known-good time", saved, want, time.Second)
			near(t, "Floor()", c.Floor(), want, time.Second)
		})
	}
}

// A persisted floor 30 years ahead, as camd before the fix wrote it after
// one lying answer: one honest server cannot take the clock below it, two
// that agree discard it, and the clock is trusted again without touching the
// file.
func TestFloorFarAheadRecovery(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		servers int
		ok      bool
	}{
		{name: "ntp, two honest servers", mode: clock.ModeNTP, servers: 2, ok: true},
		{name: "auto, three honest servers", mode: clock.ModeAuto, servers: 3, ok: true},
		{name: "ntp, one honest server", mode: clock.ModeNTP, servers: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var servers []*ntptest.Server
			for i := range tt.servers {
				servers = append(servers, ntptest.Start(t, ntptest.Behaviour{Offset: time.Duration(i) * 100 * time.Millisecond}))
			}
			log, logs := testlog.New()
			cfg := testConfig(t, tt.mode, addrs(servers...)...)
			cfg.Log = log
			far := time.Now().Add(thirtyYears).Round(0).UTC()
			if err := (lastGoodFile{path: cfg.Dir.Join(LastGoodFileName)}).save(far); err != nil {
				t.Fatal(err)
			}
			c := newClock(t, cfg)
			if len(logs.Lines("level=WARN", "last-known-good time is later than a single source is believed")) != 1 {
				t.Errorf("a floor past the ceiling was not warned about at start:\n%s", logs)
			}
			if c.Trusted() {
				t.Fatal("trusted 30 years below the floor")
			}
			err := c.Sync(context.Background())
			saved, lerr := c.lastGood.load()
			if lerr != nil {
				t.Fatal(lerr)
			}
			if !tt.ok {
				if err == nil || !strings.Contains(err.Error(), "earlier than the last-known-good time") || !strings.Contains(err.Error(), "two servers that agree") {
					t.Fatalf("Sync: %v, want a refusal that names the recovery", err)
				}
				if c.Trusted() || !saved.Equal(far) {
					t.Errorf("one server changed things: trusted %v, saved %s", c.Trusted(), saved)
				}
				return
			}
			if err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if !c.Trusted() {
				t.Error("not trusted after servers agreed")
			}
			near(t, "Now()", c.Now(), time.Now(), time.Second)
			near(t, "saved last-known-good time", saved, time.Now(), time.Second)
		})
	}
}
